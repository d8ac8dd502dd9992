"""The Python reads top to bottom: commands -> orchestration -> lifecycle -> the model list ->
model packages -> common -> warehouse / config. These rules keep it so (every import counts,
those inside functions too); docs/architecture.md draws the floors."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL_PACKAGES = ("churn", "ltv", "segmentation", "anomaly", "next_action", "load_forecast")
ABOVE_COMMON = (
    "python_models.models",
    "python_models.lifecycle",
    "python_models.commands",
    "python_models.quality",
    "python_models.reports",
    "python_models.service",
    *(f"python_models.{p}" for p in MODEL_PACKAGES),
)


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_only_the_commands_import_orchestration_or_dagster():
    below = [p for p in _files("python_models") if "commands" not in p.parts]
    assert not _offenders(below, ("orchestration", "dagster", "dagster_dbt"))


def test_nothing_imports_the_commands_but_the_router():
    everything = [*_files("python_models"), *_files("orchestration"), *_files("expectations")]
    router = ROOT / "python_models" / "cli.py"
    callers = [p for p in everything if "commands" not in p.parts and p != router]
    assert not _offenders(callers, ("python_models.commands",))


def test_no_dispatch_by_module_name():
    files = [*_files("python_models"), *_files("orchestration")]
    assert not _offenders(files, ("importlib",))
    assert not [p for p in files if "__import__(" in p.read_text()]


def test_common_knows_no_model_and_no_caller():
    assert not _offenders(_files("python_models/common"), ABOVE_COMMON)


def test_model_packages_stand_alone():
    for package in MODEL_PACKAGES:
        others = tuple(f"python_models.{p}" for p in MODEL_PACKAGES if p != package)
        forbidden = (*others, "python_models.models", "python_models.lifecycle")
        assert not _offenders(_files(f"python_models/{package}"), forbidden), package


def test_settings_are_read_only_in_config():
    # Handing the whole environment to a child process (dbt) is not reading a setting.
    reads = re.compile(r"os\.environ(\.get|\.setdefault|\[)|os\.getenv")
    readers = [
        f"{path.relative_to(ROOT)}"
        for path in [*_files("python_models"), *_files("orchestration")]
        if path.name != "config.py" and reads.search(path.read_text())
    ]
    assert not readers, f"read settings through python_models.config: {readers}"
