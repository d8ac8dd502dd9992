"""Behavioral segmentation: k-means with silhouette-chosen k and stable segment ids."""

from python_models.segmentation.model import SegmentationModel, SegmentationParams, fit, score

__all__ = ["SegmentationModel", "SegmentationParams", "fit", "score"]
