"""How fast frames move between Python and PostgreSQL, by client library (the choice behind
python_models/warehouse/postgres.py).

    python benchmarks/bench_warehouse_io.py --rows 1000000

Starts a throwaway PostgreSQL (tests/pg_server.py), writes a feature-shaped frame
(user_id text, as_of_date, 20 doubles) and reads it back out, then writes a score-shaped frame
in, with each candidate: psycopg2 rows, psycopg2 COPY as CSV, psycopg 3 binary COPY, and ADBC
(Arrow over libpq's binary COPY). Prints seconds per step, best of --repeat.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pg_server import DATABASE, USER, throwaway_postgres  # noqa: E402

FEATURES = 20


def feature_frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    users = rows // 10
    return pl.DataFrame(
        {
            "user_id": [f"{i % users:032x}" for i in range(rows)],
            "as_of_date": pl.date_range(date(2026, 1, 5), date(2026, 3, 15), "1w", eager=True)
            .sample(rows, with_replacement=True, seed=7)
            .to_list(),
            **{f"f{i:02d}": rng.normal(size=rows) for i in range(FEATURES)},
        }
    )


def score_frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(8)
    return pl.DataFrame(
        {
            "user_id": [f"{i:032x}" for i in range(rows)],
            "as_of_date": [date(2026, 3, 15)] * rows,
            "model_name": ["churn"] * rows,
            "model_version": ["abc123"] * rows,
            "score": rng.random(rows),
            "churn_label": rng.random(rows) > 0.5,
            "reasons": ["sessions fell; no purchase in 28 days"] * rows,
            "scored_at": [datetime(2026, 3, 16, 2, 0)] * rows,
        }
    )


def best(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import adbc_driver_postgresql.dbapi as adbc
    import psycopg
    import psycopg2

    features, scores = feature_frame(args.rows), score_frame(args.rows)
    with throwaway_postgres() as port:
        uri = f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"
        pg2 = psycopg2.connect(host="127.0.0.1", port=port, user=USER, dbname=DATABASE)
        pg3 = psycopg.connect(uri)
        ad = adbc.connect(uri)
        with ad.cursor() as cur:
            cur.adbc_ingest("features", features.to_arrow(), mode="create")
        ad.commit()
        select = "select * from features"
        results: dict[str, float] = {}

        def read_rows():
            cur = pg2.cursor()
            cur.execute(select)
            names = [d[0] for d in cur.description]
            pl.DataFrame(cur.fetchall(), schema=names, orient="row")

        def read_csv_copy():
            buffer = io.BytesIO()
            pg2.cursor().copy_expert(f"copy ({select}) to stdout with (format csv, header)", buffer)
            buffer.seek(0)
            pl.read_csv(buffer, try_parse_dates=True)

        def read_adbc():
            with ad.cursor() as cur:
                cur.execute(select)
                pl.from_arrow(cur.fetch_arrow_table())

        results["read: psycopg2 rows"] = best(args.repeat, read_rows)
        results["read: psycopg2 COPY csv"] = best(args.repeat, read_csv_copy)
        results["read: ADBC arrow"] = best(args.repeat, read_adbc)

        ddl = (
            "drop table if exists s; create table s (user_id text, as_of_date date, "
            "model_name text, model_version text, score double precision, churn_label boolean, "
            "reasons text, scored_at timestamp)"
        )

        def write_rows():
            from psycopg2.extras import execute_values

            cur = pg2.cursor()
            cur.execute(ddl)
            execute_values(cur, "insert into s values %s", scores.rows(), page_size=10_000)
            pg2.commit()

        def write_csv_copy():
            cur = pg2.cursor()
            cur.execute(ddl)
            buffer = io.BytesIO()
            scores.write_csv(buffer)
            buffer.seek(0)
            cur.copy_expert("copy s from stdin with (format csv, header)", buffer)
            pg2.commit()

        def write_psycopg3_copy():
            with pg3.cursor() as cur:
                cur.execute(ddl)
                with cur.copy("copy s from stdin") as copy:
                    for row in scores.iter_rows():
                        copy.write_row(row)
            pg3.commit()

        def write_adbc():
            with ad.cursor() as cur:
                cur.execute("drop table if exists s")
                cur.adbc_ingest("s", scores.to_arrow(), mode="create")
            ad.commit()

        results["write: psycopg2 execute_values"] = best(1, write_rows)
        results["write: psycopg2 COPY csv"] = best(args.repeat, write_csv_copy)
        results["write: psycopg 3 COPY rows"] = best(1, write_psycopg3_copy)
        results["write: ADBC ingest (binary COPY)"] = best(args.repeat, write_adbc)
        for con in (pg2, pg3, ad):
            con.close()
    print(
        f"rows: {args.rows:,} (features: user_id, as_of_date, {FEATURES} doubles; "
        "scores: 8 columns)"
    )
    for name, seconds in results.items():
        print(f"{name:40s} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
