"""Great Expectations, imported once for the package without what the gate never uses.

GX's import pulls in, besides itself, about as much again that the project's validations of
pandas frames never call: pyspark (when installed: the Spark engine's extra) with pyspark.ml
and scipy; SQLAlchemy with its dialects (GX's SQL data sources); scipy.stats and altair (for
one expectation, the KL divergence, and its chart). On every `uba gate` and `uba refresh`
that was about 40% of the import's CPU (2,540 modules against 1,862). So:

- pyspark and SQLAlchemy are kept out of GX's import: GX then behaves as with them not
  installed (it has a fallback for each). Both stay importable for anything else afterwards.
- scipy.stats and altair are deferred: GX's module holds a placeholder that imports the real
  module on first use (never, in this project).

Every module here imports GX through this one.
"""

from __future__ import annotations

import importlib
import sys
import types

KEPT_OUT = ("pyspark", "sqlalchemy")
DEFERRED = ("scipy.stats", "altair")


class _Deferred(types.ModuleType):
    """Stands in for a module during GX's import; the first attribute asked for imports it."""

    def __getattr__(self, attribute: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


_placed = [name for name in (*KEPT_OUT, *DEFERRED) if name not in sys.modules]
for _name in _placed:
    # None: `import pyspark` raises ImportError
    sys.modules[_name] = None if _name in KEPT_OUT else _Deferred(_name)  # type: ignore[assignment]
try:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier
finally:
    for _name in _placed:
        _placeholder = sys.modules.get(_name, False)
        if _placeholder is None or isinstance(_placeholder, _Deferred):
            del sys.modules[_name]

__all__ = ["RunIdentifier", "gx", "gxe"]
