"""Great Expectations, imported once for the package without pulling in pyspark.

GX imports pyspark when it is installed (the project's Spark engine needs it), and pyspark
drags in pyspark.ml and scipy: about two thirds of GX's own import time, on every `uba gate`
and `uba refresh`. The gate only ever hands GX pandas frames, so pyspark is kept out of GX's
import (GX then behaves as with pyspark not installed) and stays importable for the Spark
engine afterwards. Every module here imports GX through this one.
"""

from __future__ import annotations

import sys

_keep_out = "pyspark" not in sys.modules
if _keep_out:
    sys.modules["pyspark"] = None  # type: ignore[assignment]  # `import pyspark` -> ImportError
try:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier
finally:
    if _keep_out and sys.modules.get("pyspark", False) is None:
        del sys.modules["pyspark"]

__all__ = ["RunIdentifier", "gx", "gxe"]
