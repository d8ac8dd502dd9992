"""Great Expectations and the gate's batch suite, imported in a thread once per process.

The gate needs them only for its batch suite, after its SQL pass, and their import is 1.5-2.5 s
of CPU (most of a small day's gate). Started early, it runs while DuckDB works (DuckDB releases
the GIL): run_gate starts it as it begins; `uba refresh` as soon as its load finds a new file
(a new file always means a gate), so the import overlaps the load as well. This module imports
nothing of the project's, so starting the thread costs the caller nothing.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _import_suites() -> None:
    from expectations.suites import gate_batches  # noqa: F401


def start_suites_import() -> threading.Thread:
    """The thread importing GX and the gate's suites, started on the first call. Join it before
    using them: an import that failed there raises again when imported after it."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_import_suites, name="gate-gx-import", daemon=True)
            _thread.start()
        return _thread
