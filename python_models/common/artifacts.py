"""Versioned model files on disk, checked by sha256 when loaded."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from python_models.config import get_settings

ARTIFACT_FILE = "model.pkl"


class ArtifactIntegrityError(RuntimeError):
    """A model file does not match the sha256 recorded in the registry (tampered or corrupt)."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(value: Any, length: int = 12) -> str:
    """Hash of a JSON-able value with sorted keys: same content, same hash, any process."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def artifact_dir(model_name: str, model_version: str) -> Path:
    return get_settings().models_dir / model_name / model_version


def save_artifact(model_name: str, model_version: str, bundle: dict[str, Any]) -> tuple[Path, str]:
    """Pickle `bundle` to models_dir/<model>/<version>/model.pkl; return (path, sha256).

    Written to a temporary name and renamed, so a crash never leaves half a file behind.
    """
    folder = artifact_dir(model_name, model_version)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARTIFACT_FILE
    tmp = folder / (ARTIFACT_FILE + ".tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(bundle, handle, protocol=5)
    tmp.replace(path)
    return path, sha256_file(path)


def load_artifact(path: str | Path, expected_sha256: str) -> dict[str, Any]:
    """Load a bundle after checking its sha256; refuse anything that does not match."""
    path = Path(path)
    if not path.exists():
        raise ArtifactIntegrityError(f"model file {path} is missing")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"model file {path} has sha256 {actual[:16]}..., the registry expects "
            f"{expected_sha256[:16]}...: the file was changed after training; refusing to load it"
        )
    try:
        with open(path, "rb") as handle:
            bundle = pickle.load(handle)
    except (AttributeError, ImportError, TypeError, pickle.UnpicklingError) as err:
        raise ArtifactIntegrityError(
            f"model file {path} was written by other model code and cannot be read ({err}); "
            "retrain the model"
        ) from err
    model = bundle.get("model") if isinstance(bundle, dict) else None
    if getattr(model, "is_fitted", True) is False:
        # Pickled before the estimators kept what they learn in attributes ending in "_".
        raise ArtifactIntegrityError(
            f"model file {path} holds a model in an older format; retrain the model"
        )
    return bundle
