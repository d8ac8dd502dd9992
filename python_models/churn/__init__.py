"""Churn model: LightGBM + calibration vs a recency rule and logistic regression."""

from python_models.churn.model import ChurnModel
from python_models.churn.params import ChurnParams

__all__ = ["ChurnModel", "ChurnParams"]
