"""Filling missing feature values for the models' linear baselines."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class MedianImputer(TransformerMixin, BaseEstimator):
    """scikit-learn's SimpleImputer(strategy="median") for NaNs in a float matrix, the same
    output (a column with no value at all is dropped, as it does by default), with the medians
    from np.nanmedian: SimpleImputer sorts a masked copy of the matrix instead, 0.86 s of
    churn's 10M training (100,000 rows) where nanmedian takes a fraction of it."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # what it is for
        return tags

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: dropped below
            self.statistics_ = np.nanmedian(X, axis=0) if len(X) else np.full(X.shape[1], np.nan)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan", copy=True
        )
        kept = ~np.isnan(self.statistics_)
        X = X[:, kept]
        rows, columns = np.nonzero(np.isnan(X))
        X[rows, columns] = self.statistics_[kept][columns]
        return X
