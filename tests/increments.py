"""Helpers for the incremental-equals-full tests: hold rows back from a built warehouse, let them
arrive later as a new load batch (as the gate appends one), and compare tables row for row."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from python_models.warehouse import connect


def read(path: Path, sql: str, params: list | None = None) -> pl.DataFrame:
    con = connect(path, read_only=True)
    try:
        return con.execute(sql, params or []).pl()
    finally:
        con.close()


def sorted_table(path: Path, name: str) -> pl.DataFrame:
    """A whole table in a canonical row order, for comparing two builds."""
    frame = read(path, f"select * from {name}")
    return frame.sort(frame.columns)


def assert_same_rows(got: pl.DataFrame, expected: pl.DataFrame, name: str) -> None:
    """Identical rows, doubles bit for bit (order-dependent sums go through exact decimals)."""
    assert got.columns == expected.columns, name
    assert got.height == expected.height, f"{name}: {got.height} rows, full build {expected.height}"
    for column in got.columns:
        assert got[column].equals(expected[column]), f"{name}.{column} differs from a full build"


def hold_back(path: Path, where: str, params: list | None = None) -> None:
    """Move the validated rows matching `where` into raw.held_back, as if not yet received."""
    con = connect(path)
    try:
        con.execute(
            f"create table raw.held_back as select * from raw.events_validated where {where}",
            params or [],
        )
        con.execute(
            "delete from raw.events_validated where event_id in "
            "(select event_id from raw.held_back)"
        )
    finally:
        con.close()


def release_held_back(path: Path) -> None:
    """The held-back rows arrive as one new load batch, as the gate appends them."""
    con = connect(path)
    try:
        con.execute(
            "insert into raw.events_validated select * replace ((select max(load_id) + 1"
            " from raw.events_validated) as load_id) from raw.held_back"
        )
    finally:
        con.close()
