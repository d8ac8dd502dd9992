"""Churn on tiny seeded frames (python_models/churn/examples.py): what only churn promises."""

from __future__ import annotations

import polars as pl
import pytest

from python_models.churn.examples import example
from python_models.churn.model import ChurnModel, beats_baselines, f1_threshold
from python_models.churn.params import ChurnParams
from python_models.churn.spec import SPEC


def _fit(seed=0, **overrides) -> tuple[ChurnModel, pl.DataFrame]:
    data = example(seed)
    params = ChurnParams.from_overrides({**data.params, **overrides})
    return ChurnModel(data.features, params).fit(data.frame, data.validation), data.validation


def test_churn_ranks_planted_low_activity_users_first():
    model, validation = _fit()
    evaluation = model.evaluate(validation)
    auc = dict(zip(evaluation["variant"], evaluation["roc_auc"], strict=True))
    # The label is drawn from the planted activity, which the features reflect.
    assert auc["lightgbm_calibrated"] > 0.75, evaluation
    assert set(evaluation["variant"]) == {
        "recency_rule",
        "logistic_regression",
        "lightgbm",
        "lightgbm_calibrated",
    }
    assert isinstance(beats_baselines(evaluation), bool)


def test_the_training_s_shared_holdout_scores_are_what_each_call_computes():
    """Training scores the holdout once (on_warehouse.train): the evaluation from those scores
    equals its own, and the served variant's scores are the model's predictions."""
    import numpy as np

    from python_models.churn.model import SERVED

    model, validation = _fit()
    scores = model.variant_scores(validation)
    assert model.evaluate(validation, scores).equals(model.evaluate(validation))
    np.testing.assert_array_equal(scores[SERVED], model.predict(validation))


def test_churn_probabilities_and_labels_follow_the_threshold():
    model, validation = _fit(threshold=0.3, calibration="isotonic")
    out = model.predict_frame(validation, with_reasons=False)
    assert out["score"].is_between(0, 1).all()
    assert (out["predicted_label"] == (out["score"] >= 0.3)).all()
    assert out.columns == ["user_id", "as_of_date", "score", "predicted_label"]


def test_f1_threshold_picks_the_cut_with_the_best_f1():
    labels = [0, 0, 1, 0, 1, 1]
    probability = [0.1, 0.2, 0.3, 0.4, 0.8, 0.9]
    # By hand: from 0.3, 3 of 4 flagged churn and every churner is flagged (F1 6/7); from 0.8,
    # 2 of 2 and 2 of 3 (F1 0.8); from 0.4, 2 of 3 and 2 of 3; from 0.2, 3 of 5 and 3 of 3.
    assert f1_threshold(labels, probability) == 0.3


def test_churn_learns_its_decision_threshold_when_none_is_given():
    model, validation = _fit()
    out = model.predict_frame(validation, with_reasons=False)
    threshold = model.decision_threshold
    assert 0.0 < threshold < 1.0
    assert (out["predicted_label"] == (out["score"] >= threshold)).all()
    flagged = validation.filter(out["predicted_label"])
    # The flagged users churn more often than the users scored as a whole.
    assert flagged.height > 0
    assert flagged["label"].mean() > validation["label"].mean()


def test_churn_reasons_are_words_from_the_catalogue():
    model, validation = _fit()
    scored = model.predict_frame(validation).sort("score", descending=True)
    # The riskiest users have reasons (a user with no push above the median has none).
    assert (scored["reasons"].head(10).str.len_chars() > 0).all()
    assert not scored["reasons"].str.contains("_").any()


def test_single_class_calibration_set_is_a_clear_error():
    data = example(0)
    validation = data.validation.with_columns(pl.lit(False).alias("label"))
    with pytest.raises(ValueError, match="calibration set has a single class"):
        ChurnModel(data.features, SPEC.params.from_overrides(data.params)).fit(
            data.frame, validation
        )
    with pytest.raises(ValueError, match="validation frame"):
        ChurnModel(data.features).fit(data.frame)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"calibration": "platt"}, "calibration must be"),
        ({"threshold": 1.5}, "threshold"),
        ({"num_leaves": 1}, "num_leaves"),
        ({"num_leaves": "seven"}, "num_leaves must be int"),
        ({"purge": "yes"}, "purge must be bool"),
    ],
)
def test_bad_churn_parameters_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        ChurnParams.from_overrides(overrides)


def test_logistic_baseline_reaches_the_optimum_an_independent_fit_finds():
    """The baseline's Newton solver (BASELINE_SOLVER) fits the same model as scikit-learn's
    default lbfgs run to a tight tolerance on the same standardized rows: same coefficients,
    so the same yardstick for the champion."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from python_models.common.features import to_matrix

    model, _ = _fit()
    data = example(0)
    x = StandardScaler().fit_transform(
        SimpleImputer(strategy="median").fit_transform(to_matrix(data.frame, data.features))
    )
    y = data.frame["label"].cast(pl.Int8).to_numpy()
    reference = LogisticRegression(
        max_iter=10_000, tol=1e-10, class_weight="balanced", solver="lbfgs"
    ).fit(x, y)
    fitted = model.logistic_[-1]
    assert fitted.solver != "lbfgs"
    assert fitted.coef_ == pytest.approx(reference.coef_, abs=1e-4)
    assert fitted.intercept_ == pytest.approx(reference.intercept_, abs=1e-4)
