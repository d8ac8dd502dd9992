"""File loaders: CSV / Parquet / JSON Lines -> raw.events (text) + raw.load_log."""

from python_models.ingest.loaders import (
    CONTRACT_COLUMNS,
    IngestError,
    LoadResult,
    ensure_raw_tables,
    load_path,
)

__all__ = ["CONTRACT_COLUMNS", "IngestError", "LoadResult", "ensure_raw_tables", "load_path"]
