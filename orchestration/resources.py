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
        """A connection; a writer's on the DuckDB file skips the vacuum as `uba refresh`'s
        connections do, while the file's deleted-but-stored rows are few (duckdb_engine's
        daily_duckdb_settings): else the first asset to close after a day's dbt build
        rewrites the row groups the build's deletes left, and the next day's load those of
        the earlier days."""
        from python_models.warehouse import connect
        from python_models.warehouse.duckdb_engine import daily_duckdb_settings, skip_vacuum_as

        on_file = get_settings().warehouse == "duckdb"
        con = connect(self.path() if on_file else None, read_only=read_only)
        try:
            if on_file and not read_only:
                skip_vacuum_as(con, daily_duckdb_settings(con))
            yield con
        finally:
            con.close()


# Every asset that writes the DuckDB file runs in this pool; the instance limits it to one slot
# (see orchestration/dagster.yaml), because DuckDB allows one writing process per file.
WRITER_POOL = "duckdb_writer"
