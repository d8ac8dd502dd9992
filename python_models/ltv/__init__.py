"""LTV model: tweedie LightGBM vs a historical-average baseline; also from transactions alone."""

from python_models.ltv.model import LtvModel, evaluate, fit, score
from python_models.ltv.params import LtvParams
from python_models.ltv.transactions import train_from_transactions

__all__ = ["LtvModel", "LtvParams", "evaluate", "fit", "score", "train_from_transactions"]
