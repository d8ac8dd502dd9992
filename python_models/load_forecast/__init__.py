"""Load forecast: hourly events and active users for the next days, with daily and weekly
seasonality and prediction intervals (ridge on calendar terms vs seasonal-naive)."""

from python_models.load_forecast.model import LoadForecaster
from python_models.load_forecast.params import LoadForecastParams

__all__ = ["LoadForecaster", "LoadForecastParams"]
