"""Great Expectations suites and the raw-events quality gate.

Suites live in `expectations/suites/<table>.py` (each exposes `build_suite()`);
`expectations.validation.validate_frame` runs one on a DataFrame (optionally rendering Data
Docs); `expectations.gate.run_gate` computes every raw row's verdict in SQL, judges each load
batch with the `gate_batches` suites and writes raw.events_validated / raw.events_quarantine.
"""

import sys
import warnings

# Great Expectations imports pyspark when it is installed (the Spark engine's extra; kept out of
# GX's import by expectations/gx_import.py, but a process may have imported it first), and
# pyspark.sql.connect takes a __main__ without __file__ (`python -c`, pytest-xdist workers) for
# its own doctest runner and exits the process with status 0: a gate run would silently stop.
# A placeholder __file__ tells it this is not a doctest run.
_main = sys.modules.get("__main__")
if (
    _main is not None
    and getattr(_main, "__spec__", None) is None
    and not hasattr(_main, "__file__")
):
    _main.__file__ = "<uba>"

# The same import warns on every `uba gate` / `uba refresh` that pyspark does not yet support
# pandas 3: true, and irrelevant to the gate, which never runs on Spark.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
