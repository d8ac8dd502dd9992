"""Processes seen through /proc (Linux): who a process's children are, whether one still runs;
the session's dbt fork server (tests/conftest.py) once it listens."""

from __future__ import annotations

import os
import time
from pathlib import Path

from python_models import dbt_fork


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(proc.name))
        if fields is not None and int(fields[1]) == pid:
            found.append(int(proc.name))
    return found


def cmdline(pid: int) -> str:
    """The process's command line, its arguments joined by spaces; "" once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks after boot): tells a PID reused since apart."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, started: int | None = None) -> bool:
    """Running or sleeping; False once it exited, even before its parent reaped it, and, given
    its `started` (start_time), once the PID names another process."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


def gone_within(pid: int, seconds: float, started: int | None = None) -> bool:
    """Whether the process stops running within `seconds` (`started`: as for alive)."""
    deadline = time.monotonic() + seconds
    while alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def signal_state(pid: int) -> str:
    """The process's state and signal masks from /proc/PID/status, for an assertion message."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "gone"
    keep = ("State", "PPid", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return "; ".join(line.replace("\t", " ") for line in lines if line.startswith(keep))


def listening_fork_server() -> Path:
    """The worker's dbt fork server's folder once it accepts runs (its warm-up takes ~10 s after
    the session starts; until then its executable runs dbt itself)."""
    folder = Path(os.environ[dbt_fork.SERVER_ENV])
    assert dbt_fork.wait_until_serving(folder, None, 120), (
        "the session's dbt fork server never listened"
    )
    return folder
