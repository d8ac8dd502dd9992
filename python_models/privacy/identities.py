"""From the identifiers in an erasure request to everything that names those people.

A request lists raw ids; each is looked up as a user id and as a device (anonymous) id in the
raw layer:
- a user id: that person;
- a device seen with exactly one user: that user (the whole person);
- a device never identified: that visitor (the device's own rows);
- a device seen with several users (a shared computer): only its anonymous-only events, and the
  people who used it are left alone (erase them by user id).
A person's devices are every device seen with their user id. A device also seen with someone
who is not being erased stays, as that other person's device; the erased person's anonymous
events on it go (by event id, as identity stitching attributed them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa

from python_models.privacy.discovery import PersonalTable, personal_tables
from python_models.privacy.pseudonyms import pseudonymize, salt_fingerprint
from python_models.privacy.sensitive import PII_PROPERTY_KEYS

RAW_SCHEMA = "raw"
STITCHED_EVENTS = ("intermediate", "int_events_sessionized")
SALTS_TABLE = ("staging", "stg_app__pseudonym_salts")


class SaltMismatchError(RuntimeError):
    """The warehouse's pseudonyms were made with another salt: erasing with this one would
    miss every hashed row."""


@dataclass
class Identity:
    """Everything that names the people of one request."""

    requested: list[str]
    outcome: dict[str, str] = field(default_factory=dict)  # id -> user/device/shared/not_found
    user_ids: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)  # only the erased people used them
    shared_devices: set[str] = field(default_factory=set)  # also used by someone else
    person_keys: set[str] = field(default_factory=set)  # pseudonyms of users and devices
    device_keys: set[str] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)
    session_ids: set[str] = field(default_factory=set)
    sensitive_values: set[str] = field(default_factory=set)  # emails, IPs, declared properties
    first_event_at: datetime | None = None

    @property
    def found(self) -> bool:
        return bool(self.user_ids or self.devices or self.event_ids)

    def role_values(self) -> dict[str, set[str]]:
        """Per identifier role, the values whose rows are this request's (raw and hashed). A
        person column may hold a device's pseudonym (a visitor who never identified is their
        device; stg_app__user_holdout_buckets keys users and devices in one column), and the
        devices here were used by the erased people only, so they count as persons too."""
        return {
            "person": self.user_ids | self.person_keys | self.device_keys,
            "device": self.devices | self.device_keys,
            "event": self.event_ids,
            "session": self.session_ids,
        }

    def needles(self) -> set[str]:
        """Strings that must not be left anywhere: raw ids, pseudonyms, sensitive values."""
        return (
            self.user_ids | self.devices | self.person_keys | self.device_keys
        ) | self.sensitive_values

    def quotable(self) -> set[str]:
        """Raw strings free text may quote (redacted where a row of someone else is kept)."""
        return self.user_ids | self.devices | self.sensitive_values


def _strings(rows) -> set[str]:
    return {row[0] for row in rows if row[0] is not None}


def temp_ids(con: duckdb.DuckDBPyConnection, name: str, values: set[str]) -> None:
    """A temporary one-column table `name(id)` holding `values` (moved as Arrow, not row by row)."""
    frame = pa.table({"id": pa.array(sorted(values), type=pa.string())})
    con.register("__uba_ids", frame)
    try:
        con.execute(f"create or replace temp table {name} as select id from __uba_ids")
    finally:
        con.unregister("__uba_ids")


def _raw_tables(tables: list[PersonalTable]) -> list[PersonalTable]:
    return [
        t
        for t in tables
        if t.schema == RAW_SCHEMA
        and "user_id" in t.roles.get("person", ())
        and "anonymous_id" in t.roles.get("device", ())
    ]


def _exists(tables: list[PersonalTable], schema: str, name: str) -> bool:
    return any(t.schema == schema and t.name == name for t in tables)


def check_salt(con: duckdb.DuckDBPyConnection, salt: str) -> None:
    """Refuse to erase with a salt other than the one the warehouse's pseudonyms were made with."""
    schema, name = SALTS_TABLE
    present = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ? and table_catalog = current_database()",
        [schema, name],
    ).fetchone()[0]
    if not present:
        return  # nothing hashed yet
    fingerprints = _strings(con.execute(f"select salt_fingerprint from {schema}.{name}").fetchall())
    if fingerprints and fingerprints != {salt_fingerprint(salt)}:
        raise SaltMismatchError(
            "the warehouse's pseudonyms were made with another UBA_PSEUDONYM_SALT than the one "
            "set now: set the salt the warehouse was built with (or rebuild with "
            "`uba build --full-refresh`) before erasing"
        )


def _raw_union(raw: list[PersonalTable]) -> str:
    parts = [
        f"select user_id, anonymous_id, event_id, event_ts, properties from {t.qualified}"
        for t in raw
        if {"event_id"} <= set(t.roles.get("event", ())) and "properties" in t.free_text
    ]
    return " union all ".join(parts)


def resolve(
    con: duckdb.DuckDBPyConnection,
    requested: list[str],
    salt: str,
    sensitive_keys: tuple[str, ...] = PII_PROPERTY_KEYS,
) -> Identity:
    """Who the request names, and every value that names them (see the module docstring)."""
    identity = Identity(requested=list(requested))
    tables = personal_tables(con)
    raw = _raw_tables(tables)
    union = _raw_union(raw)
    if not union or not requested:
        identity.outcome = {i: "not_found" for i in requested}
        return identity
    temp_ids(con, "erase_request", set(requested))
    con.execute(f"create or replace temp view erase_raw as {union}")

    users = _strings(
        con.execute(
            "select distinct user_id from erase_raw where user_id in (select id from erase_request)"
        ).fetchall()
    )
    device_users = con.execute(
        """
        select anonymous_id, list(distinct user_id) filter (where user_id is not null)
        from erase_raw
        where anonymous_id in (select id from erase_request)
        group by 1
        """
    ).fetchall()
    shared_requested: set[str] = set()
    visitors: set[str] = set()
    for device, seen_with in device_users:
        seen_with = seen_with or []  # list() over no identified row is null
        if len(seen_with) == 1:
            users.add(seen_with[0])
            identity.outcome[device] = "device"
        elif not seen_with:
            visitors.add(device)
            identity.outcome[device] = "device"
        else:
            shared_requested.add(device)
            identity.outcome[device] = "shared_device"
    for user in users & set(requested):
        identity.outcome[user] = "user"
    for other in set(requested) - set(identity.outcome):
        identity.outcome[other] = "not_found"

    temp_ids(con, "erase_users", users)
    # Every device seen with an erased user, and whether anyone else was seen on it.
    devices = con.execute(
        """
        with person_devices as (
            select distinct anonymous_id from erase_raw
            where user_id in (select id from erase_users) and anonymous_id is not null
        )
        select
            person_devices.anonymous_id,
            count(erase_raw.user_id) filter (
                where erase_raw.user_id not in (select id from erase_users)
            ) as other_users
        from person_devices
        inner join erase_raw on erase_raw.anonymous_id = person_devices.anonymous_id
        group by 1
        """
    ).fetchall()
    own = {device for device, others in devices if others == 0} | visitors
    identity.user_ids = users
    identity.devices = own
    identity.shared_devices = {device for device, others in devices if others} | shared_requested
    identity.person_keys = {pseudonymize(u, "user", salt) for u in users} | {
        pseudonymize(d, "anon", salt) for d in visitors
    }
    identity.device_keys = {pseudonymize(d, "anon", salt) for d in own}

    temp_ids(con, "erase_devices", own)
    temp_ids(con, "erase_shared", shared_requested)
    identity.event_ids = _strings(
        con.execute(
            """
            select distinct event_id from erase_raw
            where event_id is not null and (
                user_id in (select id from erase_users)
                or anonymous_id in (select id from erase_devices)
                or (user_id is null and anonymous_id in (select id from erase_shared))
            )
            """
        ).fetchall()
    )
    if _exists(tables, *STITCHED_EVENTS) and identity.person_keys:
        # Anonymous events on a shared device that identity stitching gave to an erased person.
        temp_ids(con, "erase_keys", identity.person_keys)
        schema, name = STITCHED_EVENTS
        identity.event_ids |= _strings(
            con.execute(
                f"select event_id from {schema}.{name} where user_id in (select id from erase_keys)"
            ).fetchall()
        )
    _collect_sessions(con, tables, identity)
    _collect_sensitive_values(con, identity, sensitive_keys)
    return identity


def _collect_sessions(
    con: duckdb.DuckDBPyConnection, tables: list[PersonalTable], identity: Identity
) -> None:
    """Session ids of derived tables (raw session hints are the tracker's, deleted with rows)."""
    keys = identity.person_keys
    if not keys:
        return
    temp_ids(con, "erase_keys", keys)
    for table in tables:
        if table.schema == RAW_SCHEMA or "session_id" not in table.roles.get("session", ()):
            continue
        for person_column in table.roles.get("person", ()):
            identity.session_ids |= _strings(
                con.execute(
                    f"select distinct session_id from {table.qualified} "
                    f'where "{person_column}" in (select id from erase_keys)'
                ).fetchall()
            )


def _collect_sensitive_values(
    con: duckdb.DuckDBPyConnection, identity: Identity, keys: tuple[str, ...]
) -> None:
    """Emails, IPs and declared sensitive values the erased events carried, and when the first
    of those events happened (which trained models saw the person)."""
    if not identity.event_ids or not keys:
        return
    temp_ids(con, "erase_events", identity.event_ids)
    extracts = ", ".join(f"json_extract_string(properties, '$.{key}')" for key in keys)
    rows = con.execute(
        f"""
        select distinct unnest([{extracts}]) as value
        from erase_raw
        where event_id in (select id from erase_events) and json_valid(properties)
        """
    ).fetchall()
    identity.sensitive_values = {v for v in _strings(rows) if v.strip()}
    first = con.execute(
        "select min(try_cast(event_ts as timestamp)) from erase_raw "
        "where event_id in (select id from erase_events)"
    ).fetchone()[0]
    identity.first_event_at = first
