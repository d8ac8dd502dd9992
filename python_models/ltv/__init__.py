"""LTV model: buy-till-you-die forecasts (BG/NBD + Gamma-Gamma and a learned candidate) from
purchase events or a transactions file."""

from python_models.ltv.forecast import evaluate_transactions, forecast_transactions
from python_models.ltv.model import LtvForecaster
from python_models.ltv.params import LtvParams

__all__ = ["LtvForecaster", "LtvParams", "evaluate_transactions", "forecast_transactions"]
