"""LTV model: tweedie LightGBM vs a historical-average baseline; also from transactions alone."""

from python_models.ltv.forecast import evaluate_transactions
from python_models.ltv.model import LtvModel
from python_models.ltv.params import LtvParams

__all__ = ["LtvModel", "LtvParams", "evaluate_transactions"]
