"""Drift that means something (python_models.common.drift): age-bound features are found and
not compared, unchanged data measure zero, and the sensor's rule asks at most once per new
scoring run and never for data it has already judged. Tiny frames, in-memory DuckDB."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from python_models.churn.spec import SPEC as churn
from python_models.common import drift
from python_models.common.scores import score_frame, write_scores


def _snapshots(seed: int = 0, users: int = 200, weeks: int = 4) -> pl.DataFrame:
    """Planted: tenure grows by 7 a week, lifetime events never decrease, weekly events go up
    and down, a constant never moves."""
    rng = np.random.default_rng(seed)
    start = rng.integers(1, 300, users)
    rows = []
    lifetime = rng.poisson(20, users).astype(float)
    for week in range(weeks):
        weekly = rng.poisson(5, users).astype(float)
        lifetime = lifetime + weekly
        rows.append(
            pl.DataFrame(
                {
                    "user_id": [f"u{i}" for i in range(users)],
                    "as_of_date": [date(2025, 1, 6) + timedelta(days=7 * week)] * users,
                    "tenure_days": start + 7 * week,
                    "count_events_lifetime": lifetime,
                    "count_events_7d": weekly,
                    "constant": np.zeros(users),
                }
            )
        )
    return pl.concat(rows)


def test_age_bound_features_are_the_ones_that_grow_by_construction():
    frame = _snapshots().with_columns(
        # Constant per user, higher for each next user in user_id order: it grows only from
        # one user's rows to the next one's, which is not a step of any user.
        pl.col("user_id").rank("dense").cast(pl.Float64).alias("user_rank"),
        # One user's lifetime count steps down once: then it is not age-bound.
        pl.when((pl.col("user_id") == "u3") & (pl.col("as_of_date") == date(2025, 1, 20)))
        .then(0.0)
        .otherwise(pl.col("count_events_lifetime"))
        .alias("lifetime_with_a_drop"),
    )
    found = drift.age_bound_features(
        frame.sample(fraction=1.0, shuffle=True, seed=1),  # any row order
        ["tenure_days", "count_events_lifetime", "count_events_7d", "constant", "user_rank",
         "lifetime_with_a_drop"],
    )  # fmt: skip
    assert found == ["tenure_days", "count_events_lifetime"]
    # Only candidates are considered (the catalogue's whole-history features).
    assert drift.age_bound_features(frame, ["count_events_7d"]) == []


def test_the_fingerprint_ignores_row_order_and_sees_any_change():
    frame = _snapshots(weeks=1)
    same = drift.frame_fingerprint(frame.sample(fraction=1.0, shuffle=True, seed=3))
    assert same == drift.frame_fingerprint(frame)
    changed = frame.with_columns(
        pl.when(pl.col("user_id") == "u7")
        .then(99.0)
        .otherwise(pl.col("constant"))
        .alias("constant")
    )
    assert drift.frame_fingerprint(changed) != drift.frame_fingerprint(frame)


def _bundle(reference: pl.DataFrame, scores: np.ndarray) -> dict:
    features = reference.select("tenure_days", "count_events_7d")
    return {
        "reference_features": features,
        "reference_scores": scores,
        "reference_fingerprint": drift.frame_fingerprint(reference),
        "age_bound_features": ["tenure_days"],
    }


def test_unchanged_data_measure_zero_and_age_bound_features_are_not_compared():
    now = _snapshots(weeks=1)
    scores = np.random.default_rng(1).random(now.height)
    rows = drift.measure(churn, "v1", "r1", _bundle(now, scores), now, scores)
    assert set(rows["feature"]) == {"tenure_days", "count_events_7d", drift.PREDICTION}
    assert rows["psi"].max() == 0.0
    assert not rows.filter(pl.col("feature") == "tenure_days")["is_compared"][0]
    assert (rows["reference_fingerprint"] == rows["current_fingerprint"]).all()

    later = now.with_columns(pl.col("tenure_days") + 70)  # ten weeks older, same behaviour
    rows = drift.measure(churn, "v1", "r2", _bundle(now, scores), later, scores)
    tenure = rows.filter(pl.col("feature") == "tenure_days").row(0, named=True)
    assert tenure["psi"] > 0.25 and not tenure["is_compared"]
    assert rows.filter("is_compared")["psi"].max() == 0.0


def _scored(con, run_id: str, current: pl.DataFrame, bundle: dict, scores: np.ndarray) -> None:
    """What lifecycle.score_model stores for a run: scores, the run, its drift rows."""
    frame = pl.DataFrame(
        {
            "user_id": current["user_id"],
            "as_of_date": current["as_of_date"],
            "score": scores,
            "predicted_label": scores >= 0.5,
        }
    )
    fingerprint = drift.frame_fingerprint(current)
    write_scores(con, churn, score_frame(churn, "v1", run_id, frame), fingerprint)
    drift.record_measurements(con, drift.measure(churn, "v1", run_id, bundle, current, scores))


def test_the_sensor_rule_asks_once_per_new_run_and_never_for_judged_data():
    con = duckdb.connect()
    reference = _snapshots(weeks=1)
    scores = np.random.default_rng(2).random(reference.height)
    bundle = _bundle(reference, scores)

    def decide(cursor):
        return drift.drift_decision(con, ["churn"], cursor, threshold=0.25)

    first = decide(None)
    assert not first.request and "no scoring run" in first.message
    _scored(con, "r1", reference, bundle, scores)  # scoring right after training
    judged = decide(first.cursor)
    assert not judged.request and "training-time data" in judged.message
    assert not decide(judged.cursor).request  # nothing new
    _scored(con, "r2", reference, bundle, scores)  # a rescoring of the same data
    again = decide(judged.cursor)
    assert not again.request and "same data" in again.message

    shifted = reference.with_columns(pl.col("count_events_7d") * 4 + 3)
    _scored(con, "r3", shifted, bundle, scores)
    asked = decide(again.cursor)
    assert asked.request and asked.run_key == "drift-r3"
    assert next(iter(asked.worst)) == "churn.count_events_7d"
    assert not decide(asked.cursor).request  # once per run
    _scored(con, "r4", shifted, bundle, scores)  # the retrain's rescoring, champion unchanged
    assert not decide(asked.cursor).request


def test_measurements_of_a_run_are_replaced_not_duplicated():
    con = duckdb.connect()
    now = _snapshots(weeks=1)
    scores = np.zeros(now.height)
    rows = drift.measure(churn, "v1", "r1", _bundle(now, scores), now, scores)
    drift.record_measurements(con, rows)
    drift.record_measurements(con, rows)
    assert con.execute(f"select count(*) from {drift.DRIFT_TABLE}").fetchone()[0] == rows.height


def test_psi_needs_samples():
    with pytest.raises(ValueError, match="non-empty"):
        drift.population_stability_index([], [1.0])
