"""The PostgreSQL implementation, over ADBC (Arrow in and out through libpq's binary COPY).

Chosen on measured speed (benchmarks/bench_warehouse_io.py, 1M rows, docs/scale.md): reading a
feature frame 8.5 s with ADBC against 17.9 s with psycopg2's CSV COPY and 50 s fetching rows;
writing a score frame 5.4 s against 8.6 s and 79 s. ADBC also has Snowflake and BigQuery
drivers behind the same DB-API, which is the seam for those engines.

Connection settings are the dbt profile's (UBA_PG_HOST, UBA_PG_PORT, UBA_PG_USER,
UBA_PG_PASSWORD, UBA_PG_DATABASE), read once in python_models.config.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from python_models.config import get_settings
from python_models.warehouse.base import (
    ArrowResult,
    Warehouse,
    WarehouseError,
    split_name,
    to_arrow,
)
from python_models.warehouse.sql_text import bind, split_statements


def _ingestable(table: pa.Table) -> pa.Table:
    """Arrow types the PostgreSQL driver writes: plain strings (not large / view), no
    dictionary or null-typed columns."""
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        elif pa.types.is_dictionary(kind):
            kind = pa.string()
        elif pa.types.is_null(kind):
            kind = pa.string()
        elif pa.types.is_large_binary(kind):
            kind = pa.binary()
        elif pa.types.is_timestamp(kind) and kind.tz is not None:
            kind = pa.timestamp(kind.unit)
        fields.append(pa.field(field.name, kind))
    schema = pa.schema(fields)
    return table if schema == table.schema else table.cast(schema)


def _numeric_column(column: pa.ChunkedArray, typmod: int) -> pa.ChunkedArray:
    """PostgreSQL NUMERIC, which the driver hands over as text: DECIMAL(p, s) where the type
    says so, else whole numbers (sum of bigint) as int64 and the rest as float64, the types
    DuckDB gives for the same expressions."""
    text = pa.chunked_array(
        [
            chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
            for chunk in column.chunks
        ],
        pa.string(),
    )
    if typmod >= 4:
        precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
        return pc.cast(text, pa.decimal128(precision, scale))
    valid = pc.drop_null(text)
    if len(valid) == 0 or pc.all(pc.match_substring_regex(valid, r"^-?[0-9]{1,18}$")).as_py():
        return pc.cast(text, pa.int64())
    return pc.cast(text, pa.float64())


def _plain_types(table: pa.Table) -> pa.Table:
    """Results in the Arrow types the other engines give (NUMERIC arrives as text)."""
    for index, field in enumerate(table.schema):
        metadata = field.metadata or {}
        if metadata.get(b"POSTGRESQL:type") == b"numeric":
            typmod = int(metadata.get(b"POSTGRESQL:typmod", b"-1"))
            column = _numeric_column(table.column(index), typmod)
            table = table.set_column(index, field.name, column)
    return table


class _LazyResult(ArrowResult):
    """Fetches the cursor's rows only when asked (DDL and DML return none)."""

    def __init__(self, cursor):
        super().__init__(None)
        self._cursor = cursor

    def fetch_arrow_table(self) -> pa.Table:
        if self._table is None:
            if self._cursor.description is None:
                raise WarehouseError("the statement returned no rows to fetch")
            self._table = _plain_types(self._cursor.fetch_arrow_table())
            self._cursor.close()
        return self._table


class PostgresWarehouse(Warehouse):
    engine = "postgres"
    # 64 bits of each row's md5 (its text form), summed exactly
    row_hash_sum = (
        "cast(coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)"
        " as text)"
    )

    def __init__(self, uri: str, read_only: bool = False):
        import adbc_driver_postgresql.dbapi as adbc

        try:
            self.con = adbc.connect(uri, autocommit=True)
        except Exception as err:  # the driver's errors carry libpq's message
            safe = uri.split("@")[-1]
            raise WarehouseError(f"cannot connect to PostgreSQL at {safe}: {err}") from None
        self.execute("set timezone = 'UTC'")
        if read_only:
            self.execute("set session characteristics as transaction read only")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> ArrowResult:
        """Run a statement, or a script (the driver prepares each statement: one at a time;
        the result is the last one's)."""
        statements = split_statements(bind(sql, params)) or [""]
        for statement in statements[:-1]:
            with self.con.cursor() as cursor:
                cursor.execute(statement)
        cursor = self.con.cursor()
        try:
            cursor.execute(statements[-1])
        except BaseException:
            cursor.close()
            raise
        return _LazyResult(cursor)

    def create_schema(self, schema: str) -> None:
        self.execute(f'create schema if not exists "{schema}"')

    def replace_table(self, qualified: str, frame: Any) -> int:
        """Written under a new name and swapped in, in one transaction (PostgreSQL's DDL is
        transactional): readers see the old table until the commit."""
        schema, table = split_name(qualified)
        data = _ingestable(to_arrow(frame))
        staging = f"{table}__new_{uuid.uuid4().hex[:8]}"
        with self.transaction():
            self.create_schema(schema)
            with self.con.cursor() as cursor:
                cursor.adbc_ingest(staging, data, mode="create", db_schema_name=schema)
            self.execute(f'drop table if exists "{schema}"."{table}"')
            self.execute(f'alter table "{schema}"."{staging}" rename to "{table}"')
        return data.num_rows

    def append_table(self, qualified: str, frame: Any) -> int:
        """Through a temporary table, so columns are matched by name."""
        schema, table = split_name(qualified)
        data = _ingestable(to_arrow(frame))
        temp = f"__uba_append_{uuid.uuid4().hex[:8]}"
        columns = ", ".join(f'"{name}"' for name in data.column_names)
        with self.transaction():
            with self.con.cursor() as cursor:
                cursor.adbc_ingest(temp, data, mode="create", temporary=True)
            self.execute(
                f'insert into "{schema}"."{table}" ({columns}) select {columns} from "{temp}"'
            )
            self.execute(f'drop table "{temp}"')
        return data.num_rows

    def close(self) -> None:
        self.con.close()


def postgres_uri() -> str:
    s = get_settings()
    password = f":{quote(s.pg_password, safe='')}" if s.pg_password else ""
    user, database = quote(s.pg_user, safe=""), quote(s.pg_database, safe="")
    return f"postgresql://{user}{password}@{s.pg_host}:{s.pg_port}/{database}"


def connect_postgres(read_only: bool = False) -> PostgresWarehouse:
    return PostgresWarehouse(postgres_uri(), read_only=read_only)
