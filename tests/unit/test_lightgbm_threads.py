"""Models beside each other and LightGBM's one process-wide thread count
(python_models.common.booster): a one-thread fit beside a predict that names no thread count
crashed the process (lib_lightgbm.so, a 1M bench's training, 2026-12-07)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import duckdb
from conftest import lightgbm_threads

from python_models.config import REPO_ROOT

# A one-thread fit beside predictions of LightGBM's default thread count (every core), as the
# models' steps run in lifecycle._beside_each_other, for RACE_SECONDS. Before the hold, six of
# six such runs died of a segfault, most within 4 s.
RACE_SECONDS = 8
RACE = textwrap.dedent(
    f"""
    import time

    import duckdb
    import lightgbm as lgb
    import numpy as np

    from python_models.lifecycle import _beside_each_other
    from python_models.warehouse import as_warehouse

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 20))
    y = (x[:, 0] + rng.normal(size=20_000) > 0).astype(float)
    one_thread = {{"objective": "binary", "num_threads": 1, "verbose": -1, "num_leaves": 63}}
    fitted = lgb.train(one_thread, lgb.Dataset(x, y), 20)
    stop = time.monotonic() + {RACE_SECONDS}

    def step(target, name):
        calls = 0
        while time.monotonic() < stop:
            if name == "fit":
                lgb.train(one_thread, lgb.Dataset(x, y), 30)
            else:
                fitted.predict(x[:2_000])  # no num_threads: LightGBM's default, every core
            calls += 1
        return calls

    print(_beside_each_other(as_warehouse(duckdb.connect()), ["fit", "predict"], [1, 1], 2, step))
    """
)


def test_a_fit_beside_predictions_of_every_core_does_not_crash():
    done = subprocess.run(
        [sys.executable, "-c", RACE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    fits, predictions = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - our list
    assert fits > 0 and predictions > 0  # both ran, side by side for the whole race


def test_a_one_thread_fit_keeps_one_thread_while_another_step_predicts_on_every_core():
    """The mechanism of the crash, ordered: a step's fit sets LightGBM's thread count to one,
    another step then predicts naming none (every core); the count LightGBM reads for the
    fit's next loop stays one. A step alone, and the process after them, keep the ceiling
    they had."""
    import lightgbm as lgb
    import numpy as np

    from python_models.lifecycle import _beside_each_other
    from python_models.warehouse import as_warehouse

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    y = (x[:, 0] > 0).astype(float)
    one_thread = {"objective": "binary", "num_threads": 1, "verbose": -1}
    fitted = lgb.train(one_thread, lgb.Dataset(x, y), 2)
    _, before = lightgbm_threads()
    fitting, predicted = threading.Event(), threading.Event()

    def step(target, name):
        if name == "fit":
            lgb.train(one_thread, lgb.Dataset(x, y), 2)  # LightGBM's count: one
            fitting.set()
            assert predicted.wait(60)
            return lightgbm_threads()
        assert fitting.wait(60)
        fitted.predict(x)  # names no thread count: LightGBM's default, every core
        predicted.set()
        return None

    w = as_warehouse(duckdb.connect())
    try:
        beside = _beside_each_other(w, ["fit", "predict"], [1, 1], 2, step)
        alone = _beside_each_other(w, ["wide", "c"], [2, 1], 2, lambda t, n: lightgbm_threads())
    finally:
        w.close()
    assert beside[0] == (1, 1)  # before the hold: (2, -1) on two cores, the crash's loop
    assert [ceiling for _, ceiling in alone] == [before, before]  # in turn: never held
    assert lightgbm_threads()[1] == before
