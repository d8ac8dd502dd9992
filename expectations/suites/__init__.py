"""One module per guarded table, each exposing `build_suite() -> gx.ExpectationSuite`."""

from expectations.validation import gx_context

# Suites are built with ExpectationSuite.add_expectation, which GX 1.x only allows once a data
# context is active: make sure one is, whatever module builds a suite first.
gx_context()
