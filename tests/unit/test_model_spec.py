"""One declaration per model: a toy model, declared here the way a model package declares
itself and added to python_models.models.MODELS, gets the `uba` choices, the lifecycle, the
shared estimator checks, the Dagster assets and the blocking score-table check with no other
edit. Plus the list's own rules and the docs' model table."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from python_models import models
from python_models.common import catalogue
from python_models.common.estimator import Estimator
from python_models.common.estimator_checks import checks
from python_models.common.params import ModelParams
from python_models.common.spec import Example, ModelSpec
from python_models.common.training import TrainingResult
from python_models.config import REPO_ROOT

INPUTS = "main.toy_inputs"


# --- the toy model's "package" -------------------------------------------------------------
@dataclass(frozen=True)
class ToyParams(ModelParams):
    model_name: ClassVar[str] = "toy"
    cut: float = 0.5
    seed: int = 3

    def check(self) -> None:
        if not 0 < self.cut < 1:
            raise ValueError("cut must be in (0, 1)")


class ToyModel(Estimator):
    """Score = x rescaled to [0, 1] by the training range."""

    params_class = ToyParams
    params: ToyParams

    def fit(self, frame: pl.DataFrame, validation: pl.DataFrame | None = None) -> ToyModel:
        self.low_, self.high_ = float(frame["x"].min()), float(frame["x"].max())
        return self

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        self.check_fitted()
        scaled = (frame["x"].to_numpy() - self.low_) / max(self.high_ - self.low_, 1e-9)
        return np.clip(scaled, 0.0, 1.0)

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        score = self.predict(frame)
        return frame.select("user_id", "as_of_date").with_columns(
            pl.Series("score", score),
            pl.Series("predicted_label", score >= self.params.cut),
            pl.lit("x is high").alias("reasons"),
        )

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        error = np.abs(self.predict(frame) - frame["label"].to_numpy()).mean()
        return pl.DataFrame({"variant": ["toy"], "split": ["holdout"], "mae": [float(error)]})


def toy_frame(seed: int, users: int = 40) -> pl.DataFrame:
    x = np.random.default_rng(seed).uniform(0, 10, users)
    return pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(users)],
            "as_of_date": [date(2025, 1, 6)] * users,
            "x": x,
            "label": x / 10,
        }
    )


def toy_example(seed: int) -> Example:
    return Example(features=["x"], frame=toy_frame(seed))


def toy_train(con: duckdb.DuckDBPyConnection, overrides: dict[str, Any] | None) -> TrainingResult:
    params = ToyParams.from_overrides(overrides)
    frame = con.sql(f"select * from {INPUTS}").pl()
    model = ToyModel(["x"], params).fit(frame)
    evaluation = model.evaluate(frame)
    return TrainingResult(
        model_name="toy",
        model=model,
        features=["x"],
        params=params.as_dict(),
        data_window=(date(2025, 1, 6), date(2025, 1, 6)),
        evaluation=evaluation,
        metrics={"mae": evaluation["mae"][0]},
        passes_gate=True,
        gate_reason="a toy always passes",
        data_fingerprint={"rows": frame.height},
        reference_features=frame.select("x"),
        reference_scores=model.predict(frame),
    )


def toy_score(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    return bundle["model"].predict_frame(con.sql(f"select * from {INPUTS}").pl())


def toy_inputs(con: duckdb.DuckDBPyConnection, bundle: dict[str, Any]) -> pl.DataFrame:
    return con.sql(f"select x from {INPUTS}").pl()


TOY = ModelSpec(
    name="toy",
    summary="a toy score for the tests",
    estimator=ToyModel,
    params=ToyParams,
    train=toy_train,
    score=toy_score,
    latest_features=toy_inputs,
    inputs=(INPUTS,),
    score_table="ml_scores.toy_scores",
    label_columns=("predicted_label",),
    score_bounds=(0.0, 1.0),
    reasons="a fixed sentence",
    kinds=("numpy",),
    example=toy_example,
    feature_mart=None,
)


def _broken_train(con, overrides):
    raise ValueError("the calibration set has a single class")


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def with_toy(monkeypatch):
    """The one edit a new model needs: its spec in the list."""
    monkeypatch.setattr(models, "MODELS", (*models.MODELS, TOY))
    yield TOY


@pytest.fixture
def toy_warehouse(tmp_path):
    path = tmp_path / "toy.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", toy_frame(7).to_arrow())
    con.execute(f"create table {INPUTS} as select * from frame")
    # Score tables say each user's holdout group (docs/impact.md); dbt builds this table.
    con.execute("create schema marts")
    con.execute(
        "create table marts.dim_user_holdout_groups as select user_id, "
        "case when row_number() over (order by user_id) % 5 = 0 then 'holdout' "
        "else 'treatment' end as holdout_group, 1 as holdout_key_version from frame"
    )
    con.close()
    return path


# --- tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [name for name, _ in checks(TOY)])
def test_the_toy_passes_the_shared_estimator_checks(name):
    dict(checks(TOY))[name]()


def test_a_listed_model_is_a_choice_of_the_commands(with_toy):
    from python_models.commands import rollback, train

    for add in (train.add_train_arguments, train.add_score_arguments, rollback.add_arguments):
        parser = argparse.ArgumentParser()
        add(parser)
        assert parser.parse_args(["--model", "toy"]).model == "toy"


def test_an_unlisted_model_is_refused_by_the_commands(capsys):
    from python_models.commands import train

    parser = argparse.ArgumentParser()
    train.add_train_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--model", "toy"])
    assert "invalid choice: 'toy'" in capsys.readouterr().err


def test_a_listed_model_gets_assets_and_a_blocking_check_that_run(with_toy, toy_warehouse):
    import dagster as dg

    from orchestration.defs.ml import build_scoring_asset, build_training_asset
    from orchestration.defs.quality import build_score_check
    from orchestration.resources import WarehouseResource

    training, scoring = build_training_asset(TOY), build_scoring_asset(TOY)
    check = build_score_check(TOY)
    assert training.key == dg.AssetKey(["ml", "toy_model"])
    assert scoring.key == dg.AssetKey(["ml_scores", "toy_scores"])
    assert dg.AssetKey(["main", "toy_inputs"]) in training.asset_deps[training.key]
    assert training.key in scoring.asset_deps[scoring.key]
    assert "numpy" in training.specs_by_key[training.key].kinds
    (check_spec,) = check.check_specs
    assert check_spec.name == "check_toy_scores_quality" and check_spec.blocking

    defs = dg.Definitions(
        assets=[training, scoring],
        asset_checks=[check],
        resources={"warehouse": WarehouseResource(duckdb_path=str(toy_warehouse))},
        jobs=[dg.define_asset_job("toy", selection=dg.AssetSelection.all())],
    )
    result = defs.resolve_job_def("toy").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.description
    con = duckdb.connect(str(toy_warehouse), read_only=True)
    try:
        columns = [c[0] for c in con.execute("describe ml_scores.toy_scores").fetchall()]
        status = con.execute(
            "select status from ml.model_registry where model_name = 'toy'"
        ).fetchone()
    finally:
        con.close()
    assert tuple(columns) == TOY.score_columns
    assert status == ("champion",)


def test_the_score_check_holds_the_spec_bounds(with_toy, toy_warehouse):
    from python_models.quality import check_score_table

    con = duckdb.connect(str(toy_warehouse))
    try:
        con.execute("create schema ml_scores")
        con.execute(
            "create table ml_scores.toy_scores as select 'u1' as user_id, "
            "date '2025-01-06' as as_of_date, 'toy' as model_name, 'v' as model_version, "
            "1.5 as score, true as predicted_label, 'r' as reasons, "
            "timestamp '2025-01-06' as scored_at, 'run' as run_id"
        )
        outcome = check_score_table(con, TOY)
    finally:
        con.close()
    assert not outcome.passed
    assert "expect_column_values_to_be_between(score): 1 unexpected" in outcome.description


def test_one_model_failing_stops_no_other(with_toy, monkeypatch, toy_warehouse):
    from python_models.lifecycle import Failed, Skipped, any_failed, score_each, train_each

    broken = dataclasses.replace(
        TOY,
        name="broken",
        params=type("BrokenParams", (ToyParams,), {"model_name": "broken"}),
        train=_broken_train,
        score_table="ml_scores.broken_scores",
    )
    monkeypatch.setattr(models, "MODELS", (*models.MODELS, broken))
    con = duckdb.connect(str(toy_warehouse))
    try:
        trained = train_each(con, ["broken", "toy"])
        scored = score_each(con, ["broken", "toy"])
    finally:
        con.close()
    assert trained[0] == Failed("broken", "the calibration set has a single class")
    assert trained[1].status == "champion" and any_failed(trained)
    assert isinstance(scored[0], Skipped) and "no champion" in scored[0].reason
    assert scored[1].status == "scored" and scored[1].rows == 40
    assert not any_failed(scored)


def _toys_that_record(
    names_and_threads, meet: set[str], monkeypatch, timeout: float = 60, stage: str = "train"
):
    """Toy models named as given, each fitting on that many threads, added to the list; each
    training (or scoring: `stage`) records the models running as it starts, and those in
    `meet` wait up to `timeout` seconds for each other (a barrier: run in turn, they never
    pass it, and fail). Returns the records and the barrier."""
    import threading

    started: list[tuple[str, frozenset[str]]] = []
    running: set[str] = set()
    lock = threading.Lock()
    barrier = threading.Barrier(len(meet), timeout=timeout) if meet else None

    def recorded(name: str, step):
        def run(con, arg):
            with lock:
                running.add(name)
                started.append((name, frozenset(running)))
            try:
                if name in meet:
                    barrier.wait()
                return step(con, arg)
            finally:
                with lock:
                    running.discard(name)

        return run

    specs = []
    for name, threads in names_and_threads:
        params = dataclass(frozen=True)(
            type(
                f"{name}Params",
                (ToyParams,),
                {
                    "model_name": name,
                    "num_threads": threads,
                    "__annotations__": {"num_threads": int},
                },
            )
        )
        specs.append(
            dataclasses.replace(
                TOY,
                name=name,
                params=params,
                train=recorded(name, toy_train) if stage == "train" else toy_train,
                score=recorded(name, toy_score) if stage == "score" else toy_score,
                score_table=f"ml_scores.{name}_scores",
            )
        )
    monkeypatch.setattr(models, "MODELS", (*models.MODELS, *specs))
    return started, barrier


def test_models_train_beside_each_other_while_their_threads_fit(monkeypatch, toy_warehouse):
    """train_each trains one-thread models side by side within its threads (two that wait
    for each other both pass), a model of two threads alone and first, and gives the outcomes
    in the order asked, each model as trained alone."""
    from python_models.lifecycle import train_each, train_model

    started, _ = _toys_that_record(
        [("one", 1), ("two", 1), ("wide", 2)], meet={"one", "two"}, monkeypatch=monkeypatch
    )
    con = duckdb.connect(str(toy_warehouse))
    try:
        trained = train_each(con, ["one", "two", "wide"], threads=2)
        alone = train_model(con, "wide")
    finally:
        con.close()
    assert [o.model_name for o in trained] == ["one", "two", "wide"]
    assert all(o.status == "champion" for o in trained), trained
    assert started[0] == ("wide", frozenset({"wide"}))  # the widest first, by itself
    assert {names for _, names in started[1:3]} >= {frozenset({"one", "two"})}
    assert trained[2].model_version == alone.model_version


def test_a_model_of_more_threads_trains_alone_however_many_threads(monkeypatch, toy_warehouse):
    """LightGBM's thread count is one setting of the process, held at one while models run
    beside each other: a model of two threads trains alone even where four threads would fit
    it beside two one-thread models (which still meet), so it is fitted on the threads it
    asks for."""
    from python_models.lifecycle import train_each

    started, _ = _toys_that_record(
        [("one", 1), ("two", 1), ("wide", 2)], meet={"one", "two"}, monkeypatch=monkeypatch
    )
    con = duckdb.connect(str(toy_warehouse))
    try:
        trained = train_each(con, ["one", "two", "wide"], threads=4)
    finally:
        con.close()
    assert all(o.status == "champion" for o in trained), trained
    assert started[0] == ("wide", frozenset({"wide"}))
    assert all("wide" not in names for _, names in started[1:]), started


def test_models_train_in_turn_past_the_pool_or_within_one_thread(monkeypatch, toy_warehouse):
    """With one thread, or while the pool they would share is over half full, no model trains
    beside another: two that wait for each other (2 s) never meet, and fail; the pool is
    given back before each model starts, as between models trained in turn."""
    from python_models import lifecycle
    from python_models.warehouse.duckdb_engine import DuckDBWarehouse

    started, barrier = _toys_that_record(
        [("one", 1), ("two", 1)], meet={"one", "two"}, monkeypatch=monkeypatch, timeout=2
    )
    con = duckdb.connect(str(toy_warehouse))
    try:
        one_thread = lifecycle.train_each(con, ["one", "two"], threads=1)
        barrier.reset()
        given_back = []  # how many models had started when the pool was given back
        release = DuckDBWarehouse.release_memory

        def counted(self):
            if not self.pool_shared:
                given_back.append(len(started))
            release(self)

        monkeypatch.setattr(DuckDBWarehouse, "release_memory", counted)
        monkeypatch.setattr(DuckDBWarehouse, "pool_share", lambda self: 0.9)
        past_the_pool = lifecycle.train_each(con, ["one", "two"], threads=2)
    finally:
        con.close()
    assert given_back == [2, 3, 4]  # before "one", before "two", after both
    for outcomes in (one_thread, past_the_pool):
        assert [(o.model_name, o.reason) for o in outcomes] == [
            ("one", "BrokenBarrierError"),
            ("two", "BrokenBarrierError"),
        ]
    assert [names for _, names in started] == [frozenset({name}) for name in ["one", "two"] * 2]


def _two_trained_toys_scoring(monkeypatch, toy_warehouse, timeout: float):
    """Toys "one" and "two", trained, whose scorings wait up to `timeout` s for each other."""
    from python_models.lifecycle import train_each

    started, _ = _toys_that_record(
        [("one", 1), ("two", 1)],
        meet={"one", "two"},
        monkeypatch=monkeypatch,
        timeout=timeout,
        stage="score",
    )
    con = duckdb.connect(str(toy_warehouse))
    try:
        assert {o.status for o in train_each(con, ["one", "two"])} == {"champion"}
    finally:
        con.close()
    return started


def test_models_score_beside_each_other_and_write_one_at_a_time(monkeypatch, toy_warehouse):
    """score_each scores models side by side within its threads (two that wait for each other
    both pass), each model's scores its own, and their writes to the tables every scoring
    writes go one at a time."""
    import threading
    import time

    from python_models import lifecycle

    started = _two_trained_toys_scoring(monkeypatch, toy_warehouse, timeout=60)
    writing, most, count = [0], [0], threading.Lock()
    write = lifecycle.write_scores

    def watched(*args, **kwargs):
        with count:
            writing[0] += 1
            most[0] = max(most[0], writing[0])
        try:
            time.sleep(0.3)  # a write beside it, if any, starts meanwhile
            return write(*args, **kwargs)
        finally:
            with count:
                writing[0] -= 1

    monkeypatch.setattr(lifecycle, "write_scores", watched)
    con = duckdb.connect(str(toy_warehouse))
    try:
        beside = lifecycle.score_each(con, ["one", "two"], threads=2)
        scores = {
            name: con.sql(f"select user_id, score from ml_scores.{name}_scores").pl()
            for name in ("one", "two")
        }
    finally:
        con.close()
    assert [(o.model_name, o.status, o.rows) for o in beside] == [
        ("one", "scored", 40),
        ("two", "scored", 40),
    ]
    assert frozenset({"one", "two"}) in {names for _, names in started}  # side by side
    assert most[0] == 1
    # planted: each toy scores x rescaled by the range it was trained on
    frame = toy_frame(7)
    x = frame["x"].to_numpy()
    expected = dict(zip(frame["user_id"], (x - x.min()) / (x.max() - x.min()), strict=True))
    for name, table in scores.items():
        got = dict(zip(table["user_id"], table["score"], strict=True))
        assert got.keys() == expected.keys(), name
        assert all(abs(got[u] - expected[u]) < 1e-12 for u in expected), name


def test_models_score_in_turn_within_one_thread(monkeypatch, toy_warehouse):
    """With one thread no model scores beside another: two that wait for each other (2 s)
    never meet, and fail."""
    from python_models.lifecycle import score_each

    started = _two_trained_toys_scoring(monkeypatch, toy_warehouse, timeout=2)
    con = duckdb.connect(str(toy_warehouse))
    try:
        in_turn = score_each(con, ["one", "two"], threads=1)
    finally:
        con.close()
    assert [(o.model_name, o.reason) for o in in_turn] == [
        ("one", "BrokenBarrierError"),
        ("two", "BrokenBarrierError"),
    ]
    assert [names for _, names in started] == [frozenset({"one"}), frozenset({"two"})]


def test_the_list_refuses_twice_declared_models():
    with pytest.raises(ValueError, match="model names declared twice"):
        models.check_models((TOY, TOY))


def test_catalogue_consumers_must_be_listed_models(tmp_path, monkeypatch):
    models.check_models()  # the real catalogue and list agree
    real = yaml.safe_load(catalogue.CATALOGUE_PATH.read_text())
    mart = next(m for m in real["models"] if m["name"] == catalogue.FEATURE_MART)
    column = next(c for c in mart["columns"] if c["name"] == "count_events_7d")
    column["config"]["meta"]["used_by"].append("fraud")  # a typo, or a model never listed
    bad = tmp_path / "_features__models.yml"
    bad.write_text(yaml.safe_dump(real))
    monkeypatch.setattr(catalogue, "CATALOGUE_PATH", bad)
    with pytest.raises(catalogue.CatalogueError, match=r"unknown models \['fraud'\]"):
        models.check_models()


def test_docs_model_table_is_the_specs():
    text = (REPO_ROOT / "docs" / "models_ml.md").read_text()
    assert models.models_markdown() in text, (
        "docs/models_ml.md's model table is out of date; paste python_models.models."
        "models_markdown():\n" + models.models_markdown()
    )
