"""File loaders: CSV / Parquet / JSON Lines -> raw.events (text) + raw.load_log + drift."""

from python_models.ingest.contract import CONTRACT_COLUMNS
from python_models.ingest.files import IngestError
from python_models.ingest.loaders import LoadResult, ensure_raw_tables, load_path

__all__ = ["CONTRACT_COLUMNS", "IngestError", "LoadResult", "ensure_raw_tables", "load_path"]
