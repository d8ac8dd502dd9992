"""Planted consent choices in the generated events (off by default; docs/privacy.md).

`generate(..., consent=ConsentPlan(...))` adds, per chunk, from its own random stream (so the
rest of the data is byte-identical with or without it), `consent_updated` events carrying
`consent_analytics` / `consent_marketing` (true / false):
- a share of identified users (`recorded_share`) record a choice one second before their first
  identified event, on the same device; a share of those choices are made before logging in
  (`anonymous_share`: the event has the device id only, identity stitching gives it to them);
- of those recording, `analytics_denied_share` deny analytics and, independently,
  `marketing_denied_share` deny marketing;
- of those granting analytics, `withdrawn_share` withdraw it later, halfway between their first
  and last identified events (their final state: no analytics consent).
Users without a record follow dbt var uba__consent_defaults. The truth table `consent.parquet`
holds each identified user's final choice per purpose (null: no choice recorded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from python_models.synthetic.formats import random_uuids

CONSENT_STREAM = 3  # extra seed word: distinct from the experiment (1) and channel (2) streams
CONSENT_EVENT = "consent_updated"
CHOICE_DELAY_MS = 1_000
COLLECTOR_DELAY_MS = 2_000


@dataclass(frozen=True)
class ConsentPlan:
    recorded_share: float = 0.8
    anonymous_share: float = 0.3
    analytics_denied_share: float = 0.1
    marketing_denied_share: float = 0.2
    withdrawn_share: float = 0.05

    def validate(self) -> None:
        for name, value in self.as_dict().items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"consent {name} must be in [0, 1], got {value}")

    def as_dict(self) -> dict:
        return {
            "recorded_share": self.recorded_share,
            "anonymous_share": self.anonymous_share,
            "analytics_denied_share": self.analytics_denied_share,
            "marketing_denied_share": self.marketing_denied_share,
            "withdrawn_share": self.withdrawn_share,
        }


def _choice(analytics: pl.Expr, marketing: pl.Expr | None) -> pl.Expr:
    def flag(expr: pl.Expr) -> pl.Expr:
        return pl.when(expr).then(pl.lit("true")).otherwise(pl.lit("false"))

    parts = [pl.lit('{"consent_analytics":'), flag(analytics)]
    if marketing is not None:
        parts += [pl.lit(',"consent_marketing":'), flag(marketing)]
    return pl.concat_str([*parts, pl.lit("}")])


def plant_consent(
    seed: int, chunk: int, events: pl.DataFrame, plan: ConsentPlan
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(extra event rows, truth rows) for one chunk. `events` holds the chunk's valid events
    with person, user_id, anonymous_id, session_id, ts_ms and is_ato; extra rows come with the
    raw contract's columns plus recv_ms."""
    rng = np.random.default_rng([seed, chunk, CONSENT_STREAM])
    identified = events.filter(pl.col("user_id").is_not_null() & ~pl.col("is_ato"))
    people = (
        identified.sort("person", "ts_ms")
        .group_by("person", maintain_order=True)
        .agg(
            pl.col("user_id").first(),
            pl.col("anonymous_id").first(),
            pl.col("session_id").first(),
            first_ms=pl.col("ts_ms").first(),
            last_ms=pl.col("ts_ms").last(),
        )
    )
    n = people.height
    recorded = rng.random(n) < plan.recorded_share
    anonymous = rng.random(n) < plan.anonymous_share
    analytics = rng.random(n) >= plan.analytics_denied_share
    marketing = rng.random(n) >= plan.marketing_denied_share
    withdrawn = recorded & analytics & (rng.random(n) < plan.withdrawn_share)
    people = people.with_columns(
        recorded=pl.Series(recorded),
        anonymous=pl.Series(anonymous),
        analytics=pl.Series(analytics),
        marketing=pl.Series(marketing),
        withdrawn=pl.Series(withdrawn),
        choice_ms=pl.col("first_ms") - CHOICE_DELAY_MS,
        withdrawn_ms=(pl.col("first_ms") + pl.col("last_ms")) // 2,
    ).with_columns(withdrawn=pl.col("withdrawn") & (pl.col("withdrawn_ms") > pl.col("choice_ms")))
    chosen = people.filter(pl.col("recorded"))
    first_choices = chosen.select(
        user_id=pl.when(pl.col("anonymous")).then(None).otherwise(pl.col("user_id")),
        anonymous_id="anonymous_id",
        session_id="session_id",
        ts_ms="choice_ms",
        properties=_choice(pl.col("analytics"), pl.col("marketing")),
    )
    withdrawals = chosen.filter(pl.col("withdrawn")).select(
        "user_id",
        "anonymous_id",
        "session_id",
        ts_ms="withdrawn_ms",
        properties=_choice(pl.lit(False), None),
    )
    rows = pl.concat([first_choices, withdrawals]).with_columns(
        event_name=pl.lit(CONSENT_EVENT),
    )
    rows = rows.with_columns(
        event_id=random_uuids(rng, rows.height),
        recv_ms=pl.col("ts_ms") + COLLECTOR_DELAY_MS,
    )
    truth = people.select(
        "user_id",
        has_consent_record="recorded",
        analytics_consent=pl.when(pl.col("recorded")).then(
            pl.col("analytics") & ~pl.col("withdrawn")
        ),
        marketing_consent=pl.when(pl.col("recorded")).then(pl.col("marketing")),
        choice_before_login=pl.col("recorded") & pl.col("anonymous"),
        withdrew_analytics=pl.col("withdrawn"),
        first_choice_at=pl.when(pl.col("recorded")).then(
            pl.from_epoch("choice_ms", time_unit="ms")
        ),
    )
    return rows, truth


def consent_summary(truth: pl.DataFrame, plan: ConsentPlan) -> dict:
    """Manifest entry: the plan and how many users ended in each state."""
    return {
        **plan.as_dict(),
        "n_users": truth.height,
        "n_recorded": int(truth["has_consent_record"].sum()),
        "n_without_analytics": int((truth["analytics_consent"] == False).sum()),  # noqa: E712
        "n_without_marketing": int((truth["marketing_consent"] == False).sum()),  # noqa: E712
        "n_withdrew_analytics": int(truth["withdrew_analytics"].sum()),
        "n_choices_before_login": int(truth["choice_before_login"].sum()),
    }
