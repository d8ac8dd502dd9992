"""Processes seen through /proc (Linux): who a process's children are, whether one still runs;
the session's dbt fork server (tests/conftest.py) once it listens."""

from __future__ import annotations

import os
import time
from pathlib import Path

from python_models import dbt_fork


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running or sleeping; False once it exited, even before its parent reaped it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    """Whether the process stops running within `seconds`."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def listening_fork_server() -> Path:
    """The worker's dbt fork server's folder once it accepts runs (its warm-up takes ~10 s after
    the session starts; until then its executable runs dbt itself)."""
    folder = Path(os.environ[dbt_fork.SERVER_ENV])
    deadline = time.monotonic() + 120
    while not Path(dbt_fork.socket_path(folder)).exists():
        assert time.monotonic() < deadline, "the session's dbt fork server never listened"
        time.sleep(0.2)
    return folder
