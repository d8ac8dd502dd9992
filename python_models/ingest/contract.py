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

# raw.events carries no primary key: raw_id = <file sha256[:16]>:<row number> is unique by
# construction (raw.load_log's key is the file hash, row numbers are unique in a file), and an
# index on a text key cost more than the rest of the insert. load_id names the load batch (one
# loaded file): the gate finds new rows by it, never by matching keys against earlier rows.
RAW_DDL = f"""
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
    raw_id varchar not null,
    load_id bigint not null,
    source_file varchar not null,
    file_sha256 varchar not null,
    row_number bigint not null,
    loaded_at timestamp not null,
    {", ".join(f"{column} varchar" for column in CONTRACT_COLUMNS)},
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
