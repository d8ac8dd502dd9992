"""The segmentation model, as the house sees it."""

from python_models.common.features import FEATURES_TABLE, latest_snapshot_features
from python_models.common.spec import ModelSpec
from python_models.segmentation import on_warehouse
from python_models.segmentation.examples import example
from python_models.segmentation.model import SegmentationModel
from python_models.segmentation.params import SegmentationParams

SPEC = ModelSpec(
    name="segmentation",
    summary="behavioral segment of the user (k-means, ids stable across refreshes)",
    estimator=SegmentationModel,
    params=SegmentationParams,
    train=on_warehouse.train,
    score=on_warehouse.score,
    latest_features=latest_snapshot_features,
    inputs=(FEATURES_TABLE,),
    score_table="ml_scores.user_segments",
    label_columns=("segment_id", "segment_name"),
    score_bounds=(None, None),
    reasons="the segment's three most distinguishing features (z-scores)",
    kinds=("scikitlearn",),
    example=example,
    rowwise_scoring=True,
    column_docs={
        "score": "Distance to the segment's centroid in standardized feature space (lower = "
        "more typical of the segment).",
        "segment_id": "Segment id, stable across refreshes; -1 for users inactive for 90 days.",
        "segment_name": "Segment name in words (from its most distinguishing features).",
    },
)
