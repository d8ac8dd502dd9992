"""The shape every model follows, after scikit-learn's conventions where they fit:

- hyperparameters are `__init__` arguments (the feature list and a `ModelParams`); nothing is
  learned there;
- `fit(frame, validation=None)` learns from a polars frame (feature columns, plus `label` for
  supervised models; `validation` is the early-stopping / calibration frame) and returns self;
- what `fit` learns lives in attributes ending in `_`;
- `predict(frame)` gives one value per row (probability, revenue, segment id, anomaly score);
- `predict_frame(frame)` gives the rows of the score table (user_id, as_of_date, score, the
  model's label columns, reasons);
- `evaluate(frame)` gives one row per (variant, split) and one column per metric.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import polars as pl

from python_models.common.params import ModelParams


class NotFittedError(ValueError):
    """predict / evaluate was called before fit."""


class Estimator:
    params_class: ClassVar[type[ModelParams]] = ModelParams

    def __init__(self, features: list[str], params: ModelParams | None = None):
        self.features = list(features)
        self.params = params if params is not None else self.params_class()
        if not isinstance(self.params, self.params_class):
            raise TypeError(
                f"{type(self).__name__} takes {self.params_class.__name__}, "
                f"got {type(self.params).__name__}"
            )

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def fit(self, frame: pl.DataFrame, validation: pl.DataFrame | None = None) -> Self:
        raise NotImplementedError

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        raise NotImplementedError

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        raise NotImplementedError
