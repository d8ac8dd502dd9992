"""Great Expectations suites and the raw-events quality gate.

Suites live in `expectations/suites/<table>.py` (each exposes `build_suite()`);
`expectations.validation.validate_frame` runs one on a DataFrame; `expectations.gate.run_gate`
validates raw.events and writes raw.events_validated / raw.events_quarantine.
"""
