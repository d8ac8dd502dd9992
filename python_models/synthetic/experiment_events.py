"""Planted experiments and acquisition channels in the generated events (off by default).

`generate(..., experiment=ExperimentPlan(...))` adds, per chunk, from its own random stream
(so the rest of the data is byte-identical with or without it):
- one `experiment_exposure` event per exposed user (properties experiment_key, variant), one
  second past an identified event of theirs inside the exposure period;
- for a share of them (`multi_variant_share`) a second exposure to another variant, which the
  analysis must exclude;
- for users in `treated_variant`, with probability `extra_conversion_probability`, one extra
  `conversion_event` (a purchase with revenue) inside the window after exposure.

The planted effect on "converted within window_days" is therefore
`extra_conversion_probability x (1 - natural conversion rate)`; the manifest records it, and
the truth table `experiment_exposures.parquet` records each user's exposure and planting.

`generate(..., acquisition_channels=True)` gives every person an acquisition channel, written
as the `channel` property on all their events (truth `acquisition_channels.parquet`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from python_models.synthetic import personas as P
from python_models.synthetic.formats import random_uuids

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
EXPOSURE_DELAY_MS = 1_000  # the exposure follows the event it was shown on by one second
COLLECTOR_DELAY_MS = 2_000

# Streams derived from the chunk's seed; distinct from the base stream [seed, chunk].
EXPERIMENT_STREAM = 1
CHANNEL_STREAM = 2

CHANNELS: tuple[str, ...] = ("organic", "paid_search", "social", "email", "referral")
CHANNEL_WEIGHTS = np.array([0.4, 0.25, 0.15, 0.1, 0.1])


@dataclass(frozen=True)
class ExperimentPlan:
    """An A/B test planted in the events. Days count from the start of the generated period."""

    key: str = "checkout_nudge"
    variants: tuple[str, ...] = ("control", "treatment")
    weights: tuple[float, ...] = (0.5, 0.5)
    treated_variant: str = "treatment"
    # A treated user gets one extra conversion in the window with this probability (0 = A/A).
    extra_conversion_probability: float = 0.3
    conversion_event: str = "purchase"
    window_days: int = 7
    start_day: int = 28
    end_day: int = 56
    exposure_share: float = 0.9
    multi_variant_share: float = 0.02

    def validate(self, days: int) -> None:
        if len(self.variants) < 2 or len(set(self.variants)) != len(self.variants):
            raise ValueError(f"experiment needs two or more distinct variants, got {self.variants}")
        if len(self.weights) != len(self.variants) or min(self.weights) <= 0:
            raise ValueError("experiment weights must be positive, one per variant")
        if self.treated_variant not in self.variants:
            raise ValueError(f"treated_variant {self.treated_variant!r} is not a variant")
        if self.conversion_event not in P.EVENT_NAMES:
            raise ValueError(f"unknown conversion_event {self.conversion_event!r}")
        for name in ("extra_conversion_probability", "exposure_share", "multi_variant_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"experiment {name} must be in [0, 1], got {value}")
        if not 0 <= self.start_day < self.end_day:
            raise ValueError("experiment needs 0 <= start_day < end_day")
        if self.end_day + self.window_days + 2 > days:
            raise ValueError(
                f"experiment end_day {self.end_day} + window {self.window_days} days leaves no "
                f"room to observe outcomes in a {days}-day period"
            )

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "variants": list(self.variants),
            "weights": list(self.weights),
            "treated_variant": self.treated_variant,
            "extra_conversion_probability": self.extra_conversion_probability,
            "conversion_event": self.conversion_event,
            "window_days": self.window_days,
            "start_day": self.start_day,
            "end_day": self.end_day,
        }


def draw_channels(seed: int, chunk: int, n_people: int) -> np.ndarray:
    """Acquisition channel code per person of a chunk (its own stream)."""
    rng = np.random.default_rng([seed, chunk, CHANNEL_STREAM])
    return rng.choice(len(CHANNELS), size=n_people, p=CHANNEL_WEIGHTS / CHANNEL_WEIGHTS.sum())


def channel_truth(channel_codes: np.ndarray, first_person: int, identified: np.ndarray):
    rows = np.flatnonzero(identified)
    return pl.DataFrame(
        {
            "user_id": first_person + rows,
            "acquisition_channel": np.array(CHANNELS)[channel_codes[rows]],
        }
    ).with_columns(user_id=pl.format("u{}", pl.col("user_id").cast(pl.String).str.zfill(9)))


def _properties(extra: list[pl.Expr]) -> pl.Expr:
    """A properties JSON object from device/country/plan/channel columns plus `extra` parts."""
    channel = (
        pl.when(pl.col("channel").is_not_null())
        .then(pl.concat_str([pl.lit(',"channel":"'), pl.col("channel"), pl.lit('"')]))
        .otherwise(pl.lit(""))
    )
    return pl.concat_str(
        [
            pl.lit('{"device":"'),
            pl.col("device"),
            pl.lit('","country":"'),
            pl.col("country"),
            pl.lit('","plan":"'),
            pl.col("plan"),
            pl.lit('"'),
            channel,
            *extra,
            pl.lit("}"),
        ]
    )


def plant_experiment(
    seed: int,
    chunk: int,
    events: pl.DataFrame,
    users: dict,
    first_person: int,
    period_start_ms: int,
    plan: ExperimentPlan,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(extra event rows, truth rows) for one chunk.

    `events` holds the chunk's valid events with columns person, user_id, anonymous_id,
    session_id, ts_ms, event_name, device, country, plan, channel and is_ato. Extra rows come
    with the raw contract's columns plus recv_ms.
    """
    rng = np.random.default_rng([seed, chunk, EXPERIMENT_STREAM])
    start_ms = period_start_ms + plan.start_day * DAY_MS
    end_ms = period_start_ms + plan.end_day * DAY_MS
    window_ms = plan.window_days * DAY_MS

    # The first identified event of each user inside the exposure period (not an attacker's).
    first = (
        events.filter(
            pl.col("user_id").is_not_null()
            & ~pl.col("is_ato")
            & (pl.col("ts_ms") >= start_ms)
            & (pl.col("ts_ms") < end_ms)
        )
        .sort("person", "ts_ms")
        .group_by("person", maintain_order=True)
        .first()
    )
    who = first["person"].to_numpy() - first_person
    exposed_ms = first["ts_ms"].to_numpy() + EXPOSURE_DELAY_MS
    # Still active through the window, so planted events never land after a churn date.
    eligible = users["active_end"][who] > exposed_ms + window_ms + DAY_MS
    exposed = eligible & (rng.random(who.size) < plan.exposure_share)
    weights = np.asarray(plan.weights, dtype=float)
    variant = rng.choice(len(plan.variants), size=who.size, p=weights / weights.sum())
    multi = exposed & (rng.random(who.size) < plan.multi_variant_share)
    other = (variant + 1 + rng.integers(0, len(plan.variants) - 1, who.size)) % len(plan.variants)
    second_ms = exposed_ms + rng.integers(HOUR_MS, 2 * DAY_MS, who.size)
    treated = exposed & (variant == plan.variants.index(plan.treated_variant))
    planted = treated & (rng.random(who.size) < plan.extra_conversion_probability)
    planted_ms = exposed_ms + rng.integers(60_000, window_ms, who.size)
    noise = rng.normal(0, P.ORDER_VALUE_SIGMA, who.size) - P.ORDER_VALUE_SIGMA**2 / 2
    revenue = np.maximum(np.round(users["spend_level"][who] * np.exp(noise), 2), 1.0)

    base = first.with_columns(
        exposed_ms=pl.Series(exposed_ms),
        variant=pl.Series(np.array(plan.variants)[variant]),
        other_variant=pl.Series(np.array(plan.variants)[other]),
        second_ms=pl.Series(second_ms),
        planted_ms=pl.Series(planted_ms),
        revenue=pl.Series(revenue),
        spend_level=pl.Series(users["spend_level"][who]),
        is_exposed=pl.Series(exposed),
        is_multi_variant=pl.Series(multi),
        has_planted_conversion=pl.Series(planted),
    ).filter(pl.col("is_exposed"))

    # Did the user convert in the window anyway (from the events generated without the plan)?
    conversions = events.filter(pl.col("event_name") == plan.conversion_event).select(
        "person", conversion_ms="ts_ms"
    )
    natural = (
        base.select("person", "exposed_ms")
        .join(conversions, on="person")
        .filter(
            (pl.col("conversion_ms") > pl.col("exposed_ms"))
            & (pl.col("conversion_ms") <= pl.col("exposed_ms") + window_ms)
        )
        .select("person")
        .unique()
        .with_columns(naturally_converted=pl.lit(True))
    )
    base = base.join(natural, on="person", how="left").with_columns(
        pl.col("naturally_converted").fill_null(False)
    )

    key = plan.key
    # Planted events happen on the device and in the session of the event they follow.
    context = ["user_id", "anonymous_id", "session_id", "device", "country", "plan", "channel"]
    exposure_parts = [
        base.select(*context, ts_ms="exposed_ms", variant="variant"),
        base.filter(pl.col("is_multi_variant")).select(
            *context, ts_ms="second_ms", variant="other_variant"
        ),
    ]
    exposures = pl.concat(exposure_parts).with_columns(
        event_name=pl.lit("experiment_exposure"),
        properties=_properties(
            [
                pl.lit(f',"experiment_key":"{key}","variant":"'),
                pl.col("variant"),
                pl.lit('"'),
            ]
        ),
    )
    purchases = (
        base.filter(pl.col("has_planted_conversion"))
        .select(*context, "revenue", ts_ms="planted_ms")
        .with_columns(
            event_name=pl.lit(plan.conversion_event),
            properties=_properties(
                [
                    pl.lit(',"page":"/checkout/complete","revenue":'),
                    pl.col("revenue").round(2).cast(pl.String),
                    pl.lit(',"currency":"USD"'),
                ]
            ),
        )
    )
    columns = ["user_id", "anonymous_id", "session_id", "event_name", "ts_ms", "properties"]
    rows = pl.concat([exposures.select(columns), purchases.select(columns)])
    rows = rows.with_columns(
        event_id=random_uuids(rng, rows.height),
        recv_ms=pl.col("ts_ms") + COLLECTOR_DELAY_MS,
    )
    truth = base.select(
        "user_id",
        experiment_key=pl.lit(key),
        variant="variant",
        exposed_at=pl.from_epoch("exposed_ms", time_unit="ms"),
        is_multi_variant="is_multi_variant",
        second_variant=pl.when(pl.col("is_multi_variant")).then(pl.col("other_variant")),
        naturally_converted="naturally_converted",
        has_planted_conversion="has_planted_conversion",
        planted_revenue_usd=pl.when(pl.col("has_planted_conversion"))
        .then(pl.col("revenue"))
        .otherwise(0.0),
        spend_level="spend_level",
    )
    return rows, truth


def experiment_summary(truth: pl.DataFrame, plan: ExperimentPlan) -> dict:
    """Manifest entry: counts and the planted effects the analysis should find."""
    single = truth.filter(~pl.col("is_multi_variant"))
    natural_rate = float(single["naturally_converted"].mean() or 0.0) if single.height else 0.0
    q = plan.extra_conversion_probability
    return {
        **plan.as_dict(),
        "n_exposed": truth.height,
        "n_multi_variant": int(truth["is_multi_variant"].sum()),
        "n_by_variant": {v: int((single["variant"] == v).sum()) for v in plan.variants},
        "natural_conversion_rate": round(natural_rate, 6),
        # Expected difference treated - control in "converted within window_days".
        "planted_conversion_lift": round(q * (1 - natural_rate), 6),
        # Expected difference in revenue within window_days (USD per exposed user).
        "planted_revenue_lift_usd": round(
            q * float(single["spend_level"].mean() or 0.0) if single.height else 0.0, 4
        ),
    }
