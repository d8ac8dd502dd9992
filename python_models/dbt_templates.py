"""dbt's compiled Jinja templates kept between dbt processes.

dbt compiles every macro and model it renders from Jinja source into Python code (Jinja's
lexer, parser and code generator, then Python's `compile`) once per process, and every `dbt`
command is a new process: a 1M day's build compiled 428 templates in 1.46 s of its threads'
CPU, a full parse of the project 1,756 in 1.56 s, the same sources every time. `install`
makes dbt's Jinja environments keep the code objects in a file and take them from it: 0.10 s
and 0.26-0.34 s instead (docs/performance-log.md, sixty-third session).

The key of a compiled template is everything Jinja's compiler reads: the source and the
environment's class, extensions, syntax settings, and the names and calling conventions of its
filters and tests (the compiler checks them and writes their calls); never the rendering's
context or undefined class, which the code looks up as it runs. So a hit is the code Jinja
would have made. The file holds `marshal` data, specific to the Python, Jinja and dbt versions
that wrote it (a file from others is ignored), as the interpreter's own `__pycache__` files
are: whoever can write the cache folder can change what dbt runs, as with those.

The file lives in dbt's cache folder (config.dbt_cache_dir: UBA_DBT_PARSE_CACHE, the user's
cache by default; "off": none). Each process reads it as it first compiles (a process forked
from the dbt fork server reads it again if it changed since its server read it) and, when it
compiled something new, merges its additions into the file as it exits (written whole and
renamed: readers see the old file or the new one; two processes exiting together can lose one's
additions, compiled again later). Past MAX_BYTES the file starts over from what one process
used.

`python -m python_models.dbt_templates ARGS` runs `dbt ARGS` with the templates kept
(python_models.dbt_runner runs dbt so); python_models.dbt_warm and the dbt fork server install
it in their processes.
"""

from __future__ import annotations

import atexit
import hashlib
import marshal
import os
import sys
import tempfile
import threading
from pathlib import Path

FILE_NAME = "compiled-templates.marshal"
MAX_BYTES = 32 * 1024 * 1024  # the whole project's templates take ~3 MB
# Jinja settings its lexer, parser and code generator read (jinja2.lexer.get_lexer,
# jinja2.compiler.CodeGenerator); the filters, tests and extensions are described apart.
_SYNTAX = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
    "sandboxed",
    "intercepted_binops",
    "intercepted_unops",
)

_installed: CompiledTemplates | None = None
_install_lock = threading.Lock()


def _versions() -> bytes:
    """What makes compiled code from one process valid in another."""
    import jinja2
    from dbt_common.__about__ import version as dbt_common_version

    return repr((sys.version, marshal.version, jinja2.__version__, dbt_common_version)).encode()


class CompiledTemplates:
    """The code objects of one cache file: loaded at the first lookup of each process,
    merged back into the file by `save`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._header = hashlib.sha256(_versions()).digest()
        self._entries: dict[bytes, bytes] = {}
        self._added: dict[bytes, bytes] = {}
        self._used: set[bytes] = set()
        self._loaded_by: int | None = None  # the process that read the file
        self._loaded_stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.hits = 0

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _read(self) -> dict[bytes, bytes]:
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}
        if data[: len(self._header)] != self._header:
            return {}  # another Python, Jinja or dbt wrote it
        try:
            entries = marshal.loads(data[len(self._header) :])
        except (EOFError, ValueError, TypeError):
            return {}  # cut short or damaged: compiled again
        return entries if isinstance(entries, dict) else {}

    def _current(self) -> dict[bytes, bytes]:
        """The entries, read once per process (again in a forked child when the file changed
        since its parent read it)."""
        if self._loaded_by != os.getpid():
            with self._lock:
                if self._loaded_by != os.getpid():
                    stamp = self._stamp()
                    if self._loaded_by is None or stamp != self._loaded_stamp:
                        self._entries = {**self._read(), **self._added}
                        self._loaded_stamp = stamp
                    self._added, self._used = {}, set()
                    self._loaded_by = os.getpid()
        return self._entries

    def get(self, key: bytes):
        found = self._current().get(key)
        if found is None:
            return None
        self._used.add(key)
        self.hits += 1
        return marshal.loads(found)

    def put(self, key: bytes, code) -> None:
        data = marshal.dumps(code)
        entries = self._current()
        with self._lock:
            entries[key] = data
            self._added[key] = data
            self._used.add(key)

    def compile(self, env, source: str, compile_code=None):
        """`env`'s code for the template `source`: from the file, else compiled by
        `compile_code(env, source)` (Jinja's own compile by default) and kept."""
        if compile_code is None:
            import jinja2

            compile_code = jinja2.Environment.compile
        environment = _environment_key(env)
        if environment is None:
            return compile_code(env, source)
        key = hashlib.sha256(environment + b"\0" + source.encode()).digest()
        code = self.get(key)
        if code is None:
            code = compile_code(env, source)
            self.put(key, code)
        return code

    def save(self) -> None:
        """Merge what this process compiled into the file (nothing new: nothing written)."""
        if not self._added or self._loaded_by != os.getpid():
            return
        merged = {**self._read(), **self._added}
        data = marshal.dumps(merged)
        if len(data) > MAX_BYTES:  # start over from this process's templates
            data = marshal.dumps({key: self._entries[key] for key in self._used})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, scratch = tempfile.mkstemp(dir=self.path.parent, prefix=f".{FILE_NAME}.")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(self._header)
                    out.write(data)
                os.replace(scratch, self.path)
            except BaseException:
                Path(scratch).unlink(missing_ok=True)
                raise
        except OSError:
            return  # a cache: a folder we cannot write costs the compiles, nothing else
        self._added = {}


def _described(functions: dict) -> list[tuple[str, str, str]]:
    """Filters or tests as the compiler sees them: each name, how it is called, what it is."""
    return sorted(
        (
            name,
            repr(getattr(function, "jinja_pass_arg", None)),
            f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}",
        )
        for name, function in functions.items()
    )


_descriptions: dict[tuple, bytes] = {}


def _environment_key(env) -> bytes | None:
    """The part of a template's key that comes from its environment; None where Jinja's own
    settings make the code depend on more than these (a callable autoescape or finalize)."""
    if callable(env.autoescape) or env.finalize is not None:
        return None
    settings = tuple(getattr(env, name) for name in _SYNTAX)
    # dbt makes a new environment for every template: described once per distinct kind
    try:
        identity = (
            type(env),
            tuple(env.extensions),
            frozenset(env.filters.items()),
            frozenset(env.tests.items()),
            env.autoescape,
            settings,
        )
        found = _descriptions.get(identity)
    except TypeError:  # a filter or setting that cannot be hashed: not kept
        return None
    if found is None:
        # sets (the sandbox's operators) sorted: their order follows each process's string hash
        ordered = tuple(sorted(v) if isinstance(v, (set, frozenset)) else v for v in settings)
        found = repr(
            (
                f"{type(env).__module__}.{type(env).__qualname__}",
                type(env).code_generator_class.__qualname__,
                sorted(env.extensions),
                _described(env.filters),
                _described(env.tests),
                env.autoescape,
                ordered,
            )
        ).encode()
        _descriptions[identity] = found
    return found


def install(folder: str | os.PathLike | None) -> CompiledTemplates | None:
    """Keep dbt's compiled templates in `folder` (None: nothing kept) for this process and the
    processes forked from it; saved as the process exits. Once per process."""
    global _installed
    if folder is None:
        return None
    from dbt_common.clients.jinja import MACRO_DEBUGGING, MacroFuzzEnvironment

    with _install_lock:
        if _installed is not None:
            return _installed
        store = CompiledTemplates(Path(folder) / FILE_NAME)
        compile_code = MacroFuzzEnvironment.compile

        def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
            # dbt's templates come from strings (Environment.from_string); anything else, and
            # dbt's macro debugging (which stashes the generated source), compiles as before
            if (
                isinstance(source, str)
                and name is None
                and filename is None
                and not raw
                and not defer_init
                and not MACRO_DEBUGGING
            ):
                return store.compile(self, source, compile_code)
            return compile_code(self, source, name, filename, raw, defer_init)

        MacroFuzzEnvironment.compile = compile  # NativeSandboxEnvironment inherits it
        atexit.register(store.save)
        _installed = store
        return store


def install_from_env() -> CompiledTemplates | None:
    """`install` in dbt's cache folder (config.dbt_cache_dir)."""
    from python_models.config import dbt_cache_dir

    return install(dbt_cache_dir())


def main(argv: list[str]) -> None:
    """`dbt ARGS`, with the compiled templates kept."""
    from dbt.cli.main import cli

    install_from_env()
    sys.argv = ["dbt", *argv]
    cli.main(prog_name="dbt")


if __name__ == "__main__":
    main(sys.argv[1:])
