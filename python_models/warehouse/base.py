"""The one interface every Python step reads the warehouse through, whatever the engine.

A `Warehouse` runs SQL with `?` placeholders and returns results with DuckDB's fetch methods
(`.pl()`, `.df()`, `.fetch_arrow_table()`, `.fetchone()`, `.fetchall()`), and moves whole
frames in and out as Arrow: `replace_table` (atomic where the engine allows),
`append_table`, `table_exists`, `table_columns`, `transaction()`. Implementations:
`duckdb_engine.DuckDBWarehouse`, `postgres.PostgresWarehouse`, `spark.SparkWarehouse`.
A new engine (Snowflake, BigQuery) is one subclass: its connection, how it moves Arrow
(both have ADBC drivers), and the few statements below that differ.

SQL written against this interface stays in the common subset of the engines (CTEs, CASE,
window functions, `count(*) filter (where ...)`; not `group by all` or `using sample`), and
spells column types through `types`.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: `uba load` and `uba gate` need neither (~1 s at load)
    import polars as pl
    import pyarrow as pa

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class WarehouseError(RuntimeError):
    """A warehouse cannot be reached or does not support what was asked; says which."""


def split_name(qualified: str) -> tuple[str, str]:
    """'schema.table' -> (schema, table), refusing anything that is not a plain identifier."""
    parts = qualified.split(".")
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"expected 'schema.table' with plain identifiers, got {qualified!r}")
    return parts[0], parts[1]


def to_arrow(frame: Any) -> pa.Table:
    """An Arrow table from a polars / pandas frame or an Arrow table."""
    import polars as pl
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.to_arrow()
    if hasattr(frame, "to_arrow"):
        return frame.to_arrow()
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (TypeError, pa.ArrowException) as err:
        raise TypeError(f"cannot write a {type(frame).__name__} as a table: {err}") from None


class ArrowResult:
    """A fetched result with DuckDB's fetch methods (engines that return Arrow or rows)."""

    def __init__(self, table: pa.Table | None):
        self._table = table
        self._rows: list[tuple] | None = None
        self._next = 0

    def fetch_arrow_table(self) -> pa.Table:
        if self._table is None:
            raise WarehouseError("the statement returned no rows to fetch")
        return self._table

    def pl(self) -> pl.DataFrame:
        import polars as pl

        return pl.from_arrow(self.fetch_arrow_table())  # type: ignore[return-value]

    def df(self):
        return self.fetch_arrow_table().to_pandas()

    def fetchall(self) -> list[tuple]:
        if self._rows is None:
            # by position: a result may repeat a column name (PostgreSQL names every count(*)
            # "count")
            table = self.fetch_arrow_table()
            columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
            self._rows = list(zip(*columns, strict=True)) if columns else []
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def fetchone(self) -> tuple | None:
        if self._rows is None:
            self.fetchall()
            self._next = 0
        assert self._rows is not None
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]


class Types:
    """Column types spelled for one engine (DDL written once for all of them)."""

    text = "varchar"
    double = "double precision"
    bigint = "bigint"
    integer = "integer"
    boolean = "boolean"
    timestamp = "timestamp"
    date = "date"


def content_fingerprint(rows: int, hash_sum: int | str, columns: list[tuple[str, str]]) -> str:
    """A table's fingerprint from its row count, the sum of its row hashes and its (column,
    type) pairs (Warehouse.fingerprint; the publication derives it from per-day sums)."""
    shape = ",".join(f"{name} {kind}" for name, kind in columns)
    return f"{rows}:{hash_sum}:{hashlib.sha256(shape.encode()).hexdigest()[:16]}"


class Warehouse(abc.ABC):
    """One open connection to the warehouse. Use as a context manager or call close()."""

    engine: str = ""
    types: Types = Types()
    # False where a statement cannot be undone (Spark over plain Parquet tables).
    transactional: bool = True
    # False where CREATE TABLE takes no primary key (Spark).
    supports_constraints: bool = True

    # --- SQL -------------------------------------------------------------------------------
    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """Run one statement with `?` placeholders; the result has .pl(), .df(),
        .fetch_arrow_table(), .fetchone(), .fetchall()."""

    def sql(self, sql: str) -> Any:
        return self.execute(sql)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.execute(sql, row)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        return self.execute(sql, params).pl()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    # --- tables ----------------------------------------------------------------------------
    @abc.abstractmethod
    def replace_table(self, qualified: str, frame: Any) -> int:
        """Replace schema.table with the frame; a failure keeps the previous table where the
        engine has transactional DDL. Returns the rows written."""

    @abc.abstractmethod
    def append_table(self, qualified: str, frame: Any) -> int:
        """Append the frame's rows (columns matched by name) to an existing table."""

    def replace_rows(
        self, qualified: str, where: str, params: Sequence[Any] | None, frame: Any
    ) -> int:
        """Replace the rows matching `where` (SQL with `?` placeholders) with the frame's rows
        (none when `frame` is None), in one transaction. Engines without row-level DML (Spark)
        rewrite the table."""
        with self.transaction():
            self.execute(f"delete from {qualified} where {where}", params)
            return 0 if frame is None else self.append_table(qualified, frame)

    def table_exists(self, qualified: str) -> bool:
        schema, table = split_name(qualified)
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables "
                "where table_schema = ? and table_name = ?",
                [schema, table],
            )
        )

    def column_type(self, dtype: pl.DataType) -> str:
        """The engine's column type for a polars dtype (text for anything else)."""
        import polars as pl

        t = self.types
        if dtype == pl.Boolean:
            return t.boolean
        if dtype.is_integer():
            return t.bigint
        if dtype.is_float() or dtype.is_decimal():
            return t.double
        if dtype == pl.Date:
            return t.date
        if isinstance(dtype, pl.Datetime):
            return t.timestamp
        return t.text

    def table_columns(self, qualified: str) -> list[str]:
        """Column names in order; [] when the table does not exist."""
        schema, table = split_name(qualified)
        rows = self.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
        return [r[0] for r in rows]

    def table_schema(self, qualified: str) -> list[tuple[str, str]]:
        """(column name, type) in order; [] when the table does not exist."""
        schema, table = split_name(qualified)
        rows = self.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
        return [(name, str(kind)) for name, kind in rows]

    # An order-free sum of one 60-bit-or-wider hash per row of `t`, as text (see fingerprint).
    row_hash_sum = "cast(coalesce(sum(hash(t)::hugeint), 0) as varchar)"

    def fingerprint(self, qualified: str) -> str:
        """Content fingerprint of a table: its columns and types, row count and the sum of its
        row hashes (order-free). Equal fingerprints mean, with overwhelming likelihood, equal
        contents; one scan of the table (about 0.5 s for 1M events' fct_events on 2 cores on
        DuckDB). Compare fingerprints from one engine only: the hashes differ between them."""
        schema, table = split_name(qualified)
        rows, total = self.execute(
            f"select count(*), {self.row_hash_sum} from {schema}.{table} t"
        ).fetchone()
        return content_fingerprint(rows, total, self.table_schema(qualified))

    def list_tables(self, schemas: Sequence[str]) -> list[str]:
        """'schema.table' of every base table (not view) in `schemas`, sorted."""
        marks = ", ".join("?" for _ in schemas)
        rows = self.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in ({marks}) and table_type = 'BASE TABLE' order by 1, 2",
            list(schemas),
        ).fetchall()
        return [f"{schema}.{name}" for schema, name in rows]

    def create_schema(self, schema: str) -> None:
        self.execute(f"create schema if not exists {schema}")

    def sample_sql(self, table: str, rows: int) -> str:
        """A query for about `rows` random rows of table (for checks on big tables)."""
        return f"select * from {table} order by random() limit {int(rows)}"

    def seeded_order_sql(self, column: str, seed: int) -> str:
        """An expression ordering rows by a hash of `column` (text) and `seed`: a random-looking
        order that is the same on every run with the same rows and seed (seeded samples), and
        the same on every engine (md5's hex text), so a sample drawn on PostgreSQL or Spark
        holds the rows DuckDB's holds."""
        return f"md5({column} || '-{int(seed)}')"

    _depth = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """Commit at the end, roll back on an exception; a nested one joins the outer."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.execute("begin transaction")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self.execute("rollback")
            raise
        self._depth = 0
        self.execute("commit")

    def pool_share(self) -> float | None:
        """The share of the engine's in-process memory pool in use (cached pages included), or
        None where the engine keeps none in this process (a server's memory is the server's)."""
        return None

    def release_memory(self) -> None:
        """Give back the memory an engine keeps in-process between steps (nothing for a
        server engine: its memory is the server's)."""
        return None

    def for_another_thread(self) -> Warehouse | None:
        """The same warehouse for work in another thread beside this connection's, or None
        where the engine offers none here (work then runs in turn)."""
        return None

    def rollback_quietly(self) -> None:
        """End a half-open transaction left by a failed step (nothing when there is none)."""
        with contextlib.suppress(Exception):
            self.execute("rollback")

    # --- life ------------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
