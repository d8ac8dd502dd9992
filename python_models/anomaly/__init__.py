"""Account-anomaly detection per user-day: IsolationForest + deviation from the user's baseline."""

from python_models.anomaly.daily import user_day_activity
from python_models.anomaly.model import AnomalyModel
from python_models.anomaly.params import AnomalyParams

__all__ = ["AnomalyModel", "AnomalyParams", "user_day_activity"]
