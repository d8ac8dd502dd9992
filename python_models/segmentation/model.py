"""Behavioral segments: k-means on log1p + standardized activity features and event-type
shares, k chosen by silhouette, ids kept stable across refreshes by matching centroids to the
previous run's (Hungarian algorithm), each segment named from what sets it apart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np
import polars as pl

from python_models.common.estimator import Estimator
from python_models.segmentation.params import SegmentationParams

if TYPE_CHECKING:  # sklearn costs seconds to import: loaded where it is used
    from sklearn.preprocessing import StandardScaler

INACTIVE_SEGMENT_ID = -1
INACTIVE_SEGMENT_NAME = "inactive (no events in the activity window)"

# Words for what a segment does more of than others (first matching fragment wins).
BEHAVIOUR_WORDS: tuple[tuple[str, str], ...] = (
    ("feature_use", "feature users"),
    ("purchase", "shoppers"),
    ("revenue", "spenders"),
    ("order_value", "big-basket shoppers"),
    ("add_to_cart", "cart builders"),
    ("search", "searchers"),
    ("invite_sent", "team builders"),
    ("support_ticket", "support seekers"),
    ("login", "log-in-and-leave users"),
    ("page_view", "browsers"),
    ("click", "clickers"),
    ("distinct_features", "feature explorers"),
    ("session_duration", "long-session users"),
    ("tenure", "long-time users"),
)


def is_share(feature: str) -> bool:
    return feature.startswith("share_")


def transform_raw(frame: pl.DataFrame, features: list[str], fill: dict[str, float]) -> np.ndarray:
    """log1p of counts/amounts/durations (clipped at 0), shares as they are; nulls filled."""
    exprs = []
    for feature in features:
        column = pl.col(feature).cast(pl.Float64).fill_nan(None).fill_null(fill.get(feature, 0.0))
        if not is_share(feature):
            column = column.clip(lower_bound=0.0).log1p()
        exprs.append(column.alias(feature))
    return frame.select(exprs).to_numpy()


def null_fill_values(frame: pl.DataFrame, features: list[str]) -> dict[str, float]:
    """ "days since" features are null when the thing never happened: treat as the longest gap."""
    fill = {}
    for feature in features:
        if feature.startswith("days_since"):
            fill[feature] = float(frame[feature].cast(pl.Float64).max() or 0.0)
        else:
            fill[feature] = 0.0
    return fill


def active_mask(frame: pl.DataFrame, activity_feature: str) -> np.ndarray:
    if activity_feature not in frame.columns:
        raise LookupError(f"segmentation needs the activity column {activity_feature!r}")
    return (frame[activity_feature].cast(pl.Float64).fill_null(0.0) > 0).to_numpy()


def choose_k(embedded: np.ndarray, params: SegmentationParams) -> dict[int, float]:
    """Silhouette per k on a seeded sample (silhouette is quadratic in rows)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(params.seed)
    sample = embedded
    if len(embedded) > params.silhouette_sample:
        sample = embedded[rng.choice(len(embedded), params.silhouette_sample, replace=False)]
    scores = {}
    for k in range(params.k_min, min(params.k_max, len(sample) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=params.n_init, random_state=params.seed).fit_predict(
            sample
        )
        scores[k] = float(silhouette_score(sample, labels, random_state=params.seed))
    if not scores:
        raise ValueError(f"too few active users ({len(embedded)}) to segment")
    return scores


def match_ids(
    new_centroids_raw: np.ndarray,
    previous_raw: np.ndarray | None,
    previous_ids: list[int] | None,
    scaler: StandardScaler,
) -> list[int]:
    """Segment id per new centroid: the id of the previous centroid it matches (Hungarian on
    distances in today's standardized space); unmatched new centroids get fresh ids."""
    from scipy.optimize import linear_sum_assignment

    k = len(new_centroids_raw)
    if previous_raw is None or previous_ids is None or len(previous_raw) == 0:
        return list(range(k))
    if previous_raw.shape[1] != new_centroids_raw.shape[1]:
        return list(range(k))  # feature list changed: ids cannot carry over
    new = scaler.transform(new_centroids_raw)
    old = scaler.transform(previous_raw)
    cost = np.linalg.norm(new[:, None, :] - old[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    ids = [-1] * k
    for r, c in zip(rows, cols, strict=True):
        ids[r] = int(previous_ids[c])
    next_id = max(previous_ids) + 1
    for i in range(k):
        if ids[i] == -1:
            ids[i] = next_id
            next_id += 1
    return ids


def name_segments(profile: np.ndarray, features: list[str]) -> list[str]:
    """Readable names from each segment's most distinguishing features (z of its mean)."""
    names = []
    for row in profile:
        behaviour = "mixed users"
        for index in np.argsort(-row):
            if row[index] <= 0.25:
                break
            word = next((w for frag, w in BEHAVIOUR_WORDS if frag in features[index]), None)
            if word:
                behaviour = word
                break
        activity = [i for i, f in enumerate(features) if f.startswith("count_events")]
        intensity = float(np.mean(row[activity])) if activity else 0.0
        recency = [i for i, f in enumerate(features) if f == "days_since_last_event"]
        prefix = ""
        if recency and row[recency[0]] > 1.0:
            prefix = "lapsing "
        elif intensity > 0.5:
            prefix = "heavy "
        elif intensity < -0.5:
            prefix = "light "
        names.append(prefix + behaviour)
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


class SegmentationModel(Estimator):
    """k-means segments of active users. `fit(frame, previous=champion)` keeps the previous
    model's segment ids for matching centroids; `predict` gives each row's segment id (-1 for
    users inactive in the activity window)."""

    params_class = SegmentationParams
    params: SegmentationParams

    def fit(
        self,
        frame: pl.DataFrame,
        validation: pl.DataFrame | None = None,
        previous: SegmentationModel | None = None,
    ) -> Self:
        """`validation` is unused (unsupervised; k is chosen by silhouette on `frame`)."""
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import StandardScaler

        params, features = self.params, self.features
        active = frame.filter(pl.Series(active_mask(frame, params.activity_feature)))
        if active.height < params.k_max * 5:
            raise ValueError(f"only {active.height} active users: too few to segment")
        fill = null_fill_values(active, features)
        raw = transform_raw(active, features, fill)
        scaler = StandardScaler().fit(raw)
        weights = np.array([params.share_weight if is_share(f) else 1.0 for f in features])
        embedded = scaler.transform(raw) * weights
        silhouettes = choose_k(embedded, params)
        k = max(silhouettes, key=lambda key: (silhouettes[key], -key))
        kmeans = KMeans(n_clusters=k, n_init=params.n_init, random_state=params.seed).fit(embedded)
        centroids_raw = scaler.inverse_transform(kmeans.cluster_centers_ / weights)
        ids = match_ids(
            centroids_raw,
            previous.centroids_raw() if previous is not None else None,
            previous.segment_ids_ if previous is not None else None,
            scaler,
        )
        order = np.argsort(ids)  # store segments in id order
        ids = [ids[i] for i in order]
        labels = np.asarray(ids)[np.argsort(order)][kmeans.labels_]
        standardized = scaler.transform(raw)
        profile = np.vstack([standardized[labels == sid].mean(axis=0) for sid in ids])
        self.fill_ = fill
        self.scaler_ = scaler
        self.weights_ = weights
        # In the weighted standardized space, rows in segment-id order.
        self.centroids_ = kmeans.cluster_centers_[order]
        self.segment_ids_ = ids
        self.segment_names_ = name_segments(profile, features)
        # segments x features: standardized mean (z) of each feature
        self.profile_ = profile
        self.silhouette_by_k_ = silhouettes
        return self

    def embed(self, frame: pl.DataFrame) -> np.ndarray:
        self.check_fitted()
        raw = transform_raw(frame, self.features, self.fill_)
        return self.scaler_.transform(raw) * self.weights_

    def centroids_raw(self) -> np.ndarray:
        """Centroids in the log1p space (independent of this run's scaler), for matching."""
        return self.scaler_.inverse_transform(self.centroids_ / self.weights_)

    def assign(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(segment id, distance to its centroid) for each row; inactive rows get -1."""
        embedded = self.embed(frame)
        distances = np.linalg.norm(embedded[:, None, :] - self.centroids_[None, :, :], axis=2)
        nearest = distances.argmin(axis=1)
        ids = np.asarray(self.segment_ids_)[nearest]
        distance = distances[np.arange(len(nearest)), nearest]
        active = active_mask(frame, self.params.activity_feature)
        ids = np.where(active, ids, INACTIVE_SEGMENT_ID)
        return ids, np.where(active, distance, 0.0)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Segment id per row (-1: inactive)."""
        return self.assign(frame)[0]

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Silhouette per candidate k, plus the chosen k's count of active users."""
        ids = self.predict(frame)
        chosen = len(self.segment_ids_)
        return pl.DataFrame(
            [
                {
                    "variant": f"kmeans_k{k}",
                    "split": "silhouette_sample",
                    "silhouette": score,
                    "k": float(k),
                    "chosen": float(k == chosen),
                    "active_users": float((ids != INACTIVE_SEGMENT_ID).sum()),
                }
                for k, score in sorted(self.silhouette_by_k_.items())
            ]
        )

    def segment_names(self) -> dict[int, str]:
        """Segment id -> name, the inactive segment included."""
        names = dict(zip(self.segment_ids_, self.segment_names_, strict=True))
        names[INACTIVE_SEGMENT_ID] = INACTIVE_SEGMENT_NAME
        return names

    def segment_sizes(self, frame: pl.DataFrame) -> pl.DataFrame:
        return (
            pl.DataFrame({"segment_id": self.predict(frame)})
            .group_by("segment_id")
            .len("users")
            .with_columns(
                pl.col("segment_id").replace_strict(self.segment_names()).alias("segment_name")
            )
            .sort("segment_id")
        )

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Distance to the segment's centroid (score), segment id and name, and the segment's
        top distinguishing features as reasons."""
        ids, distance = self.assign(frame)
        names = self.segment_names()
        reason_by_id = {INACTIVE_SEGMENT_ID: "no events in the activity window"}
        for sid, row in zip(self.segment_ids_, self.profile_, strict=True):
            top = np.argsort(-np.abs(row))[:3]
            reason_by_id[sid] = "; ".join(
                f"{'more' if row[i] > 0 else 'less'} {self.features[i].replace('_', ' ')} than "
                f"average (z={row[i]:+.1f})"
                for i in top
            )
        return frame.select("user_id", "as_of_date").with_columns(
            pl.Series("score", distance, dtype=pl.Float64),
            pl.Series("segment_id", ids, dtype=pl.Int64),
            pl.Series("segment_name", [names[i] for i in ids], dtype=pl.String),
            pl.Series("reasons", [reason_by_id[i] for i in ids], dtype=pl.String),
        )
