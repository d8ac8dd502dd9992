"""A throwaway PostgreSQL server for tests and benchmarks (no Docker, no root login).

initdb + pg_ctl in a temporary directory, trust auth, listening on loopback only at a free
port, fsync off; started as the unprivileged `postgres` OS user when we run as root (initdb
refuses root). `scripts/test.sh` installs Debian's postgresql when the binaries are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]
USER = "uba"
DATABASE = "uba"


class NoPostgres(RuntimeError):
    """The server binaries (or a way to run them) are missing: callers skip."""


def pg_bin() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    return next((p for p in PG_BIN_CANDIDATES if (p / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_db_user(cmd: list[str]) -> list[str]:
    """initdb refuses to run as root: run server commands as the `postgres` OS user then."""
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("runuser"):
        raise NoPostgres("running as root and runuser is missing: cannot start PostgreSQL")
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def throwaway_postgres(settings: dict[str, str] | None = None) -> Iterator[int]:
    """Start a server, create the `uba` database owned by the `uba` role, yield its port;
    stop it and remove its files afterwards. `settings` are extra server settings."""
    bin_dir = pg_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise NoPostgres(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        )
    # pytest's tmp_path root is private to root (0700), so the cluster lives in its own
    # temporary directory that the postgres user can own.
    root = Path(tempfile.mkdtemp(prefix="uba-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    data, port = root / "data", _free_port()
    subprocess.run(
        _as_db_user([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust"])
        + ["-E", "UTF8", "--locale=C"],
        check=True,
        capture_output=True,
    )
    options = {"listen_addresses": "127.0.0.1", "fsync": "off", **(settings or {})}
    flags = f"-p {port} -k {root} " + " ".join(f"-c {k}={v}" for k, v in options.items())
    subprocess.run(
        _as_db_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", flags])
        + ["-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
            check=True,
            capture_output=True,
        )
        yield port
    finally:
        subprocess.run(
            _as_db_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def pg_environment(port: int) -> dict[str, str]:
    """The UBA_* variables that point `uba` (and dbt's postgres target) at the server."""
    return {
        "UBA_WAREHOUSE": "postgres",
        "UBA_PG_HOST": "127.0.0.1",
        "UBA_PG_PORT": str(port),
        "UBA_PG_USER": USER,
        "UBA_PG_PASSWORD": "",
        "UBA_PG_DATABASE": DATABASE,
    }
