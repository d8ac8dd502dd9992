"""Resources: the warehouse (DuckDB file), dbt, and where inputs come from."""

import contextlib
from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from python_models.config import get_settings


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse (UBA_WAREHOUSE): the DuckDB file by default, whose writers run one at a
    time (pool `duckdb_writer`), or a PostgreSQL / Spark warehouse (python_models.warehouse).

    A run's day publish can start as its dbt step ends (`start_publication`: the tables only
    dbt writes figured and their Parquet files written in a thread while the later steps
    score, as `uba refresh` publishes); the publish asset finishes it (`started_publication`).
    Meanwhile this process holds the DuckDB file open, so every connection the resource gives
    is a cursor of that database (DuckDB opens a file a process holds for writing in no other
    mode), and `release_publication` lets it go before another process opens the file (a dbt
    build) and at the run's end. The in-process executor initializes a run's resources once,
    so the steps share it."""

    duckdb_path: str = ""
    _publication: Any = PrivateAttr(default=None)  # publish.DayPublication while started
    # The models' input fingerprints known since the run's last dbt build (scoring_fingerprints)
    _fingerprints: dict = PrivateAttr(default_factory=dict)

    def path(self) -> str:
        return self.duckdb_path or str(get_settings().duckdb_path)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.release_publication()  # a run that failed before its publish: the thread ends

    def start_publication(self) -> bool:
        """The day's publish started on a writer connection of its own (DayPublication, its
        big tables bounded by the days the build can have written, as the publish asset's):
        its dbt part runs in a thread from now on. Not when those days are not known (the
        first day after a code change or a missed publish): that publish hashes the big
        tables whole, and beside the checks and scoring it would keep DuckDB's pool full
        while they run (10M: the run's peak RSS 2.30-2.37 -> 2.48-2.50 GB) for 2-3 s less."""
        from python_models.models import fingerprinted_inputs
        from python_models.publish import DayPublication

        self.release_publication()
        con = self._open(read_only=False)
        try:
            publication = DayPublication(con, get_settings().published_dir, bounded=True)
            if not publication.unchanged_before:
                con.close()
                return False
            # Before the thread: the figures the scoring compares are taken once, by day, as
            # `uba refresh` takes them (a model's step would hash a 10M-row input whole).
            self._fingerprints.update(publication.fingerprints(fingerprinted_inputs()))
            publication.start_beside()
        except BaseException:
            con.close()
            raise
        self._publication = publication
        return True

    def started_publication(self) -> Any:
        """The started publication (its `publish()` finishes it), or None. The caller closes
        it with `release_publication`."""
        return self._publication

    def scoring_fingerprints(self) -> dict[str, str]:
        """{input table: content fingerprint} for the run's scoring steps (lifecycle.
        score_changed's `fingerprints`), shared and filled by them: taken from the started
        publication's figures, else each table hashed by the first step that reads it.
        Scoring writes no model's input; a dbt build does, so this is emptied when one may
        start (release_publication)."""
        return self._fingerprints

    def release_publication(self) -> None:
        """Its thread waited for and its connection closed (what the thread wrote is in a
        staging folder the next publish starts over, unless the publication was finished);
        the fingerprints known forgotten."""
        self._fingerprints.clear()
        publication, self._publication = self._publication, None
        if publication is not None:
            try:
                publication.close()
            finally:
                publication.con.close()

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator:
        """A connection; a writer's on the DuckDB file skips the vacuum as `uba refresh`'s
        connections do, while the file's deleted-but-stored rows are few (duckdb_engine's
        daily_duckdb_settings): else the first asset to close after a day's dbt build
        rewrites the row groups the build's deletes left, and the next day's load those of
        the earlier days."""
        publication = self._publication
        if publication is None:
            con = self._open(read_only)
        else:
            # A cursor of the database the publication holds; its release_memory keeps the
            # pool while the thread reads (the two share it).
            con = publication.con.for_another_thread()
            con.pool_shared = publication.beside_running()
        try:
            yield con
        finally:
            con.close()
            if publication is not None and not publication.beside_running():
                # the pool given back as the step ends, as closing the file gave it back
                publication.con.release_memory()

    def _open(self, read_only: bool) -> Any:
        from python_models.warehouse import connect
        from python_models.warehouse.duckdb_engine import daily_duckdb_settings, skip_vacuum_as

        on_file = get_settings().warehouse == "duckdb"
        con = connect(self.path() if on_file else None, read_only=read_only)
        if on_file and not read_only:
            try:
                skip_vacuum_as(con, daily_duckdb_settings(con))
            except BaseException:
                con.close()
                raise
        return con


# Every asset that writes the DuckDB file runs in this pool; the instance limits it to one slot
# (see orchestration/dagster.yaml), because DuckDB allows one writing process per file.
WRITER_POOL = "duckdb_writer"
