"""LightGBM, once for every model that uses it: deterministic settings, training with early
stopping, `StoredBooster`, which pickles as model text and rebuilds the booster on first use,
and LightGBM's thread count held at one while models run beside each other.
"""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from python_models.common.estimator import Estimator
from python_models.common.reasons import explain

if TYPE_CHECKING:  # lightgbm imports scikit-learn (seconds): loaded where it is used
    import lightgbm as lgb


def deterministic_settings(seed: int, num_threads: int) -> dict[str, Any]:
    """Fixed seeds and thread count, row-wise histograms: same data and params, same trees."""
    return {
        "seed": seed,
        "bagging_seed": seed,
        "feature_fraction_seed": seed,
        "data_random_seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        # Small and explicit: OpenMP threads collapse on shared cores.
        "num_threads": num_threads,
        "verbosity": -1,
    }


# LightGBM's thread count is one setting of the whole process (LGBM_DEFAULT_NUM_THREADS): each
# call sets it from its num_threads (every core when it names none), sizes its per-thread
# buffers by it, then runs its OpenMP loops by it again. A call in another thread that changes
# it between the two gives a loop more threads than buffers: a segfault in lib_lightgbm.so
# (2026-12-07: next action's one-thread fit beside LTV's validation predict, which named no
# thread count; 6 of 6 runs of a fit beside a predict crashed within 10 s). While models run
# beside each other its ceiling (LGBM_SetMaxThreads) holds it at one: every call then sizes
# and loops with one thread, whatever it asks. A model of more threads runs alone
# (lifecycle._beside_each_other), so no model is fitted with fewer threads than it asks.
_hold = threading.Lock()
_holders = 0
_ceiling_before = -1


def _lightgbm_lib():
    from lightgbm.basic import _LIB

    return _LIB


def hold_lightgbm_at_one_thread() -> None:
    """Every LightGBM call in this process runs on one thread until the matching
    release_lightgbm_threads (calls may nest: the last release lifts it)."""
    global _holders, _ceiling_before
    with _hold:
        if _holders == 0:
            lib, before = _lightgbm_lib(), ctypes.c_int()
            lib.LGBM_GetMaxThreads(ctypes.byref(before))
            _ceiling_before = before.value
            lib.LGBM_SetMaxThreads(ctypes.c_int(1))
        _holders += 1


def release_lightgbm_threads() -> None:
    """Lift hold_lightgbm_at_one_thread's ceiling (the one before it) at the last release:
    only once no call that ran under it can still be running."""
    global _holders
    with _hold:
        _holders -= 1
        if _holders == 0:
            _lightgbm_lib().LGBM_SetMaxThreads(ctypes.c_int(_ceiling_before))


def train_booster(
    settings: dict[str, Any],
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    features: list[str],
    num_boost_round: int,
    early_stopping_rounds: int,
) -> tuple[lgb.Booster, int]:
    """(booster, best iteration): boosting stops when the validation metric stops improving."""
    import lightgbm as lgb

    train_set = lgb.Dataset(x_fit, y_fit, feature_name=list(features), free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set)
    booster = lgb.train(
        settings,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )
    return booster, booster.best_iteration or num_boost_round


class StoredBooster:
    """A trained booster cut at its best iteration, kept as LightGBM's model text (the stored,
    pickled form) and rebuilt once per process when first used."""

    def __init__(self, booster: lgb.Booster, best_iteration: int):
        self.text = booster.model_to_string(num_iteration=best_iteration)
        self.best_iteration = int(best_iteration)
        # Predictions use the training's thread count: LightGBM's own default is every core.
        self.num_threads = int(booster.params.get("num_threads", 1))
        self._booster: lgb.Booster | None = None

    @property
    def booster(self) -> lgb.Booster:
        import lightgbm as lgb

        if self._booster is None:
            self._booster = lgb.Booster(model_str=self.text)
        return self._booster

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_booster"] = None  # the model text is the stored form
        return state

    @property
    def threads(self) -> int:
        return getattr(self, "num_threads", 1)  # artifacts from before the field: one

    def predict(self, matrix: np.ndarray, raw_score: bool = False) -> np.ndarray:
        return self.booster.predict(
            matrix,
            raw_score=raw_score,
            num_iteration=self.best_iteration,
            num_threads=self.threads,
        )

    def importance(self) -> np.ndarray:
        """Total gain per feature, in feature order."""
        return self.booster.feature_importance(importance_type="gain")


class BoostedEstimator(Estimator):
    """An estimator served by a `StoredBooster` (`booster_`), whose reasons per row are the
    booster's top contributions in the catalogue's words. Its params hold
    `reason_chunk_size`."""

    booster_: StoredBooster
    feature_medians_: np.ndarray  # the training medians: "high" or "low" in the reasons

    @property
    def best_iteration_(self) -> int:
        return self.booster_.best_iteration

    def importance(self) -> np.ndarray:
        self.check_fitted()
        return self.booster_.importance()

    def with_reasons(self, out: pl.DataFrame, matrix: np.ndarray) -> pl.DataFrame:
        """`out` (one row per row of `matrix`) with its top-3 `reasons`."""
        reasons = explain(
            self.booster_.booster,
            matrix,
            self.features,
            self.feature_medians_,
            chunk_size=self.params.reason_chunk_size,
            num_threads=self.booster_.threads,
        )
        return out.with_columns(pl.Series("reasons", reasons, dtype=pl.String))
