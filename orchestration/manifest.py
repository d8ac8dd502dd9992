"""Make sure dbt's manifest.json exists and is newer than the project files.

Dagster builds the dbt assets from the manifest at import time; a missing or stale manifest
would silently show an old graph, so it is (re)parsed here when needed (about 4 s).
"""

from pathlib import Path

from python_models.config import DBT_PROJECT_DIR

_WATCHED = ("models", "macros", "seeds", "tests", "snapshots")


def _newest_source_mtime() -> float:
    newest = (DBT_PROJECT_DIR / "dbt_project.yml").stat().st_mtime
    for folder in _WATCHED:
        root = DBT_PROJECT_DIR / folder
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file():
                    newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """The manifest, parsed first when missing or older than a project file. dbt writes it in
    place, so the parse goes to a folder of its own and the file is renamed over the old one:
    a process reading it meanwhile (two test workers, a Dagster reload) sees the old manifest or
    the new one, never a half-written one."""
    import os
    import tempfile

    target = DBT_PROJECT_DIR / "target"
    manifest = target / "manifest.json"
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime():
        from python_models.dbt_runner import run_dbt

        target.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="parse-", dir=target) as scratch:
            run_dbt(["parse", "--quiet"], quiet=True, target_path=scratch)
            os.replace(Path(scratch) / "manifest.json", manifest)
    return manifest
