"""The raw-event contract, declared once: the input columns and the raw tables that hold them.

Everything that names the contract's columns (loaders, the gate, the sample generator, tests)
imports CONTRACT_COLUMNS from here. docs/CONTRACTS.md describes each column.
"""

from __future__ import annotations

# Input columns, in the order raw tables and generated files hold them. All text: an id is
# never type-guessed ("007" and "7" stay two ids).
CONTRACT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "user_id",
    "anonymous_id",
    "event_name",
    "event_ts",
    "received_at",
    "session_id",
    "properties",
)
# Identifier columns: checked for invisible-only text and control characters by the gate.
ID_COLUMNS: tuple[str, ...] = ("event_id", "user_id", "anonymous_id", "session_id")
# Property keys the contract knows on every event (staging reads all but the PII keys ip and
# email, which never leave the raw layer; channel feeds the fairness audit attributes). Schema
# drift reports any other key per event name unless the tracking plan declares it. revenue
# must be a number (staging casts it): the gate checks it on every event, with a plausibility
# range (settings revenue_min / revenue_max).
COMMON_PROPERTIES: tuple[str, ...] = (
    "revenue",
    "currency",
    "page",
    "device",
    "country",
    "plan",
    "feature",
    "channel",
    "ip",
    "email",
)

# DuckDB's storage method for the raw text columns whose text has a known shape (raw.events,
# and the gate's tables that copy them: expectations/gate/tables.py): a column declared with
# its method is stored without DuckDB first trying each method on every segment (the bench
# samples' load alone: 10M events 16.4 -> 14.0 s, 1M 3.2 -> 2.8 s; the gate's 10M validated
# rows' insert 8.2 -> 7.1 s; the same rows and file sizes).
# FSST for ids and timestamps as text (its worst case, random text, is about the uncompressed
# size), dictionary for the load's file name and hash (one value per load). The columns whose
# cardinality depends on the data (user and device ids, event names, properties) are left to
# DuckDB's trial: a dictionary over unique values stores them 2.6 times over. Other engines
# take the DDL without it (raw_ddl).
RAW_COMPRESSION: dict[str, str] = {
    "raw_id": "fsst",
    "source_file": "dictionary",
    "file_sha256": "dictionary",
    "event_id": "fsst",
    "event_ts": "fsst",
    "received_at": "fsst",
}


def text_type(column: str, engine: str) -> str:
    """The type of the raw text column `column` in a DDL on `engine` (a Warehouse.engine):
    on DuckDB with its RAW_COMPRESSION storage method, if any."""
    method = RAW_COMPRESSION.get(column) if engine == "duckdb" else None
    return f"varchar using compression {method}" if method else "varchar"


# raw.events carries no primary key: raw_id = <file sha256[:16]>:<row number> is unique by
# construction (raw.load_log's key is the file hash, row numbers are unique in a file), and an
# index on a text key cost more than the rest of the insert. load_id names the load batch (one
# loaded file): the gate finds new rows by it, never by matching keys against earlier rows.
def raw_ddl(engine: str) -> str:
    """The raw tables' DDL on `engine` (a Warehouse.engine)."""

    def text(column: str) -> str:
        return text_type(column, engine)

    return f"""
create schema if not exists raw;
create table if not exists raw.load_log (
    file_sha256 varchar primary key,
    load_id bigint not null,
    source_file varchar not null,
    format varchar not null,
    row_count bigint not null,
    rows_unreadable bigint not null,
    loaded_at timestamp not null
);
create table if not exists raw.events (
    raw_id {text("raw_id")} not null,
    load_id bigint not null,
    source_file {text("source_file")} not null,
    file_sha256 {text("file_sha256")} not null,
    row_number bigint not null,
    loaded_at timestamp not null,
    {", ".join(f"{column} {text(column)}" for column in CONTRACT_COLUMNS)},
    load_error varchar,
    raw_payload varchar
);
create table if not exists raw.schema_drift (
    load_id bigint not null,
    source_file varchar not null,
    kind varchar not null,
    event_name varchar,
    name varchar not null,
    expected varchar,
    observed varchar,
    rows_affected bigint not null,
    detected_at timestamp not null,
    accepted_at timestamp
);
"""
