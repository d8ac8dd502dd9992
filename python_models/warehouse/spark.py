"""The Spark implementation: a local Spark session (pyspark) over a Hive metastore on disk.

dbt (dbt-spark, `method: session`) and the Python steps open their own sessions in their own
processes, one after the other, on the same warehouse directory and embedded Derby metastore
under UBA_SPARK_DIR (`spark_conf` below; the dbt profile reads the same values through the
variables `dbt_env` sets). Frames move as Arrow (DataFrame.toArrow, createDataFrame(Arrow)).

What Spark lacks here, and what it means (docs/scale.md):
- no multi-statement transactions over plain Parquet tables: `transaction()` only groups,
  and `replace_table` writes the new table under another name and swaps it in with a drop and
  a rename, so a crash in that short window can leave the table missing (the new one is then
  `<table>__new_*`). Delta Lake or Iceberg tables would make it atomic.
- no `information_schema`: tables and columns come from Spark's catalog.
- with ANSI mode off (dbt-spark's setting) a double-quoted name is a string literal, so
  `select f."tenure_days"` would silently return the text: `execute` turns the steps'
  standard double-quoted identifiers into Spark's backticks first.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from python_models.config import get_settings
from python_models.warehouse.base import ArrowResult, Types, Warehouse, split_name, to_arrow
from python_models.warehouse.sql_text import bind, spark_string, split_statements


class SparkTypes(Types):
    text = "string"
    double = "double"


# UBA_SPARK_JAVA_OPTIONS for short runs on few cores (the Spark tests, CI): a JIT that stops at
# its first tier and one GC thread spend ~22% less CPU (docs/scale.md). At the first tier alone
# the JVM reserves a client's 48 MB code cache instead of 240 MB, which Spark's generated code
# filled once in the suite ("Out of space in CodeCache for method handle intrinsic", a fatal
# stop): the tiered default is reserved again (memory is committed only as code is compiled).
SHORT_RUN_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m"


def spark_conf(spark_dir: Path, java_options: str = "") -> dict[str, str]:
    """The session settings dbt and the Python steps share (one metastore, one warehouse);
    `java_options`: more options for the session's JVM (UBA_SPARK_JAVA_OPTIONS)."""
    return {
        "spark.master": "local[2]",
        "spark.sql.warehouse.dir": str(spark_dir / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={spark_dir / 'metastore_db'};create=true"
        ),
        "spark.sql.session.timeZone": "UTC",
        # dbt-spark forces ANSI mode off; the Python side must read the same semantics.
        "spark.sql.ansi.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
        "spark.driver.memory": "2g",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={spark_dir} {java_options}".strip(),
    }


def _naive_utc(table: pa.Table) -> pa.Table:
    """Spark's TIMESTAMP is an instant (Arrow: timestamp with time zone); the other engines
    and the Python steps use naive UTC timestamps (the session runs in UTC)."""
    fields = [
        pa.field(f.name, pa.timestamp("us"))
        if pa.types.is_timestamp(f.type) and f.type.tz is not None
        else f
        for f in table.schema
    ]
    schema = pa.schema(fields)
    return table if schema == table.schema else table.cast(schema)


def backtick_identifiers(sql: str) -> str:
    """Standard SQL's "quoted" identifiers as Spark's `quoted` ones; string literals and
    -- comments are left as they are."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char == "'":
            end = i + 1
            while end < n and sql[end] != "'":
                end += 2 if sql[end] == "\\" else 1
            out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif char == '"':
            name: list[str] = []
            i += 1
            while i < n:
                if sql[i] == '"' and sql.startswith('""', i):
                    name.append('"')
                    i += 2
                elif sql[i] == '"':
                    i += 1
                    break
                else:
                    name.append(sql[i])
                    i += 1
            out.append("`" + "".join(name).replace("`", "``") + "`")
        else:
            out.append(char)
            i += 1
    return "".join(out)


class _SparkResult(ArrowResult):
    def __init__(self, frame):
        super().__init__(None)
        self._frame = frame

    def fetch_arrow_table(self) -> pa.Table:
        if self._table is None:
            self._table = _naive_utc(self._frame.toArrow())
        return self._table


class SparkWarehouse(Warehouse):
    engine = "spark"
    types = SparkTypes()
    transactional = False
    supports_constraints = False
    row_hash_sum = "cast(coalesce(sum(cast(xxhash64(*) as decimal(38, 0))), 0) as string)"

    def __init__(self, session):
        self.spark = session

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> ArrowResult:
        """One statement, or a script of several (the result is the last one's)."""
        result = None
        for statement in split_statements(bind(sql, params, "double", spark_string)) or [""]:
            result = self.spark.sql(backtick_identifiers(statement))
        return _SparkResult(result)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        # No multi-statement transactions on Spark's Parquet tables: statements apply as they
        # run (see the module's docstring).
        yield self

    def rollback_quietly(self) -> None:
        return None

    def create_schema(self, schema: str) -> None:
        self.spark.sql(f"create database if not exists `{schema}`")

    def table_exists(self, qualified: str) -> bool:
        schema, table = split_name(qualified)
        return bool(self.spark.catalog.tableExists(f"{schema}.{table}"))

    def table_columns(self, qualified: str) -> list[str]:
        if not self.table_exists(qualified):
            return []
        return list(self.spark.table(qualified).columns)

    def table_schema(self, qualified: str) -> list[tuple[str, str]]:
        if not self.table_exists(qualified):
            return []
        return list(self.spark.table(qualified).dtypes)

    def list_tables(self, schemas: Sequence[str]) -> list[str]:
        found = []
        for schema in schemas:
            if not self.spark.catalog.databaseExists(schema):
                continue
            for table in self.spark.catalog.listTables(schema):
                if table.tableType != "VIEW" and not table.isTemporary:
                    found.append(f"{schema}.{table.name}")
        return sorted(found)

    def sample_sql(self, table: str, rows: int) -> str:
        return f"select * from {table} order by rand(7) limit {int(rows)}"

    def _frame(self, frame: Any):
        data = to_arrow(frame)
        # Spark reads plain (not large / view) strings from Arrow.
        fields = [
            pa.field(f.name, pa.string())
            if pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)
            else f
            for f in data.schema
        ]
        return self.spark.createDataFrame(data.cast(pa.schema(fields))), data.num_rows

    def replace_table(self, qualified: str, frame: Any) -> int:
        schema, table = split_name(qualified)
        spark_frame, rows = self._frame(frame)
        self.create_schema(schema)
        staging = f"{schema}.{table}__new_{uuid.uuid4().hex[:8]}"
        spark_frame.write.format("parquet").mode("overwrite").saveAsTable(staging)
        self.spark.sql(f"drop table if exists {qualified}")
        self.spark.sql(f"alter table {staging} rename to {qualified}")
        return rows

    def append_table(self, qualified: str, frame: Any) -> int:
        spark_frame, rows = self._frame(frame)
        # insertInto matches columns by position: put them in the table's order first.
        spark_frame.select(*self.table_columns(qualified)).write.insertInto(qualified)
        return rows

    def replace_rows(
        self, qualified: str, where: str, params: Sequence[Any] | None, frame: Any
    ) -> int:
        """No DELETE on Parquet tables: the kept rows and the new ones replace the table (the
        tables this is used on, the model registry's, are small)."""
        kept = self.execute(f"select * from {qualified} where not ({where})", params).pl()
        if frame is None:
            self.replace_table(qualified, kept)
            return 0
        new = pl.from_arrow(to_arrow(frame))
        combined = pl.concat([kept, new.select(kept.columns).cast(kept.schema)])
        self.replace_table(qualified, combined)
        return new.height

    def close(self) -> None:
        # The session is per process and slow to start; it is stopped at exit (or stop_spark).
        return None


def spark_session():
    from pyspark.sql import SparkSession

    settings = get_settings()
    spark_dir = settings.spark_dir
    spark_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName("uba").enableHiveSupport()
    for key, value in spark_conf(spark_dir, settings.spark_java_options).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def connect_spark() -> SparkWarehouse:
    return SparkWarehouse(spark_session())


def stop_spark() -> None:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()
