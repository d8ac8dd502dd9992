"""The whole pipeline on PostgreSQL: load, gate, every dbt model and test, train, score, checks.

A throwaway PostgreSQL server (tests/pg_server.py) receives the session's generated sample
(tests/conftest.py `sample_data`, the one the DuckDB tests use) through the same Python entry
points as DuckDB, with UBA_WAREHOUSE=postgres and the dbt target `postgres`. Compared with the
DuckDB warehouse built from the same files (`built_warehouse`):

- gate: the same rows valid and the same quarantine reasons, exactly;
- every table dbt builds (staging to reports): the same rows; numbers within 1e-9 relative
  plus 1e-6 absolute (see ABSOLUTE_TOLERANCE), everything else equal except the load times;
- models: the planted-truth thresholds of tests/integration/test_models_truth.py, and score
  tables with the columns of their spec that pass their score-table suite.

Skips when the server binaries are missing (scripts/test.sh installs Debian's as root).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from conftest import with_dbt_unit_tests
from pg_server import NoPostgres, pg_environment, throwaway_postgres
from sklearn.metrics import adjusted_rand_score
from test_models_truth import SMALL  # the truth tests' parameters for the small sample

from python_models.privacy import pseudonymize

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1800)]

TEST_SALT = "test-salt"  # tests/conftest.py
RELATIVE_TOLERANCE = 1e-9
# PostgreSQL computes exp() of a NUMERIC literal in exact arithmetic, DuckDB in doubles: terms
# rounded to 9 decimals (uba_exact_sum) can round apart, a few 1e-9 over a sum.
ABSOLUTE_TOLERANCE = 1e-6
# When each engine loaded the files (the load time, and what is derived from it).
LOAD_TIME_COLUMNS = {"loaded_at", "first_used_at"}
# dbt's schemas; raw.* is compared through the gate's counts.
BUILT_SCHEMAS = ("staging", "intermediate", "marts", "features", "reports", "seeds", "main")
BOOKKEEPING = "uba_consumed_batches"


@dataclass
class PostgresRun:
    con: object
    gate: object
    outcomes: dict
    scores: dict


@pytest.fixture(scope="module")
def pg_run(sample_data, tmp_path_factory):
    """The sample through the whole pipeline on a throwaway PostgreSQL."""
    from python_models.config import reload_settings

    server = throwaway_postgres()
    try:
        port = server.__enter__()
    except NoPostgres as err:
        pytest.skip(str(err))
    root = tmp_path_factory.mktemp("pg_pipeline")
    saved = dict(os.environ)
    os.environ.update(pg_environment(port))
    os.environ["UBA_DBT_TARGET"] = "postgres"
    os.environ["UBA_DATA_DIR"] = str(root / "data")
    reload_settings()
    con = None
    try:
        from expectations.gate import run_gate
        from python_models.dbt_runner import run_dbt
        from python_models.ingest.remote import load_into
        from python_models.lifecycle import score_model, train_model
        from python_models.models import model_names
        from python_models.warehouse import connect

        con = connect()
        assert con.engine == "postgres"
        load_into(con, sample_data.events_dir, progress=False)
        gate = run_gate(con)
        with with_dbt_unit_tests():  # every dbt test, unit tests too, on PostgreSQL
            run_dbt(["build"], target="postgres", quiet=True, target_path=root / "dbt_target")
        outcomes = {
            name: train_model(con, name, run_id="pg-run", params=SMALL.get(name))
            for name in model_names()
        }
        scores = {name: score_model(con, name, run_id="pg-run") for name in model_names()}
        yield PostgresRun(con, gate, outcomes, scores)
    finally:
        if con is not None:
            con.close()
        os.environ.clear()
        os.environ.update(saved)
        reload_settings()
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def duckdb_run(built_warehouse):
    from python_models.warehouse import connect

    con = connect(built_warehouse, read_only=True)
    yield con
    con.close()


def _hash(user_ids: pl.Series) -> pl.Series:
    return user_ids.map_elements(lambda u: pseudonymize(u, "user", TEST_SALT), pl.String)


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """One representation per value on both engines: decimals and integers as floats where
    the other engine has floats, timestamps without zone, columns in name order."""
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype.is_decimal() or dtype.is_integer():
            column = column.cast(pl.Float64)
        elif isinstance(dtype, pl.Datetime):
            column = column.cast(pl.Datetime("us"))
        elif dtype == pl.Object:
            column = column.map_elements(_plain, return_dtype=pl.String)
        columns.append(column)
    kept = sorted(set(frame.columns) - LOAD_TIME_COLUMNS)
    return frame.select(columns).select(kept)


def _plain(value):
    if isinstance(value, Decimal):
        return str(float(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in one order: by every non-float column, then the floats rounded."""
    exact = [c for c, t in frame.schema.items() if not t.is_float()]
    floats = [pl.col(c).round(6) for c, t in frame.schema.items() if t.is_float()]
    return frame.sort([*exact, *floats], nulls_last=True) if frame.columns else frame


def test_gate_gives_the_same_verdicts_as_duckdb(pg_run, duckdb_run):
    assert pg_run.gate.success
    pg, duck = pg_run.con, duckdb_run
    assert pg_run.gate.rows_valid > 0
    for table in ("raw.events", "raw.events_validated", "raw.events_quarantine"):
        count = f"select count(*) from {table}"
        assert pg.execute(count).fetchone()[0] == duck.execute(count).fetchone()[0], table
    reasons = "select reasons, count(*) as n from raw.events_quarantine group by 1 order by 1"
    assert pg.execute(reasons).fetchall() == duck.execute(reasons).fetchall()
    ids = "select event_id from raw.events_validated order by 1"
    assert pg.execute(ids).pl().equals(duck.execute(ids).pl())


def test_every_dbt_table_matches_duckdb(pg_run, duckdb_run):
    from python_models.warehouse import as_warehouse

    duck = as_warehouse(duckdb_run)
    # dbt's batch bookkeeping (macros/uba_batches.sql) is in each target's own schema (DuckDB
    # main, PostgreSQL public): compared by itself below.
    duck_tables = [t for t in duck.list_tables(BUILT_SCHEMAS) if t != "main." + BOOKKEEPING]
    pg_tables = pg_run.con.list_tables(BUILT_SCHEMAS)
    assert len(duck_tables) > 40
    assert sorted(pg_tables) == sorted(duck_tables)
    batches = "select consumer, producer, batch_id from {}." + BOOKKEEPING + " order by 1, 2"
    assert (
        pg_run.con.execute(batches.format("public")).fetchall()
        == duck.execute(batches.format("main")).fetchall()
    )
    mismatched = []
    for table in duck_tables:
        pg_frame = _sorted(_comparable(pg_run.con.execute(f"select * from {table}").pl()))
        duck_frame = _sorted(_comparable(duck.execute(f"select * from {table}").pl()))
        try:
            from polars.testing import assert_frame_equal

            assert_frame_equal(
                pg_frame,
                duck_frame,
                check_dtypes=False,
                rel_tol=RELATIVE_TOLERANCE,
                abs_tol=ABSOLUTE_TOLERANCE,
            )
        except AssertionError as err:
            mismatched.append(f"{table}: {str(err).splitlines()[0]}")
    assert not mismatched, "\n".join(mismatched)


def test_score_tables_keep_their_contract_and_pass_their_checks(pg_run):
    from python_models.common.drift import latest_measurements
    from python_models.ingest.drift import drift_outcome
    from python_models.models import get_spec
    from python_models.quality import check_feature_mart, check_raw_events, check_score_table

    assert check_raw_events(pg_run.con).passed
    assert check_feature_mart(pg_run.con).passed
    # the sample's planted schema drift is found on PostgreSQL as on DuckDB
    passed, description, _ = drift_outcome(pg_run.con)
    assert not passed and "schema drift finding(s) pending" in description
    for name, outcome in pg_run.scores.items():
        spec = get_spec(name)
        assert outcome.rows > 0, name
        columns = pg_run.con.table_columns(spec.score_table)
        assert tuple(columns) == tuple(spec.score_columns), name
        check = check_score_table(pg_run.con, spec)
        assert check.passed, f"{name}: {check.description}"
    # scoring measured drift of every model's inputs and scores, stored in PostgreSQL
    for name in ("churn", "segmentation", "next_action"):
        measured = latest_measurements(pg_run.con, name)
        assert measured.height > 1 and measured["run_id"].unique().to_list() == ["pg-run"], name


def test_models_meet_the_planted_truth_on_postgres(pg_run, sample_data):
    outcomes, con = pg_run.outcomes, pg_run.con
    churn = {r["variant"]: r["roc_auc"] for r in outcomes["churn"].evaluation.iter_rows(named=True)}
    assert outcomes["churn"].status == "champion"
    assert churn["lightgbm_calibrated"] > max(churn["recency_rule"], churn["logistic_regression"])
    assert churn["lightgbm_calibrated"] > 0.62  # the DuckDB truth test's bar

    users = pl.read_parquet(sample_data.truth_dir / "users.parquet")
    users = users.with_columns(_hash(users["user_id"]).alias("user_hash"))
    segments = con.execute("select user_id, segment_id from ml_scores.user_segments").pl()
    joined = segments.join(users, left_on="user_id", right_on="user_hash").filter(
        pl.col("segment_id") >= 0
    )
    assert adjusted_rand_score(joined["persona"].to_list(), joined["segment_id"].to_list()) > 0.7

    anomalies = pl.read_parquet(sample_data.truth_dir / "anomalies.parquet")
    planted = anomalies.with_columns(_hash(anomalies["user_id"]).alias("user_id")).select(
        "user_id", pl.col("anomaly_date").alias("as_of_date")
    )
    ranked = con.execute(
        "select user_id, as_of_date from ml_scores.anomaly_alerts order by score desc"
    ).pl()
    hits = ranked.head(max(10, 2 * planted.height)).join(planted, on=["user_id", "as_of_date"])
    assert hits.height >= max(1, int(np.ceil(0.8 * planted.height)))

    evaluation = outcomes["ltv"].evaluation
    served = evaluation.filter(pl.col("served") == 1).row(0, named=True)
    assert served["mae_vs_zero_purchases"] < 1.0 and served["mae_vs_zero_revenue_usd"] < 1.0
    for name in ("next_action", "load_forecast", "segmentation", "anomaly", "ltv"):
        assert outcomes[name].status == "champion", f"{name}: {outcomes[name].reason}"
