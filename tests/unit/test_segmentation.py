"""Segmentation on tiny seeded frames (python_models/segmentation/examples.py)."""

from __future__ import annotations

import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from python_models.segmentation.examples import example
from python_models.segmentation.model import (
    INACTIVE_SEGMENT_ID,
    INACTIVE_SEGMENT_NAME,
    SegmentationModel,
)
from python_models.segmentation.params import SegmentationParams


def _fit(seed=0, previous=None, **overrides):
    data = example(seed)
    params = SegmentationParams.from_overrides({**data.params, **overrides})
    return SegmentationModel(data.features, params).fit(data.frame, previous=previous), data.frame


def test_segments_recover_planted_personas():
    model, frame = _fit()
    ids = model.predict(frame)
    active = ids != INACTIVE_SEGMENT_ID
    truth = frame["truth_persona"].to_numpy()[active]
    assert adjusted_rand_score(truth, ids[active]) > 0.8
    assert len(model.segment_ids_) == 3  # three planted mixes, k chosen by silhouette


def test_segment_ids_stay_stable_across_refits():
    first, frame = _fit(seed=0)
    second, later = _fit(seed=1, previous=first)

    def id_of_persona(model, data):
        frame = data.with_columns(pl.Series("segment_id", model.predict(data)))
        majority = (
            frame.filter(pl.col("segment_id") >= 0)
            .group_by("truth_persona")
            .agg(pl.col("segment_id").mode().first())
        )
        return dict(zip(majority["truth_persona"], majority["segment_id"], strict=True))

    assert id_of_persona(first, frame) == id_of_persona(second, later)


def test_inactive_users_get_their_own_segment():
    model, frame = _fit()
    out = model.predict_frame(frame)
    inactive = out.filter(pl.col("segment_id") == INACTIVE_SEGMENT_ID)
    assert inactive.height == (frame["count_events_90d"] == 0).sum() > 0
    assert (inactive["segment_name"] == INACTIVE_SEGMENT_NAME).all()
    assert (inactive["score"] == 0).all()
    active = out.filter(pl.col("segment_id") >= 0)
    assert active["reasons"].str.contains("than average").all()


def test_too_few_active_users_is_a_clear_error():
    data = example(0)
    with pytest.raises(ValueError, match="too few to segment"):
        SegmentationModel(data.features).fit(data.frame.head(20))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"k_min": 5, "k_max": 3}, "k_min <= k_max"),
        ({"share_weight": 0}, "share_weight"),
        ({"activity_feature": None}, "activity_feature must be str"),
    ],
)
def test_bad_segmentation_parameters_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        SegmentationParams.from_overrides(overrides)
