"""Where the Data Docs site and the validation results behind it live (no GX import, so the
dashboard can list the runs cheaply)."""

from __future__ import annotations

from pathlib import Path


def results_dir(docs_dir: str | Path) -> Path:
    """The validation results behind a Data Docs site: a folder beside it (`<site>_results`),
    so serving the site does not serve the raw results."""
    docs_dir = Path(docs_dir).resolve()
    return docs_dir.with_name(docs_dir.name + "_results")
