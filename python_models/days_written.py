"""Which days of the big published tables a daily dbt build can have written, so that the
day's publish hashes only those days' rows (python_models.publish, `unchanged_before`).

Every incremental model below int_events_sessionized writes from the events that table wrote
since the model last ran (macros/uba_batches.sql: its rows carry the batch that wrote them,
and an event's time never changes), and each bounds what it deletes and re-inserts by a
literal derived from those events (macros/uba_batches.sql, feature_helpers.sql, funnels.sql,
uba_delete_insert.sql). So with E the earliest event time among the batches written since the
last publication and T the newest event time at that publication, a table's rows of the days
before `start - reach` are the published ones, where start = min(E's day, T's day) and reach
is what the model can reach back from a changed event (REACH below):

- fct_events, fct_sessions, fct_user_activity_daily: 0 (the changed events' own rows; a
  re-cut session starts at a changed event: int_events_sessionized re-cuts a person from a
  session boundary, and every re-cut event is rewritten);
- fct_event_transitions: a session's maximum length (the changed sessions' events);
- ftr_user_day_activity: 1 day (recomputed from the day before the earliest change);
- ftr_user_event_sequences: the session timeout (its post-hook ends the sessions whose last
  event is more than the timeout before the newest event: rows within it of T);
- fct_funnel_attempts / _steps: the longest conversion window (replayed from there);
- fct_user_lifecycle_weekly: 7 days (a change's week starts up to 6 days before it; the
  newest week's dormant rows are at or after T's week);
- ftr_user_features: its rows from the newest published snapshot less the late-event
  lookback weeks on (the snapshots a run rebuilds: feature_per_person_config).

That holds when the build consumed exactly one new int_events_sessionized batch after the
publication and every consumer consumed it (a consumer more than one batch behind re-reads
everything: its rows may change on any day), and when the dbt code that wrote the publication
is the code now (dbt_daily_tests.code_fingerprint, kept with the publication: a view's or a
model's changed SQL may change any day). The publish also checks every day's row count
before the bound (consent withdrawals and re-grants delete or re-insert a person's rows on
any day), and hashes the whole table when one differs. Tables not listed are hashed whole.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from functools import lru_cache

from python_models.common.feature_events import project_vars

PRODUCER = "intermediate.int_events_sessionized"
# The producer's name as its consumers record it (uba_consumed_batches, target schema main).
_CONSUMED = "main.uba_consumed_batches"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@lru_cache(maxsize=1)
def _vars() -> dict:
    return project_vars()


def _days(seconds: float) -> int:
    return math.ceil(seconds / 86400)


def _longest_conversion_window() -> int:
    """Days of the longest funnel conversion window (macro uba_funnels: '7d', '30m', ...)."""
    windows = []
    for funnel in _vars()["uba__funnels"]:
        number, unit = re.fullmatch(
            r"(\d+)\s*([smhdw])", str(funnel.get("conversion_window", "7d")).strip().lower()
        ).groups()
        windows.append(int(number) * _UNITS[unit])
    return _days(max(windows))


def _reach() -> dict[str, int]:
    """{table: days before start} (module docstring)."""
    v = _vars()
    funnels = _longest_conversion_window()
    return {
        "marts.fct_events": 0,
        "marts.fct_sessions": 0,
        "marts.fct_user_activity_daily": 0,
        "marts.fct_event_transitions": _days(v["uba__session_max_length_minutes"] * 60),
        "features.ftr_user_day_activity": 1,
        "features.ftr_user_event_sequences": _days(v["uba__session_timeout_minutes"] * 60),
        "marts.fct_funnel_attempts": funnels,
        "marts.fct_funnel_attempt_steps": funnels,
        "marts.fct_user_lifecycle_weekly": 7,
    }


# Rebuilt from its newest stored snapshot less these weeks (macro feature_lookback_weeks).
SNAPSHOT_TABLES = ("features.ftr_user_features",)


def _lookback_weeks() -> int:
    return (int(_vars()["uba__late_event_lookback_days"]) + 6) // 7


def basis(con, code: str) -> dict:
    """The producer's newest batch and newest event time now, and `code` (the dbt code's
    fingerprint): kept with a publication."""
    batch, newest = con.execute(f"select max(batch_id), max(event_ts) from {PRODUCER}").fetchone()
    return {
        "producer_batch": batch,
        "events_through": None if newest is None else str(newest),
        "code": code,
    }


def unchanged_before(
    con, published: dict | None, published_days: dict, code: str
) -> dict[str, date]:
    """{table: first day the build since the publication can have changed} (module
    docstring); empty when that cannot be known. `published`: the basis the current
    publication was published with; `published_days`: {table: its manifest's day figures};
    `code`: the dbt code's fingerprint now."""
    if not published or published.get("events_through") is None:
        return {}
    if published.get("code") != code:  # written by other code (or before this was kept)
        return {}
    batch = con.execute(f"select max(batch_id) from {PRODUCER}").fetchone()[0]
    if batch is None or published.get("producer_batch") is None:
        return {}
    if batch != published["producer_batch"] + 1:
        return {}
    consumed = con.execute(
        f"select min(batch_id), max(batch_id) from {_CONSUMED} where producer = ?",
        [PRODUCER.split(".")[1]],
    ).fetchone()
    if consumed != (batch, batch):  # one consumer behind (or none recorded)
        return {}
    earliest = con.execute(
        f"select min(event_ts) from {PRODUCER} where batch_id = ?", [batch]
    ).fetchone()[0]
    through = date.fromisoformat(published["events_through"][:10])
    start = through if earliest is None else min(earliest.date(), through)
    bounds = {table: start - timedelta(days=reach) for table, reach in _reach().items()}
    for table in SNAPSHOT_TABLES:
        days = [d for d in (published_days.get(table) or {}) if d[:1].isdigit()]
        if days:
            newest = date.fromisoformat(max(days))
            bounds[table] = newest - timedelta(days=7 * _lookback_weeks())
    return bounds


def publish_bounds(con, out_dir) -> tuple[dict[str, date], dict | None]:
    """(unchanged_before, basis) for a daily publish into `out_dir` by the dbt code on disk
    (its fingerprint as dbt runs it: dbt_daily_tests.code_fingerprint of dbt_runner.dbt_env):
    the days of the big tables the build since the current publication can have written, and
    what to keep with the new one; ({}, None) without the producer (nothing is bounded)."""
    from python_models.dbt_daily_tests import code_fingerprint
    from python_models.dbt_runner import dbt_env
    from python_models.publish import published_basis, published_days
    from python_models.warehouse import table_exists

    if not table_exists(con, PRODUCER):
        return {}, None
    code = code_fingerprint(dbt_env())
    bounds = unchanged_before(con, published_basis(out_dir), published_days(out_dir), code)
    return bounds, basis(con, code)
