"""The Dagster instance orchestration/dagster.yaml configures: its event log keeps its SQLite
connections between events (orchestration/event_log_storage.py) and stays Dagster's files, read
and written by other processes as Dagster's own storage reads and writes them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import dagster as dg
import pytest

from orchestration import event_log_storage
from python_models.config import REPO_ROOT

CHECKS = 12


@dg.asset
def events_table():
    return 1


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(f"check_{k}", asset=events_table) for k in range(CHECKS)]
)
def data_tests():
    for k in range(CHECKS):  # one failing check, as a failing data test would be
        yield dg.AssetCheckResult(asset_key="events_table", check_name=f"check_{k}", passed=k != 3)


@pytest.fixture
def home(tmp_path_factory, monkeypatch):
    """A new $DAGSTER_HOME set up as scripts/env.sh sets one up (the repository's dagster.yaml)."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO_ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance(home):
    """The home's instance, disposed of at the end (its storage closes the files it keeps)."""
    instance = dg.DagsterInstance.get()
    yield instance
    instance.dispose()


def _process_env(home: Path) -> dict[str, str]:
    """Another process on the same home (a run process, the webserver)."""
    return {"DAGSTER_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}


def _in_another_process(code: str, home: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_process_env(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _open_run_files(base_dir: Path) -> list[str]:
    """This process's open file descriptors on the event log's per-run database files."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        name = Path(target.removesuffix(" (deleted)")).name
        if target.startswith(str(base_dir)) and name.endswith(".db") and name != "index.db":
            found.append(target)
    return found


def test_a_home_set_up_by_env_sh_stores_runs_dagster_s_own_storage_reads(home, instance):
    storage = instance.event_log_storage
    assert isinstance(storage, event_log_storage.PooledSqliteEventLogStorage)
    assert Path(storage._base_dir) == home / "history" / "runs"  # where Dagster's own keeps them

    first = dg.materialize([events_table, data_tests], instance=instance, raise_on_error=False)
    second = dg.materialize([events_table, data_tests], instance=instance, raise_on_error=False)
    evaluations = instance.get_records_for_run(
        second.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    assert len(evaluations) == CHECKS
    failed = [r.event_log_entry.dagster_event.event_specific_data for r in evaluations]
    assert [e.check_name for e in failed if not e.passed] == ["check_3"]

    # Dagster's own SQLite storage, in another process, reads the same files: every event of
    # both runs, and the asset's latest materialization from the cross-run index.
    seen = _in_another_process(
        f"""
        from dagster import AssetKey
        from dagster._core.storage.event_log import SqliteEventLogStorage
        storage = SqliteEventLogStorage({str(storage._base_dir)!r})
        counts = [len(storage.get_records_for_run(run, limit=100000).records)
                  for run in ({first.run_id!r}, {second.run_id!r})]
        latest = storage.get_latest_materialization_events([AssetKey("events_table")])
        print(counts[0], counts[1], latest[AssetKey("events_table")].run_id)
        """,
        home,
    )
    ours = [
        len(instance.get_records_for_run(run.run_id, limit=100000).records)
        for run in (first, second)
    ]
    assert seen.split() == [str(ours[0]), str(ours[1]), second.run_id]
    assert ours[0] > 3 * CHECKS  # planned, output and evaluation of each check, at least


def test_kept_connections_see_what_another_process_stores(home, instance):
    mine = dg.materialize([events_table, data_tests], instance=instance, raise_on_error=False)
    key = dg.AssetKey("events_table")
    assert instance.get_latest_materialization_event(key).run_id == mine.run_id

    # A run process of its own (as the daemon launches them) stores a newer materialization.
    theirs = _in_another_process(
        """
        import dagster as dg

        @dg.asset
        def events_table():
            return 2

        print(dg.materialize([events_table], instance=dg.DagsterInstance.get()).run_id)
        """,
        home,
    )
    assert instance.get_latest_materialization_event(key).run_id == theirs
    assert len(instance.get_records_for_run(theirs).records) > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_run_files_kept_open_are_bounded_and_a_wipe_closes_them(instance, monkeypatch):
    monkeypatch.setattr(event_log_storage, "RUN_FILES_KEPT_OPEN", 2)
    base_dir = Path(instance.event_log_storage._base_dir)
    runs = [dg.materialize([events_table], instance=instance).run_id for _ in range(4)]
    assert len(list(base_dir.glob("*-*.db"))) == 4
    open_files = _open_run_files(base_dir)
    assert 1 <= len(open_files) <= 2
    assert {Path(f).stem for f in open_files} <= set(runs[-2:])  # the most recently used

    instance.wipe()
    assert list(base_dir.glob("*-*.db")) == []
    assert _open_run_files(base_dir) == []  # no connection left on a deleted file
    after = dg.materialize([events_table, data_tests], instance=instance, raise_on_error=False)
    assert len(instance.get_records_for_run(after.run_id, limit=100000).records) > 3 * CHECKS


def test_a_live_run_s_watcher_sees_the_events_another_process_keeps_writing(home, instance):
    # The webserver's run view watches a run's events as a run process stores them. That
    # process keeps its connection, so its commits stay in the write-ahead log (no checkpoint
    # into the run's file, as Dagster's own storage made after every event).
    run_id = str(uuid.uuid4())
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                import dagster as dg
                from dagster._core.events.log import EventLogEntry

                storage = dg.DagsterInstance.get().event_log_storage

                def store(message):
                    storage.store_event(EventLogEntry(
                        error_info=None, level="INFO", user_message=message, run_id={run_id!r},
                        timestamp=time.time(), step_key=None, job_name=None, dagster_event=None))

                store("before the watch")
                print("ready", flush=True)
                sys.stdin.readline()
                for k in range(3):
                    store(f"live {{k}}")
                print("stored", flush=True)
                sys.stdin.readline()  # connections kept until the test is done
                """
            ),
        ],
        env=_process_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    all_live = threading.Event()

    def on_event(entry, cursor):
        seen.append(entry.user_message)
        if sum(m.startswith("live") for m in seen) == 3:
            all_live.set()

    try:
        assert writer.stdout.readline().strip() == "ready"
        instance.watch_event_logs(run_id, None, on_event)
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "stored"
        assert all_live.wait(timeout=20), f"the watcher saw {seen}"
        assert [m for m in seen if m.startswith("live")] == ["live 0", "live 1", "live 2"]
    finally:
        instance.end_watch_event_logs(run_id, on_event)
        writer.stdin.close()
        writer.wait(timeout=60)
