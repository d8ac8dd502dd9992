"""What a process that builds with dbt imports beside the build (python_models.model_libraries
ModelLibraries) is what training every model imports: after it, training imports no
third-party package it had not (a submodule of one at most: milliseconds), so none of that
import time lands on the first model's step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# Trains every model in a fresh interpreter after the warm-up and prints, as JSON, the
# third-party packages each model's training imported (and any model that did not train).
SCRIPT = """
import json, sys
from python_models.model_libraries import ModelLibraries
ModelLibraries().join()
from python_models.lifecycle import train_model
from python_models.models import model_names
from python_models.warehouse import connect

def third_party():
    return {
        m.split(".")[0] for m in sys.modules
        if m.split(".")[0] not in sys.stdlib_module_names
        and m.split(".")[0] not in ("python_models", "__main__", "_distutils_hack")
    }

con = connect(sys.argv[1])
imported, failed = {}, {}
for name in model_names():
    before = third_party()
    try:
        train_model(con, name, params={"min_class_examples": 50} if name == "churn" else None)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
    imported[name] = sorted(third_party() - before)
print(json.dumps({"imported": imported, "failed": failed}))
"""


def test_training_every_model_imports_nothing_the_warm_up_did_not(built_warehouse, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    env = {**os.environ, "UBA_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    trained = [name for name in out["imported"] if name not in out["failed"]]
    assert len(trained) >= 4, out["failed"]  # most models train on the 60k-event sample
    assert {name: mods for name, mods in out["imported"].items() if mods} == {}
