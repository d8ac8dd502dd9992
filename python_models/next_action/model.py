"""Next action: which event comes next in the user's session ('session_end' when none)?

LightGBM multiclass on the sequence features (last events and gaps, the session so far, the
user's event mix so far), against two baselines fitted on the same training rows: the most
frequent next event, and a first-order Markov chain P(next | current event) counted from the
transition mart. Served only when it beats both on top-1 AND top-3 accuracy on the holdout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import polars as pl

from python_models.common import catalogue
from python_models.common.booster import BoostedEstimator, StoredBooster
from python_models.common.reasons import column_medians, reasons_text, top_contributions
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

    def predict_proba(self, current: list[str] | pl.Series) -> np.ndarray:
        """One row of the table per current event (a gather, not a loop over rows)."""
        names = list(self.table)
        rows = np.vstack([*(self.table[name] for name in names), self.prior])
        codes = {name: i for i, name in enumerate(names)}
        index = pl.Series(current, dtype=pl.String).replace_strict(
            codes, default=len(names), return_dtype=pl.Int64
        )
        return rows[index.to_numpy()]


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
        y_fit, y_valid = self.class_index(frame), self.class_index(validation)
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
        codes = self._codes()
        columns = []
        for feature in self.features:
            if feature in self.categorical_:
                expr = pl.col(feature).replace_strict(codes, default=None, return_dtype=pl.Float64)
            else:
                expr = pl.col(feature).cast(pl.Float64)
            columns.append(expr.alias(feature))
        return frame.select(columns).to_numpy()

    def row_matrix(self, row: Mapping[str, Any]) -> np.ndarray:
        """`matrix` of one row given as {column: value} (the scoring service's scored event),
        without building a frame: same codes, None as NaN."""
        codes = self._codes()
        values = [
            codes.get(row[f], np.nan)
            if f in self.categorical_
            else (np.nan if row[f] is None else float(row[f]))
            for f in self.features
        ]
        return np.array([values], dtype=np.float64)

    def _codes(self) -> dict[str, float]:
        return {name: float(i) for i, name in enumerate(self.vocabulary_)}

    def class_index(self, frame: pl.DataFrame) -> np.ndarray:
        """Each row's label as its class index (-1: a label never seen in training)."""
        index = {name: i for i, name in enumerate(self.classes_)}
        codes = frame["label"].replace_strict(index, default=-1, return_dtype=pl.Int64)
        return codes.to_numpy()

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
            "markov_chain": self.markov_.predict_proba(frame["event_name"]),
            "lightgbm": self.predict_proba(frame),
        }

    def evaluate(
        self, frame: pl.DataFrame, probabilities: dict[str, np.ndarray] | None = None
    ) -> pl.DataFrame:
        """One row per variant: top-1 and top-3 accuracy and log loss on labelled rows
        (`probabilities`: this frame's variant_proba, when the caller already has it)."""
        truth = self.class_index(frame)
        rows = []
        for variant, proba in (probabilities or self.variant_proba(frame)).items():
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
        order, top = self._top_actions(matrix)
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

    def predict_row(self, row: Mapping[str, Any], with_reasons: bool = True) -> dict[str, Any]:
        """`predict_frame`'s row for one user's newest event given as {column: value} (the
        scoring service's; ~1 ms where the frame route takes ~3)."""
        self.check_fitted()
        matrix = self.row_matrix(row)
        order, top = self._top_actions(matrix)
        out = {"user_id": row["user_id"], "as_of_date": row["event_date"], "score": top[0, 0]}
        for rank in range(TOP_K):
            out[f"next_action_{rank + 1}"] = self.classes_[order[0, rank]]
            out[f"probability_{rank + 1}"] = top[0, rank]
        if with_reasons:
            (out["reasons"],) = self.reasons(matrix, order[:, 0])
        return {k: v.item() if isinstance(v, np.generic) else v for k, v in out.items()}

    def _top_actions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the TOP_K most probable classes' indices, and their probabilities."""
        proba = self._proba(matrix)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :TOP_K]
        return order, np.take_along_axis(proba, order, axis=1)

    def reasons(self, matrix: np.ndarray, predicted: np.ndarray, k: int = 3) -> list[str]:
        """The k features that push each row's predicted action up most (TreeSHAP of that
        class), in the catalogue's words. The contributions come from that class's trees
        alone (`class_booster`): pred_contrib of the whole multiclass model would compute
        every class's, 20x the work for the one used; per path pattern (common/reasons.py)."""
        indices = np.full((len(matrix), k), -1, dtype=np.int64)
        for label in np.unique(predicted):
            rows = np.flatnonzero(predicted == label)
            indices[rows], _ = top_contributions(
                self.class_booster(int(label)),
                matrix[rows],
                k,
                chunk_size=self.params.reason_chunk_size,
                # Explicit and small: OpenMP threads collapse on shared cores.
                num_threads=self.params.num_threads,
            )
        return reasons_text(indices, matrix, self.features, self.feature_medians_, self._phrase)

    def class_booster(self, label: int):
        """A booster of class `label`'s trees only (rebuilt once per process): its raw score
        and TreeSHAP contributions are that class's in the multiclass model, exactly."""
        import lightgbm as lgb

        cache = self.__dict__.setdefault("_class_boosters", {})
        if label not in cache:
            text = one_class_model(self.booster_.text, label, len(self.classes_))
            cache[label] = lgb.Booster(model_str=text)
        return cache[label]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_class_boosters", None)  # rebuilt from the stored model text
        return state

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


def one_class_model(text: str, label: int, n_classes: int) -> str:
    """LightGBM model text of one class of a multiclass model: its trees (every n_classes-th,
    from `label`) renumbered, declared as one tree per iteration. The tree_sizes index is
    dropped (LightGBM then reads the trees one after another)."""
    head, rest = text.split("\nTree=0\n", 1)
    trees, tail = rest.split("\nend of trees\n", 1)
    blocks = [b.strip("\n") for b in f"Tree=0\n{trees}".split("\n\n\n") if b.strip()]
    if len(blocks) % n_classes:
        raise ValueError(f"{len(blocks)} trees are not whole iterations of {n_classes} classes")
    one = {
        "num_class": "num_class=1",
        "num_tree_per_iteration": "num_tree_per_iteration=1",
        "objective": "objective=regression",  # raw scores: contributions need no link
    }
    lines = [
        one.get(line.split("=", 1)[0], line)
        for line in head.split("\n")
        if not line.startswith("tree_sizes=")
    ]
    mine = [
        re.sub(r"^Tree=\d+", f"Tree={number}", block)
        for number, block in enumerate(blocks[label::n_classes])
    ]
    return "\n".join(lines) + "\n" + "\n\n\n".join(mine) + "\n\n\nend of trees\n" + tail


def beats_baselines(evaluation: pl.DataFrame) -> bool:
    """The served model beats every baseline on top-1 AND top-3 accuracy."""
    by_variant = {row["variant"]: row for row in evaluation.iter_rows(named=True)}
    served = by_variant[SERVED]
    return all(
        served[metric] > by_variant[baseline][metric]
        for baseline in BASELINES
        for metric in ("top1_accuracy", "top3_accuracy")
    )
