"""Resources: the warehouse (DuckDB file), dbt, and where inputs come from."""

import contextlib
from collections.abc import Iterator

import dagster as dg

from python_models.config import get_settings


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse (UBA_WAREHOUSE): the DuckDB file by default, whose writers run one at a
    time (pool `duckdb_writer`), or a PostgreSQL / Spark warehouse (python_models.warehouse)."""

    duckdb_path: str = ""

    def path(self) -> str:
        return self.duckdb_path or str(get_settings().duckdb_path)

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator:
        from python_models.warehouse import connect

        on_file = get_settings().warehouse == "duckdb"
        con = connect(self.path() if on_file else None, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


# Every asset that writes the DuckDB file runs in this pool; the instance limits it to one slot
# (see orchestration/dagster.yaml), because DuckDB allows one writing process per file.
WRITER_POOL = "duckdb_writer"
