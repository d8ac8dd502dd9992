"""Real public purchase logs that ship inside PyPI packages, for tests, benchmarks and demos.

CDNOW (Fader & Hardie): the full purchase history to June 1998 of the 23,570 customers who first
bought at CDNOW in Q1 1997 (`master`), and its 1-in-10 sample of 2,357 (`sample`), as shipped in
the `lifetimes` 0.11.3 wheel (MIT). The wheel is fetched with pip (`--no-deps`, never installed)
into a cache folder and the file is read out of the zip.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl

LIFETIMES_WHEEL = "lifetimes==0.11.3"
CDNOW_FILES = {"master": "CDNOW_master.txt", "sample": "CDNOW_sample.txt"}


class PublicDataUnavailable(RuntimeError):
    """The package index could not be reached (tests skip on this, with its message)."""


def cache_dir() -> Path:
    """UBA_PUBLIC_DATA_CACHE, else $XDG_CACHE_HOME or ~/.cache, under uba/public_data."""
    from python_models.config import get_settings

    return get_settings().public_data_cache


def fetch_wheel(requirement: str, folder: Path | None = None) -> Path:
    """Path of the wheel for `requirement` (name==version), downloaded once into the cache."""
    folder = folder or cache_dir()
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(folder.glob(pattern)) + sorted(folder.glob(pattern.capitalize()))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "-q", "-d", str(folder), requirement]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    found = sorted(folder.glob(pattern)) + sorted(folder.glob(pattern.capitalize()))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PublicDataUnavailable(f"could not download {requirement} from PyPI: {last}")
    return found[0]


def cdnow_transactions(which: str = "sample", folder: Path | None = None) -> pl.DataFrame:
    """CDNOW as transactions: user_id (text, zero-padded as published), purchased_at,
    revenue_usd, cds (number of CDs)."""
    if which not in CDNOW_FILES:
        raise ValueError(f"which must be one of {sorted(CDNOW_FILES)}, got {which!r}")
    wheel = fetch_wheel(LIFETIMES_WHEEL, folder)
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"lifetimes/datasets/{CDNOW_FILES[which]}").decode("ascii")
    # Whitespace-separated columns; the master file has a header line, the sample has none.
    lines = [line.split() for line in io.StringIO(text) if line.strip()]
    if lines and lines[0][0] == "customer_id":
        lines = lines[1:]
    if which == "sample":  # sample rows: master id, sample id, date, cds, dollars
        lines = [[row[0], *row[2:]] for row in lines]
    frame = pl.DataFrame(lines, schema=["user_id", "date", "cds", "revenue_usd"], orient="row")
    return frame.select(
        pl.col("user_id"),
        pl.col("date").str.to_date("%Y%m%d").cast(pl.Datetime("us")).alias("purchased_at"),
        pl.col("revenue_usd").cast(pl.Float64),
        pl.col("cds").cast(pl.Int64),
    )
