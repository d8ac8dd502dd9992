"""Validate a DataFrame against an expectation suite with an ephemeral GX context.

GX 1.x through SQLAlchemy on DuckDB has reported failures, so frames are read from DuckDB as
Arrow and validated as pandas. One ephemeral context per process is reused (creating one costs
about a second); each suite is registered under its own name and replaced when rebuilt.

A GX validation never raises on bad data: callers must look at `success`. `FrameValidation`
folds the two silent failure modes into `success`: GX reporting failure, and a validation that
evaluated zero expectations (an empty or broken suite would otherwise "pass").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from expectations.data_docs import results_dir
from expectations.gx_import import RunIdentifier, gx

_lock = threading.Lock()
_context_state: dict[str, Any] = {}


@dataclass(frozen=True)
class FrameValidation:
    """The outcome of one validation. `results` / `statistics` are GX's own objects."""

    suite_name: str
    gx_success: bool
    evaluated_expectations: int
    statistics: dict[str, Any]
    results: list[Any]
    row_count: int
    failures: list[str] = field(default_factory=list)
    # Where its Data Docs pages go when they are rendered later (render_data_docs): the docs
    # folder, the stored result's identifier and its suite's.
    docs_pages: tuple[Any, ...] = ()

    @property
    def success(self) -> bool:
        return self.gx_success and self.evaluated_expectations > 0 and not self.failures

    def failing_rows(self) -> list[tuple[Any, list[int]]]:
        """(expectation configuration, positional indexes of failing rows) per failed one.

        Needs result_format="COMPLETE"; positions refer to the validated frame's rows.
        """
        out = []
        for result in self.results:
            if result.success:
                continue
            indexes = result.result.get("unexpected_index_list") or []
            out.append((result.expectation_config, [int(i) for i in indexes]))
        return out


def describe_expectation(config: Any) -> str:
    kwargs = config.kwargs
    target = kwargs.get("column") or ",".join(
        str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs
    )
    reason = (config.meta or {}).get("reason")
    label = f"{config.type}({target})"
    return f"{label} [{reason}]" if reason else label


def gx_context() -> Any:
    """The process-wide ephemeral GX context (created on first use).

    GX 1.x needs an active context before `ExpectationSuite.add_expectation` works, so
    `expectations.suites` calls this when imported.
    """
    _batch_definition()
    return _context_state["context"]


def _batch_definition():
    """The process-wide ephemeral context's whole-dataframe batch definition."""
    if "batch_definition" not in _context_state:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        # GX draws tqdm bars per validation; in chunked runs they drown the real progress lines.
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        source = context.data_sources.add_pandas("uba_frames")
        asset = source.add_dataframe_asset("frame")
        _context_state["context"] = context
        _context_state["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole")
    return _context_state["context"], _context_state["batch_definition"]


def _to_pandas(frame: Any) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):  # polars DataFrame or pyarrow Table
        return frame.to_pandas()
    raise TypeError(f"expected a pandas/polars DataFrame or Arrow table, got {type(frame)!r}")


def _register(context: Any, suite: gx.ExpectationSuite) -> gx.ExpectationSuite:
    """Add the suite to the context (GX validates registered suites only), once per object."""
    registered = _context_state.setdefault("suites", {})
    known = registered.get(suite.name)
    if known is not None and known[0] is suite:
        return known[1]
    if known is not None or suite.name in {s.name for s in context.suites.all()}:
        context.suites.delete(suite.name)
    added = context.suites.add(suite)
    registered[suite.name] = (suite, added)
    return added


def _exception_message(info: Any) -> str | None:
    """GX nests exception details either flat or per metric; find the first message."""
    if not info:
        return None
    if "exception_message" in info:
        return info["exception_message"] if info.get("raised_exception") else None
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message")
    return None


def _data_docs_site(context: Any, docs_dir: Path) -> tuple[str, str]:
    """(site name, results store name) for docs_dir, added to the context once.

    The results go to a filesystem store beside the site, not the ephemeral context's memory:
    GX lists on the index only the results its store holds and deletes the pages of the others,
    so an in-memory store showed the latest process's runs only. On disk, every run stays
    reachable from index.html, under its run name (the gate's run id)."""
    sites = _context_state.setdefault("docs_sites", {})
    key = str(Path(docs_dir).resolve())
    if key not in sites:
        name = f"uba_docs_{len(sites)}"
        store = f"uba_results_{len(sites)}"
        context.add_store(
            store,
            {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(results_dir(key)),
                },
            },
        )
        context.add_data_docs_site(
            site_name=name,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": key,
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "site_section_builders": {"validations": {"source_store_name": store}},
            },
        )
        sites[key] = (name, store)
    return sites[key]


def _run_with_docs(
    context: Any,
    batch_definition: Any,
    suite: Any,
    frame: pd.DataFrame,
    result_format: str,
    docs_dir: Path,
    run_name: str | None = None,
    render: bool = True,
) -> tuple[Any, Any]:
    """Validate through a checkpoint that stores the result beside docs_dir's site and, with
    `render`, renders its Data Docs pages there; (GX's result, its stored identifier)."""
    site, store = _data_docs_site(context, docs_dir)
    # The checkpoint stores its result in the context's current results store.
    context.variables.validation_results_store_name = store
    name = f"{suite.name}__with_docs"
    for store in (context.checkpoints, context.validation_definitions):
        if name in {item.name for item in store.all()}:
            store.delete(name)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[site])]
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=actions if render else [],
            result_format=result_format,
        )
    )
    outcome = checkpoint.run(
        batch_parameters={"dataframe": frame},
        run_id=RunIdentifier(run_name=run_name) if run_name else None,
    )
    return next(iter(outcome.run_results.values())), next(iter(outcome.run_results))


def render_data_docs(validations: list[FrameValidation]) -> None:
    """Render the Data Docs pages of validations run with `render_docs=False` (their results
    are stored already), and each site's index once: a site build renders every page named
    and the index, so validations rendered together cost one build instead of one each."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    by_dir: dict[Path, list[Any]] = {}
    for validation in validations:
        if validation.docs_pages:
            docs_dir, result_id = validation.docs_pages
            by_dir.setdefault(docs_dir, []).extend(
                [result_id, ExpectationSuiteIdentifier(name=validation.suite_name)]
            )
    with _lock:
        context = gx_context()
        for docs_dir, pages in by_dir.items():
            site, _ = _data_docs_site(context, docs_dir)
            context.build_data_docs(site_names=[site], resource_identifiers=pages)


def validate_frame(
    frame: Any,
    suite: gx.ExpectationSuite,
    result_format: str = "SUMMARY",
    data_docs_dir: str | Path | None = None,
    run_name: str | None = None,
    render_docs: bool = True,
) -> FrameValidation:
    """Validate `frame` (pandas, polars or Arrow) against `suite`.

    Check `.success`: it is False when GX reports failure or when zero expectations were
    evaluated. Use result_format="COMPLETE" to get the failing row positions through
    `.failing_rows()`. With `data_docs_dir`, the validation also renders
    GX Data Docs there (index.html; about half a second more), filed under `run_name`; with
    `render_docs=False` the result is stored for them and `render_data_docs` renders them.
    """
    pandas_frame = _to_pandas(frame)
    if not isinstance(pandas_frame.index, pd.RangeIndex) or pandas_frame.index.start != 0:
        pandas_frame = pandas_frame.reset_index(drop=True)
    with _lock:
        context, batch_definition = _batch_definition()
        registered = _register(context, suite)
        docs_pages: tuple[Any, ...] = ()
        if data_docs_dir is not None:
            result, result_id = _run_with_docs(
                context,
                batch_definition,
                registered,
                pandas_frame,
                result_format,
                Path(data_docs_dir),
                run_name,
                render_docs,
            )
            if not render_docs:
                docs_pages = (Path(data_docs_dir), result_id)
        else:
            batch = batch_definition.get_batch(batch_parameters={"dataframe": pandas_frame})
            result = batch.validate(registered, result_format=result_format)
    statistics = dict(result.statistics)
    evaluated = int(statistics.get("evaluated_expectations", 0) or 0)
    failures = []
    if evaluated == 0:
        failures.append("zero expectations were evaluated")
    for item in result.results:
        if item.success:
            continue
        error = _exception_message(item.exception_info)
        count = item.result.get("unexpected_count")
        detail = f"raised {error}" if error else f"{count} unexpected"
        failures.append(f"{describe_expectation(item.expectation_config)}: {detail}")
    return FrameValidation(
        suite_name=suite.name,
        gx_success=bool(result.success),
        evaluated_expectations=evaluated,
        statistics=statistics,
        results=list(result.results),
        row_count=len(pandas_frame),
        failures=failures,
        docs_pages=docs_pages,
    )
