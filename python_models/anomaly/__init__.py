"""Account-anomaly detection per user-day: IsolationForest + deviation from the user's baseline."""

from python_models.anomaly.daily import user_day_activity
from python_models.anomaly.model import AnomalyModel, AnomalyParams, fit, score

__all__ = ["AnomalyModel", "AnomalyParams", "fit", "score", "user_day_activity"]
