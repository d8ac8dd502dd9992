"""Unit tests of the shared model pieces on small hand-made frames."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import numpy as np
import polars as pl
import pytest

from python_models.common.drift import population_stability_index
from python_models.common.splits import time_split


def test_psi_is_zero_for_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    assert population_stability_index(base, rng.normal(size=5000)) < 0.02
    assert population_stability_index(base, rng.normal(loc=1.0, size=5000)) > 0.25


def test_psi_counts_a_change_in_missingness():
    values = np.arange(1000, dtype=float)
    with_nans = values.copy()
    with_nans[:300] = np.nan
    assert population_stability_index(values, with_nans) > 0.25


def test_time_split_purges_overlapping_label_windows():
    dates = [
        date(2025, 1, 6 + 7 * i) if i < 4 else date(2025, 2, 3 + 7 * (i - 4)) for i in range(8)
    ]
    split = time_split(dates, horizon_days=14, purge=True)
    assert split.holdout_date == dates[-1]
    assert all(
        (split.holdout_date - d).days >= 14 for d in [*split.fit_dates, split.calibration_date]
    )
    unpurged = time_split(dates, horizon_days=14, purge=False)
    assert unpurged.calibration_date == dates[-2]
    with pytest.raises(ValueError, match="at least 3"):
        time_split(dates[:2], horizon_days=14)


def test_registry_rollback_and_tamper_detection(tmp_path, monkeypatch):
    from python_models.common import registry
    from python_models.common.artifacts import ArtifactIntegrityError, save_artifact
    from python_models.config import reload_settings

    monkeypatch.setenv("UBA_DATA_DIR", str(tmp_path))
    reload_settings()
    con = duckdb.connect()
    assert registry.champions(con) == []  # no registry yet
    for version in ("v1", "v2"):
        path, sha = save_artifact("churn", version, {"model": version})
        registry.register(
            con,
            model_name="churn",
            model_version=version,
            data_window=(None, None),
            feature_list_hash="h",
            features=["f"],
            params={},
            metrics={},
            artifact_path=path,
            artifact_sha256=sha,
            status="champion",
            run_id=None,
        )
    assert registry.require_champion(con, "churn").model_version == "v2"
    assert [c.model_version for c in registry.champions(con)] == ["v2"]  # one per model
    assert registry.rollback(con, "churn") == "v1"
    assert registry.champions(con) == [registry.require_champion(con, "churn")]
    assert registry.require_champion(con, "churn").load() == {"model": "v1"}
    with pytest.raises(registry.RegistryError, match="first"):
        registry.rollback(con, "churn")
    champion = registry.require_champion(con, "churn")
    with open(champion.artifact_path, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ArtifactIntegrityError, match="changed after training"):
        champion.load()
    reload_settings()


def test_transactions_bad_input_gets_clear_errors():
    from python_models.ltv.forecast import evaluate_transactions
    from python_models.ltv.transactions import validate_transactions

    with pytest.raises(ValueError, match="lack columns"):
        validate_transactions(pl.DataFrame({"user_id": ["a"], "revenue_usd": [1.0]}))
    with pytest.raises(ValueError, match="not timestamps"):
        validate_transactions(
            pl.DataFrame({"user_id": ["a"], "purchased_at": ["yesterday"], "revenue_usd": [1.0]})
        )
    frame = pl.DataFrame(
        {"user_id": ["a"], "purchased_at": [datetime(2025, 1, 1)], "revenue_usd": [5.0]}
    )
    with pytest.raises(ValueError, match="not matured"):
        evaluate_transactions(frame, "2025-01-02", horizon_days=30)


def test_transaction_ltv_learns_planted_spenders():
    from python_models.ltv.forecast import evaluate_transactions

    rng = np.random.default_rng(1)
    users = [f"u{i}" for i in range(400)]
    rate = rng.gamma(1.0, 1.0, len(users))  # planted purchase rate per user
    rows = []
    for user, r in zip(users, rate, strict=True):
        n = rng.poisson(r * 12)
        days = rng.uniform(0, 245, n)
        for d in days:
            rows.append(
                (user, datetime(2025, 1, 1) + np.timedelta64(int(d * 86400), "s").item(), 20.0)
            )
    frame = pl.DataFrame(rows, schema=["user_id", "purchased_at", "revenue_usd"], orient="row")
    result = evaluate_transactions(frame, "2025-06-20", horizon_days=60)
    # The served model halves the error of predicting nothing, and ranks the planted spenders.
    assert (result.evaluation.filter(pl.col("served"))["mae_vs_zero"] < 0.6).all()
    ranked = result.predictions.filter(pl.col("model") == "bgnbd_gg_mean").join(
        pl.DataFrame({"user_id": users, "rate": rate}), on="user_id"
    )
    assert ranked.select(pl.corr("revenue_usd", "rate", method="spearman")).item() > 0.5


def test_params_base_checks_names_and_types_once_for_every_model():
    from python_models.churn.params import ChurnParams

    params = ChurnParams.from_overrides({"learning_rate": 1, "purge": True})
    assert params.learning_rate == 1.0 and isinstance(params.learning_rate, float)
    assert params.as_dict()["learning_rate"] == 1.0
    with pytest.raises(ValueError, match=r"unknown churn parameters \['leaves'\]"):
        ChurnParams.from_overrides({"leaves": 3})
    with pytest.raises(ValueError, match="num_leaves must be int, got True"):
        ChurnParams.from_overrides({"num_leaves": True})
    with pytest.raises(ValueError, match="calibration must be"):
        ChurnParams(calibration="platt")  # built directly: checked too


def test_stored_booster_pickles_as_text_and_predicts_the_same():
    import pickle

    from python_models.common.booster import StoredBooster, deterministic_settings, train_booster

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    settings = {"objective": "binary", "metric": "auc"} | deterministic_settings(1, 1)
    booster, best = train_booster(settings, x[:200], y[:200], x[200:], y[200:], list("abc"), 50, 5)
    stored = StoredBooster(booster, best)
    loaded = pickle.loads(pickle.dumps(stored))
    assert "_booster" in vars(loaded) and loaded._booster is None
    assert np.array_equal(loaded.predict(x), booster.predict(x, num_iteration=best))
    assert loaded.importance().shape == (3,)


def test_feature_matrix_keeps_every_value_in_feature_order_with_nulls_missing():
    """to_matrix: the features' values in the order asked, a null as NaN (LightGBM's missing),
    column-major (LightGBM reads it without a copy), float32 when asked (churn's fit)."""
    from python_models.common.features import to_matrix

    frame = pl.DataFrame(
        {"a": [1, None, 3], "b": [0.5, 2.25, None], "c": [True, False, None], "d": ["x"] * 3}
    )
    expected = np.array([[0.5, 1, 1], [2.25, np.nan, 0], [np.nan, 3, np.nan]])
    for dtype in (np.float64, np.float32):
        matrix = to_matrix(frame, ["b", "a", "c"], dtype=dtype)
        assert matrix.dtype == dtype and matrix.flags.f_contiguous
        np.testing.assert_array_equal(matrix, expected.astype(dtype))
    assert to_matrix(frame, ["a"]).dtype == np.float64
    assert to_matrix(frame.head(0), ["a", "b"]).shape == (0, 2)


def test_pipeline_settings_come_from_the_environment(monkeypatch, tmp_path):
    from python_models.config import SettingsError, reload_settings

    monkeypatch.setenv("UBA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("UBA_INPUT_PATH", raising=False)
    monkeypatch.setenv("UBA_MAX_QUARANTINE_RATE", "0.05")
    try:
        settings = reload_settings()
        assert settings.input_path == tmp_path / "sample" / "events"
        assert settings.max_quarantine_rate == 0.05 and settings.drift_psi_threshold == 0.25
        monkeypatch.setenv("UBA_DRIFT_PSI_THRESHOLD", "high")
        with pytest.raises(SettingsError, match="UBA_DRIFT_PSI_THRESHOLD='high' is not a number"):
            reload_settings()
        monkeypatch.setenv("UBA_DRIFT_PSI_THRESHOLD", "0.1")
        monkeypatch.setenv("UBA_MAX_QUARANTINE_RATE", "1.5")
        with pytest.raises(SettingsError, match="must be between 0.0 and 1.0"):
            reload_settings()
        monkeypatch.setenv("UBA_MAX_QUARANTINE_RATE", "0.05")
        assert settings.model_threads == 2  # models side by side on two cores by default
        monkeypatch.setenv("UBA_MODEL_THREADS", "4")
        assert reload_settings().model_threads == 4
        for bad in ("0", "two", "1.5"):
            monkeypatch.setenv("UBA_MODEL_THREADS", bad)
            with pytest.raises(SettingsError, match=f"UBA_MODEL_THREADS='{bad}' must be a whole"):
                reload_settings()
        monkeypatch.setenv("UBA_MODEL_THREADS", "2")
        monkeypatch.setenv("UBA_TRAIN_THREADS", "1")  # the name before the scorings shared it
        with pytest.raises(SettingsError, match="UBA_TRAIN_THREADS was renamed UBA_MODEL_THREADS"):
            reload_settings()
        monkeypatch.delenv("UBA_TRAIN_THREADS")
    finally:
        monkeypatch.undo()
        reload_settings()


def test_a_model_file_from_older_model_code_is_refused_with_a_clear_reason(tmp_path, monkeypatch):
    from python_models.churn.model import ChurnModel
    from python_models.common.artifacts import (
        ArtifactIntegrityError,
        load_artifact,
        save_artifact,
        sha256_file,
    )
    from python_models.config import reload_settings

    monkeypatch.setenv("UBA_DATA_DIR", str(tmp_path))
    reload_settings()
    try:
        # What an artifact pickled before the shared estimator shape unpickles as: the class,
        # without the attributes fit now sets.
        path, sha = save_artifact("churn", "old", {"model": ChurnModel(["days_since_last_event"])})
        with pytest.raises(ArtifactIntegrityError, match="older format; retrain"):
            load_artifact(path, sha)
        # A class that no longer exists (a module renamed since).
        (tmp_path / "gone.pkl").write_bytes(b"cpython_models.churn.job\nChurnModel\n.")
        with pytest.raises(ArtifactIntegrityError, match="cannot be read"):
            load_artifact(tmp_path / "gone.pkl", sha256_file(tmp_path / "gone.pkl"))
    finally:
        monkeypatch.undo()
        reload_settings()


def _blas_threads_after_import(env_value: str | None) -> int:
    """OpenBLAS's thread count in a fresh interpreter that imports the package, then numpy."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if env_value is not None:
        env["OPENBLAS_NUM_THREADS"] = env_value
    code = (
        "import python_models, numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "print(max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def test_blas_runs_one_thread_unless_the_environment_says_otherwise():
    # Spinning OpenBLAS threads made the churn baseline 4x slower on shared cores
    # (docs/performance.md, "Models sized to the machine").
    assert _blas_threads_after_import(None) == 1
    assert _blas_threads_after_import("2") == 2
