"""The raw-events quality gate: raw.events -> raw.events_validated / raw.events_quarantine.

Modules: `reasons` (the reason matrix: every code, its meaning and SQL test), `sql` (the one
verdict pass and the inserts), `dialect` (the few warehouse-specific expressions), `rules`
(settings: corrupt-batch threshold, date bounds, revenue range, unknown-event policy),
`tables` (DDL), `run` (the transaction). docs/quality_gate.md explains the design.
"""

from expectations.gate.reasons import REASON_CODES
from expectations.gate.rules import GateRules
from expectations.gate.run import BatchOutcome, GateError, GateResult, run_gate
from expectations.gate.tables import ensure_gate_tables

__all__ = [
    "REASON_CODES",
    "BatchOutcome",
    "GateError",
    "GateResult",
    "GateRules",
    "ensure_gate_tables",
    "run_gate",
]
