"""A dbt fork server: one process imports dbt once, and every dbt run forks from it.

A dbt process spends ~4 s importing dbt and ~2-3 s more building what its first parse needs
(JSON schemas, serializers), before it looks at a model; a run that starts from a saved parse
of this project costs ~7-8 s where a child forked from a warmed process costs ~1 s. Runs that
start dbt many times, such as the test suite (dozens of runs per worker), pay it each time. The
server pays it once: it imports dbt, parses this project in a scratch folder, then forks one
child per run. The child takes over the caller's working folder, environment and standard
streams, and runs dbt's own command line (or a module, for python_models.dbt_warm) exactly as
the `dbt` executable would; the caller gets dbt's output and exit status as from a process.

UBA_DBT_FORK_SERVER (a folder; set by tests/conftest.py only; python_models.config
.dbt_fork_server): where the server listens (`socket`) and the `dbt` executable that runs
through it (python_models.dbt_runner.dbt_executable returns it; Dagster's dbt resource uses
the same). That executable is this file run as a script: it needs the standard library only,
so it starts in milliseconds. It passes its own stdin, stdout and stderr to the child,
forwards SIGTERM, SIGINT and SIGHUP to it, and exits with its status once the child has
exited; the child stops (SIGTERM) when the executable goes away, as a dbt subprocess does with
its parent (python_models.dbt_runner: PR_SET_PDEATHSIG). Before the server listens, or when it
is gone, the executable runs dbt itself (the venv's `dbt`), so a run never depends on the
server being up.

`uba build` and `uba refresh` do not use it: they start dbt once or twice, and
python_models.dbt_runner.WarmDbt already starts it beside the gate. A Dagster run does
(orchestration/defs/dbt.py, UbaDbtCliResource): dagster-dbt starts its dbt process itself,
when the dbt asset's step begins, so the run's dbt resource starts a server of its own as the
run starts (beside the load and the gate), waits for it to serve when its dbt step comes
(`wait_until_serving`) and stops it when the run ends; the server's log counts the runs it
forked (`forked_runs`). The server keeps dbt's compiled Jinja templates
(python_models/dbt_templates.py) before it warms up: each child starts with those it read and
adds what it compiles to the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading

SERVER_ENV = "UBA_DBT_FORK_SERVER"
SOCKET_NAME = "socket"
EXECUTABLE_NAME = "dbt"
# First argument of the executable that runs a module instead of dbt's command line.
MODULE_FLAG = "--uba-module"
# Set by python_models.dbt_runner when it put a parse from its parse cache (UBA_DBT_PARSE_CACHE)
# in the run's target folder: the cache's key holds everything dbt's check of a saved parse
# compares except where the warehouse's files lie, which dbt hashes with the profile.
SAVED_PARSE_ENV = "UBA_DBT_PARSE_FROM_CACHE"
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
LOG_NAME = "server.log"
_FORKED = "forking a run"  # the server's log line for each run it forks
_HEADER = 8  # bytes of the request's length


def socket_path(folder: str | os.PathLike) -> str:
    return os.path.join(os.fspath(folder), SOCKET_NAME)


def executable_path(folder: str | os.PathLike) -> str:
    return os.path.join(os.fspath(folder), EXECUTABLE_NAME)


# ---- the executable (standard library only) --------------------------------------------------


def _run_without_server(argv: list[str]) -> None:
    """Replace this process with the dbt (or module) run the server would have forked."""
    python = sys.executable
    if argv[:1] == [MODULE_FLAG]:
        os.execv(python, [python, "-m", *argv[1:]])
    dbt = os.path.join(os.path.dirname(python), "dbt")
    os.execv(dbt, [dbt, *argv])


def _read_line(reader) -> str | None:
    """One line the child sent (its pid, then its status), None at end of stream; buffered, as
    both lines can arrive in one read."""
    line = reader.readline()
    return line.decode().strip() if line.endswith(b"\n") else None


def send_request(
    conn: socket.socket, argv: list[str], cwd: str, env: dict[str, str], fds: list[int]
) -> None:
    """Ask the server for a run of `argv` in `cwd` with `env`, its stdin, stdout and stderr
    the descriptors `fds`."""
    request = json.dumps({"argv": argv, "cwd": cwd, "env": env}).encode()
    socket.send_fds(conn, [len(request).to_bytes(_HEADER, "big")], fds)
    conn.sendall(request)


def client_main(argv: list[str]) -> int:
    """Run `argv` (dbt's arguments) through the server whose folder holds this executable."""
    folder = os.path.dirname(os.path.abspath(__file__))
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(socket_path(folder))
    except OSError:  # not started yet, or gone
        conn.close()
        _run_without_server(argv)
    send_request(conn, argv, os.getcwd(), dict(os.environ), [0, 1, 2])
    reader = conn.makefile("rb")
    pid_line = _read_line(reader)
    if pid_line is None:
        sys.stderr.write("dbt fork server: the run ended before it started\n")
        return 1
    child = int(pid_line)
    forwarded: list[int] = []

    def forward(signum, frame):
        forwarded.append(signum)
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    status = _read_line(reader)
    if status is None:  # the child died without reporting: killed by a signal
        return 128 + (forwarded[-1] if forwarded else signal.SIGKILL)
    while reader.read(64):  # until the child has exited, as a caller waits for a process
        pass
    return int(status)


# ---- the server -------------------------------------------------------------------------------


def _warm_up(scratch: str, project_dir: str, profiles_dir: str, saved_parse: str = "") -> None:
    """Import dbt and parse the project once, so that what a run builds on first use (dbt's
    modules, JSON schemas, serializers, Jinja) is in memory before any child forks.
    `saved_parse`: a parse of this project saved by an earlier run (partial_parse.msgpack;
    "" for none): the warm-up starts from a copy of it, whatever profile it was saved for,
    so that dbt parses only the files changed since (~4-5 s from start to serving where a
    full parse takes ~9-13 s)."""
    from dbt.cli.main import dbtRunner

    from python_models import dbt_templates

    dbt_templates.install_from_env()  # children inherit it, and the entries read so far
    target = os.path.join(scratch, "target")
    if saved_parse and os.path.exists(saved_parse):
        import shutil

        os.makedirs(target, exist_ok=True)
        shutil.copyfile(saved_parse, os.path.join(target, "partial_parse.msgpack"))
    os.environ.update(
        UBA_DUCKDB_PATH=os.path.join(scratch, "warm.duckdb"),  # never opened by a parse
        # dbt's usage tracker sends from threads of its own; a fork must find none running
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    with _any_profile_s_parse():
        dbtRunner().invoke(
            [
                "parse",
                "--quiet",
                # dbt's static parser runs on a Rust thread pool that a fork would leave without
                # its threads: a child that parses a model with it must start the pool itself
                "--no-static-parser",
                "--target",
                "duckdb_plain",
                "--project-dir",
                project_dir,
                "--profiles-dir",
                profiles_dir,
                "--target-path",
                target,
                "--log-path",
                os.path.join(scratch, "logs"),
            ]
        )


@contextlib.contextmanager
def _any_profile_s_parse():
    """While the warm-up parses: dbt takes a saved parse made for another profile, target or
    environment (another warehouse, settings or --vars) as its own, since the warm-up's parse
    only warms the code a run's parse goes through; the children fork with dbt's own check."""
    from dbt.parser.manifest import ManifestLoader

    check = ManifestLoader.is_partial_parsable

    def is_partial_parsable(self, manifest):
        ours, saved = self.manifest.state_check, manifest.state_check
        saved.vars_hash, saved.profile_hash = ours.vars_hash, ours.profile_hash
        saved.project_env_vars_hash = ours.project_env_vars_hash
        return check(self, manifest)

    ManifestLoader.is_partial_parsable = is_partial_parsable
    try:
        yield
    finally:
        ManifestLoader.is_partial_parsable = check


def _threads() -> list[str]:
    return os.listdir("/proc/self/task")


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _flags, _address = socket.recv_fds(conn, _HEADER, 3)
    size = int.from_bytes(header, "big")
    body = b""
    while len(body) < size:
        chunk = conn.recv(min(1 << 16, size - len(body)))
        if not chunk:
            raise ConnectionError("dbt fork server: request cut short")
        body += chunk
    return json.loads(body), fds


def _take_over(request: dict, fds: list[int]) -> None:
    """Become the caller's dbt process: its streams, folder, environment and arguments."""
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False
    )
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # what the interpreter would have put on sys.path at start
    extra = [path for path in request["env"].get("PYTHONPATH", "").split(os.pathsep) if path]
    sys.path[:0] = [path for path in extra if path not in sys.path]


def take_cached_parse_as_own() -> None:
    """dbt parses the project in full when the profile's hash differs from the saved parse's,
    and the warehouse's path is part of that hash; a parse from the cache (SAVED_PARSE_ENV)
    was made for the same profile with the warehouse elsewhere, and is the same parse (the
    manifest names the database after the file's name, never its folder). Every other check
    (dbt's version, --vars, the project's files) still decides. A parse taken so is saved
    again under this profile's hash even when no file changed (dbt then writes nothing): the
    next run in the same target folder, which may not take the cache's word, keeps it. Once
    per process."""
    from dbt.parser.manifest import ManifestLoader

    check = ManifestLoader.is_partial_parsable
    if getattr(check, "takes_cached_parse", False):
        return
    load = ManifestLoader.load

    def is_partial_parsable(self, manifest):
        if manifest.state_check.profile_hash != self.manifest.state_check.profile_hash:
            manifest.state_check.profile_hash = self.manifest.state_check.profile_hash
            self.uba_profile_rehashed = True
        return check(self, manifest)

    def load_keeping_the_rehashed_parse(self):
        manifest = load(self)
        if getattr(self, "uba_profile_rehashed", False) and self.skip_parsing:
            self.write_manifest_for_partial_parse()
        return manifest

    is_partial_parsable.takes_cached_parse = True
    ManifestLoader.is_partial_parsable = is_partial_parsable
    ManifestLoader.load = load_keeping_the_rehashed_parse


def _run(argv: list[str]) -> int:
    if argv[:1] == [MODULE_FLAG]:
        import runpy

        sys.argv = [argv[1], *argv[2:]]
        call = lambda: runpy.run_module(argv[1], run_name="__main__", alter_sys=True)  # noqa: E731
    else:
        from dbt.cli.main import cli

        sys.argv = ["dbt", *argv]
        call = lambda: cli.main(prog_name="dbt")  # noqa: E731
    try:
        call()
        return 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        sys.stderr.write(f"{stop.code}\n")
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


def _child(conn: socket.socket) -> None:
    """In the forked child: run one request, report its status, exit. Never returns."""
    code = 1
    try:
        for signum in _FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        request, fds = _receive(conn)
        _take_over(request, fds)
        if request["env"].get(SAVED_PARSE_ENV) == "1":
            take_cached_parse_as_own()
        conn.sendall(f"{os.getpid()}\n".encode())
        finished = threading.Event()

        def stop_when_the_caller_goes() -> None:
            # The caller sends nothing more: end of stream means it went away, and so does a
            # reset (a caller gone before it read the pid line leaves it unread).
            try:
                conn.recv(1)
            except OSError:
                pass
            if not finished.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=stop_when_the_caller_goes, daemon=True).start()
        code = _run(request["argv"])
        finished.set()
        # What a normal exit runs, before the caller hears the status: dbt-duckdb closes the
        # warehouse (DuckDB folds its write-ahead log into the file, so a copy of the file
        # alone holds the run), multiprocessing unlinks dbt's named locks.
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        conn.sendall(f"{code}\n".encode())
    except BaseException as error:  # noqa: BLE001 - reported, then the child exits
        try:
            sys.stderr.write(f"dbt fork server: {type(error).__name__}: {error}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def serve(folder: str, project_dir: str, profiles_dir: str, saved_parse: str = "") -> None:
    """Warm up, then fork a child for each connection until stopped (SIGTERM)."""
    import gc

    os.makedirs(folder, exist_ok=True)
    scratch = os.path.join(folder, "warm")
    os.makedirs(scratch, exist_ok=True)
    import dbt.adapters.duckdb  # noqa: F401 - DuckDB's default instance starts its thread

    threads_before = _threads()
    _warm_up(scratch, project_dir, profiles_dir, saved_parse)
    gc.collect()
    gc.freeze()  # children do not copy the warmed objects' pages when they collect
    # A thread the warm-up started (a sender, a worker pool) is missing in every child, which
    # then waits forever on a lock it held or on work only it would do. DuckDB's default
    # instance's thread is not used by a run (dbt opens its own instance on the warehouse).
    started = sorted(set(_threads()) - set(threads_before))
    if started:
        raise SystemExit(f"dbt fork server: the warm-up left threads {started}; not serving")
    final = socket_path(folder)
    listening = f"{final}.{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listening)
    server.listen(64)
    os.replace(listening, final)  # callers find it only once it accepts
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        while True:
            conn, _ = server.accept()
            print(_FORKED, flush=True)  # stdout is the server's log
            if os.fork() == 0:
                server.close()
                _child(conn)
            conn.close()
    finally:
        try:
            os.unlink(final)
        except OSError:
            pass


def start_server(folder: str | os.PathLike, saved_parse: str | os.PathLike | None = None):
    """Start a server in `folder` (its `dbt` executable written first) and return its process;
    it dies with this one. Runs use it once its socket appears (~10 s; ~4-5 s warmed from a
    `saved_parse`: _warm_up), dbt itself before."""
    import subprocess

    from python_models.config import DBT_PROJECT_DIR, REPO_ROOT
    from python_models.dbt_runner import _die_with_parent

    folder = os.fspath(folder)
    if len(socket_path(folder)) >= 100:  # AF_UNIX paths hold ~107 bytes
        raise ValueError(f"dbt fork server: folder path too long for a socket: {folder}")
    write_executable(folder)
    with open(os.path.join(folder, LOG_NAME), "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "python_models.dbt_fork",
                "--serve",
                folder,
                str(DBT_PROJECT_DIR),
                str(REPO_ROOT),
                os.fspath(saved_parse or ""),
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )


def wait_until_serving(folder: str | os.PathLike, process, timeout: float) -> bool:
    """Whether the server `process` in `folder` serves, waiting while it warms up, up to
    `timeout` seconds. False when it died (the executable then runs dbt itself) or is still
    warming up after `timeout`. `process` None: a server started elsewhere (the tests'
    session server), waited for until `timeout` only."""
    import time

    deadline = time.monotonic() + timeout
    while not os.path.exists(socket_path(folder)):
        died = process is not None and process.poll() is not None
        if died or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def forked_runs(folder: str | os.PathLike) -> int:
    """How many runs the server in `folder` has forked (its log's lines for them)."""
    try:
        with open(os.path.join(os.fspath(folder), LOG_NAME), encoding="utf-8") as log:
            return sum(line.startswith(_FORKED) for line in log)
    except OSError:
        return 0


def stop_server(process) -> None:
    """SIGTERM, then SIGKILL after the grace a dbt process gets (dbt_runner._stop)."""
    from python_models.dbt_runner import _stop

    _stop(process)


def write_executable(folder: str | os.PathLike) -> str:
    """The `dbt` executable that runs through the server in `folder` (this file as a script,
    on this interpreter without site-packages: standard library only)."""
    path = executable_path(folder)
    os.makedirs(os.fspath(folder), exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"#!{sys.executable} -IS\n")
        with open(__file__, encoding="utf-8") as source:
            out.write(source.read())
    os.chmod(path, 0o755)
    return path


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(*sys.argv[2:6])
    else:
        sys.exit(client_main(sys.argv[1:]))
