"""`uba refresh` imports what scoring needs while dbt builds (commands/refresh.py
_ModelLibraries): each champion's file is loaded once (RegistryEntry.load), after its sha256
is checked."""

from __future__ import annotations

import pickle
import sys
from datetime import datetime

from python_models.commands.refresh import _ModelLibraries
from python_models.common.artifacts import sha256_file
from python_models.common.registry import RegistryEntry


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
    _ModelLibraries([_champion(path, sha256_file(path))]).join()
    assert "uba_warmup_lib_ok" in sys.modules
    del sys.modules["uba_warmup_lib_ok"]


def test_a_file_that_fails_its_sha256_is_not_unpickled_and_nothing_raises(tmp_path, monkeypatch):
    path = _champion_file(tmp_path, "uba_warmup_lib_tampered")
    monkeypatch.syspath_prepend(str(tmp_path / "libs"))
    missing = tmp_path / "missing.pkl"
    _ModelLibraries([_champion(path, "0" * 64), _champion(missing, "0" * 64)]).join()
    assert "uba_warmup_lib_tampered" not in sys.modules
