"""LTV model: tweedie LightGBM vs a historical-average baseline; also from transactions alone."""

from python_models.ltv.model import LtvModel
from python_models.ltv.params import LtvParams
from python_models.ltv.transactions import train_from_transactions

__all__ = ["LtvModel", "LtvParams", "train_from_transactions"]
