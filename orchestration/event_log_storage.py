"""Dagster's SQLite event log, keeping its database connections between events.

Dagster's SqliteEventLogStorage creates a new SQLAlchemy engine (NullPool) for every
connection: each stored event builds an engine, opens the file, compiles its statements afresh
(SQLAlchemy caches compiled statements on the engine) and disposes of it, and an asset check
event takes three or four such connections. A daily run stores ~850 events (each dbt data test
is an asset check: planned, output, evaluation), so this was ~3 s of CPU in a 1M day of ~40
(docs/performance.md, "Dagster's event log keeps its connections"). This storage keeps one
engine per database file: the index's for the storage's life, the run files' for the
RUN_FILES_KEPT_OPEN most recently used (a webserver reads many runs' files).

The files, their schema, Dagster's lock around each connection and its transactions are
unchanged, so the webserver, the daemon and other run processes read and write the same files
as before: SQLite locks last a transaction, and a connection kept between them holds none.
One thing follows from keeping them: Dagster's files are in WAL mode, and a run's events now
stay in its write-ahead log (`<run>.db-wal`) until SQLite checkpoints them (every ~4 MB, or
when the last connection closes, which Dagster's storage did after every event), while
Dagster's watcher of a live run (the webserver's run view) waits for changes of `<run>.db`
itself; this storage's watcher also follows the write-ahead log.
Configured in orchestration/dagster.yaml (copied into a new $DAGSTER_HOME by scripts/env.sh).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from dagster import _check as check
from dagster._config import StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from watchdog.observers import Observer

# Run files whose engines stay open (each holds one SQLite connection when idle).
RUN_FILES_KEPT_OPEN = 8


def event_log_dir(dagster_home: str) -> str:
    """Where Dagster's default SQLite event log keeps its files (InstanceRef.config_defaults),
    so a home switched to this storage keeps its earlier runs' events."""
    return os.path.join(dagster_home, "history", "runs")


class _RunFileWatcher(SqliteEventLogStorageWatchdog):
    """Dagster's watcher of one run's events, woken by writes to the run's file or to its
    write-ahead log, where a kept connection's commits land."""

    def __init__(self, storage: SqliteEventLogStorage, run_id: str, callback, cursor):
        super().__init__(storage, run_id, callback, cursor)
        self._patterns = [self._log_path, f"{self._log_path}-wal"]

    def on_modified(self, event) -> None:
        self._process_log()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with one engine per database file, kept between connections.

    dagster.yaml::

        event_log_storage:
          module: orchestration.event_log_storage
          class: PooledSqliteEventLogStorage
          config:
            dagster_home: {env: DAGSTER_HOME}
    """

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._tables_found: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls):
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteEventLogStorage:
        return cls(event_log_dir(config_value["dagster_home"]), inst_data=inst_data)

    def _engine(self, shard: str) -> db.engine.Engine:
        """The file's engine, the most recently used last; called holding self._db_lock."""
        if os.getpid() != self._engines_pid:  # a forked child: the parent's connections stay its
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = db.create_engine(
                self.conn_string_for_shard(shard),
                # Dagster's lock lets one connection at a time use the storage; setting a file
                # up (_initdb) opens a second for a moment, closed when returned.
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
        self._engines[shard] = engine
        run_files = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in run_files[:-RUN_FILES_KEPT_OPEN]:
            self._engines.pop(name).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:
        with self._db_lock:
            check.str_param(shard, "shard")
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Asked before every asset check event is stored; a table, once there, stays. Dagster
        # also asks inside its own connections, so a miss asks as it does (an engine of its own).
        if table_name not in self._tables_found and super().has_table(table_name):
            self._tables_found.add(table_name)
        return table_name in self._tables_found

    def watch(self, run_id: str, cursor: str | None, callback) -> None:
        # SqliteEventLogStorage.watch with the watcher above.
        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watcher = _RunFileWatcher(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (
            watcher,
            self._obs.schedule(watcher, self._base_dir, recursive=True),
        )

    def _close_files(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close_files()  # before the run files are deleted under them
        super().wipe()

    def dispose(self) -> None:
        self._close_files()
        super().dispose()
