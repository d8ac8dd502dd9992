"""Erasure end to end on real files: a whole pipeline run on a small generated sample (planted
people from the generator's truth), then `erase`, then every table and every byte of every
DuckDB and Parquet file the run wrote is searched for the erased people's raw ids, emails, IPs
and pseudonyms."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import TEST_SALT, copy_pipeline, pipeline_env

from python_models.privacy import pseudonymize

pytestmark = pytest.mark.slow

DBT_SCHEMAS = ("staging", "intermediate", "marts", "features", "reports")


@dataclass(frozen=True)
class Person:
    """One planted person as the raw input names them, with what must vanish."""

    request_id: str  # what the erasure request says (a user id or a device id)
    user_ids: frozenset[str]
    devices: frozenset[str]  # only they used these
    shared_devices: frozenset[str]  # someone else used these too (they stay, as theirs)
    emails: frozenset[str]
    ips: frozenset[str]

    def needles(self, salt: str) -> set[str]:
        hashed = {pseudonymize(u, "user", salt) for u in self.user_ids}
        hashed |= {pseudonymize(d, "anon", salt) for d in self.devices}
        return set(self.user_ids | self.devices | self.emails | self.ips) | hashed


def _raw_events(pipeline) -> pl.DataFrame:
    return pl.read_parquet(pipeline.sample.events_dir / "*.parquet")


def _person(events: pl.DataFrame, request_id: str) -> Person:
    """Everything the raw input says about the person a request names (from the input files,
    not from the warehouse)."""
    as_user = events.filter(pl.col("user_id") == request_id)
    if as_user.height:
        users = {request_id}
    else:  # a device id: its identified user, if any
        users = set(events.filter(pl.col("anonymous_id") == request_id)["user_id"].drop_nulls())
    own = events.filter(pl.col("user_id").is_in(list(users)))
    devices = set(own["anonymous_id"].drop_nulls()) or {request_id}
    seen_by_others = set(
        events.filter(
            pl.col("anonymous_id").is_in(list(devices))
            & pl.col("user_id").is_not_null()
            & ~pl.col("user_id").is_in(list(users))
        )["anonymous_id"]
    )
    mine = events.filter(
        pl.col("user_id").is_in(list(users))
        | (pl.col("anonymous_id").is_in(list(devices - seen_by_others)))
    )
    emails, ips = set(), set()
    for text in mine["properties"].drop_nulls():
        try:
            properties = json.loads(text)
        except ValueError:
            continue
        if isinstance(properties, dict):
            emails |= {properties["email"]} if properties.get("email") else set()
            ips |= {properties["ip"]} if properties.get("ip") else set()
    return Person(
        request_id,
        frozenset(users),
        frozenset(devices - seen_by_others),
        frozenset(seen_by_others),
        frozenset(emails),
        frozenset(ips),
    )


def _pick_people(pipeline) -> dict[str, Person]:
    """A rich user (email, IP, consent, scored), a user sharing a device with someone else,
    a never-identified visitor (by device id)."""
    events = _raw_events(pipeline)
    truth = pipeline.sample.truth_dir
    users = pl.read_parquet(truth / "users.parquet")
    devices = pl.read_parquet(truth / "devices.parquet")
    consent = pl.read_parquet(truth / "consent.parquet")
    signups = set(events.filter(pl.col("event_name") == "signup")["user_id"].drop_nulls())
    logins = set(events.filter(pl.col("event_name") == "login")["user_id"].drop_nulls())
    shared = set(devices.filter(pl.col("is_shared"))["user_id"])
    without_analytics = set(consent.filter(pl.col("analytics_consent") == False)["user_id"])  # noqa: E712
    rich = (
        users.filter(
            ~pl.col("churned")
            & pl.col("user_id").is_in(list(signups & logins))
            & ~pl.col("user_id").is_in(list(shared | without_analytics))
            & ~pl.col("is_ato_victim")
        )
        .sort("sessions_per_day", descending=True)["user_id"]
        .to_list()[0]
    )
    sharer = sorted(shared - without_analytics - {rich})[0]
    identified_devices = set(events["anonymous_id"].filter(events["user_id"].is_not_null()))
    visitor_events = events.filter(
        pl.col("user_id").is_null() & ~pl.col("anonymous_id").is_in(list(identified_devices))
    )
    visitor = (
        visitor_events.group_by("anonymous_id").len().sort("len", "anonymous_id", descending=True)
    )["anonymous_id"][0]
    return {
        "rich": _person(events, rich),
        "sharer": _person(events, sharer),
        "visitor": _person(events, visitor),
    }


def _every_table(con) -> list[tuple[str, str]]:
    return con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema not in "
        "('information_schema', 'pg_catalog') order by 1, 2"
    ).fetchall()


def _tables_holding(path: Path, needles: set[str]) -> dict[str, int]:
    """table -> rows where any text column equals or contains a needle (views included)."""
    con = duckdb.connect(str(path), read_only=True)
    found = {}
    try:
        for schema, table in _every_table(con):
            columns = [
                c
                for c, t in con.execute(
                    f"select column_name, data_type from information_schema.columns "
                    f"where table_schema = '{schema}' and table_name = '{table}' "
                    "and table_catalog = current_database()"
                ).fetchall()
                if t == "VARCHAR"
            ]
            if not columns:
                continue
            terms = " or ".join(
                f'"{c}" in (select unnest($needles)) or '
                f'list_has_any(regexp_extract_all("{c}", $token), $needles)'
                for c in columns
            )
            rows = con.execute(
                f'select count(*) from "{schema}"."{table}" where {terms}',
                {"needles": sorted(needles), "token": "[A-Za-z0-9._@-]+"},
            ).fetchone()[0]
            if rows:
                found[f"{schema}.{table}"] = rows
    finally:
        con.close()
    return found


def _files(data_dir: Path) -> list[Path]:
    # Model artifacts too: their drift samples must hold no identifier in the first place.
    patterns = ("*.duckdb", "*.parquet", "*.sqlite3", "*.sqlite3-wal", "*.pkl")
    return sorted(path for pattern in patterns for path in data_dir.rglob(pattern))


def _bytes_holding(data_dir: Path, needles: set[str]) -> dict[str, set[str]]:
    found = {}
    for path in _files(data_dir):
        data = path.read_bytes()
        hits = {n for n in needles if n.encode() in data}
        if hits:
            found[str(path.relative_to(data_dir))] = hits
    return found


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fire_triggers(data_dir: Path, people: dict[str, Person]) -> None:
    """The scoring service's trigger audit (SQLite) with rows for the rich user and for
    someone who stays, as `uba serve` leaves it."""
    from python_models.service.triggers import Rule, TriggerAudit

    rule = Rule("long_session", None, None, "n", ">=", 1, "log", None, 100, 3600)
    audit = TriggerAudit(data_dir / "service" / "triggers.sqlite3")
    try:
        for user in (*people["rich"].user_ids, "u-stays"):
            audit.try_fire(rule, pseudonymize(user, "user", TEST_SALT), 1)
    finally:
        audit.close()


@pytest.fixture(scope="module")
def erased(privacy_pipeline, tmp_path_factory):
    """A copy of the pipeline run, before and after erasing three planted people in one request
    (plus an id nobody has)."""
    from python_models.privacy.erasure import erase

    run = copy_pipeline(privacy_pipeline, tmp_path_factory.mktemp("erase") / "run")
    people = _pick_people(run)
    warehouse = run.data_dir / "warehouse.duckdb"
    _fire_triggers(run.data_dir, people)
    needles = {name: person.needles(TEST_SALT) for name, person in people.items()}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        before = {
            "dim_users": con.execute("select count(*) from marts.dim_users").fetchone()[0],
            "active": con.execute(
                "select activity_date, daily_active_users from reports.rpt_active_users_daily"
            ).pl(),
            "people_days": con.execute(
                "select event_date, count(distinct user_id) as erased_active "
                "from marts.fct_events where user_id in (select unnest(?)) group by 1",
                [
                    sorted(
                        {
                            pseudonymize(u, "user", TEST_SALT)
                            for p in people.values()
                            for u in p.user_ids
                        }
                        | {pseudonymize(people["visitor"].request_id, "anon", TEST_SALT)}
                    )
                ],
            ).pl(),
            "tables": {name: _tables_holding(warehouse, n) for name, n in needles.items()},
            "bytes": {name: _bytes_holding(run.data_dir, n) for name, n in needles.items()},
            "shared_rows": con.execute(
                "select count(*) from raw.events_validated where anonymous_id in "
                "(select unnest(?))",
                [sorted(people["sharer"].shared_devices)],
            ).fetchone()[0],
        }
    finally:
        con.close()
    request = [p.request_id for p in people.values()] + ["u-nobody-has-this-id"]
    with pipeline_env(run.data_dir):
        result = erase(request)
        after_sha = _sha(warehouse)
        again = erase(request)
        nobody = erase(["u-nobody-has-this-id"])
        unchanged = _sha(warehouse) == after_sha
    return {
        "run": run,
        "people": people,
        "needles": needles,
        "before": before,
        "result": result,
        "again": again,
        "nobody": nobody,
        "unchanged_by_repeats": unchanged,
        "request": request,
    }


def test_the_erased_people_were_everywhere_before(erased):
    # The searches below can fail: before the erasure they find each person in many tables and
    # in the bytes of the warehouse, its published copy and the Parquet exports.
    for name in ("rich", "sharer", "visitor"):
        tables = erased["before"]["tables"][name]
        # fct_events is a view: its rows are int_events_sessionized's
        stored = {"raw.events", "staging.stg_app__events", "intermediate.int_events_sessionized"}
        assert stored <= set(tables), name
        assert "warehouse.duckdb" in erased["before"]["bytes"][name], name
    rich_tables = erased["before"]["tables"]["rich"]
    assert {"ml_scores.ltv_scores", "features.ftr_user_features"} <= set(rich_tables)
    rich_bytes = erased["before"]["bytes"]["rich"]
    assert any(path.startswith("published/") for path in rich_bytes)
    assert "service/triggers.sqlite3" in rich_bytes
    rich = erased["people"]["rich"]
    assert rich.emails and rich.ips  # the rich user signed up and logged in within the period


def test_no_table_and_no_file_holds_them_after(erased):
    data_dir = erased["run"].data_dir
    for name, needles in erased["needles"].items():
        assert _tables_holding(data_dir / "warehouse.duckdb", needles) == {}, name
        assert _tables_holding(data_dir / "published" / "warehouse.duckdb", needles) == {}, name
        assert _bytes_holding(data_dir, needles) == {}, name


def test_the_shared_device_stays_with_its_other_user(erased):
    sharer = erased["people"]["sharer"]
    assert sharer.shared_devices
    con = duckdb.connect(str(erased["run"].data_dir / "warehouse.duckdb"), read_only=True)
    try:
        left = con.execute(
            "select count(*), count(distinct user_id) from raw.events_validated "
            "where anonymous_id in (select unnest(?))",
            [sorted(sharer.shared_devices)],
        ).fetchone()
    finally:
        con.close()
    # Some rows on the device were the sharer's and went; the other user's stay.
    assert 0 < left[0] < erased["before"]["shared_rows"]
    assert left[1] >= 1


def test_aggregates_no_longer_count_them(erased):
    before = erased["before"]
    con = duckdb.connect(str(erased["run"].data_dir / "warehouse.duckdb"), read_only=True)
    try:
        users = con.execute("select count(*) from marts.dim_users").fetchone()[0]
        active = con.execute(
            "select activity_date, daily_active_users from reports.rpt_active_users_daily"
        ).pl()
    finally:
        con.close()
    assert users == before["dim_users"] - 3
    expected = (
        before["active"]
        .join(
            before["people_days"].rename({"event_date": "activity_date"}),
            on="activity_date",
            how="left",
        )
        .with_columns(expected=pl.col("daily_active_users") - pl.col("erased_active").fill_null(0))
        .select("activity_date", "expected")
    )
    compared = expected.join(active, on="activity_date", how="inner")
    assert before["people_days"].height > 10 and compared.height > 100
    assert (compared["expected"] == compared["daily_active_users"]).all()


def test_log_keeps_tokens_and_counts_never_ids(erased):
    result = erased["result"]
    assert result.erasure_id and result.rebuilt == "targeted"
    tokens = {
        i: hashlib.sha256(f"{TEST_SALT}|erasure|{i}".encode()).hexdigest()[:32]
        for i in erased["request"]
    }
    con = duckdb.connect(str(erased["run"].data_dir / "warehouse.duckdb"), read_only=True)
    try:
        log = con.execute("select * from privacy.erasure_log").pl()
        outcomes = dict(
            con.execute(
                "select identifier_token, outcome from privacy.erasure_log_identifiers"
            ).fetchall()
        )
        tables = dict(
            con.execute(
                "select table_name, rows_deleted from privacy.erasure_log_tables"
            ).fetchall()
        )
    finally:
        con.close()
    assert log.height == 1 and log["status"][0] == "complete"
    assert outcomes == {
        tokens[erased["people"]["rich"].request_id]: "user",
        tokens[erased["people"]["sharer"].request_id]: "user",
        tokens[erased["people"]["visitor"].request_id]: "device",
        tokens["u-nobody-has-this-id"]: "not_found",
    }
    for table in (
        "raw.events",
        "raw.events_validated",
        "staging.stg_app__events",
        "intermediate.int_events_sessionized",  # the rows of the fct_events view
        "marts.dim_users",
        "ml_scores.ltv_scores",
    ):
        assert tables.get(table, 0) > 0, table
    assert tables["service/triggers.sqlite3"] == 1  # the rich user's trigger; u-stays' stays
    assert log["rows_deleted"][0] == sum(tables.values())


def test_models_trained_on_them_are_flagged_and_samples_scrubbed(erased):
    from python_models.common.artifacts import load_artifact

    result = erased["result"]
    con = duckdb.connect(str(erased["run"].data_dir / "warehouse.duckdb"), read_only=True)
    try:
        registry = con.execute(
            "select model_name, model_version, artifact_path, artifact_sha256 "
            "from ml.model_registry"
        ).fetchall()
        flags = set(
            con.execute("select model_name, model_version from ml.model_erasure_flags").fetchall()
        )
    finally:
        con.close()
    # The rich user was active from the start: every version trained on their data.
    assert flags == {(name, version) for name, version, _p, _s in registry}
    assert set(result.flagged_models) == flags
    # The drift samples drawn from feature tables held the rich user's rows (next action's
    # encoded through its vocabulary). LTV's sample is the customer state computed at training
    # time and the load forecast's hourly counts: no table row of theirs to match (docs).
    scrubbed = {scrub.split()[0] for scrub in result.artifacts_scrubbed}
    assert scrubbed == {"churn", "segmentation", "anomaly", "next_action"}
    for _name, _version, path, sha in registry:
        load_artifact(path, sha)  # the registry's sha256 matches the rewritten files


def test_erasing_again_or_erasing_nobody_changes_nothing(erased):
    assert erased["again"].erasure_id is None
    assert "already erased" in erased["again"].message
    assert "not found" in erased["again"].message  # the id nobody had
    assert erased["nobody"].erasure_id is None
    assert erased["nobody"].message == (
        "1 identifier(s) not found in the warehouse: nothing to erase"
    )
    assert erased["unchanged_by_repeats"]


def test_targeted_rebuild_equals_a_full_refresh(erased, privacy_pipeline, tmp_path):
    """The targeted rebuild (dbt models counting across people) leaves every dbt table as a
    full refresh of the cleaned raw layer would."""
    from python_models.privacy.erasure import erase

    run = copy_pipeline(privacy_pipeline, tmp_path / "full")
    with pipeline_env(run.data_dir):
        erase(erased["request"], rebuild="full", publish=False)
    # Without republishing, the published copy and its Parquet files are scrubbed in place.
    for name, needles in erased["needles"].items():
        assert _bytes_holding(run.data_dir, needles) == {}, name
    con = duckdb.connect()
    try:
        con.execute(
            f"attach '{erased['run'].data_dir / 'warehouse.duckdb'}' as targeted (read_only)"
        )
        con.execute(f"attach '{run.data_dir / 'warehouse.duckdb'}' as full_refresh (read_only)")
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'targeted' and table_type = 'BASE TABLE' "
            "and table_schema in (select unnest(?)) order by 1, 2",
            [list(DBT_SCHEMAS)],
        ).fetchall()
        differing = []
        for schema, table in tables:
            columns = con.execute(
                f'select column_name, column_type from (describe targeted."{schema}"."{table}")'
            ).fetchall()
            # Doubles from parallel sums differ in the last bits between any two builds.
            select = ", ".join(
                f'round("{c}", 9)' if t == "DOUBLE" else f'"{c}"'
                for c, t in columns
                if c not in ("loaded_at", "first_used_at")
            )
            for a, b in (("targeted", "full_refresh"), ("full_refresh", "targeted")):
                extra = con.execute(
                    f'select count(*) from (select {select} from {a}."{schema}"."{table}" '
                    f'except all select {select} from {b}."{schema}"."{table}")'
                ).fetchone()[0]
                if extra:
                    differing.append((schema, table, a, extra))
    finally:
        con.close()
    assert len(tables) > 30
    assert differing == []


def test_every_column_holding_identifiers_is_one_erasure_covers(privacy_pipeline, tmp_path):
    """The discovery rule (identifier roles by column name) against where the planted ids
    really are: every text column of every table that holds a raw id, a pseudonym, an event id
    or a session id must be one the rule names. A table added with its ids under another name
    fails here."""
    import shutil

    from python_models.privacy.discovery import FREE_TEXT_COLUMNS, column_role, columns_holding

    events = _raw_events(privacy_pipeline)
    users = set(events["user_id"].drop_nulls())
    devices = set(events["anonymous_id"].drop_nulls())
    warehouse = privacy_pipeline.data_dir / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        sessions = set(con.execute("select session_id from marts.fct_sessions").pl()["session_id"])
    finally:
        con.close()
    values = (
        users
        | devices
        | {pseudonymize(u, "user", TEST_SALT) for u in users}
        | {pseudonymize(d, "anon", TEST_SALT) for d in devices}
        | set(events["event_id"].drop_nulls())
        | sessions
    )
    values = {v for v in values if v.strip()}  # planted blank ids are not identifiers

    def uncovered(path: Path) -> tuple[set[str], list[tuple[str, str]]]:
        con = duckdb.connect(str(path))
        try:
            found = columns_holding(con, values)
        finally:
            con.close()
        tables = {table for table, _column, _rows in found}
        missed = [
            (table, column)
            for table, column, _rows in found
            if column_role(column) is None and column not in FREE_TEXT_COLUMNS
        ]
        return tables, missed

    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    tables, missed = uncovered(copy)
    assert len(tables) >= 25 and {"raw.events", "ml_scores.ltv_scores"} <= tables
    assert missed == []
    published = tmp_path / "published.duckdb"
    shutil.copy(privacy_pipeline.data_dir / "published" / "warehouse.duckdb", published)
    assert uncovered(published)[1] == []

    con = duckdb.connect(str(copy))
    try:
        con.execute(
            "create table marts.crm_export as select user_id as customer_ref from marts.dim_users"
        )
    finally:
        con.close()
    assert uncovered(copy)[1] == [("marts.crm_export", "customer_ref")]
