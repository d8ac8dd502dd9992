"""`uba refresh` imports what scoring needs while dbt builds (python_models/model_libraries.py
ModelLibraries): each champion's file is loaded once (RegistryEntry.load), after its sha256
is checked."""

from __future__ import annotations

import pickle
import sys
from datetime import datetime

from python_models.common.artifacts import sha256_file
from python_models.common.registry import RegistryEntry
from python_models.model_libraries import ModelLibraries


def _champion(path, sha256: str) -> RegistryEntry:
    return RegistryEntry(
        model_name="m", model_version="v1", trained_at=datetime(2025, 1, 1),
        data_window_start=None, data_window_end=None, feature_list_hash="h", features=[],
        params={}, metrics={}, artifact_path=str(path), artifact_sha256=sha256,
        status="champion", promoted_at=None, run_id=None,
    )  # fmt: skip


def _champion_file(tmp_path, module: str):
    """A model file whose bundle unpickles a class from `module`, a module nobody imported."""
    package = tmp_path / "libs"
    package.mkdir(exist_ok=True)
    (package / f"{module}.py").write_text("class Model:\n    pass\n")
    sys.path.insert(0, str(package))
    try:
        model = __import__(module).Model()
        path = tmp_path / f"{module}.pkl"
        path.write_bytes(pickle.dumps({"model": model}))
    finally:
        del sys.modules[module]
        sys.path.remove(str(package))
    return path


def test_the_champions_libraries_are_imported_in_the_background(tmp_path, monkeypatch):
    path = _champion_file(tmp_path, "uba_warmup_lib_ok")
    monkeypatch.syspath_prepend(str(tmp_path / "libs"))
    assert "uba_warmup_lib_ok" not in sys.modules
    ModelLibraries([_champion(path, sha256_file(path))]).join()
    assert "uba_warmup_lib_ok" in sys.modules
    del sys.modules["uba_warmup_lib_ok"]


def test_a_file_that_fails_its_sha256_is_not_unpickled_and_nothing_raises(tmp_path, monkeypatch):
    path = _champion_file(tmp_path, "uba_warmup_lib_tampered")
    monkeypatch.syspath_prepend(str(tmp_path / "libs"))
    missing = tmp_path / "missing.pkl"
    ModelLibraries([_champion(path, "0" * 64), _champion(missing, "0" * 64)]).join()
    assert "uba_warmup_lib_tampered" not in sys.modules


def test_a_dagster_run_warms_the_model_libraries_only_when_it_trains_or_scores():
    """orchestration.defs.ml.model_libraries_for_run, asked from a run's asset: what only
    training imports too when the run trains, the rest when it only scores, nothing when it
    does neither."""
    import dagster as dg

    from orchestration.defs.ml import model_key, model_libraries_for_run, score_key
    from python_models.models import MODELS

    seen = {}

    @dg.asset
    def probe(context) -> None:  # (a string annotation: dagster cannot resolve it here)
        libraries = model_libraries_for_run(context)
        if libraries is not None:
            libraries.join()
        seen[context.run_id] = None if libraries is None else libraries.trains

    def stand_in(key):  # the model step's key, doing nothing
        @dg.asset(key=key)
        def _asset() -> None:
            pass

        return _asset

    spec = MODELS[0]
    trains, scores = stand_in(model_key(spec)), stand_in(score_key(spec))
    runs = {
        "trains": dg.materialize([probe, trains, scores]),
        "scores": dg.materialize([probe, scores]),
        "neither": dg.materialize([probe, trains, scores], selection=[probe]),
    }
    assert {name: seen[run.run_id] for name, run in runs.items()} == {
        "trains": True,
        "scores": False,
        "neither": None,
    }


def test_a_scoring_warm_up_leaves_out_what_only_training_imports():
    """`uba refresh` scores and never trains: its warm-up (trains=False) imports the models'
    libraries but not the fairness report's statsmodels or matplotlib; a training one does."""
    import subprocess

    script = (
        "import sys; from python_models.model_libraries import ModelLibraries; "
        "ModelLibraries(trains={}).join(); "
        "print(sorted(p for p in ('lightgbm', 'sklearn', 'statsmodels', 'matplotlib') "
        "if p in sys.modules))"
    )
    found = {
        trains: subprocess.run(
            [sys.executable, "-c", script.format(trains)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for trains in (False, True)
    }  # fmt: skip
    assert found == {
        False: "['lightgbm', 'sklearn']",
        True: "['lightgbm', 'matplotlib', 'sklearn', 'statsmodels']",
    }
