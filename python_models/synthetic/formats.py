"""Vectorized string building (ids, timestamps) and writing event frames as Parquet/CSV/JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from python_models.ingest.contract import CONTRACT_COLUMNS as RAW_COLUMNS

RAW_SCHEMA = pa.schema([pa.field(name, pa.string()) for name in RAW_COLUMNS])

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Positions of the 32 hex digits inside the 36-character 8-4-4-4-12 form.
_UUID_DIGIT_POSITIONS = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]


def random_uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """n version-4-style UUID strings drawn from `rng` (deterministic, no Python loop)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    chars[:, _UUID_DIGIT_POSITIONS] = _HEX[nibbles]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    array = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
    return pl.Series("uuid", array)


def iso_timestamps(epoch_ms: pl.Expr, offset_code: pl.Expr, offsets_min, suffixes) -> pl.Expr:
    """ISO-8601 text for UTC epoch milliseconds; offset_code picks the written offset.

    Code 0 writes `...Z`; other codes write the same instant in local time with `+HH:MM`.
    """
    offset_ms = offset_code.replace_strict(
        list(range(len(offsets_min))), [int(m) * 60_000 for m in offsets_min]
    )
    local = pl.from_epoch(epoch_ms + offset_ms, time_unit="ms")
    suffix = offset_code.replace_strict(list(range(len(suffixes))), list(suffixes))
    return pl.concat_str([local.dt.strftime("%Y-%m-%dT%H:%M:%S%.3f"), suffix])


def to_raw_table(frame: pl.DataFrame) -> pa.Table:
    """The contract's 8 string columns, in order, as an Arrow table with `string` type."""
    return frame.select(RAW_COLUMNS).to_arrow().cast(RAW_SCHEMA)


EventFormat = Literal["parquet", "csv", "jsonl"]


def write_events(
    frame: pl.DataFrame | pa.Table,
    path: Path,
    format: EventFormat | None = None,  # noqa: A002 - the natural name for callers
    jsonl_properties: Literal["string", "object", "mixed"] = "mixed",
) -> Path:
    """Write raw events (the contract's columns) as Parquet, CSV or JSON Lines.

    CSV writes nulls as empty fields. JSON Lines writes nulls as `null`; `properties` is written
    as a JSON string, as an embedded object, or alternating by row ("mixed", the default, so
    loaders see both shapes the contract allows). Rows whose properties text is not an object
    (`{...}`) are always written as strings, so a broken-JSON defect stays one readable line.
    """
    path = Path(path)
    format = format or path.suffix.lstrip(".")  # noqa: A001
    if isinstance(frame, pa.Table):
        frame = pl.from_arrow(frame)
    frame = frame.select(RAW_COLUMNS).cast(dict.fromkeys(RAW_COLUMNS, pl.String))
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "parquet":
        pq.write_table(to_raw_table(frame), path, compression="zstd")
    elif format == "csv":
        frame.write_csv(path)
    elif format in ("jsonl", "ndjson"):
        _write_jsonl(frame, path, jsonl_properties)
    else:
        raise ValueError(f"unknown event file format {format!r}; use parquet, csv or jsonl")
    return path


def _write_jsonl(frame: pl.DataFrame, path: Path, mode: str) -> None:
    others = [c for c in RAW_COLUMNS if c != "properties"]
    props = pl.col("properties")
    looks_like_object = props.str.starts_with("{") & props.str.ends_with("}")
    row_is_odd = (pl.int_range(pl.len()) % 2) == 1
    embed = {
        "string": pl.lit(False),
        "object": looks_like_object,
        "mixed": looks_like_object & row_is_odd,
    }[mode]
    quoted = pl.struct(props.alias("p")).struct.json_encode().str.slice(5).str.head(-1)
    props_json = (
        pl.when(props.is_null()).then(pl.lit("null")).when(embed).then(props).otherwise(quoted)
    )
    head = pl.struct(others).struct.json_encode().str.head(-1)
    lines = frame.select(
        pl.concat_str([head, pl.lit(',"properties":'), props_json, pl.lit("}")]).alias("line")
    )
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for batch in lines.iter_slices(200_000):
            text = "\n".join(batch["line"].to_list())
            handle.write(text + "\n")
