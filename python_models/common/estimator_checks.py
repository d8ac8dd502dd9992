"""Checks every model must pass, run the same way on each (after scikit-learn's
`utils.estimator_checks`): tests/unit/test_estimator_checks.py runs them for every model in
python_models.models, so a new model is checked the moment it is listed.

Each check takes a ModelSpec, fits its estimator on the spec's tiny example frames and raises
AssertionError (or lets the model's error through) when the model breaks the shared shape.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from dataclasses import fields

import numpy as np
import polars as pl

from python_models.common.estimator import NotFittedError
from python_models.common.scores import score_frame
from python_models.common.spec import Example, ModelSpec

SEED = 0


def _fitted(spec: ModelSpec, example: Example):
    return example.make(spec).fit(example.frame, example.validation)


def check_params_round_trip(spec: ModelSpec) -> None:
    defaults = spec.params()
    assert spec.params.from_overrides(None) == defaults
    assert spec.params.from_overrides(defaults.as_dict()) == defaults
    assert set(defaults.as_dict()) == {f.name for f in fields(spec.params)}


def check_params_reject_unknown_and_mistyped(spec: ModelSpec) -> None:
    try:
        spec.params.from_overrides({"no_such_parameter": 1})
    except ValueError as err:
        assert "no_such_parameter" in str(err), err
    else:
        raise AssertionError(f"{spec.name}: an unknown parameter was accepted")
    for field in fields(spec.params):
        try:
            spec.params.from_overrides({field.name: ["not", "a", "value"]})
        except ValueError as err:
            assert field.name in str(err), err
        else:
            raise AssertionError(f"{spec.name}: a list was accepted for {field.name}")


def check_not_fitted(spec: ModelSpec) -> None:
    example = spec.example(SEED)
    estimator = example.make(spec)
    assert not estimator.is_fitted
    try:
        estimator.predict(example.frame)
    except NotFittedError:
        return
    raise AssertionError(f"{spec.name}: predict before fit did not raise NotFittedError")


def check_fit_returns_self(spec: ModelSpec) -> None:
    example = spec.example(SEED)
    params = spec.params.from_overrides(example.params)
    estimator = spec.estimator(example.features, params)
    assert not [k for k in vars(estimator) if k.endswith("_")], "learned before fit"
    assert estimator.fit(example.frame, example.validation) is estimator
    learned = [k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")]
    assert learned, f"{spec.name}: fit set no attribute ending in '_'"
    # Hyperparameters are left as given.
    assert estimator.params is params and estimator.features == example.features


def check_predict(spec: ModelSpec) -> None:
    example = spec.example(SEED)
    predicted = np.asarray(_fitted(spec, example).predict(example.frame))
    assert predicted.shape == (example.frame.height,), predicted.shape
    assert np.isfinite(predicted.astype(float)).all()


def check_predict_frame_is_a_score_table(spec: ModelSpec) -> None:
    example = spec.example(SEED)
    out = _fitted(spec, example).predict_frame(example.frame)
    assert 0 < out.height <= example.frame.height
    table = score_frame(spec, "v-check", "run-check", out)
    assert tuple(table.columns) == spec.score_columns, table.columns
    for column in (*spec.key_columns, "score", *spec.label_columns, "reasons"):
        assert table[column].null_count() == 0, column
    assert not table.select(spec.key_columns).is_duplicated().any(), "one row per key"
    low, high = spec.score_bounds
    assert low is None or table["score"].min() >= low
    assert high is None or table["score"].max() <= high


def check_evaluate(spec: ModelSpec) -> None:
    example = spec.example(SEED)
    held_out = example.validation if example.validation is not None else example.frame
    evaluation = _fitted(spec, example).evaluate(held_out)
    assert isinstance(evaluation, pl.DataFrame) and evaluation.height >= 1
    assert evaluation.columns[:2] == ["variant", "split"], evaluation.columns
    assert all(evaluation[c].dtype.is_numeric() for c in evaluation.columns[2:])


def check_same_seed_same_output(spec: ModelSpec) -> None:
    example = spec.example(SEED)
    first, second = _fitted(spec, example), _fitted(spec, spec.example(SEED))
    assert np.array_equal(first.predict(example.frame), second.predict(example.frame))
    assert first.predict_frame(example.frame).equals(second.predict_frame(example.frame))


def check_pickle_round_trip(spec: ModelSpec) -> None:
    """Artifacts are pickles: a loaded model predicts exactly what the trained one did."""
    example = spec.example(SEED)
    model = _fitted(spec, example)
    loaded = pickle.loads(pickle.dumps(model, protocol=5))
    assert np.array_equal(model.predict(example.frame), loaded.predict(example.frame))


CHECKS: tuple[Callable[[ModelSpec], None], ...] = (
    check_params_round_trip,
    check_params_reject_unknown_and_mistyped,
    check_not_fitted,
    check_fit_returns_self,
    check_predict,
    check_predict_frame_is_a_score_table,
    check_evaluate,
    check_same_seed_same_output,
    check_pickle_round_trip,
)


def checks(spec: ModelSpec) -> Iterator[tuple[str, Callable[[], None]]]:
    """(check name, zero-argument call) for every check on `spec`."""
    for check in CHECKS:
        yield check.__name__, lambda check=check: check(spec)
