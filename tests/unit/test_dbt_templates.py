"""dbt's compiled Jinja templates kept between processes (python_models/dbt_templates.py): a
template taken from the file renders as its own environment compiles it, and the file survives
other versions, damage, processes saving together and its size limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jinja2
import pytest
from dbt_common.clients.jinja import get_environment

from python_models import dbt_fork, dbt_templates
from python_models.config import DBT_CACHE_ENV, DBT_PROJECT_DIR
from python_models.dbt_runner import dbt_env
from python_models.dbt_templates import CompiledTemplates

# A variable: dbt's native environment (yaml configs) outputs its value as it is, the text
# environment (SQL) as text (their code generators differ); and dbt's filters and the `do`
# extension in play.
SOURCES = {
    "variable": "{{ x }}",
    "dbt": "{% set xs = [] %}{% do xs.append('a') %}{{ xs | as_text }}-{{ 'b' | upper }}",
}


def _render(env, code):
    """What the template's code outputs, before dbt joins it."""
    template = env.template_class.from_code(env, code, env.make_globals(None), None)
    return list(template.root_render_func(template.new_context({"x": [1, 2]})))


def _environments():
    return {"text": get_environment(), "native": get_environment(native=True)}


def _fresh(env_name: str, source: str):
    env = _environments()[env_name]
    return _render(env, jinja2.Environment.compile(env, source))


def _kept(path, *sources: str) -> None:
    """A process that compiled `sources` (dbt's text environment) and exited."""
    store = CompiledTemplates(path)
    for source in sources:
        store.compile(get_environment(), source)
    store.save()


def test_a_kept_template_renders_as_its_own_environment_compiles_it(tmp_path):
    path = tmp_path / dbt_templates.FILE_NAME
    first = CompiledTemplates(path)
    for env in _environments().values():
        for source in SOURCES.values():
            first.compile(env, source)
    first.save()

    later = CompiledTemplates(path)  # another process's
    seen = {}
    for env_name, env in _environments().items():
        for name, source in SOURCES.items():
            seen[env_name, name] = _render(env, later.compile(env, source))
    assert later.hits == 4
    for (env_name, name), rendered in seen.items():
        assert rendered == _fresh(env_name, SOURCES[name]), (env_name, name)
    # the same source keeps one code per environment
    assert seen["native", "variable"] == [[1, 2]]
    assert seen["text", "variable"] == ["[1, 2]"]


def test_a_file_another_version_wrote_or_damaged_is_compiled_again(tmp_path):
    path = tmp_path / dbt_templates.FILE_NAME
    env = get_environment()
    _kept(path, SOURCES["dbt"])
    data = path.read_bytes()

    path.write_bytes(b"\0" * 32 + data[32:])  # another Python, Jinja or dbt
    other = CompiledTemplates(path)
    assert _render(env, other.compile(env, SOURCES["dbt"])) == ["['a']", "-B"]
    assert other.hits == 0

    path.write_bytes(data[: len(data) // 2])  # cut short
    damaged = CompiledTemplates(path)
    assert _render(env, damaged.compile(env, SOURCES["dbt"])) == ["['a']", "-B"]
    assert damaged.hits == 0
    damaged.save()  # written whole again
    assert CompiledTemplates(path).get(next(iter(damaged._used))) is not None


def test_processes_saving_together_keep_each_others_templates(tmp_path):
    path = tmp_path / dbt_templates.FILE_NAME
    env = get_environment()
    one, two = CompiledTemplates(path), CompiledTemplates(path)
    one.compile(env, "{{ 1 + 1 }}")
    two.compile(env, "{{ 2 + 2 }}")  # both read the file before either wrote it
    one.save()
    two.save()
    both = CompiledTemplates(path)
    assert _render(env, both.compile(env, "{{ 1 + 1 }}")) == ["2"]
    assert _render(env, both.compile(env, "{{ 2 + 2 }}")) == ["4"]
    assert both.hits == 2


def test_past_its_size_limit_the_file_starts_over_from_one_process(tmp_path, monkeypatch):
    path = tmp_path / dbt_templates.FILE_NAME
    env = get_environment()
    _kept(path, *(f"{{{{ {i} }}}}" for i in range(50)))
    monkeypatch.setattr(dbt_templates, "MAX_BYTES", path.stat().st_size)
    now = CompiledTemplates(path)
    now.compile(env, "{{ 0 }}")  # kept from before, used now
    now.compile(env, "{{ 'new' }}")
    now.save()
    after = CompiledTemplates(path)
    assert after.compile(env, "{{ 0 }}") and after.compile(env, "{{ 'new' }}")
    after.compile(env, "{{ 1 }}")  # not used by the process that saved: gone
    assert after.hits == 2


def test_a_process_that_compiled_nothing_new_writes_nothing(tmp_path):
    path = tmp_path / dbt_templates.FILE_NAME
    env = get_environment()
    _kept(path, SOURCES["dbt"])
    written = path.stat().st_mtime_ns
    again = CompiledTemplates(path)
    again.compile(env, SOURCES["dbt"])
    again.save()
    assert again.hits == 1
    assert path.stat().st_mtime_ns == written


@pytest.mark.parametrize("setting", [None, "off", ""])
def test_the_templates_live_in_dbt_s_cache_folder(tmp_path, monkeypatch, setting):
    from python_models.config import dbt_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    environ = {} if setting is None else {"UBA_DBT_PARSE_CACHE": setting}
    expected = tmp_path / "uba" / "dbt-parse" if setting is None else None
    assert dbt_cache_dir(environ) == expected
    assert dbt_cache_dir({"UBA_DBT_PARSE_CACHE": str(tmp_path / "c")}) == tmp_path / "c"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the dbt fork server's case")
def test_a_forked_process_reads_what_was_kept_since_its_parent_read_the_file(tmp_path):
    path = tmp_path / dbt_templates.FILE_NAME
    env = get_environment()
    server = CompiledTemplates(path)
    server.compile(env, "{{ 1 }}")  # the server read the file (empty then)
    _kept(path, "{{ 2 }}")  # a child forked earlier
    pid = os.fork()
    if pid == 0:  # a child forked from the server after that
        code = 2
        try:
            server.compile(env, "{{ 1 }}")
            server.compile(env, "{{ 2 }}")
            code = 0 if server.hits == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _parse(tmp_path, name: str, cache: str) -> dict:
    """A full parse of the project by `python -m python_models.dbt_templates` (as run_dbt runs
    dbt without a fork server), its manifest without what differs from run to run."""
    env = {**dbt_env(tmp_path / "w.duckdb"), "DBT_TARGET_PATH": str(tmp_path / name)}
    env[DBT_CACHE_ENV] = cache
    env.pop(dbt_fork.SERVER_ENV, None)
    command = [sys.executable, "-m", "python_models.dbt_templates", "parse", "--no-partial-parse"]
    done = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    manifest = json.loads((tmp_path / name / "manifest.json").read_text())
    manifest.pop("metadata")
    for section in ("nodes", "sources", "macros", "exposures", "metrics", "semantic_models",
                    "unit_tests", "saved_queries", "docs"):  # fmt: skip
        for node in manifest.get(section, {}).values():
            node.pop("created_at", None)
    for versions in manifest.get("disabled", {}).values():
        for node in versions:
            node.pop("created_at", None)
    return manifest


def test_dbt_parses_the_project_from_kept_templates_as_it_does_without_them(tmp_path):
    cache = tmp_path / "cache"
    kept = cache / dbt_templates.FILE_NAME
    without = _parse(tmp_path, "without", "off")
    assert _parse(tmp_path, "first", str(cache)) == without
    assert kept.stat().st_size > 100_000  # the project's templates, compiled and kept
    written = kept.stat().st_mtime_ns
    assert _parse(tmp_path, "again", str(cache)) == without
    assert kept.stat().st_mtime_ns == written  # every template taken from the file


def test_another_process_finds_the_same_key_whatever_its_string_hashes(tmp_path):
    """A set among the environment's settings (a sandbox's intercepted operators) iterates in
    an order that follows the process's string hashes: each process must still find the others'
    entries."""
    script = (
        "import hashlib\n"
        "from dbt_common.clients.jinja import get_environment\n"
        "from python_models.dbt_templates import _environment_key\n"
        "env = get_environment()\n"
        "env.intercepted_binops = frozenset({'+', '-', '*', '/', '//', '%', '**'})\n"
        "print(hashlib.sha256(_environment_key(env)).hexdigest())\n"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1, keys
