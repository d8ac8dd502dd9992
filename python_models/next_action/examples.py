"""Tiny seeded event sequences in the shape of features.ftr_user_event_sequences, with a
planted structure: three personas draw their events from different mixes, and a cart is always
followed by a checkout. The next event therefore depends on the user's mix so far (which a
first-order Markov chain cannot see) and on the current event."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from python_models.common.spec import Example
from python_models.next_action.sequences import MODEL_COLUMNS, NO_EVENT, SESSION_END

EVENTS = ("page_view", "search", "feature_use", "add_to_cart", "checkout_started")
MIXES = np.array(
    [
        [0.70, 0.10, 0.10, 0.10, 0.0],  # browser
        [0.10, 0.70, 0.10, 0.10, 0.0],  # searcher
        [0.10, 0.10, 0.70, 0.10, 0.0],  # worker
    ]
)
START = datetime(2025, 3, 3)


def sequences(seed: int, users: int = 45, sessions: int = 8) -> pl.DataFrame:
    """One row per event with the mart's feature columns and the next event as `label`."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        persona = user % len(MIXES)
        ts = START + timedelta(hours=float(rng.uniform(0, 24)))
        for _ in range(sessions):
            names = []
            for _ in range(int(rng.integers(2, 7))):
                if names and names[-1] == "add_to_cart":
                    names.append("checkout_started")
                else:
                    names.append(EVENTS[rng.choice(len(EVENTS), p=MIXES[persona])])
            for position, name in enumerate(names):
                rows.append(
                    {
                        "user_id": f"user-{user:03d}",
                        "event_id": f"e-{user:03d}-{len(rows):05d}",
                        "event_ts": ts,
                        "event_name": name,
                        "session_event_number": position + 1,
                        "label": names[position + 1] if position + 1 < len(names) else SESSION_END,
                    }
                )
                ts += timedelta(seconds=float(rng.exponential(60)) + 1)
            ts += timedelta(hours=float(rng.uniform(6, 30)))
    return _with_features(pl.DataFrame(rows))


def _with_features(frame: pl.DataFrame) -> pl.DataFrame:
    by_user = frame.sort("user_id", "event_ts")
    count = pl.int_range(1, pl.len() + 1).over("user_id")
    columns = {
        "event_date": pl.col("event_ts").dt.date(),
        "count_events_so_far": count,
        "seconds_since_session_start": pl.lit(0.0),
        "seconds_since_previous_session": pl.lit(-1.0),
        "count_previous_sessions": (pl.col("session_event_number") == 1).cum_sum().over("user_id")
        - 1,
        "hour_of_day": pl.col("event_ts").dt.hour().cast(pl.Int64),
        "day_of_week": pl.col("event_ts").dt.weekday().cast(pl.Int64),
    }
    for i in (1, 2):
        columns[f"previous_event_name_{i}"] = (
            pl.col("event_name").shift(i).over("user_id").fill_null(NO_EVENT)
        )
        gap = pl.col("event_ts") - pl.col("event_ts").shift(i).over("user_id")
        columns[f"seconds_since_previous_event_{i}"] = gap.dt.total_seconds().fill_null(-1)
    is_new_session = pl.col("session_event_number") == 1
    session = is_new_session.cum_sum().over("user_id")
    for feature in MODEL_COLUMNS:
        if feature.startswith("share_"):
            name = feature.removeprefix("share_").removesuffix("_so_far")
            hits = (pl.col("event_name") == name).cast(pl.Int64)
            columns[feature] = hits.cum_sum().over("user_id") / count
        elif feature.startswith("session_count_"):
            name = feature.removeprefix("session_count_")
            hits = (pl.col("event_name") == name).cast(pl.Int64)
            columns[feature] = hits.cum_sum().over("user_id", session)
    return by_user.with_columns(**columns).select(
        "user_id", "event_id", "event_ts", "event_date", *MODEL_COLUMNS, "label"
    )


def example(seed: int) -> Example:
    frame = sequences(seed)
    cut = frame["event_ts"].quantile(0.75)
    fit = frame.filter(pl.col("event_ts") < cut)
    validation = frame.filter(pl.col("event_ts") >= cut)
    return Example(
        list(MODEL_COLUMNS),
        fit,
        validation,
        params={"num_threads": 1, "num_boost_round": 60, "min_child_samples": 10},
    )
