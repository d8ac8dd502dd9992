"""The tests' dbt fork server (python_models/dbt_fork.py): a run through it is a child of the
warmed server, with the caller's streams, folder and environment, dbt's own exit status, and
it stops when its caller is killed. tests/conftest.py starts one server per worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from processes import cmdline, gone_within, listening_fork_server, signal_state, start_time

from python_models import dbt_fork
from python_models.config import DBT_PROJECT_DIR
from python_models.dbt_runner import run_dbt

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PROBE = """
import os, sys, time
print(os.getpid(), os.getppid(), "dbt.cli.main" in sys.modules, os.getcwd(),
      os.environ.get("PROBE_VALUE"), flush=True)
line = sys.stdin.readline().strip()
print("read", line, flush=True)
print("to stderr", file=sys.stderr, flush=True)
if line == "sleep":
    time.sleep(120)
sys.exit(int(line))
"""


def _probe(tmp_path: Path, folder: Path) -> subprocess.Popen:
    (tmp_path / "fork_probe.py").write_text(PROBE)
    env = {**os.environ, dbt_fork.SERVER_ENV: str(folder), "PYTHONPATH": str(tmp_path),
           "PROBE_VALUE": "from-the-caller"}  # fmt: skip
    return subprocess.Popen(
        [dbt_fork.executable_path(folder), dbt_fork.MODULE_FLAG, "fork_probe"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_run_is_a_child_of_the_warmed_server_with_the_caller_s_streams_and_status(tmp_path):
    folder = listening_fork_server()
    forked = dbt_fork.forked_runs(folder)
    proc = _probe(tmp_path, folder)
    out, err = proc.communicate("3\n", timeout=60)
    pid, parent, warmed, cwd, value = out.splitlines()[0].split()
    assert proc.returncode == 3
    assert dbt_fork.forked_runs(folder) == forked + 1  # the server's log counts it
    assert int(pid) != proc.pid and "--serve" in cmdline(int(parent))
    assert warmed == "True"  # dbt was imported before the run began
    assert (cwd, value) == (str(tmp_path), "from-the-caller")
    assert out.splitlines()[1] == "read 3" and err.strip() == "to stderr"


def test_dbt_through_the_server_says_and_returns_what_dbt_itself_does(tmp_path):
    folder = listening_fork_server()
    real = str(Path(sys.executable).parent / "dbt")
    runs = {}
    for name, executable in (("server", dbt_fork.executable_path(folder)), ("dbt", real)):
        done = subprocess.run(
            [executable, "run", "--vars", "{not yaml"], capture_output=True, text=True, timeout=120
        )
        runs[name] = (done.returncode, done.stderr.strip().splitlines()[-1])
    assert runs["server"] == runs["dbt"]
    assert runs["dbt"][0] == 2 and "--vars" in runs["dbt"][1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_caller_stops_its_run(tmp_path, signum):
    folder = listening_fork_server()
    proc = _probe(tmp_path, folder)
    proc.stdin.write("sleep\n")
    proc.stdin.flush()
    child = int(proc.stdout.readline().split()[0])
    started = start_time(child)
    assert proc.stdout.readline().strip() == "read sleep"
    os.kill(proc.pid, signum)
    proc.wait(timeout=30)
    assert gone_within(child, 20, started), (
        f"the run (PID {child}) outlived its caller after signal {signum}: "
        f"{signal_state(child)}; the caller exited with {proc.returncode}"
    )
    if signum == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM


def test_a_caller_gone_before_it_read_the_run_s_pid_stops_the_run(tmp_path):
    """A caller killed before it read the line the run sent first (its pid) leaves unread data
    behind, and its end of the connection then reads as a reset, not an end of stream: the
    test above, under load, once killed its caller that early."""
    folder = listening_fork_server()
    (tmp_path / "fork_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    stdin_read, stdin_write = os.pipe()
    out_read, out_write = os.pipe()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(dbt_fork.socket_path(folder))
    argv = [dbt_fork.MODULE_FLAG, "fork_probe"]
    dbt_fork.send_request(conn, argv, str(tmp_path), env, [stdin_read, out_write, out_write])
    os.close(stdin_read)
    os.close(out_write)
    with os.fdopen(out_read) as out, os.fdopen(stdin_write, "w") as to_probe:
        child = int(out.readline().split()[0])  # sent after its pid line to this caller
        started = start_time(child)
        to_probe.write("sleep\n")
        to_probe.flush()
        assert out.readline().strip() == "read sleep"
        conn.close()  # the pid line unread
        assert gone_within(child, 20, started), (
            f"the run (PID {child}) outlived its caller: {signal_state(child)}"
        )


def test_a_server_warms_up_from_a_parse_saved_for_another_profile(tmp_path):
    """The warm-up starts from a saved parse made for another warehouse and target and parses
    only what changed (here nothing), where dbt's own check would parse the project in full;
    the server then serves dbt runs, which keep dbt's own check."""
    saved_for = {**os.environ, "UBA_DUCKDB_PATH": str(tmp_path / "elsewhere.duckdb")}
    done = subprocess.run(
        [dbt_fork.executable_path(listening_fork_server()), "parse", "--quiet",
         "--target-path", str(tmp_path / "saved")],
        cwd=DBT_PROJECT_DIR, env=saved_for, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "srv"
    server = dbt_fork.start_server(folder, tmp_path / "saved" / "partial_parse.msgpack")
    try:
        assert dbt_fork.wait_until_serving(folder, server, 300)
        through = subprocess.run(
            [dbt_fork.executable_path(folder), "parse", "--quiet", "--no-write-json",
             "--target-path", str(tmp_path / "run")],
            cwd=DBT_PROJECT_DIR, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert through.returncode == 0, through.stderr
    finally:
        dbt_fork.stop_server(server)
    warm_log = (folder / "warm" / "logs" / "dbt.log").read_text()
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed" in warm_log
    assert "Starting full parse" not in warm_log
    assert dbt_fork.forked_runs(folder) == 1


def test_waiting_for_a_server_that_died_warming_up_ends_at_once(tmp_path):
    """A server gone before it listened (its warm-up failed): the wait ends then, not at its
    timeout, and says the server does not serve (the executable then runs dbt itself)."""
    died = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    died.wait(timeout=60)
    waited = []
    waiting = threading.Thread(
        target=lambda: waited.append(dbt_fork.wait_until_serving(tmp_path, died, 3600))
    )
    waiting.start()
    waiting.join(timeout=60)
    assert waited == [False]


def test_without_a_server_the_executable_runs_the_command_itself(tmp_path):
    folder = tmp_path / "no-server"
    dbt_fork.write_executable(folder)
    proc = _probe(tmp_path, folder)
    out, _ = proc.communicate("0\n", timeout=60)
    pid, _parent, warmed, *_ = out.split()
    assert proc.returncode == 0
    assert int(pid) == proc.pid and warmed == "False"  # the executable became the command


def test_a_run_s_warehouse_file_is_whole_when_the_run_returns(tmp_path):
    """The child closes the warehouse as a process's exit does before the caller hears the
    status (found by the daily tests, which copy the file alone right after a run): DuckDB
    folds its write-ahead log into the file when the database closes."""
    listening_fork_server()  # the run below goes through the server
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text('name: forked\nversion: "1.0"\nprofile: uba\n')
    (project / "models" / "answers.sql").write_text("select 42 as answer")
    path = tmp_path / "w.duckdb"
    run_dbt(["run"], path, quiet=True, target_path=tmp_path / "target", project_dir=project)
    assert not Path(f"{path}.wal").exists()
    shutil.copy(path, tmp_path / "copy.duckdb")
    con = duckdb.connect(str(tmp_path / "copy.duckdb"), read_only=True)
    try:
        assert con.execute("select answer from main.answers").fetchall() == [(42,)]
    finally:
        con.close()
