"""Behavioral segmentation: k-means with silhouette-chosen k and stable segment ids."""

from python_models.segmentation.model import SegmentationModel
from python_models.segmentation.params import SegmentationParams

__all__ = ["SegmentationModel", "SegmentationParams"]
