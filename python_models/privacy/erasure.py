"""Erase people (GDPR Article 17): `uba erase` and the Dagster job erase_people run `erase()`.

Steps (docs/privacy.md, "Erasure"):
1. resolve the request: user ids and device ids -> every raw id, pseudonym, event, session,
   email and IP that names the people (python_models.privacy.identities);
2. in one transaction: delete their rows from every table that holds identifiers (found by
   column name, python_models.privacy.discovery), redact what other rows quote of them, flag
   the model versions trained on them, take their rows out of the artifacts' reference samples
   and write the erasure log (salted tokens, never the ids);
3. rebuild what counted them: the dbt models that aggregate across people (or, with
   rebuild="full", the whole dbt project), the Python impact tables, the published copy;
4. rewrite every DuckDB file the project wrote into a fresh file (deleted rows leave bytes
   behind otherwise), every Parquet file without the rows, and vacuum every SQLite file (the
   scoring service's trigger audit) without them;
5. mark the erasure complete. A run stopped after step 2 is finished by the next `uba erase`.

Erasing someone the warehouse does not hold, or erasing twice, changes nothing and says so.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from python_models.common.registry import utc_now
from python_models.config import DBT_PROJECT_DIR, get_settings
from python_models.privacy import artifacts
from python_models.privacy.deletion import TableErasure, delete_person_rows
from python_models.privacy.discovery import personal_tables
from python_models.privacy.files import (
    compact_database,
    files_containing,
    project_files,
    rewrite_parquet,
    scrub_sqlite,
    sqlite_files,
)
from python_models.privacy.identities import Identity, check_salt, resolve
from python_models.privacy.pseudonyms import (
    NAMESPACES,
    pseudonymize,
    request_token,
    salt_fingerprint,
)
from python_models.privacy.sensitive import sensitive_property_keys
from python_models.warehouse import connect

LOG_TABLE = "privacy.erasure_log"
LOG_IDENTIFIERS_TABLE = "privacy.erasure_log_identifiers"
LOG_TABLES_TABLE = "privacy.erasure_log_tables"
REBUILD_MODES = ("targeted", "full", "none")
# Folders under UBA_DATA_DIR that hold input files (the source system's copy, loaded by hash:
# rewriting them would load them again) or the generator's planted truth.
INPUT_FOLDERS = ("sample",)


@dataclass
class ErasureResult:
    erasure_id: str | None
    outcomes: dict[str, str]  # identifier token -> user / device / shared_device / not_found
    tables: list[TableErasure] = field(default_factory=list)
    flagged_models: list[tuple[str, str]] = field(default_factory=list)
    artifacts_scrubbed: list[str] = field(default_factory=list)
    files_rewritten: list[str] = field(default_factory=list)
    rebuilt: str = "none"
    seconds: dict[str, float] = field(default_factory=dict)
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    # Every string that named the people (raw ids, pseudonyms, emails, IPs): kept in memory
    # for verification only, never written.
    needles: set[str] = field(default_factory=set, repr=False)

    @property
    def rows_deleted(self) -> int:
        return sum(t.rows_deleted for t in self.tables)


def _log(message: str) -> None:
    print(f"[erase] {message}", file=sys.stderr, flush=True)


def ensure_log_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists privacy")
    con.execute(
        f"""
        create table if not exists {LOG_TABLE} (
            erasure_id varchar primary key,
            requested_at timestamp not null,
            erased_at timestamp not null,
            completed_at timestamp,
            status varchar not null,
            rebuild varchar not null,
            identifiers bigint not null,
            rows_deleted bigint not null,
            salt_fingerprint varchar not null
        )
        """
    )
    con.execute(
        f"""
        create table if not exists {LOG_IDENTIFIERS_TABLE} (
            erasure_id varchar not null,
            identifier_token varchar not null,
            outcome varchar not null,
            primary key (erasure_id, identifier_token)
        )
        """
    )
    con.execute(
        f"""
        create table if not exists {LOG_TABLES_TABLE} (
            erasure_id varchar not null,
            table_name varchar not null,
            rows_deleted bigint not null,
            rows_redacted bigint not null,
            primary key (erasure_id, table_name)
        )
        """
    )


def read_ids(ids: list[str] | None = None, path: str | Path | None = None) -> list[str]:
    """Identifiers from the arguments and/or a file (one per line; blank lines and lines
    starting with # are skipped), in order, without repeats."""
    collected = list(ids or [])
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ValueError(f"{path}: no such file of identifiers") from None
        collected += [
            line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
        ]
    cleaned = [i.strip() for i in collected if i and i.strip()]
    return list(dict.fromkeys(cleaned))


def _already_erased(con: duckdb.DuckDBPyConnection, tokens: list[str]) -> dict[str, str]:
    """token -> date it was erased, for tokens an earlier erasure found."""
    rows = con.execute(
        f"""
        select identifiers.identifier_token, min(log.erased_at)::date
        from {LOG_IDENTIFIERS_TABLE} as identifiers
        inner join {LOG_TABLE} as log using (erasure_id)
        where identifiers.identifier_token in (select unnest(?))
          and identifiers.outcome <> 'not_found'
        group by 1
        """,
        [tokens],
    ).fetchall()
    return {token: str(day) for token, day in rows}


def _stopped_request(
    con: duckdb.DuckDBPyConnection, ids: list[str], tokens: dict[str, str], salt: str
) -> Identity:
    """For ids an unfinished erasure found (its raw rows are gone, so `resolve` finds nothing):
    what the ids alone give, their pseudonyms as user and device, so the other files of a
    stopped run are still cleaned. Empty for anyone else."""
    identity = Identity(requested=list(ids))
    recorded = {
        row[0]
        for row in con.execute(
            f"""
            select identifiers.identifier_token
            from {LOG_IDENTIFIERS_TABLE} as identifiers
            inner join {LOG_TABLE} as log using (erasure_id)
            where log.status <> 'complete' and identifiers.outcome <> 'not_found'
              and identifiers.identifier_token in (select unnest(?))
            """,
            [list(tokens.values())],
        ).fetchall()
    }
    for raw_id in (i for i in ids if tokens[i] in recorded):
        identity.user_ids.add(raw_id)
        identity.devices.add(raw_id)
        identity.person_keys |= {pseudonymize(raw_id, ns, salt) for ns in NAMESPACES}
        identity.device_keys.add(pseudonymize(raw_id, "anon", salt))
    return identity


def _unfinished(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        f"select erasure_id, rebuild from {LOG_TABLE} where status <> 'complete' order by 1"
    ).fetchall()


def _write_log(
    con: duckdb.DuckDBPyConnection,
    erasure_id: str,
    requested_at,
    rebuild: str,
    outcomes: dict[str, str],
    tables: list[TableErasure],
    salt: str,
) -> None:
    now = utc_now()
    con.execute(
        f"insert into {LOG_TABLE} values (?, ?, ?, null, 'rows_deleted', ?, ?, ?, ?)",
        [
            erasure_id,
            requested_at,
            now,
            rebuild,
            len(outcomes),
            sum(t.rows_deleted for t in tables),
            salt_fingerprint(salt),
        ],
    )
    con.executemany(
        f"insert into {LOG_IDENTIFIERS_TABLE} values (?, ?, ?)",
        [[erasure_id, token, outcome] for token, outcome in sorted(outcomes.items())],
    )
    if tables:
        con.executemany(
            f"insert into {LOG_TABLES_TABLE} values (?, ?, ?, ?)",
            [[erasure_id, t.table, t.rows_deleted, t.rows_redacted] for t in tables],
        )


def dbt_layer_schemas() -> set[str]:
    """The schemas dbt writes models to (`+schema` of each folder in dbt_project.yml)."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "+schema" and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)

    walk(project.get("models", {}))
    return found


def aggregate_models(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The dbt tables a deletion cannot fix row by row, rebuilt after it: tables without a
    person column count across people (reports, snapshot grids), and tables keyed by device
    (a device column, no event column) count the people seen on each device. Every other
    table's rows are one person's (or one of their events'), exact once those rows are gone;
    tests/integration/test_privacy_erasure.py compares the result with a full refresh."""
    schemas = dbt_layer_schemas()
    roles = {t.label: t.roles for t in personal_tables(con)}
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_catalog = current_database() "
        "and table_schema in (select unnest(?)) order by 1, 2",
        [sorted(schemas)],
    ).fetchall()
    rebuilt = []
    for schema, name in rows:
        table_roles = roles.get(f"{schema}.{name}", {})
        per_device = "device" in table_roles and "event" not in table_roles
        if "person" not in table_roles or per_device:
            rebuilt.append(name)
    return rebuilt


def _rebuild_dbt(path: Path, mode: str, models: list[str]) -> None:
    from python_models.dbt_runner import run_dbt

    if mode == "full":
        run_dbt(["build", "--full-refresh"], duckdb_path=path, quiet=True)
    elif mode == "targeted" and models:
        # --full-refresh: an incremental aggregate (int_identity_stitched) would otherwise see
        # no new batch and keep the counts of the erased people.
        run_dbt(["build", "--select", *models, "--full-refresh"], duckdb_path=path, quiet=True)


def _refresh_python_aggregates(path: Path) -> list[str]:
    """Recompute the impact tables that counted people (each only if it exists)."""
    from python_models.warehouse import table_exists

    warnings = []
    con = connect(path)
    try:
        steps: list[tuple[str, Callable]] = []
        if table_exists(con, "impact.experiment_results"):
            from python_models.impact.experiments import run_experiment_analysis

            steps.append(("impact.experiment_results", run_experiment_analysis))
        if table_exists(con, "impact.score_lift_by_decile"):
            from python_models.impact.lift import run_lift

            steps.append(("impact.score_lift_by_decile", run_lift))
        for name, step in steps:
            try:
                step(con)
            except Exception as err:  # noqa: BLE001 - the next daily_refresh recomputes it
                warnings.append(f"{name} not recomputed ({err}); the next daily_refresh does")
                try:
                    con.execute("rollback")
                except duckdb.Error:
                    pass
    finally:
        con.close()
    return warnings


def _finish(
    path: Path,
    erasure_ids: list[str],
    identity: Identity | None,
    result: ErasureResult,
    publish: bool,
) -> None:
    """Steps 4-5: other files, compaction, the published copy, then the log says complete."""
    settings = get_settings()
    republish = publish and (settings.published_dir / "warehouse.duckdb").exists()
    exclude = [settings.data_dir / folder for folder in INPUT_FOLDERS] + [settings.input_path]
    if republish:  # replaced whole below; otherwise scrubbed in place like any other file
        exclude.append(settings.published_dir)
    started = time.perf_counter()
    duckdb_files, parquet_files = project_files(settings.data_dir, exclude)
    others = [p for p in duckdb_files if p.resolve() != path.resolve()]
    in_warehouse = len(result.tables)
    if identity is not None:
        for other in others:
            con = connect(other)
            try:
                con.execute("begin transaction")
                tables = delete_person_rows(con, identity)
                con.execute("commit")
            finally:
                con.close()
            result.tables += [
                TableErasure(f"{_relative(other)}:{t.table}", t.rows_deleted, t.rows_redacted)
                for t in tables
            ]
        for parquet in parquet_files:
            removed = rewrite_parquet(parquet, identity)
            if removed:
                result.files_rewritten.append(str(parquet))
                result.tables.append(TableErasure(_relative(parquet), removed, 0))
        for database in sqlite_files(settings.data_dir, exclude):
            removed = scrub_sqlite(database, identity)
            if removed:
                result.files_rewritten.append(str(database))
                result.tables.append(TableErasure(_relative(database), removed, 0))
    for file in [path, *others]:
        compact_database(file, settings.duckdb_memory_limit)
        result.files_rewritten.append(str(file))
    result.seconds["files"] = time.perf_counter() - started
    if republish:
        from python_models.publish import publish_warehouse

        started = time.perf_counter()
        con = connect(path)
        try:
            publish_warehouse(con, settings.published_dir)
        finally:
            con.close()
        result.files_rewritten.append(str(settings.published_dir))
        result.seconds["publish"] = time.perf_counter() - started
    in_files = result.tables[in_warehouse:]
    con = connect(path)
    try:
        con.execute("begin transaction")
        if in_files and result.erasure_id:  # the other files' rows, in this request's log
            con.executemany(
                f"insert into {LOG_TABLES_TABLE} values (?, ?, ?, ?)",
                [[result.erasure_id, t.table, t.rows_deleted, t.rows_redacted] for t in in_files],
            )
            con.execute(
                f"update {LOG_TABLE} set rows_deleted = rows_deleted + ? where erasure_id = ?",
                [sum(t.rows_deleted for t in in_files), result.erasure_id],
            )
        con.execute(
            f"update {LOG_TABLE} set status = 'complete', completed_at = ? "
            "where erasure_id in (select unnest(?))",
            [utc_now(), erasure_ids],
        )
        con.execute("commit")
    finally:
        con.close()


def _relative(file: Path) -> str:
    """A file's name in the log: its path under the data folder."""
    try:
        return str(Path(file).resolve().relative_to(get_settings().data_dir.resolve()))
    except ValueError:
        return str(file)


def erase(
    ids: list[str],
    rebuild: str = "targeted",
    duckdb_path: str | Path | None = None,
    publish: bool = True,
) -> ErasureResult:
    """Erase the people named by `ids` (raw user or device ids) everywhere; see the module
    docstring. Returns what was done; nothing found is a message, not an error."""
    if rebuild not in REBUILD_MODES:
        raise ValueError(f"rebuild must be one of {REBUILD_MODES}, got {rebuild!r}")
    settings = get_settings()
    path = Path(duckdb_path) if duckdb_path else settings.duckdb_path
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: nothing to erase")
    salt = settings.pseudonym_salt
    tokens = {identifier: request_token(identifier, salt) for identifier in ids}
    requested_at = utc_now()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    con = connect(path)
    try:
        ensure_log_tables(con)
        artifacts.swap_in_pending(con)
        check_salt(con, salt)
        identity = resolve(con, ids, salt, sensitive_property_keys())
        outcomes = {tokens[i]: identity.outcome.get(i, "not_found") for i in ids}
        unfinished = _unfinished(con)
        timings["resolve"] = time.perf_counter() - started
        if not identity.found:
            identity = _stopped_request(con, ids, tokens, salt)
            result = ErasureResult(None, outcomes, seconds=timings)
            erased_on = _already_erased(con, list(tokens.values()))
            parts = []
            if erased_on:
                days = sorted(set(erased_on.values()))
                parts.append(
                    f"{len(erased_on)} identifier(s) already erased (on {', '.join(days)}): "
                    "nothing left to remove"
                )
            missing = len(ids) - len(erased_on)
            if missing:
                parts.append(
                    f"{missing} identifier(s) not found in the warehouse: nothing to erase"
                )
            if unfinished:
                parts.append(f"finishing {len(unfinished)} erasure(s) stopped before the end")
            result.message = "; ".join(parts) or "no identifiers given"
        else:
            erasure_id = uuid.uuid4().hex[:16]
            result = ErasureResult(erasure_id, outcomes, seconds=timings)
            result.needles = identity.needles()
            plans: list[artifacts.ArtifactScrub] = []
            if artifacts.registry_rows(con):  # models trained: their samples may hold them
                person_rows = artifacts.person_feature_rows(con, identity, _feature_tables())
                plans, problems = artifacts.plan_scrubs(con, person_rows)
                result.warnings += problems
            step = time.perf_counter()
            con.execute("begin transaction")
            try:
                result.tables = delete_person_rows(con, identity)
                result.flagged_models = artifacts.flag_models(
                    con, identity, erasure_id, requested_at
                )
                artifacts.record_scrubs(con, plans)
                _write_log(con, erasure_id, requested_at, rebuild, outcomes, result.tables, salt)
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                artifacts.discard_pending(plans)
                raise
            artifacts.swap_in_pending(con)
            result.artifacts_scrubbed = [f"{p.model_name} {p.model_version}" for p in plans]
            timings["delete"] = time.perf_counter() - step
            unfinished.append((erasure_id, rebuild))
            people = len(identity.user_ids) + len(identity.devices)
            result.message = (
                f"erased {len(identity.user_ids)} user(s) and {len(identity.devices)} device(s) "
                f"({result.rows_deleted} rows in {len(result.tables)} tables)"
                if people
                else f"erased the anonymous events of {len(identity.shared_devices)} device(s)"
            )
            shared = identity.shared_devices - set(ids)
            if shared:
                result.warnings.append(
                    f"{len(shared)} device(s) also used by other people were kept as theirs "
                    "(the erased person's events on them are gone)"
                )
        models = aggregate_models(con) if unfinished else []
    finally:
        con.close()

    if not unfinished:
        return result
    modes = {mode for _id, mode in unfinished}
    mode = "full" if "full" in modes else ("targeted" if "targeted" in modes else "none")
    step = time.perf_counter()
    _log(f"rebuilding the models that counted them ({mode})")
    _rebuild_dbt(path, mode, models)
    result.rebuilt = mode
    timings["dbt"] = time.perf_counter() - step
    step = time.perf_counter()
    result.warnings += _refresh_python_aggregates(path)
    timings["python_aggregates"] = time.perf_counter() - step
    _log("rewriting the files that held them")
    _finish(
        path,
        [erasure_id for erasure_id, _mode in unfinished],
        identity,
        result,
        publish,
    )
    timings["total"] = time.perf_counter() - started
    return result


def _feature_tables() -> list[str]:
    """Every warehouse table a listed model reads (its spec's inputs)."""
    from python_models.models import MODELS

    return sorted({table for spec in MODELS for table in spec.inputs})


def verification_needles(ids: list[str], result: ErasureResult) -> set[str]:
    """What must be in no file after erasing `ids`: the ids, their pseudonyms as user and as
    device, and whatever the erasure found naming them."""
    salt = get_settings().pseudonym_salt
    hashed = {pseudonymize(i, ns, salt) for i in ids for ns in NAMESPACES}
    return set(ids) | hashed | result.needles


def leftover_files(needles: set[str]) -> dict[Path, set[str]]:
    """Files the project wrote (DuckDB, Parquet, SQLite and its write-ahead log) that still
    hold any of `needles` as bytes."""
    settings = get_settings()
    exclude = [settings.data_dir / folder for folder in INPUT_FOLDERS] + [settings.input_path]
    duckdb_files, parquet_files = project_files(settings.data_dir, exclude)
    sqlite = sqlite_files(settings.data_dir, exclude)
    logs = [log for db in sqlite if (log := db.with_name(db.name + "-wal")).exists()]
    return files_containing([*duckdb_files, *parquet_files, *sqlite, *logs], needles)
