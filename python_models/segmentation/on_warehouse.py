"""Segmentation on the warehouse: fit on the latest snapshot, keep ids stable, assign users."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from python_models.common import plots, registry
from python_models.common.artifacts import ArtifactIntegrityError
from python_models.common.features import catalogue_feature_columns, load_snapshot
from python_models.common.training import TrainingResult, reference_sample
from python_models.segmentation.model import INACTIVE_SEGMENT_ID, SegmentationModel
from python_models.segmentation.params import SegmentationParams
from python_models.warehouse import Warehouse


def _previous_model(con: Warehouse) -> SegmentationModel | None:
    champion = registry.get_champion(con, "segmentation")
    if champion is None:
        return None
    try:
        return champion.load()["model"]
    except ArtifactIntegrityError as err:
        print(f"[segmentation] previous centroids unusable ({err}); new ids", file=sys.stderr)
        return None


def _columns(features: list[str], params: SegmentationParams) -> list[str]:
    return features + ([params.activity_feature] if params.activity_feature not in features else [])


def train(con: Warehouse, overrides: dict[str, Any] | None) -> TrainingResult:
    params = SegmentationParams.from_overrides(overrides)
    features = catalogue_feature_columns("segmentation")
    snapshot = load_snapshot(con, _columns(features, params))
    as_of = snapshot["as_of_date"].max()
    print(f"[segmentation] {snapshot.height} users in snapshot {as_of}", file=sys.stderr)
    model = SegmentationModel(features, params).fit(snapshot, previous=_previous_model(con))
    evaluation = model.evaluate(snapshot)
    sizes = model.segment_sizes(snapshot)
    listed = "; ".join(
        f"{row['segment_id']} {row['segment_name']} ({row['users']:,} users)"
        for row in sizes.iter_rows(named=True)
    )
    print(f"[segmentation] segments: {listed}", file=sys.stderr)
    chosen_k = len(model.segment_ids_)
    silhouette = model.silhouette_by_k_[chosen_k]
    ids, distance = model.assign(snapshot)
    active = snapshot.filter(pl.Series(ids != INACTIVE_SEGMENT_ID))

    def render(folder: Path) -> dict[str, Path]:
        labels = [
            f"{i}: {n}" for i, n in zip(model.segment_ids_, model.segment_names_, strict=True)
        ]
        return {
            "segment_profiles": plots.segment_profile_plot(
                model.profile_, labels, features, folder / "segment_profiles.png"
            )
        }

    return TrainingResult(
        model_name="segmentation",
        model=model,
        features=features,
        params=params.as_dict(),
        data_window=(as_of, as_of),
        evaluation=evaluation,
        metrics={
            "k": chosen_k,
            "silhouette": silhouette,
            "active_users": active.height,
            "segments": dict(zip(model.segment_ids_, model.segment_names_, strict=True)),
            "segment_sizes": dict(zip(sizes["segment_id"], sizes["users"], strict=True)),
        },
        passes_gate=silhouette >= params.min_silhouette,
        gate_reason=f"silhouette {silhouette:.3f} at k={chosen_k} (bar {params.min_silhouette})",
        data_fingerprint={"rows": snapshot.height, "as_of": str(as_of)},
        reference_features=reference_sample(active, features, params.seed),
        reference_scores=np.asarray(distance[ids != INACTIVE_SEGMENT_ID]),
        render_plots=render,
    )


def score(con: Warehouse, bundle: dict[str, Any]) -> pl.DataFrame:
    model: SegmentationModel = bundle["model"]
    return model.predict_frame(load_snapshot(con, _columns(model.features, model.params)))
