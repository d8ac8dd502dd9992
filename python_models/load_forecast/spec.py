"""The load forecast, as the house sees it."""

from python_models.common.spec import ModelSpec
from python_models.load_forecast import on_warehouse
from python_models.load_forecast.examples import example
from python_models.load_forecast.hourly import HOURLY_TABLE
from python_models.load_forecast.model import LoadForecaster
from python_models.load_forecast.params import LoadForecastParams

SPEC = ModelSpec(
    name="load_forecast",
    summary="events and active users per UTC hour for the next 7 days, with 80% intervals",
    estimator=LoadForecaster,
    params=LoadForecastParams,
    train=on_warehouse.train,
    score=on_warehouse.score,
    latest_features=on_warehouse.latest_features,
    inputs=(HOURLY_TABLE,),
    score_table="ml_scores.load_forecast",
    label_columns=("lower", "upper", "interval_level"),
    score_bounds=(0.0, None),
    reasons="the hour's calendar effect and the weekly trend, in words",
    kinds=("scikitlearn",),
    example=example,
    feature_mart=None,
    key_columns=("as_of_date", "metric", "hour_ts"),
    column_docs={
        "as_of_date": "The day of the last observed hour: the forecast's origin.",
        "metric": "What is forecast: `count_events` or `count_active_users` per hour.",
        "hour_ts": "The UTC hour forecast.",
        "score": "Point forecast of the metric for the hour.",
        "lower": "Lower end of the prediction interval.",
        "upper": "Upper end of the prediction interval.",
        "interval_level": "Coverage the interval aims at (0.8 = 80%).",
    },
)
