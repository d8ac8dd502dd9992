"""The libraries the models train and score with, imported in a thread while the process only
waits on dbt (`uba refresh`, Dagster's dbt assets, the bench's first build).

The models import them on first use, inside their functions, so that a command which never
fits or scores a model does not pay for them; a process that builds with dbt and then trains
or scores pays them in its first model instead (~1.5 s: LightGBM with scikit-learn, SciPy and
pandas 0.9 s, the fairness report's statsmodels 0.3 s, matplotlib for the training plots 0.3
s), while dbt's process does the work and this one waits. A warm-up only: an import that fails
here is left to the step that needs it, which reports it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class ModelLibraries:
    """Imports the model libraries in a thread of its own, then loads each of `champions`
    (registry.champions(), read before dbt takes the warehouse) once, its sha256 checked
    first: the libraries its bundle unpickles. `join()` before the first model, so no module
    is imported by two threads at once."""

    def __init__(self, champions: Sequence = (), trains: bool = True):
        """`trains`: the process goes on to train, so what only training imports too (the
        fairness report's statsmodels, matplotlib for the plots); scoring imports neither."""
        self.trains = trains
        self._thread = threading.Thread(
            target=self._run,
            args=(list(champions), trains),
            name="uba-model-libraries",
            daemon=True,
        )
        self._thread.start()

    @staticmethod
    def _run(champions: list, trains: bool) -> None:
        try:
            # what training and scoring import past python_models.lifecycle (measured: the
            # packages new in sys.modules after training every model on the 1M bench's warehouse)
            import lightgbm  # noqa: F401
            import sklearn.cluster  # noqa: F401
            import sklearn.ensemble  # noqa: F401
            import sklearn.linear_model  # noqa: F401

            import python_models.lifecycle  # noqa: F401

            if trains:
                import python_models.impact.fairness  # noqa: F401
                from python_models.common.plots import pyplot

                pyplot()
            for champion in champions:
                champion.load()
        except Exception:  # the step that needs it imports (or loads) again and reports
            pass

    def join(self) -> None:
        self._thread.join()
