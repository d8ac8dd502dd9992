"""The linear baselines' imputer (python_models.common.imputation.MedianImputer) gives what
scikit-learn's SimpleImputer(strategy="median") gives, and is a scikit-learn estimator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.utils.estimator_checks import parametrize_with_checks

from python_models.common.imputation import MedianImputer


@pytest.mark.parametrize("rows", [1, 2, 3, 10, 101, 4000])
def test_the_same_output_as_scikit_learn_s_median_imputer(rows):
    rng = np.random.default_rng(rows)
    train = rng.normal(size=(rows, 12)) * rng.choice([1e-9, 1.0, 1e9], size=12)
    train[rng.random(train.shape) < 0.3] = np.nan
    train[:, 3] = np.nan  # no value at all: SimpleImputer drops the column
    train[:, 5] = np.round(train[:, 5])  # ties, and with an even count a mean of two
    new = rng.normal(size=(50, 12))
    new[rng.random(new.shape) < 0.4] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SimpleImputer's "skipping features"
        expected = SimpleImputer(strategy="median").fit(train)
        wanted = [expected.transform(train), expected.transform(new)]
    ours = MedianImputer().fit(train)
    for got, want in zip([ours.transform(train), ours.transform(new)], wanted, strict=True):
        np.testing.assert_array_equal(got, want)


def test_churn_s_logistic_baseline_uses_it():
    """The change this module exists for: churn's fitted baseline pipeline starts with it."""
    from python_models.churn.examples import FEATURES, example
    from python_models.churn.model import ChurnModel
    from python_models.churn.params import ChurnParams

    toy = example(0)
    model = ChurnModel(FEATURES, ChurnParams(**toy.params)).fit(toy.frame, toy.validation)
    assert isinstance(model.logistic_.steps[0][1], MedianImputer)


@parametrize_with_checks([MedianImputer()])
def test_scikit_learn_s_estimator_checks(estimator, check):
    check(estimator)
