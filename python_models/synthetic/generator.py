"""Seeded, streaming generator of raw events with planted ground truth.

The population is generated in chunks of users. Each chunk draws from its own generator
`np.random.default_rng([seed, chunk_index])`, so output is deterministic and memory is bounded
by the chunk size (about 1M events), whatever the total size. Within a chunk all work is array
operations: users -> sessions -> events -> duplicates and defects -> strings.

`n_events` is a target for the number of *valid* events (duplicates and defect rows come on
top). The user count is calibrated from the personas' expected activity, so the actual count
lands within a few percent of the target; the manifest records the exact figures.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from python_models.synthetic import personas as P
from python_models.synthetic.consent_events import ConsentPlan, consent_summary, plant_consent
from python_models.synthetic.experiment_events import (
    CHANNELS,
    ExperimentPlan,
    channel_truth,
    draw_channels,
    experiment_summary,
    plant_experiment,
)
from python_models.synthetic.formats import (
    RAW_COLUMNS,
    RAW_SCHEMA,
    iso_timestamps,
    random_uuids,
    to_raw_table,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

CHUNK_TARGET_EVENTS = 1_000_000
ROW_GROUP_ROWS = 2_000_000  # one row group per chunk (~1M rows each)
ROWS_PER_PART = 8_000_000
MAX_TOO_LARGE_PER_CHUNK = 2  # each is > 64 KiB, keep files small
TOO_LARGE_PADDING = 70_000
OFFSET_SHARE = 0.03  # event_ts / received_at written with an explicit non-Z offset

# Session kinds.
REGULAR, SIGNUP, PRESIGNUP, ATO, VISITOR = range(5)
# Session prefixes: events forced at the start of a session (-1 pads).
P_NONE, P_SIGNUP, P_FIRST_LOGIN, P_LOGIN, P_ATO = range(5)
PREFIX_EVENTS = np.array(
    [
        [-1, -1, -1],
        [P.EV["page_view"], P.EV["signup"], -1],
        [P.EV["page_view"], P.EV["login"], -1],
        [P.EV["login"], -1, -1],
        [P.EV["login"], P.EV["password_reset"], P.EV["settings_changed"]],
    ],
    dtype=np.int16,
)
PREFIX_LENGTH = (PREFIX_EVENTS >= 0).sum(axis=1)
FUNNEL = np.array([P.EV["add_to_cart"], P.EV["checkout_started"], P.EV["purchase"]], np.int16)

INCIDENT_STREAM = 7  # extra seed word for the planted funnel incident's draws
VISITOR_PERSONA = len(P.PERSONAS)  # persona code used for never-identified visitors

DEFECT_REASONS: tuple[str, ...] = (
    "missing_event_id",
    "missing_event_name",
    "unknown_event_name",
    "missing_identity",
    "invalid_event_ts",
    "event_ts_out_of_range",
    "invalid_received_at",
    "invalid_properties_json",
    "properties_too_large",
    "invalid_property_type",
)
UNKNOWN_EVENT_NAMES = ("page_veiw", "cart_abandoned", "app_crashed")
BAD_TIMESTAMPS = ("not-a-date", "2025-13-45T99:00:00Z", "yesterday at noon")
# Before the gate's default earliest event date (settings.earliest_event_date, 1990-01-01).
OUT_OF_RANGE_TIMESTAMPS = ("1970-01-01T00:00:00.000Z", "1989-12-31T23:59:59.000Z")
BAD_RECEIVED_AT = ("not-a-date", "2025-02-30T10:00:00Z")


@dataclass(frozen=True)
class GenerationResult:
    out_dir: Path
    events_dir: Path
    truth_dir: Path
    n_rows: int
    n_users: int
    manifest: dict = field(hash=False)


@dataclass(frozen=True)
class FunnelIncident:
    """A planted payment incident: for `days` days from `start_date` (UTC), each planned
    purchase (the last event of a session's cart -> checkout -> purchase run) is kept only with
    probability `keep_rate`, so checkout -> purchase conversion falls to about `keep_rate`
    times its usual level. Nothing else changes; the manifest records the window."""

    start_date: str
    days: int = 21
    keep_rate: float = 0.4


@dataclass(frozen=True)
class _Period:
    start_ms: int
    end_ms: int  # exclusive


# ---------------------------------------------------------------------------------------------
# users


def _draw_users(rng: np.random.Generator, n: int, period: _Period, ato_rate: float) -> dict:
    """Per-person attributes for n people (identified users and anonymous visitors)."""
    n_personas = len(P.PERSONAS)
    weights = np.array([p.weight for p in P.PERSONAS])
    is_visitor = rng.random(n) < P.VISITOR_SHARE
    persona = rng.choice(n_personas, size=n, p=weights / weights.sum())
    persona = np.where(is_visitor, VISITOR_PERSONA, persona)
    identified = ~is_visitor
    span = period.end_ms - period.start_ms

    preexisting = identified & (rng.random(n) < P.PREEXISTING_SHARE)
    signup_new = period.start_ms + (rng.random(n) * (span - 3 * DAY_MS)).astype(np.int64)
    signup_old = period.start_ms - (DAY_MS + rng.random(n) * 364 * DAY_MS).astype(np.int64)
    signup_ms = np.where(preexisting, signup_old, signup_new)
    first_visit = period.start_ms + (rng.random(n) * (span - DAY_MS)).astype(np.int64)
    active_start = np.where(is_visitor, first_visit, np.maximum(signup_ms, period.start_ms))

    churn_p = np.array([p.churn_probability for p in P.PERSONAS] + [0.0]) * P.CHURN_SCALE
    earliest = active_start + P.CHURN_MIN_HISTORY_DAYS * DAY_MS
    latest = period.end_ms - P.CHURN_MIN_DAYS_BEFORE_END * DAY_MS
    can_churn = identified & (earliest < latest)
    churned = can_churn & (rng.random(n) < churn_p[persona])
    churned_ms = earliest + (rng.random(n) * np.maximum(latest - earliest, 0)).astype(np.int64)
    churned_ms = np.where(churned, churned_ms, -1)
    decay_days = rng.uniform(*P.DECAY_DAYS, size=n)
    decay_ms = (decay_days * DAY_MS).astype(np.int64)
    visitor_end = np.minimum(first_visit + P.VISITOR_WINDOW_DAYS * DAY_MS, period.end_ms)
    active_end = np.where(churned, churned_ms, np.where(is_visitor, visitor_end, period.end_ms))

    base_rate = np.array([p.sessions_per_day for p in P.PERSONAS] + [P.VISITOR_SESSIONS_PER_DAY])
    rate = base_rate[persona] * rng.lognormal(0.0, P.RATE_NOISE_SIGMA, size=n)
    order_value = np.array([p.order_value_usd for p in P.PERSONAS] + [0.0])
    spend_level = np.round(order_value[persona] * rng.lognormal(0, P.SPEND_NOISE_SIGMA, n), 2)
    purchase_base = np.array([p.purchase_per_session for p in P.PERSONAS] + [0.0])
    purchase_p = np.minimum(purchase_base[persona] * rng.lognormal(0.0, 0.3, size=n), 0.9)

    home_country = rng.choice(
        len(P.HOME_COUNTRIES), size=n, p=P.HOME_COUNTRY_WEIGHTS / P.HOME_COUNTRY_WEIGHTS.sum()
    )
    plan_cdf = np.cumsum([p.plan_weights for p in P.PERSONAS] + [(1.0, 0.0, 0.0)], axis=1)
    plan = (rng.random(n)[:, None] > plan_cdf[persona]).sum(axis=1).clip(0, 2)
    device_cdf = np.cumsum([p.device_weights for p in P.PERSONAS] + [(0.4, 0.5, 0.1)], axis=1)
    n_devices = rng.choice(3, size=n, p=P.DEVICE_COUNT_WEIGHTS) + 1
    n_devices = np.where(is_visitor, 1, n_devices)
    # Slots 0-2: the person's own devices; slot 3: the attacker's device in a takeover.
    device_type = rng.integers(0, 3, size=(n, 4))
    device_type[:, 0] = (rng.random(n)[:, None] > device_cdf[persona]).sum(axis=1).clip(0, 2)
    device_type[:, 3] = (device_type[:, 0] + 1 + rng.integers(0, 2, size=n)) % 3
    device_since = active_start[:, None] + (
        rng.random((n, 3)) * (active_end - active_start)[:, None]
    ).astype(np.int64)
    device_since[:, 0] = np.iinfo(np.int64).min
    anonymous_ids = random_uuids(rng, n * 4).to_numpy().astype("U36").reshape(n, 4)
    ip_octets = rng.integers(1, 255, size=(n, 2, 4))

    # Shared devices (a family computer): B's last own device is A's main device.
    multi = identified & (n_devices >= 2)
    sharer = multi & (rng.random(n) < P.SHARED_DEVICE_SHARE)
    owner = rng.integers(0, n, size=n)
    valid_owner = identified[owner] & ~sharer[owner] & (owner != np.arange(n))
    sharer &= valid_owner
    rows = np.flatnonzero(sharer)
    anonymous_ids[rows, n_devices[rows] - 1] = anonymous_ids[owner[rows], 0]
    device_type[rows, n_devices[rows] - 1] = device_type[owner[rows], 0]

    # Account takeover on one night, well inside the person's active time.
    ato_first = active_start + 7 * DAY_MS
    ato_last = active_end - 2 * DAY_MS
    is_ato = identified & (ato_last > ato_first) & (rng.random(n) < ato_rate)
    ato_day = (ato_first + rng.random(n) * np.maximum(ato_last - ato_first, 0)).astype(np.int64)
    ato_day = ato_day // DAY_MS * DAY_MS
    ato_ms = ato_day + HOUR_MS + (rng.random(n) * 3.4 * HOUR_MS).astype(np.int64)
    attacker_country = rng.integers(0, len(P.ATTACKER_COUNTRIES), size=n)

    return {
        "n": n,
        "persona": persona,
        "is_visitor": is_visitor,
        "identified": identified,
        "preexisting": preexisting,
        "signup_ms": signup_ms,
        "active_start": active_start,
        "active_end": active_end,
        "churned": churned,
        "churned_ms": churned_ms,
        "decay_ms": decay_ms,
        "rate": rate,
        "spend_level": spend_level,
        "purchase_p": purchase_p,
        "home_country": home_country,
        "plan": plan,
        "n_devices": n_devices,
        "device_type": device_type,
        "device_since": device_since,
        "anonymous_ids": anonymous_ids,
        "ip_octets": ip_octets,
        "is_ato": is_ato,
        "ato_ms": ato_ms,
        "attacker_country": attacker_country,
    }


def _expected_events_per_person(users: dict) -> float:
    """Mean events per generated person, from the planted rates (used to size the population)."""
    persona = users["persona"]
    eps = np.array([p.events_per_session for p in P.PERSONAS] + [P.ANONYMOUS_EVENTS_PER_SESSION])
    active_days = (users["active_end"] - users["active_start"]) / DAY_MS
    decay_days = users["decay_ms"] / DAY_MS
    # The session rate falls linearly to DECAY_FLOOR over the decay window.
    lost_days = np.where(users["churned"], decay_days * (1 - P.DECAY_FLOOR) / 2, 0.0)
    sessions = users["rate"] * np.maximum(active_days - lost_days, 0)
    per_session = eps[persona] + 3 * users["purchase_p"] + P.LOGIN_PROBABILITY + 0.1
    signup = users["identified"] & ~users["preexisting"]
    extra = signup * (eps[persona] + 2 + 0.8 * P.ANONYMOUS_EVENTS_PER_SESSION)
    return float(np.mean(sessions * per_session + extra))


# ---------------------------------------------------------------------------------------------
# sessions and events


def _sample_hours(rng: np.random.Generator, persona: np.ndarray) -> np.ndarray:
    hours = np.empty(persona.size, dtype=np.int64)
    draws = rng.random(persona.size)
    peaks = [p.peak_hours_utc for p in P.PERSONAS] + [P.VISITOR_PEAK_HOURS]
    for code, peak in enumerate(peaks):
        mask = persona == code
        hours[mask] = np.searchsorted(P.hour_cdf(peak), draws[mask], side="right")
    return hours.clip(0, 23)


def _draw_sessions(rng: np.random.Generator, users: dict, period: _Period) -> dict:
    n = users["n"]
    persona = users["persona"]
    start, end = users["active_start"], users["active_end"]

    # Ordinary sessions: a Poisson process at the person's rate, thinned before churn.
    n_candidates = rng.poisson(users["rate"] * (end - start) / DAY_MS)
    who = np.repeat(np.arange(n), n_candidates)
    t = start[who] + (rng.random(who.size) * (end - start)[who]).astype(np.int64)
    decay_start = users["churned_ms"][who] - users["decay_ms"][who]
    in_decay = users["churned"][who] & (t > decay_start)
    progress = np.clip((t - decay_start) / np.maximum(users["decay_ms"][who], 1), 0, 1)
    keep_p = np.where(in_decay, 1 - (1 - P.DECAY_FLOOR) * progress, 1.0)
    keep = rng.random(who.size) < keep_p
    who, t = who[keep], t[keep]
    # Diurnal pattern: keep the day, redraw the hour from the persona's activity curve.
    hours = _sample_hours(rng, persona[who])
    t = t // DAY_MS * DAY_MS + hours * HOUR_MS + rng.integers(0, HOUR_MS, size=who.size)
    inside = (t >= start[who]) & (t < end[who])
    who, t = who[inside], t[inside]
    slot = (rng.random(who.size) * users["n_devices"][who]).astype(np.int64)
    slot = np.where(users["device_since"][who, slot] > t, 0, slot)
    kind = np.where(users["is_visitor"][who], VISITOR, REGULAR)

    # Sign-up sessions, and anonymous visits on the main device in the days before sign-up.
    new = np.flatnonzero(users["identified"] & ~users["preexisting"])
    n_pre = rng.choice(3, size=new.size, p=[0.4, 0.4, 0.2])
    pre_who = np.repeat(new, n_pre)
    pre_t = users["signup_ms"][pre_who] - rng.integers(HOUR_MS // 2, 72 * HOUR_MS, pre_who.size)
    pre_keep = pre_t >= period.start_ms
    pre_who, pre_t = pre_who[pre_keep], pre_t[pre_keep]
    ato_who = np.flatnonzero(users["is_ato"])

    who = np.concatenate([who, new, pre_who, ato_who])
    t = np.concatenate([t, users["signup_ms"][new], pre_t, users["ato_ms"][ato_who]])
    slot = np.concatenate(
        [slot, np.zeros(new.size + pre_who.size, np.int64), np.full(ato_who.size, 3)]
    )
    kind = np.concatenate(
        [
            kind,
            np.full(new.size, SIGNUP),
            np.full(pre_who.size, PRESIGNUP),
            np.full(ato_who.size, ATO),
        ]
    )
    order = np.lexsort((kind, t, who))
    who, t, slot, kind = who[order], t[order], slot[order], kind[order]

    # The first identified session on each device starts anonymous, then logs in.
    identified_session = (kind == REGULAR) | (kind == SIGNUP)
    device_key = np.where(identified_session, who * 4 + slot, -1)
    by_device = np.lexsort((t, device_key))
    first = np.zeros(who.size, dtype=bool)
    sorted_keys = device_key[by_device]
    is_first_sorted = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] & (sorted_keys >= 0)
    first[by_device] = is_first_sorted

    prefix = np.full(who.size, P_NONE)
    prefix[(kind == REGULAR) & (rng.random(who.size) < P.LOGIN_PROBABILITY)] = P_LOGIN
    prefix[(kind == REGULAR) & first] = P_FIRST_LOGIN
    prefix[kind == SIGNUP] = P_SIGNUP
    prefix[kind == ATO] = P_ATO

    eps = np.array([p.events_per_session for p in P.PERSONAS] + [P.ANONYMOUS_EVENTS_PER_SESSION])
    anonymous_kind = (kind == PRESIGNUP) | (kind == VISITOR)
    mean_core = np.where(anonymous_kind, P.ANONYMOUS_EVENTS_PER_SESSION, eps[persona[who]])
    n_core = 1 + rng.poisson(np.maximum(mean_core - 1, 0))
    n_core = np.where(kind == ATO, 6 + rng.poisson(8, who.size), n_core)
    n_core = np.minimum(n_core, np.where(kind == ATO, 22, 40))
    purchase_p = np.where(identified_session, users["purchase_p"][who], 0.0)
    purchase_p = np.where(kind == ATO, P.ATO_PURCHASE_PROBABILITY, purchase_p)
    has_purchase = rng.random(who.size) < purchase_p
    return {
        "who": who,
        "start": t,
        "slot": slot,
        "kind": kind,
        "prefix": prefix,
        "n_core": n_core,
        "has_purchase": has_purchase,
    }


def _draw_events(rng: np.random.Generator, users: dict, sessions: dict, period: _Period) -> dict:
    n_prefix = PREFIX_LENGTH[sessions["prefix"]]
    length = n_prefix + sessions["n_core"] + 3 * sessions["has_purchase"]
    session = np.repeat(np.arange(length.size), length)
    first_row = np.cumsum(length) - length
    position = np.arange(session.size) - first_row[session]
    who = sessions["who"][session]
    kind = sessions["kind"][session]
    persona = users["persona"][who]
    core_pos = position - n_prefix[session]

    code = np.empty(session.size, dtype=np.int16)
    in_prefix = core_pos < 0
    code[in_prefix] = PREFIX_EVENTS[sessions["prefix"][session[in_prefix]], position[in_prefix]]
    in_funnel = core_pos >= sessions["n_core"][session]
    code[in_funnel] = FUNNEL[core_pos[in_funnel] - sessions["n_core"][session[in_funnel]]]
    in_core = ~in_prefix & ~in_funnel
    draws = rng.random(session.size)
    mixes = [
        (in_core & ((kind == PRESIGNUP) | (kind == VISITOR)), P.ANONYMOUS_MIX),
        (in_core & (kind == ATO), P.ATO_MIX),
    ]
    ordinary = in_core & ((kind == REGULAR) | (kind == SIGNUP))
    for code_, persona_ in enumerate(P.PERSONAS):
        mixes.append((ordinary & (persona == code_), persona_.mix))
    for mask, mix in mixes:
        codes, cdf = P.mix_cdf(mix)
        code[mask] = codes[np.searchsorted(cdf, draws[mask], side="right").clip(0, codes.size - 1)]

    gap_mean = np.array([p.gap_seconds for p in P.PERSONAS] + [P.ANONYMOUS_GAP_SECONDS])[persona]
    gap_mean = np.where(kind == ATO, P.ATO_GAP_SECONDS, gap_mean)
    gap_cap = np.where(kind == ATO, 60_000, P.MAX_GAP_SECONDS * 1000)
    gap = np.minimum(((rng.exponential(1.0, session.size) * gap_mean + 1) * 1000), gap_cap)
    gap = np.where(position == 0, 0, gap.astype(np.int64))
    elapsed = np.cumsum(gap)
    ts = sessions["start"][session] + elapsed - elapsed[first_row[session]]

    keep = (ts < users["active_end"][who]) & (ts >= period.start_ms) & (ts < period.end_ms)
    anonymous_row = (
        (kind == PRESIGNUP)
        | (kind == VISITOR)
        | ((position == 0) & np.isin(sessions["prefix"][session], [P_SIGNUP, P_FIRST_LOGIN]))
    )
    events = {
        "session": session,
        "who": who,
        "kind": kind,
        "persona": persona,
        "slot": sessions["slot"][session],
        "code": code,
        "ts": ts,
        "anonymous_row": anonymous_row,
    }
    return {k: v[keep] for k, v in events.items()}


# ---------------------------------------------------------------------------------------------
# chunk -> frames


def _generate_chunk(
    chunk: int, n_people: int, first_person: int, period: _Period, cfg: dict
) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng([cfg["seed"], chunk])
    users = _draw_users(rng, n_people, period, cfg["ato_rate"])
    sessions = _draw_sessions(rng, users, period)
    ev = _draw_events(rng, users, sessions, period)
    if cfg.get("funnel_incident"):
        ev = _plant_funnel_incident(ev, cfg, chunk)
    n = ev["ts"].size
    who, code = ev["who"], ev["code"]
    person_id = first_person + who
    is_ato = ev["kind"] == ATO

    page_by_event = np.array([P.FIXED_PAGE.get(name, "") for name in P.EVENT_NAMES])
    browse_page = rng.integers(0, len(P.BROWSE_PAGES), n)
    feature = rng.integers(0, len(P.FEATURES), n)
    noise = rng.normal(0, P.ORDER_VALUE_SIGMA, n) - P.ORDER_VALUE_SIGMA**2 / 2
    revenue = np.maximum(np.round(users["spend_level"][who] * np.exp(noise), 2), 1.0)
    delay_ms = (rng.lognormal(np.log(2.0), 1.0, n) * 1000).astype(np.int64) + 50
    late = rng.random(n) < cfg["late_rate"]
    delay_ms = np.where(late, rng.integers(HOUR_MS, 72 * HOUR_MS, n), delay_ms)
    ts_offset = np.where(rng.random(n) < OFFSET_SHARE, rng.integers(1, 5, n), 0)
    recv_offset = np.where(rng.random(n) < OFFSET_SHARE, rng.integers(1, 5, n), 0)
    ip = users["ip_octets"][who, is_ato.astype(np.int64)]
    n_home = len(P.HOME_COUNTRIES)
    country = np.where(is_ato, n_home + users["attacker_country"][who], users["home_country"][who])
    fixed_page = page_by_event[code]
    page_code = np.where(fixed_page == "", browse_page, len(P.BROWSE_PAGES) + code.astype(np.int64))

    def pick(values, index: np.ndarray) -> pl.Series:
        # Strings by code through Arrow gather: much faster than numpy unicode arrays.
        return pl.Series(list(values), dtype=pl.String).gather(index)

    anonymous_id = pick(users["anonymous_ids"].ravel(), who * 4 + ev["slot"])
    channel_codes = None
    channel = pl.Series("channel", [None] * n, dtype=pl.String)
    if cfg["acquisition_channels"]:  # planted from its own stream: other columns stay the same
        channel_codes = draw_channels(cfg["seed"], chunk, n_people)
        channel = pick(CHANNELS, channel_codes[who])

    frame = pl.DataFrame(
        {
            "person": person_id,
            "user_num": person_id,
            "anonymous_id": anonymous_id,
            "code": code.astype(np.int64),
            "ts_ms": ev["ts"],
            "recv_ms": ev["ts"] + delay_ms,
            "ts_offset": ts_offset,
            "recv_offset": recv_offset,
            "session_num": ev["session"].astype(np.int64),
            "anonymous_row": ev["anonymous_row"],
            "page": pick(P.BROWSE_PAGES + tuple(page_by_event), page_code),
            "device": pick(P.DEVICE_TYPES, users["device_type"][who, ev["slot"]]),
            "country": pick(P.HOME_COUNTRIES + P.ATTACKER_COUNTRIES, country),
            "plan": pick(P.PLANS, users["plan"][who]),
            "feature": pick(P.FEATURES, feature),
            "channel": channel,
            "revenue": revenue,
            "ip": ip[:, 0],
            "ip1": ip[:, 1],
            "ip2": ip[:, 2],
            "ip3": ip[:, 3],
        }
    )
    frame = frame.with_columns(
        event_id=random_uuids(rng, n),
        user_id=pl.when(pl.col("anonymous_row"))
        .then(None)
        .otherwise(pl.format("u{}", pl.col("user_num").cast(pl.String).str.zfill(9))),
        event_name=pl.col("code").replace_strict(
            list(range(len(P.EVENT_NAMES))), list(P.EVENT_NAMES)
        ),
        session_id=pl.format("s{}-{}", pl.lit(chunk), pl.col("session_num")),
    )
    frame = frame.with_columns(properties=_properties_expr())
    frame = frame.with_columns(
        event_ts=iso_timestamps(
            pl.col("ts_ms"), pl.col("ts_offset"), P.OFFSET_MINUTES, P.OFFSET_SUFFIX
        ),
        received_at=iso_timestamps(
            pl.col("recv_ms"), pl.col("recv_offset"), P.OFFSET_MINUTES, P.OFFSET_SUFFIX
        ),
        is_late=pl.lit(late),
    )
    valid = frame.select(
        *RAW_COLUMNS, "recv_ms", "person", "code", "ts_ms", "is_late", "ts_offset", "recv_offset"
    )
    duplicates, duplicate_truth = _duplicates(rng, valid, cfg["duplicate_rate"])
    defects, defect_truth = _defects(rng, valid, cfg["defect_rate"], chunk)
    planted_parts, extra_truth = [], {}
    if cfg["experiment"] is not None:
        planted, extra_truth["experiment_exposures"] = plant_experiment(
            cfg["seed"],
            chunk,
            frame.with_columns(is_ato=pl.Series(is_ato)),
            users,
            first_person,
            period.start_ms,
            cfg["experiment"],
        )
        planted_parts.append(_planted_rows(planted))
    if cfg.get("consent") is not None:
        planted, extra_truth["consent"] = plant_consent(
            cfg["seed"], chunk, frame.with_columns(is_ato=pl.Series(is_ato)), cfg["consent"]
        )
        planted_parts.append(_planted_rows(planted))
    if channel_codes is not None:
        extra_truth["acquisition_channels"] = channel_truth(
            channel_codes, first_person, users["identified"]
        )
    n_planted = sum(part.height for part in planted_parts)
    rows = pl.concat(
        [
            valid.select(*RAW_COLUMNS, "recv_ms"),
            *planted_parts,
            duplicates.select(*RAW_COLUMNS, "recv_ms"),
            defects.select(*RAW_COLUMNS, "recv_ms"),
        ]
    ).with_row_index("serial")
    # Files arrive roughly in collector order; serial breaks ties deterministically.
    rows = rows.sort(["recv_ms", "serial"]).select(RAW_COLUMNS)

    return {
        "rows": rows,
        "users": _users_truth(users, first_person),
        "devices": _devices_truth(valid, users, first_person),
        "anomalies": _anomalies_truth(users, first_person, valid),
        "duplicates": duplicate_truth,
        "defects": defect_truth,
        **extra_truth,
        "stats": pl.DataFrame(
            {
                "valid": [valid.height + n_planted],
                "late": [int(late.sum())],
                "offsets": [int((ts_offset > 0).sum() + (recv_offset > 0).sum())],
                "visitors_seen": [
                    int(np.unique(who[users["is_visitor"][who]]).size),
                ],
            }
        ),
    }


def _planted_rows(planted: pl.DataFrame) -> pl.DataFrame:
    """Planted events (experiment, consent) in the raw contract's columns, times written in UTC."""
    return planted.with_columns(
        event_ts=iso_timestamps(
            pl.col("ts_ms"), pl.lit(0, pl.Int64), P.OFFSET_MINUTES, P.OFFSET_SUFFIX
        ),
        received_at=iso_timestamps(
            pl.col("recv_ms"), pl.lit(0, pl.Int64), P.OFFSET_MINUTES, P.OFFSET_SUFFIX
        ),
    ).select(*RAW_COLUMNS, "recv_ms")


def _plant_funnel_incident(ev: dict, cfg: dict, chunk: int) -> dict:
    """Drop purchases inside the incident window with probability 1 - keep_rate. Purchases only
    come from the cart -> checkout -> purchase run, and it is the run's last event, so dropping
    one leaves an abandoned checkout. A separate random stream keeps the draws above intact."""
    start_ms, end_ms, keep_rate = cfg["funnel_incident"]
    incident_rng = np.random.default_rng([cfg["seed"], chunk, INCIDENT_STREAM])
    draws = incident_rng.random(ev["ts"].size)
    in_window = (ev["ts"] >= start_ms) & (ev["ts"] < end_ms)
    dropped = (ev["code"] == P.EV["purchase"]) & in_window & (draws >= keep_rate)
    return {key: values[~dropped] for key, values in ev.items()}


def _properties_expr() -> pl.Expr:
    """The properties JSON object, built column-wise. Values are plain tokens (no escaping)."""
    name = pl.col("event_name")

    def when(condition: pl.Expr, text: pl.Expr) -> pl.Expr:
        return pl.when(condition).then(text).otherwise(pl.lit(""))

    ip_text = pl.concat_str(["ip", "ip1", "ip2", "ip3"], separator=".")

    def text(*parts: str | pl.Expr) -> pl.Expr:
        return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])

    return pl.concat_str(
        [
            text('{"page":"', pl.col("page"), '","device":"', pl.col("device")),
            text('","country":"', pl.col("country"), '","plan":"', pl.col("plan"), '"'),
            when(name == "feature_use", text(',"feature":"', pl.col("feature"), '"')),
            when(
                name == "purchase",
                text(
                    ',"revenue":', pl.col("revenue").round(2).cast(pl.String), ',"currency":"USD"'
                ),
            ),
            when(
                name == "signup",
                text(',"email":"user', pl.col("user_num").cast(pl.String), '@example.com"'),
            ),
            when(name == "login", text(',"ip":"', ip_text, '"')),
            when(pl.col("channel").is_not_null(), text(',"channel":"', pl.col("channel"), '"')),
            pl.lit("}"),
        ]
    )


def _duplicates(
    rng: np.random.Generator, valid: pl.DataFrame, rate: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Re-sent copies: same event_id and payload, received later."""
    n = valid.height
    picked = np.flatnonzero(rng.random(n) < rate)
    copies = np.where(rng.random(picked.size) < 0.9, 2, 3)
    source = np.repeat(picked, copies - 1)
    extra_delay = rng.integers(MINUTE_MS, 6 * HOUR_MS, source.size)
    dup = valid[source].with_columns(
        recv_ms=pl.col("recv_ms") + pl.Series(extra_delay),
    )
    dup = dup.with_columns(
        received_at=iso_timestamps(
            pl.col("recv_ms"), pl.lit(0, pl.Int64), P.OFFSET_MINUTES, P.OFFSET_SUFFIX
        )
    )
    truth = pl.DataFrame(
        {"event_id": valid["event_id"].gather(picked), "copies": copies.astype(np.int64)}
    )
    return dup, truth


def _defects(
    rng: np.random.Generator, valid: pl.DataFrame, rate: float, chunk: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Extra rows, each a copy of a valid non-purchase event with a fresh id and ONE defect.

    Every defect row's session_id is a unique marker `defect-<chunk>-<n>`; rows without an
    event_id are found by it (truth `row_key`).
    """
    candidates = np.flatnonzero((valid["event_name"] != "purchase").to_numpy())
    n = min(int(rng.binomial(valid.height, rate)), candidates.size)
    source = np.sort(rng.choice(candidates, size=n, replace=False))
    kinds = rng.permutation(np.arange(n) % len(DEFECT_REASONS))
    too_large = DEFECT_REASONS.index("properties_too_large")
    excess = np.flatnonzero(kinds == too_large)[MAX_TOO_LARGE_PER_CHUNK:]
    kinds[excess] = (too_large + 1 + np.arange(excess.size) % (len(DEFECT_REASONS) - 1)) % len(
        DEFECT_REASONS
    )
    reason = np.array(DEFECT_REASONS)[kinds]
    pick = rng.integers(0, 1_000_000, n)

    def choose(options: tuple[str, ...]) -> pl.Series:
        return pl.Series(np.array(options)[pick % len(options)])

    base = valid[source].with_columns(
        reason=pl.Series(reason),
        event_id=random_uuids(rng, n),
        session_id=pl.format("defect-{}-{}", pl.lit(chunk), pl.int_range(pl.len())),
        pick=pl.Series(pick),
    )
    r = pl.col("reason")
    empty_or_null = pl.when(pl.col("pick") % 2 == 0).then(pl.lit("")).otherwise(None)
    props = pl.col("properties")
    defects = base.with_columns(
        event_id=pl.when(r == "missing_event_id").then(empty_or_null).otherwise("event_id"),
        event_name=pl.when(r == "missing_event_name")
        .then(empty_or_null)
        .when(r == "unknown_event_name")
        .then(choose(UNKNOWN_EVENT_NAMES))
        .otherwise("event_name"),
        user_id=pl.when(r == "missing_identity").then(None).otherwise("user_id"),
        anonymous_id=pl.when(r == "missing_identity").then(None).otherwise("anonymous_id"),
        event_ts=pl.when(r == "invalid_event_ts")
        .then(choose(BAD_TIMESTAMPS))
        .when(r == "event_ts_out_of_range")
        .then(choose(OUT_OF_RANGE_TIMESTAMPS))
        .otherwise("event_ts"),
        received_at=pl.when(r == "invalid_received_at")
        .then(choose(BAD_RECEIVED_AT))
        .otherwise("received_at"),
        # Cut inside the object so the text never ends in "}".
        properties=pl.when(r == "invalid_properties_json")
        .then(props.str.head(props.str.len_chars() // 2))
        .when(r == "properties_too_large")
        .then(
            pl.concat_str(
                [props.str.head(-1), pl.lit(',"blob":"' + "x" * TOO_LARGE_PADDING + '"}')]
            )
        )
        .when(r == "invalid_property_type")
        .then(pl.concat_str([props.str.head(-1), pl.lit(',"revenue":"twelve"}')]))
        .otherwise(props),
    )
    truth = defects.select(
        row_key=pl.coalesce(pl.col("event_id").replace("", None), pl.col("session_id")),
        event_id=pl.col("event_id").replace("", None),
        session_id="session_id",
        expected_reason="reason",
    )
    return defects, truth


# ---------------------------------------------------------------------------------------------
# truth tables


def _users_truth(users: dict, first_person: int) -> pl.DataFrame:
    rows = np.flatnonzero(users["identified"])
    persona = users["persona"][rows]
    rate = users["rate"][rows]
    purchase_p = users["purchase_p"][rows]
    churned = users["churned"][rows]
    return pl.DataFrame(
        {
            "user_id": first_person + rows,
            "persona": np.array(P.PERSONA_NAMES)[persona],
            "signup_at": users["signup_ms"][rows],
            "churned": churned,
            "churned_at": np.where(churned, users["churned_ms"][rows], 0),
            "spend_level": users["spend_level"][rows],
            "home_country": np.array(P.HOME_COUNTRIES)[users["home_country"][rows]],
            "home_device": np.array(P.DEVICE_TYPES)[users["device_type"][rows, 0]],
            "is_ato_victim": users["is_ato"][rows],
            "sessions_per_day": np.round(rate, 4),
            "purchases_per_session": np.round(purchase_p, 4),
            "expected_daily_revenue": np.round(rate * purchase_p * users["spend_level"][rows], 4),
            "is_preexisting": users["preexisting"][rows],
            "plan": np.array(P.PLANS)[users["plan"][rows]],
        }
    ).with_columns(
        user_id=pl.format("u{}", pl.col("user_id").cast(pl.String).str.zfill(9)),
        signup_at=pl.from_epoch("signup_at", time_unit="ms"),
        churned_at=pl.when(pl.col("churned")).then(pl.from_epoch("churned_at", time_unit="ms")),
    )


def _devices_truth(valid: pl.DataFrame, users: dict, first_person: int) -> pl.DataFrame:
    """Every (device, identified user) pair actually seen together in the valid events."""
    attacker_ids = users["anonymous_ids"][np.flatnonzero(users["is_ato"]), 3]
    pairs = (
        valid.filter(pl.col("user_id").is_not_null())
        .select("anonymous_id", "user_id")
        .unique()
        .with_columns(is_shared=pl.col("user_id").n_unique().over("anonymous_id") > 1)
        .with_columns(
            is_ato_device=pl.col("anonymous_id").is_in(pl.Series(attacker_ids, dtype=pl.String))
        )
    )
    return pairs.sort("anonymous_id", "user_id")


def _anomalies_truth(users: dict, first_person: int, valid: pl.DataFrame) -> pl.DataFrame:
    rows = np.flatnonzero(users["is_ato"])
    return (
        pl.DataFrame(
            {
                "user_id": first_person + rows,
                "anomaly_at": users["ato_ms"][rows],
                "attacker_anonymous_id": users["anonymous_ids"][rows, 3],
                "attacker_country": np.array(P.ATTACKER_COUNTRIES)[users["attacker_country"][rows]],
            }
        )
        .with_columns(
            user_id=pl.format("u{}", pl.col("user_id").cast(pl.String).str.zfill(9)),
            anomaly_at=pl.from_epoch("anomaly_at", time_unit="ms"),
            kind=pl.lit("account_takeover"),
        )
        .with_columns(anomaly_date=pl.col("anomaly_at").dt.date())
        .select(
            "user_id",
            "anomaly_date",
            "kind",
            "anomaly_at",
            "attacker_anonymous_id",
            "attacker_country",
        )
    )


# ---------------------------------------------------------------------------------------------
# driver


def _plan_population(n_events: int, seed: int, period: _Period, ato_rate: float) -> tuple:
    """(people in total, people per chunk), sized from a pilot draw of the same population."""
    pilot = _draw_users(np.random.default_rng([seed, 2**31]), 20_000, period, ato_rate)
    per_person = _expected_events_per_person(pilot)
    n_people = max(10, math.ceil(n_events / per_person))
    per_chunk = max(20, int(CHUNK_TARGET_EVENTS / per_person))
    return n_people, per_chunk, per_person


def _validate(n_events: int, days: int, rates: dict[str, float], start_date: str) -> datetime:
    if n_events < 1:
        raise ValueError(f"n_events must be positive, got {n_events}")
    if days < 60:
        raise ValueError(f"days must be at least 60 (churn needs history), got {days}")
    for name, value in rates.items():
        if not 0.0 <= value < 0.5:
            raise ValueError(f"{name} must be in [0, 0.5), got {value}")
    try:
        return datetime.strptime(start_date, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"start_date must be YYYY-MM-DD, got {start_date!r}") from exc


def _incident_window(incident: FunnelIncident, start: datetime, days: int) -> tuple:
    """(start_ms, end_ms, keep_rate) for the chunks, and the manifest entry."""
    try:
        first = datetime.strptime(incident.start_date, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(
            f"funnel_incident.start_date must be YYYY-MM-DD, got {incident.start_date!r}"
        ) from exc
    if not 0.0 <= incident.keep_rate <= 1.0:
        raise ValueError(f"funnel_incident.keep_rate must be in [0, 1], got {incident.keep_rate}")
    last = first + timedelta(days=incident.days)
    if incident.days < 1 or first < start or last > start + timedelta(days=days):
        raise ValueError(
            f"funnel_incident {incident.start_date} + {incident.days} days must lie inside the "
            f"generated period {start.date()} + {days} days"
        )
    window = (int(first.timestamp() * 1000), int(last.timestamp() * 1000), incident.keep_rate)
    manifest = {
        "kind": "purchase_step_drop",
        "start_date": first.date().isoformat(),
        "end_date_exclusive": last.date().isoformat(),
        "days": incident.days,
        "keep_rate": incident.keep_rate,
    }
    return window, manifest


def generate(
    out_dir: Path,
    n_events: int,
    seed: int = 42,
    start_date: str = "2025-01-06",
    days: int = 182,
    defect_rate: float = 0.005,
    duplicate_rate: float = 0.01,
    late_rate: float = 0.02,
    ato_rate: float = 0.02,
    progress: bool = False,
    funnel_incident: FunnelIncident | None = None,
    experiment: ExperimentPlan | None = None,
    acquisition_channels: bool = False,
    consent: ConsentPlan | None = None,
) -> GenerationResult:
    """Write `out_dir/events/part-*.parquet` and `out_dir/truth/*` (see docs/CONTRACTS.md).

    `n_events` targets the number of valid events; the actual count differs by a few percent
    """
    rates = {
        "defect_rate": defect_rate,
        "duplicate_rate": duplicate_rate,
        "late_rate": late_rate,
        "ato_rate": ato_rate,
    }
    start = _validate(n_events, days, rates, start_date)
    if experiment is not None:
        experiment.validate(days)
    if consent is not None:
        consent.validate()
    P.check_taxonomy()
    out_dir = Path(out_dir)
    events_dir, truth_dir = out_dir / "events", out_dir / "truth"
    for folder in (events_dir, truth_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*"):  # a re-run replaces, never mixes with, old output
            if stale.is_file():
                stale.unlink()
    start_ms = int(start.timestamp() * 1000)
    period = _Period(start_ms, start_ms + days * DAY_MS)
    n_people, per_chunk, per_person = _plan_population(n_events, seed, period, ato_rate)
    n_chunks = math.ceil(n_people / per_chunk)
    cfg = {
        "seed": seed,
        **rates,
        "experiment": experiment,
        "acquisition_channels": acquisition_channels,
        **({"consent": consent} if consent is not None else {}),
    }
    incident_manifest = None
    if funnel_incident is not None:
        cfg["funnel_incident"], incident_manifest = _incident_window(funnel_incident, start, days)
    if progress:
        print(
            f"generate: target {n_events:,} events -> {n_people:,} people "
            f"(~{per_person:.0f} events each) in {n_chunks} chunk(s), seed {seed}",
            file=sys.stderr,
        )

    truth_names = ["users", "devices", "anomalies", "duplicates", "defects", "stats"]
    truth_names += ["experiment_exposures"] * (experiment is not None)
    truth_names += ["acquisition_channels"] * acquisition_channels
    truth_names += ["consent"] * (consent is not None)
    truth_parts: dict[str, list[pl.DataFrame]] = {k: [] for k in truth_names}
    writer: pq.ParquetWriter | None = None
    part_rows, n_rows, part_paths = 0, 0, []
    started = time.perf_counter()
    for chunk in range(n_chunks):
        first = chunk * per_chunk
        size = min(per_chunk, n_people - first)
        frames = _generate_chunk(chunk, size, first, period, cfg)
        table = to_raw_table(frames.pop("rows"))
        if writer is None or part_rows >= ROWS_PER_PART:
            if writer is not None:
                writer.close()
            part_paths.append(events_dir / f"part-{len(part_paths):05d}.parquet")
            writer = pq.ParquetWriter(part_paths[-1], RAW_SCHEMA, compression="zstd")
            part_rows = 0
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        part_rows += table.num_rows
        n_rows += table.num_rows
        for key, frame in frames.items():
            truth_parts[key].append(frame)
        if progress:
            elapsed = time.perf_counter() - started
            print(
                f"generate: chunk {chunk + 1}/{n_chunks}: {n_rows:,} rows "
                f"({n_rows / max(elapsed, 1e-9):,.0f} rows/s)",
                file=sys.stderr,
            )
    if writer is not None:
        writer.close()

    truth = {k: pl.concat(v) for k, v in truth_parts.items()}
    stats = truth.pop("stats").sum()
    for name, frame in truth.items():
        frame.write_parquet(truth_dir / f"{name}.parquet", compression="zstd", statistics=False)

    users = truth["users"]
    defects, duplicates = truth["defects"], truth["duplicates"]
    n_valid = int(stats["valid"][0])
    n_duplicate_rows = int((duplicates["copies"] - 1).sum()) if duplicates.height else 0
    end = start + timedelta(days=days)
    manifest = {
        "generator": "python_models.synthetic",
        "format_version": 1,
        "seed": seed,
        "n_events_target": n_events,
        "start_date": start.date().isoformat(),
        "end_date_exclusive": end.date().isoformat(),
        "days": days,
        "rates": rates,
        "currency": "USD",
        "n_rows": n_rows,
        "n_valid_events": n_valid,
        "n_duplicated_events": duplicates.height,
        "n_duplicate_rows": n_duplicate_rows,
        "n_defect_rows": defects.height,
        "defects_by_reason": {
            reason: int((defects["expected_reason"] == reason).sum()) for reason in DEFECT_REASONS
        },
        "n_late_events": int(stats["late"][0]),
        "n_timestamps_with_offset": int(stats["offsets"][0]),
        "n_users": users.height,
        "n_anonymous_visitors": int(stats["visitors_seen"][0]),
        "personas": {name: int((users["persona"] == name).sum()) for name in P.PERSONA_NAMES},
        "n_churned": int(users["churned"].sum()),
        "n_preexisting_users": int(users["is_preexisting"].sum()),
        "n_ato_victims": int(users["is_ato_victim"].sum()),
        "n_shared_devices": int(
            truth["devices"].filter(pl.col("is_shared"))["anonymous_id"].n_unique()
        ),
        **(
            {"experiment": experiment_summary(truth["experiment_exposures"], experiment)}
            if experiment is not None
            else {}
        ),
        **({"acquisition_channels": list(CHANNELS)} if acquisition_channels else {}),
        **({"consent": consent_summary(truth["consent"], consent)} if consent else {}),
        "event_files": [p.name for p in part_paths],
        "truth_files": sorted(f"{name}.parquet" for name in truth),
    }
    if incident_manifest is not None:
        manifest["funnel_incident"] = incident_manifest
    assert n_rows == n_valid + n_duplicate_rows + defects.height, "row accounting is off"
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if progress:
        print(
            f"generate: wrote {n_rows:,} rows ({n_valid:,} valid, {n_duplicate_rows:,} "
            f"duplicate copies, {defects.height:,} defects) for {users.height:,} users "
            f"in {time.perf_counter() - started:.1f}s -> {out_dir}",
            file=sys.stderr,
        )
    return GenerationResult(
        out_dir=out_dir,
        events_dir=events_dir,
        truth_dir=truth_dir,
        n_rows=n_rows,
        n_users=users.height,
        manifest=manifest,
    )
