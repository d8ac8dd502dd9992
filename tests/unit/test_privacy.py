"""Privacy building blocks on tiny real DuckDB files: the discovery rule, deletion and
redaction, compaction, reference-sample scrubbing, the retention patterns, reading ids."""

from __future__ import annotations

import hashlib
import re
import secrets

import duckdb
import polars as pl
import pytest

from python_models.privacy import pseudonymize
from python_models.privacy.deletion import delete_person_rows, redaction_patterns
from python_models.privacy.discovery import column_role, personal_tables
from python_models.privacy.files import (
    compact_database,
    files_containing,
    project_files,
    rewrite_parquet,
)
from python_models.privacy.identities import Identity
from python_models.privacy.pseudonyms import request_token, salt_fingerprint


@pytest.mark.parametrize(
    ("column", "role"),
    [
        ("user_id", "person"),
        ("user_hash", "person"),
        ("person_key", "person"),
        ("anonymous_id", "device"),
        ("attacker_anonymous_id", "device"),
        ("anonymous_hash", "device"),
        ("event_id", "event"),
        ("first_event_id", "event"),
        ("session_id", "session"),
        ("count_anonymous_ids", None),
        ("is_identified", None),
        ("holdout_key_version", None),
        ("run_id", None),
        ("user_identifier", None),
    ],
)
def test_column_roles_come_from_names(column, role):
    assert column_role(column) == role


def test_tokens_and_fingerprints_are_not_pseudonyms():
    # Same formula as the dbt macro, in its own namespace: no token equals a person key.
    assert request_token("u1", "s") != pseudonymize("u1", "user", "s")
    assert request_token("u1", "s") == hashlib.sha256(b"s|erasure|u1").hexdigest()[:32]
    assert (
        salt_fingerprint("s") == hashlib.sha256(b"s|fingerprint|salt-fingerprint").hexdigest()[:32]
    )


def test_redaction_replaces_whole_tokens_only():
    pattern = redaction_patterns({"1.2.3.4", "a@b.c"})[0]
    compiled = re.compile(pattern)
    assert compiled.search('{"ip":"1.2.3.4"}')
    assert compiled.search("a@b.c")
    assert not compiled.search('{"ip":"11.2.3.45"}')
    assert not compiled.search("xa@b.co")


def _identity(**values) -> Identity:
    identity = Identity(requested=["u1"])
    for name, value in values.items():
        setattr(identity, name, set(value))
    return identity


@pytest.fixture
def small_warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema raw; create schema marts")
    con.execute(
        "create table raw.events (raw_id varchar, event_id varchar, user_id varchar, "
        "anonymous_id varchar, properties varchar, raw_payload varchar)"
    )
    con.execute(
        """insert into raw.events values
        ('r1', 'e1', 'u1', 'd1', '{"email":"one@x.io"}', null),
        ('r2', 'e2', null, 'd1', '{}', null),
        ('r3', 'e3', 'u2', 'd2', '{"note":"invited one@x.io"}', null),
        ('r4', 'e4', null, null, null, 'broken line u1,d1'),
        ('r5', 'e5', 'u2', 'd2', '{"ip":"11.2.3.45"}', null)"""
    )
    con.execute("create table marts.sessions (session_id varchar, user_id varchar, n bigint)")
    con.execute("insert into marts.sessions values ('s1', 'h1', 3), ('s2', 'h2', 4)")
    con.execute("create table marts.transitions (event_id varchar, session_id varchar)")
    con.execute("insert into marts.transitions values ('e1', 's1'), ('e3', 's2')")
    con.execute("create table marts.report (day date, users bigint)")
    con.close()
    return path


def test_discovery_finds_tables_by_column_name(small_warehouse):
    con = duckdb.connect(str(small_warehouse))
    try:
        tables = {t.label: t for t in personal_tables(con)}
    finally:
        con.close()
    assert set(tables) == {"raw.events", "marts.sessions", "marts.transitions"}
    assert tables["raw.events"].free_text == ("properties", "raw_payload")
    assert tables["marts.transitions"].roles == {"event": ("event_id",), "session": ("session_id",)}


def test_delete_person_rows_deletes_by_role_and_redacts_quotes(small_warehouse):
    identity = _identity(
        user_ids={"u1"},
        devices={"d1"},
        person_keys={"h1"},
        event_ids={"e1", "e2"},
        session_ids={"s1"},
        sensitive_values={"one@x.io", "1.2.3.4"},
    )
    con = duckdb.connect(str(small_warehouse))
    try:
        con.execute("begin transaction")
        done = {
            t.table: (t.rows_deleted, t.rows_redacted) for t in delete_person_rows(con, identity)
        }
        con.execute("commit")
        raw = con.execute(
            "select raw_id, properties, raw_payload from raw.events order by 1"
        ).fetchall()
        sessions = con.execute("select session_id from marts.sessions").fetchall()
        transitions = con.execute("select event_id from marts.transitions").fetchall()
    finally:
        con.close()
    # r1, r2 are the person's (user, device); r4 quotes them in an unreadable line: redacted.
    assert [r[0] for r in raw] == ["r3", "r4", "r5"]
    assert raw[0][1] == '{"note":"invited [erased]"}'
    assert raw[1][2] == "broken line [erased],[erased]"
    assert raw[2][1] == '{"ip":"11.2.3.45"}'  # another IP that merely contains the digits
    assert sessions == [("s2",)] and transitions == [("e3",)]
    assert done == {"raw.events": (2, 2), "marts.sessions": (1, 0), "marts.transitions": (1, 0)}


def test_compaction_removes_the_bytes_a_delete_leaves(tmp_path):
    path = tmp_path / "c.duckdb"
    ids = [secrets.token_hex(16) for _ in range(500)]
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.t as select unnest(?) as user_id, 2.5 as v", [ids])
    con.execute("create view marts.v as select count(*) as n from marts.t")
    con.execute("create macro marts.twice(x) as 2 * x")
    con.execute("delete from marts.t where user_id in (select unnest(?))", [ids[:20]])
    con.execute("checkpoint")
    con.close()
    # DuckDB keeps deleted rows' bytes after a checkpoint: the reason compaction exists.
    assert len(files_containing([path], ids[:20])[path]) == 20
    compact_database(path)
    assert files_containing([path], ids[:20]) == {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("select n from marts.v").fetchone()[0] == 480
        assert con.execute("select marts.twice(21)").fetchone()[0] == 42
    finally:
        con.close()


def test_parquet_files_lose_the_rows(tmp_path):
    path = tmp_path / "scores.parquet"
    pl.DataFrame({"user_id": ["h1", "h2", "h1"], "score": [0.1, 0.2, 0.3]}).write_parquet(path)
    assert rewrite_parquet(path, _identity(person_keys={"h1"})) == 2
    assert pl.read_parquet(path)["user_id"].to_list() == ["h2"]
    assert rewrite_parquet(path, _identity(person_keys={"h1"})) == 0


def test_reference_samples_lose_one_equal_row_per_person_row():
    from python_models.privacy.artifacts import kept_positions, without_rows

    sample = pl.DataFrame({"a": [1.0, 1.0, 1.0, 2.0, None], "b": [0, 0, 0, 1, 5]})
    person = pl.DataFrame({"user_id": ["h", "h", "h"], "a": [1.0, 1.0, None], "b": [0, 0, 5]})
    left = without_rows(sample, person.drop("user_id"))
    assert sorted(left.rows(), key=str) == [(1.0, 0), (2.0, 1)]
    # The positions left, in order: the scores drawn with the sample follow them.
    assert kept_positions(sample, person.drop("user_id")).to_list() == [2, 3]


def test_encoded_reference_samples_match_through_the_models_encoding():
    from python_models.privacy.artifacts import as_sample_rows, without_rows

    class Encoder:  # a model that stores its sample with event names as vocabulary codes
        def matrix(self, frame):
            codes = {"click": 0.0, "search": 1.0}
            return frame.select(pl.col("previous").replace_strict(codes), "n").to_numpy()

    sample = pl.DataFrame({"previous": [0.0, 1.0, 1.0], "n": [3.0, 4.0, 4.0]})
    person = pl.DataFrame({"user_id": ["h"], "previous": ["search"], "n": [4]})
    assert as_sample_rows(person, sample, object()) is None  # no encoding: not guessed
    encoded = as_sample_rows(person, sample, Encoder())
    assert without_rows(sample, encoded).rows() == [(0.0, 3.0), (1.0, 4.0)]
    assert as_sample_rows(person.drop("n"), sample, Encoder()) is None


def test_pii_pattern_nulls_values_and_leaves_nulls():
    from python_models.privacy.retention import pii_pattern

    pattern = re.compile(pii_pattern(("email", "ip")))
    text = '{"email": "a\\"b@x.io", "ip":"1.2.3.4","page":"/","n":{"ip": 17}}'
    purged = pattern.sub(lambda m: m.group(1) + "null", text)
    assert purged == '{"email": null, "ip":null,"page":"/","n":{"ip": null}}'
    assert not pattern.search(purged)


def test_read_ids_from_arguments_and_file(tmp_path):
    from python_models.privacy.erasure import read_ids

    path = tmp_path / "ids.txt"
    path.write_text("# requests of 2026-01-02\nu1\n\n  d9  \nu1\n")
    assert read_ids(["u2", " "], path) == ["u2", "u1", "d9"]
    with pytest.raises(ValueError, match="no such file"):
        read_ids([], tmp_path / "missing.txt")


def test_the_service_trigger_audit_loses_the_rows_and_their_bytes(tmp_path):
    """The scoring service's SQLite audit (python_models.service.triggers) after an erasure:
    rows gone, no page of the file or its write-ahead log still holds the pseudonym."""
    from python_models.privacy.files import scrub_sqlite, sqlite_files
    from python_models.service.triggers import Rule, TriggerAudit

    erased, kept = pseudonymize("u1", "user", "s"), pseudonymize("u2", "user", "s")
    rule = Rule("long_session", None, None, "n", ">=", 1, "log", None, 100, 3600)
    path = tmp_path / "service" / "triggers.sqlite3"
    audit = TriggerAudit(path)  # left open, as a running service would
    for user in (erased, kept, erased):
        assert audit.try_fire(rule, user, 5) is not None
    wal = path.with_name(path.name + "-wal")
    assert sqlite_files(tmp_path) == [path]
    assert files_containing([path, wal], {erased})  # in the file or its log before

    assert scrub_sqlite(path, _identity(person_keys={erased})) == 2
    assert [row["user_id"] for row in audit.rows()] == [kept]
    audit.close()
    assert files_containing([p for p in (path, wal) if p.exists()], {erased}) == {}
    assert scrub_sqlite(path, _identity(person_keys={erased})) == 0


def test_a_stopped_erasure_is_finished_by_the_next_request(tmp_path, monkeypatch):
    """`erase` on a tiny raw layer, stopped after the deletion (before the other files): the
    same request again finds nothing in raw, yet completes the log and cleans the service's
    SQLite audit from the ids alone."""
    from conftest import TEST_SALT, pipeline_env

    from python_models.privacy import erasure
    from python_models.service.triggers import Rule, TriggerAudit

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    con.execute("create schema raw")
    con.execute(
        "create table raw.events as select * from (values "
        "('u1', 'd1', 'e1', '2025-01-01 10:00:00', '{\"email\":\"u1@x.io\"}'), "
        "('u2', 'd2', 'e2', '2025-01-01 11:00:00', '{}')) "
        "as t(user_id, anonymous_id, event_id, event_ts, properties)"
    )
    con.close()
    erased, kept = (pseudonymize(u, "user", TEST_SALT) for u in ("u1", "u2"))
    rule = Rule("long_session", None, None, "n", ">=", 1, "log", None, 100, 3600)
    audit = TriggerAudit(data_dir / "service" / "triggers.sqlite3")
    for user in (erased, kept):
        audit.try_fire(rule, user, 1)
    audit.close()

    finish = erasure._finish

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # the process stopped between step 2 and the files

    with pipeline_env(data_dir):
        monkeypatch.setattr(erasure, "_finish", stop)
        with pytest.raises(KeyboardInterrupt):
            erasure.erase(["u1"], rebuild="none")
        audit = TriggerAudit(data_dir / "service" / "triggers.sqlite3")
        assert len(audit.rows(erased)) == 1  # the stop left it there
        audit.close()
        monkeypatch.setattr(erasure, "_finish", finish)
        again = erasure.erase(["u1"], rebuild="none")
        done = erasure.erase(["u1"], rebuild="none")
    assert "finishing 1 erasure(s)" in again.message
    assert "finishing" not in done.message and "already erased" in done.message
    audit = TriggerAudit(data_dir / "service" / "triggers.sqlite3")
    assert [row["user_id"] for row in audit.rows()] == [kept]
    audit.close()
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    status = con.execute("select status from privacy.erasure_log").fetchall()
    left = con.execute("select user_id from raw.events").fetchall()
    con.close()
    assert status == [("complete",)] and left == [("u2",)]
    assert files_containing(list(data_dir.rglob("*.*")), {"u1@x.io", erased}) == {}


def test_declared_sensitive_properties_join_email_and_ip(monkeypatch):
    from python_models.config import SettingsError, reload_settings
    from python_models.privacy.retention import pii_pattern
    from python_models.privacy.sensitive import sensitive_property_keys

    monkeypatch.setenv("UBA_SENSITIVE_PROPERTIES", " phone, ip ,phone")
    try:
        reload_settings()
        keys = sensitive_property_keys()
        assert keys == ("email", "ip", "phone")
        text = '{"phone":"+44 20 7946 0958","page":"/"}'
        assert re.sub(pii_pattern(keys), r"\1null", text) == '{"phone":null,"page":"/"}'
        monkeypatch.setenv("UBA_SENSITIVE_PROPERTIES", "phone,$.x")
        with pytest.raises(SettingsError, match="UBA_SENSITIVE_PROPERTIES"):
            reload_settings()
    finally:
        monkeypatch.delenv("UBA_SENSITIVE_PROPERTIES")
        reload_settings()


def test_the_published_link_is_scrubbed_through_its_target(tmp_path):
    """published/warehouse.duckdb links to one of two files (python_models.publish): each real
    file is listed once and the link not at all, so scrubbing never replaces the link."""
    published = tmp_path / "published"
    published.mkdir()
    for name in ("warehouse.a.duckdb", "warehouse.b.duckdb"):
        duckdb.connect(str(published / name)).close()
    (published / "warehouse.duckdb").symlink_to("warehouse.a.duckdb")
    outside = tmp_path / "elsewhere.duckdb"  # a link out of the data folder is kept
    duckdb.connect(str(tmp_path.parent / "elsewhere_target.duckdb")).close()
    outside.symlink_to(tmp_path.parent / "elsewhere_target.duckdb")
    databases, _ = project_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in databases] == [
        "elsewhere.duckdb",
        "published/warehouse.a.duckdb",
        "published/warehouse.b.duckdb",
    ]
