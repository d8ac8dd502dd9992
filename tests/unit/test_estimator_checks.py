"""Every model in python_models.models passes the same checks (fit returns self, predictions,
score-table shape, determinism, pickling, parameter validation), on tiny frames."""

from __future__ import annotations

import pytest

from python_models.common.estimator_checks import CHECKS
from python_models.models import MODELS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("spec", MODELS, ids=lambda spec: spec.name)
def test_model_passes_shared_check(spec, check):
    check(spec)
