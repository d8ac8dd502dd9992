"""Great Expectations suites and the raw-events quality gate.

Suites live in `expectations/suites/<table>.py` (each exposes `build_suite()`);
`expectations.validation.validate_frame` runs one on a DataFrame (optionally rendering Data
Docs); `expectations.gate.run_gate` computes every raw row's verdict in SQL, judges each load
batch with the `gate_batches` suites and writes raw.events_validated / raw.events_quarantine.
"""
