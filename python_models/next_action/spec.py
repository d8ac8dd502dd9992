"""The next-action model, as the house sees it."""

from python_models.common.spec import ModelSpec
from python_models.next_action import on_warehouse
from python_models.next_action.examples import example
from python_models.next_action.model import ACTION_COLUMNS, NextActionModel
from python_models.next_action.params import NextActionParams
from python_models.next_action.sequences import (
    EVENTS_TABLE,
    NEWEST_ROWS_TABLE,
    SEQUENCE_MART,
    SEQUENCE_TABLE,
    TRANSITIONS_TABLE,
)

SPEC = ModelSpec(
    name="next_action",
    summary="the user's 3 most likely next events in the session, with probabilities",
    estimator=NextActionModel,
    params=NextActionParams,
    train=on_warehouse.train,
    score=on_warehouse.score,
    latest_features=on_warehouse.latest_features,
    inputs=(SEQUENCE_TABLE, NEWEST_ROWS_TABLE, TRANSITIONS_TABLE, EVENTS_TABLE),
    score_table="ml_scores.next_action_scores",
    label_columns=ACTION_COLUMNS,
    score_bounds=(0.0, 1.0),
    reasons="top-3 LightGBM contributions (TreeSHAP) to the first action, in the catalogue's words",
    kinds=("lightgbm",),
    example=example,
    feature_mart=SEQUENCE_MART,
    # Each user's newest event row, scored on its own: a refresh rescores the users whose
    # newest row changed (keyed by the mart's grain, user_id + event_id), read from the table
    # dbt keeps of them.
    rowwise_scoring=True,
    scored_rows=NEWEST_ROWS_TABLE,
    # Its one-thread boosting is the longest single-thread training (a 1M first build: 6.6 s,
    # the other four 1-2 s each; docs/performance.md, "Models sized to the machine").
    training_weight=3.0,
    column_docs={
        "as_of_date": "The day of the user's newest event: the session the prediction is for.",
        "score": "Probability of the most likely next event (= probability_1).",
        **{
            f"next_action_{rank}": f"The {nth} most likely next event of the session (an event "
            "name, or `session_end`)."
            for rank, nth in ((1, "1st"), (2, "2nd"), (3, "3rd"))
        },
        **{f"probability_{rank}": f"Probability of next_action_{rank}." for rank in (1, 2, 3)},
    },
)
