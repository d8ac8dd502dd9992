"""`uba dev` (dagster dev) started as a background job would be (SIGINT ignored) stops, with every
process it started, on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _session_pids(sid: int) -> set[int]:
    """Live processes of session `sid` (zombies left out)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (in parentheses): state, ppid, pgrp, session...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.add(int(entry.name))
    return pids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_background_job() -> None:
    """What `cmd &` in a non-interactive shell does to a child: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_uba_dev_stops_on_sigterm_when_started_with_sigint_ignored(tmp_path):
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "UBA_ALLOW_DEV_SALT": "1"}
    uba = str(Path(sys.executable).with_name("uba"))
    process = subprocess.Popen(
        [uba, "dev", "--", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_as_background_job,
    )
    sid = process.pid
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "uba dev exited before serving"
                time.sleep(1)
        else:
            pytest.fail("the Dagster UI did not listen within 240 s")
        started = _session_pids(sid)
        assert len(started) >= 3, started  # dagster dev, its webserver and daemon at least

        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 90
        while _session_pids(sid) and time.monotonic() < deadline:
            process.poll()
            time.sleep(1)
        assert not _session_pids(sid), f"still running after SIGTERM: {_session_pids(sid)}"
        assert process.wait(timeout=5) == 0
    finally:
        for pid in _session_pids(sid):
            os.kill(pid, signal.SIGKILL)
        process.poll()
