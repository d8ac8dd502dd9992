"""Helpers shared by the asset modules: images in metadata, check outcomes as check results."""

import base64
from pathlib import Path

import dagster as dg

# Images above this size are linked by path only, so the run storage stays small.
MAX_INLINE_IMAGE_BYTES = 400_000


def image(path: Path) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI (markdown with a data URI), or its path if large."""
    data = path.read_bytes()
    if len(data) > MAX_INLINE_IMAGE_BYTES:
        return dg.MetadataValue.path(str(path))
    encoded = base64.b64encode(data).decode("ascii")
    return dg.MetadataValue.md(f"![{path.name}](data:image/png;base64,{encoded})\n\n`{path}`")


def check_result(outcome) -> dg.AssetCheckResult:
    """A python_models.quality.CheckOutcome as a check result of error severity."""
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata=outcome.metadata,
    )
