"""Next action: which event comes next in the user's session ('session_end' when none)?

LightGBM multiclass on the sequence features (last events and gaps, the session so far, the
user's event mix so far), against two baselines fitted on the same training rows: the most
frequent next event, and a first-order Markov chain P(next | current event) counted from the
transition mart. Served only when it beats both on top-1 AND top-3 accuracy on the holdout.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import polars as pl

from python_models.common import catalogue
from python_models.common.booster import BoostedEstimator, StoredBooster
from python_models.common.reasons import column_medians, reasons_text
from python_models.next_action.params import NextActionParams
from python_models.next_action.sequences import NO_EVENT, SEQUENCE_MART

VARIANTS = ("most_frequent", "markov_chain", "lightgbm")
SERVED = "lightgbm"
BASELINES = ("most_frequent", "markov_chain")
TOP_K = 3
# The score table's label columns: the top 3 actions and their probabilities.
ACTION_COLUMNS = tuple(
    column
    for rank in range(1, TOP_K + 1)
    for column in (f"next_action_{rank}", f"probability_{rank}")
)


def top_k_accuracy(proba: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of rows whose true class index is among the k most probable (-1 = never)."""
    if len(truth) == 0:
        raise ValueError("no rows to evaluate")
    k = min(k, proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return float((top == truth[:, None]).any(axis=1).mean())


def log_loss(proba: np.ndarray, truth: np.ndarray) -> float:
    """Mean negative log probability of the true class (unseen classes get the floor)."""
    picked = np.where(truth >= 0, proba[np.arange(len(truth)), np.maximum(truth, 0)], 0.0)
    return float(-np.mean(np.log(np.clip(picked, 1e-6, 1.0))))


class MarkovChain:
    """P(next | current event name) from transition counts, add-alpha smoothed towards the
    overall next-event distribution; an event never seen as `current` gets that distribution."""

    def __init__(self, counts: pl.DataFrame, classes: list[str], alpha: float):
        index = {name: i for i, name in enumerate(classes)}
        counts = counts.filter(pl.col("next_event_name").is_in(classes))
        prior = np.zeros(len(classes))
        rows: dict[str, np.ndarray] = {}
        for current, following, n in counts.iter_rows():
            rows.setdefault(current, np.zeros(len(classes)))[index[following]] += n
            prior[index[following]] += n
        self.prior = prior / prior.sum() if prior.sum() else np.full(len(classes), 1 / len(classes))
        self.table = {
            current: (row + alpha * self.prior) / (row.sum() + alpha)
            for current, row in rows.items()
        }

    def predict_proba(self, current: list[str]) -> np.ndarray:
        return np.vstack([self.table.get(name, self.prior) for name in current])


def _pairs(frame: pl.DataFrame) -> pl.DataFrame:
    """Transition counts (event_name -> label) of labelled sequence rows."""
    return (
        frame.group_by("event_name", pl.col("label").alias("next_event_name"))
        .agg(pl.len().alias("transitions"))
        .sort("event_name", "next_event_name")
    )


class NextActionModel(BoostedEstimator):
    """Probabilities of the next event per sequence row (frame: rows of
    features.ftr_user_event_sequences; fitting frames hold the next event as `label`).

    `fit(frame, validation, transitions=None)`: `validation` drives early stopping;
    `transitions` (event_name, next_event_name, transitions) are the Markov baseline's counts,
    from the transition mart over the training window; without them the chain is counted from
    `frame` itself (the same pairs: a dbt test holds the label to the transition mart)."""

    params_class = NextActionParams
    params: NextActionParams

    def fit(
        self,
        frame: pl.DataFrame,
        validation: pl.DataFrame | None = None,
        transitions: pl.DataFrame | None = None,
    ) -> Self:
        import lightgbm as lgb

        if validation is None:
            raise ValueError("next_action needs a validation frame (early stopping)")
        if frame.height < 100:
            raise ValueError(f"only {frame.height} labelled events: too few to learn from")
        params = self.params
        classes = sorted(frame["label"].unique().to_list())
        if len(classes) < 2:
            raise ValueError("every training event has the same next event: nothing to learn")
        self.classes_ = classes
        self.categorical_ = [f for f in self.features if frame.schema[f] == pl.String]
        names = set()
        for column in self.categorical_:
            names |= set(frame[column].unique().drop_nulls().to_list())
        self.vocabulary_ = sorted(names | {NO_EVENT})

        x_fit, x_valid = self.matrix(frame), self.matrix(validation)
        y_fit, y_valid = self._class_index(frame), self._class_index(validation)
        keep = y_valid >= 0  # a validation label never seen in training cannot be scored
        categorical = [self.features.index(c) for c in self.categorical_]
        train_set = lgb.Dataset(
            x_fit, y_fit, feature_name=self.features, categorical_feature=categorical
        )
        valid_set = lgb.Dataset(x_valid[keep], y_valid[keep], reference=train_set)
        booster = lgb.train(
            params.lightgbm(len(classes)),
            train_set,
            num_boost_round=params.num_boost_round,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
        )
        self.booster_ = StoredBooster(booster, booster.best_iteration or params.num_boost_round)
        self.feature_medians_ = column_medians(x_fit)
        self.label_shares_ = np.bincount(y_fit, minlength=len(classes)) / len(y_fit)
        counts = transitions if transitions is not None else _pairs(frame)
        self.markov_ = MarkovChain(counts, classes, params.markov_smoothing)
        return self

    # -- encoding -------------------------------------------------------------------------

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """float64 matrix of the features; event names as their vocabulary codes (NaN when
        unknown), so LightGBM treats them as categories."""
        codes = {name: float(i) for i, name in enumerate(self.vocabulary_)}
        columns = []
        for feature in self.features:
            if feature in self.categorical_:
                expr = pl.col(feature).replace_strict(codes, default=None, return_dtype=pl.Float64)
            else:
                expr = pl.col(feature).cast(pl.Float64)
            columns.append(expr.alias(feature))
        return frame.select(columns).to_numpy()

    def _class_index(self, frame: pl.DataFrame) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.classes_)}
        return np.array([index.get(name, -1) for name in frame["label"].to_list()], dtype=np.int64)

    # -- prediction -----------------------------------------------------------------------

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """Probability of each class (columns in `classes_` order) per row."""
        self.check_fitted()
        return self._proba(self.matrix(frame))

    def _proba(self, matrix: np.ndarray) -> np.ndarray:
        proba = self.booster_.booster.predict(
            matrix, num_iteration=self.booster_.best_iteration, num_threads=self.params.num_threads
        )
        return proba.reshape(len(matrix), len(self.classes_))

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """The most likely next action's probability per row."""
        return self.predict_proba(frame).max(axis=1)

    def variant_proba(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """Class probabilities per row by variant (the served model and the baselines)."""
        self.check_fitted()
        return {
            "most_frequent": np.tile(self.label_shares_, (frame.height, 1)),
            "markov_chain": self.markov_.predict_proba(frame["event_name"].to_list()),
            "lightgbm": self.predict_proba(frame),
        }

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One row per variant: top-1 and top-3 accuracy and log loss on labelled rows."""
        truth = self._class_index(frame)
        rows = []
        for variant, proba in self.variant_proba(frame).items():
            rows.append(
                {
                    "variant": variant,
                    "split": "holdout",
                    "top1_accuracy": top_k_accuracy(proba, truth, 1),
                    "top3_accuracy": top_k_accuracy(proba, truth, TOP_K),
                    "log_loss": log_loss(proba, truth),
                    "n": float(frame.height),
                }
            )
        return pl.DataFrame(rows)

    def predict_frame(self, frame: pl.DataFrame, with_reasons: bool = True) -> pl.DataFrame:
        """The top 3 next actions with probabilities for each user's newest row in `frame`;
        as_of_date is that event's day, score the first action's probability."""
        self.check_fitted()
        latest = frame.sort("event_ts", "event_id").unique("user_id", keep="last").sort("user_id")
        matrix = self.matrix(latest)
        proba = self._proba(matrix)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :TOP_K]
        top = np.take_along_axis(proba, order, axis=1)
        classes = np.array(self.classes_, dtype=object)
        columns = {}
        for rank in range(TOP_K):
            columns[f"next_action_{rank + 1}"] = pl.Series(classes[order[:, rank]], dtype=pl.String)
            columns[f"probability_{rank + 1}"] = pl.Series(top[:, rank], dtype=pl.Float64)
        out = latest.select(
            "user_id",
            pl.col("event_date").alias("as_of_date"),
            pl.Series("score", top[:, 0], dtype=pl.Float64),
        ).with_columns(**columns)
        if with_reasons:
            out = out.with_columns(
                pl.Series("reasons", self.reasons(matrix, order[:, 0]), dtype=pl.String)
            )
        return out

    def reasons(self, matrix: np.ndarray, predicted: np.ndarray, k: int = 3) -> list[str]:
        """The k features that push each row's predicted action up most (TreeSHAP of that
        class), in the catalogue's words."""
        n_features = len(self.features)
        width = n_features + 1  # LightGBM appends each class's bias column
        indices = np.full((len(matrix), k), -1, dtype=np.int64)
        chunk = self.params.reason_chunk_size
        for start in range(0, len(matrix), chunk):
            contrib = self.booster_.booster.predict(
                matrix[start : start + chunk],
                pred_contrib=True,
                num_iteration=self.booster_.best_iteration,
                # Explicit and small: OpenMP threads collapse on shared cores (2 ms vs 8 ms for
                # one row on the 2-core machine).
                num_threads=self.params.num_threads,
            )
            by_class = contrib.reshape(len(contrib), len(self.classes_), width)
            rows = np.arange(len(contrib))
            mine = by_class[rows, predicted[start : start + chunk], :n_features]
            order = np.argsort(-mine, axis=1, kind="stable")[:, :k]
            positive = np.take_along_axis(mine, order, axis=1) > 0
            indices[start : start + len(contrib)] = np.where(positive, order, -1)
        return reasons_text(indices, matrix, self.features, self.feature_medians_, self._phrase)

    def _phrase(self, feature: str, value: float, direction: str) -> str:
        spec = catalogue.get_feature(feature, mart=SEQUENCE_MART)
        if feature in self.categorical_:
            name = self.vocabulary_[int(value)] if not np.isnan(value) else "an unknown event"
            return spec.reason_high.format(value=name)
        if value < 0 and spec.unit == "seconds":  # the -1 sentinel: nothing to measure
            return "the user's first session" if "session" in feature else "no earlier event"
        if value == 0:  # "0% of the user's events are ..." is no reason to say "high"
            direction = "low"
        return catalogue.describe(feature, value, direction, mart=SEQUENCE_MART)


def beats_baselines(evaluation: pl.DataFrame) -> bool:
    """The served model beats every baseline on top-1 AND top-3 accuracy."""
    by_variant = {row["variant"]: row for row in evaluation.iter_rows(named=True)}
    served = by_variant[SERVED]
    return all(
        served[metric] > by_variant[baseline][metric]
        for baseline in BASELINES
        for metric in ("top1_accuracy", "top3_accuracy")
    )
