"""The Python steps of the Spark test, each run in its own process (tests/integration/
test_spark_engine.py): Spark's embedded Derby metastore admits one JVM at a time, so these
processes and dbt's own Spark session take turns on the same warehouse directory.

    python tests/spark_steps.py load VALIDATED.parquet
    python tests/spark_steps.py export OUT_DIR TABLE [TABLE ...]

`load` writes raw.events_validated through the warehouse interface (Arrow into Spark);
`export` reads each table through it, writes OUT_DIR/<table>.parquet, and writes and reads
back a derived table (a Python step writing to the warehouse).
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def load(validated: Path) -> None:
    from python_models.warehouse import connect

    con = connect(engine="spark")
    rows = con.replace_table("raw.events_validated", pl.read_parquet(validated))
    print(f"spark: {rows} rows in raw.events_validated", flush=True)


def export(out_dir: Path, tables: list[str]) -> None:
    from python_models.warehouse import connect

    con = connect(engine="spark")
    for table in tables:
        frame = con.execute(f"select * from {table}").pl()
        frame.write_parquet(out_dir / f"{table}.parquet")
    per_country = con.execute(
        "select country_mode as country, count(*) as users from marts.dim_users "
        "group by country_mode"
    ).pl()
    con.replace_table("ml_scores.users_per_country", per_country)
    con.replace_table("ml_scores.users_per_country", per_country)  # twice: replaces
    back = con.execute("select * from ml_scores.users_per_country").pl()
    back.write_parquet(out_dir / "ml_scores.users_per_country.parquet")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "load":
        load(Path(args[0]))
    elif command == "export":
        export(Path(args[0]), args[1:])
    else:
        raise SystemExit(f"unknown step {command!r}")
