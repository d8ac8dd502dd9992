"""Seeded sample-data generator with planted ground truth (`uba generate`)."""

from python_models.synthetic.consent_events import ConsentPlan
from python_models.synthetic.experiment_events import ExperimentPlan
from python_models.synthetic.formats import RAW_COLUMNS, write_events
from python_models.synthetic.generator import (
    DEFECT_REASONS,
    FunnelIncident,
    GenerationResult,
    generate,
)
from python_models.synthetic.personas import PERSONA_NAMES

__all__ = [
    "ConsentPlan",
    "DEFECT_REASONS",
    "ExperimentPlan",
    "FunnelIncident",
    "PERSONA_NAMES",
    "RAW_COLUMNS",
    "GenerationResult",
    "generate",
    "write_events",
]
