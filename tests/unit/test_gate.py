"""The quality gate on real DuckDB files and real GX validations.

Hand-made fixture rows each plant one known defect; the tests check the gate's verdict for
every row against that plan, and the planted truth of the synthetic generator.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date, datetime

import polars as pl
import pytest

from expectations.gate import REASON_CODES, GateError, GateRules, run_gate
from expectations.gate import run as gate_run
from expectations.gate.dialect import DuckDBDialect
from expectations.gx_import import gx
from expectations.suites import gate_batches
from python_models.ingest import CONTRACT_COLUMNS, load_path
from python_models.warehouse import connect

GOOD = {
    "user_id": "u1",
    "anonymous_id": "a1",
    "event_name": "page_view",
    "event_ts": "2025-03-01T10:00:00Z",
    "received_at": "2025-03-01T10:00:02Z",
    "properties": '{"page": "/home"}',
}
# Quarantine unknown names, never block: the fixture files are mostly defects on purpose.
RULES = GateRules(max_quarantine_rate=1.0, unknown_event_policy="quarantine")
NBSP = "\u00a0"


def row(event_id: str | None, **changes) -> dict:
    return {"event_id": event_id, **GOOD, **changes}


def purchase(event_id: str, properties: str) -> dict:
    return row(event_id, event_name="purchase", properties=properties)


# (row, expected reasons or None for a valid row). Row order = file order.
CSV_PLAN: list[tuple[dict, str | None]] = [
    (row("ok-1"), None),
    (row("ok-2", user_id=None, properties=None), None),  # anonymous only, no properties
    (purchase("ok-3", '{"revenue": 19.99, "currency": "EUR"}'), None),
    (purchase("ok-4", '{"revenue": "5.5"}'), None),  # numeric text
    (row("ok-5", event_ts="2025-03-01T12:00:00+02:00", received_at="2025-03-01 10:00:03"), None),
    (purchase("ok-1997", '{"revenue": 12}') | {"event_ts": "1997-01-01T00:00:00Z"}, None),
    (row("ok-sql'; drop table raw.events; --"), None),  # odd but valid ids stay as they are
    (row("ok-\U0001f600", user_id="\u00e9l\u00e8ve"), None),
    (row(None), "missing_event_id"),
    (row(""), "missing_event_id"),
    (row(NBSP * 3), "invalid_identifier"),
    (row("bad-nul", user_id="u\x001"), "invalid_identifier"),
    (row("bad-zw", anonymous_id="\u200b"), "invalid_identifier"),
    (row("bad-name", event_name=None), "missing_event_name"),
    (row("bad-unknown", event_name="page_veiw"), "unknown_event_name"),
    (row("bad-who", user_id=None, anonymous_id=None), "missing_identity"),
    (row("bad-ts", event_ts="2025-13-45T99:00:00Z"), "invalid_event_ts"),
    (row("bad-ts-missing", event_ts=None), "invalid_event_ts"),
    (row("bad-recv", received_at="2025-02-30T10:00:00Z"), "invalid_received_at"),
    (row("bad-old", event_ts="1989-12-31T23:59:59Z"), "event_ts_out_of_range"),
    (row("bad-future", event_ts="2025-03-05T10:00:00Z"), "event_ts_out_of_range"),
    (row("bad-ancient", event_ts="1500-01-01T00:00:00Z"), "event_ts_out_of_range"),
    (row("bad-far-future", event_ts="9999-12-31T23:59:59Z"), "event_ts_out_of_range"),
    (row("bad-recv-future", received_at="9999-01-01T00:00:00Z"), "invalid_received_at"),
    (row("bad-recv-ancient", received_at="1600-01-01T00:00:00Z"), "event_ts_out_of_range"),
    (row("bad-json", properties='{"page": "/ho'), "invalid_properties_json"),
    (row("bad-array", properties="[1, 2]"), "invalid_properties_json"),
    (row("bad-big", properties=json.dumps({"blob": "x" * 70_000})), "properties_too_large"),
    (row("bad-rev", properties='{"revenue": "twelve"}'), "invalid_property_type"),
    (row("bad-rev-bool", properties='{"revenue": true}'), "invalid_property_type"),
    (row("bad-rev-inf", properties='{"revenue": 1e400}'), "invalid_property_type"),
    (purchase("bad-currency", '{"revenue": 3, "currency": 978}'), "invalid_property_type"),
    (
        row("bad-feature", event_name="feature_use", properties='{"feature": ["a"]}'),
        "invalid_property_type",
    ),
    (purchase("ok-no-revenue", '{"currency": "USD"}'), None),  # revenue is optional
    (row("bad-no-feature", event_name="feature_use", properties=None), "missing_property"),
    (
        row("bad-null-feature", event_name="feature_use", properties='{"feature": null}'),
        "missing_property",
    ),
    (purchase("bad-negative", '{"revenue": -5}'), "implausible_revenue"),
    (purchase("bad-absurd", '{"revenue": 1e300}'), "implausible_revenue"),
    (
        row("bad-two", event_name="nope", properties="{oops"),
        "unknown_event_name;invalid_properties_json",
    ),
    # Re-sent: written first in the file but received later than the copy below, so the
    # copy below is the one kept.
    (row("dup-1", received_at="2025-03-01T11:00:00Z"), "duplicate_event_id"),
    (row("dup-1"), None),
    (row("dup-1", received_at="2025-03-01T12:00:00Z"), "duplicate_event_id"),
    # A defective first copy does not take the good later copy down with it.
    (row("dup-2", properties="{broken"), "invalid_properties_json;duplicate_event_id"),
    (row("dup-2", received_at="2025-03-01T10:30:00Z"), None),
    # Same id, different content, same time: the first row of the file is kept.
    (row("dup-3", event_name="click"), None),
    (row("dup-3", event_name="search"), "duplicate_event_id"),
]


def write_csv(path, plan) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CONTRACT_COLUMNS)
        writer.writeheader()
        for fields, _ in plan:
            writer.writerow({k: ("" if v is None else v) for k, v in fields.items()})


def write_jsonl(path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def table(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()


def verdicts(con, source_file) -> dict[int, str | None]:
    """row_number -> reasons (None when validated) for every raw row of one file."""
    return dict(
        table(
            con,
            """
            select e.row_number, q.reasons
            from raw.events as e
            left join raw.events_quarantine as q using (raw_id)
            left join raw.events_validated as v using (raw_id)
            where e.source_file = ?
                and (q.raw_id is null) <> (v.raw_id is null)  -- exactly one side
            """,
            [str(source_file)],
        )
    )


def reconciles(con) -> bool:
    raw, valid, quarantined = con.execute(
        """select (select count(*) from raw.events), (select count(*) from raw.events_validated),
            (select count(*) from raw.events_quarantine)"""
    ).fetchone()
    return raw == valid + quarantined


@pytest.fixture
def con(tmp_path):
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "planted.csv"
    write_csv(path, CSV_PLAN)
    return path


def test_every_planted_csv_row_gets_its_verdict(con, csv_file, tmp_path):
    load_path(con, csv_file)

    result = run_gate(con, rules=RULES, progress=True, data_docs_dir=tmp_path / "docs")

    expected = {i + 1: reasons for i, (_, reasons) in enumerate(CSV_PLAN)}
    assert verdicts(con, csv_file) == expected
    assert result.success and result.rows_checked == len(CSV_PLAN)
    assert result.rows_valid == sum(r is None for r in expected.values())
    assert result.rows_quarantined == sum(r is not None for r in expected.values())
    suites = gate_batches.build_suite(RULES), gate_batches.build_reconciliation_suite(RULES)
    assert result.evaluated_expectations == sum(len(s.expectations) for s in suites) > 0
    planted_first = {r.split(";")[0] for r in expected.values() if r}
    assert result.reasons == {
        code: sum(1 for r in expected.values() if r and r.split(";")[0] == code)
        for code in planted_first
    }
    assert reconciles(con)
    first_reasons = table(con, "select reason, reasons from raw.events_quarantine")
    assert all(reasons.split(";")[0] == reason for reason, reasons in first_reasons)
    # Raw text is kept in quarantine; valid ids are kept exactly.
    assert table(con, "select user_id from raw.events_quarantine where event_id = 'bad-nul'") == [
        ("u\x001",)
    ]
    assert ("ok-sql'; drop table raw.events; --",) in table(
        con, "select event_id from raw.events_validated"
    )
    # Data Docs: both suites' pages of this run, rendered in one build at the end of the run,
    # and the index linking to them.
    index = (tmp_path / "docs" / "index.html").read_text()
    for suite in suites:
        pages = list(
            (tmp_path / "docs" / "validations" / suite.name / result.run_id).rglob("*.html")
        )
        assert len(pages) == 1, suite.name
        assert str(pages[0].relative_to(tmp_path / "docs")) in index
        assert (tmp_path / "docs" / "expectations" / f"{suite.name}.html").exists()


def test_every_reason_code_is_planted_and_caught(con, csv_file, tmp_path):
    jsonl = tmp_path / "planted.jsonl"
    write_jsonl(jsonl, ["{broken line", json.dumps(row("j-ok"))])
    load_path(con, [csv_file, jsonl])
    run_gate(con, rules=RULES)
    # event_too_late needs an earlier run: the newest event accepted is its reference
    late = tmp_path / "late.jsonl"
    write_jsonl(late, [json.dumps(row("late-1", event_ts="2025-02-01T10:00:00Z"))])
    load_path(con, late)
    run_gate(con, rules=RULES)
    seen = {r[0] for r in table(con, "select unnest(string_split(reasons, ';')) from "
                                     "raw.events_quarantine")}  # fmt: skip
    assert seen == set(REASON_CODES)


def test_unknown_event_names_are_kept_and_flagged_by_default(con, tmp_path):
    path = tmp_path / "new_events.jsonl"
    write_jsonl(path, [json.dumps(row("n1", event_name="wishlist_added")),
                       json.dumps(row("n2"))])  # fmt: skip
    load_path(con, path)

    result = run_gate(con, rules=GateRules(max_quarantine_rate=1.0))

    assert verdicts(con, path) == {1: None, 2: None}
    assert result.rows_unplanned == 1
    assert table(con, "select rows_unplanned from raw.gate_batches") == [(1,)]
    drift = table(con, "select kind, name from raw.schema_drift where kind = 'new_event_name'")
    assert drift == [("new_event_name", "wishlist_added")]


def test_date_bounds_and_revenue_range_are_settings(con, tmp_path):
    path = tmp_path / "old.jsonl"
    write_jsonl(path, [json.dumps(purchase("p1", '{"revenue": 40}') | {
        "event_ts": "1997-03-01T10:00:00Z", "received_at": "1997-03-01T10:00:00Z"}),
        json.dumps(purchase("p2", '{"revenue": -3}'))])  # fmt: skip
    load_path(con, path)
    strict = GateRules(max_quarantine_rate=1.0, earliest_event_date=date(2000, 1, 1),
                       revenue_min=-10.0)  # fmt: skip
    run_gate(con, rules=strict)
    assert verdicts(con, path) == {1: "event_ts_out_of_range", 2: None}


def test_a_corrupt_batch_is_blocked_then_released(con, tmp_path):
    good = tmp_path / "good.jsonl"
    write_jsonl(good, [json.dumps(row(f"g{i}")) for i in range(10)])
    corrupt = tmp_path / "corrupt.jsonl"
    lines = [json.dumps(row(f"c{i}", event_ts="yesterday")) for i in range(7)]
    write_jsonl(corrupt, lines + [json.dumps(row(f"c{i}")) for i in range(7, 10)])
    load_path(con, [good, corrupt])

    result = run_gate(con, rules=GateRules(max_quarantine_rate=0.5))

    assert [(b.source_file, b.status) for b in result.batches] == [
        (str(good), "passed"),
        (str(corrupt), "blocked"),
    ]
    blocked = result.blocked[0]
    assert (blocked.rows_defective, blocked.rows_checked) == (7, 10)
    assert set(verdicts(con, corrupt).values()) == {"invalid_event_ts", "batch_blocked"}
    assert list(verdicts(con, corrupt).values()).count("batch_blocked") == 3
    assert reconciles(con)

    released = run_gate(con, rules=GateRules(max_quarantine_rate=0.5), release=[blocked.load_id])

    assert [(b.status, b.rows_checked, b.rows_valid) for b in released.batches] == [
        ("passed", 10, 3)
    ]
    assert list(verdicts(con, corrupt).values()).count(None) == 3
    assert reconciles(con)
    with pytest.raises(GateError, match="not blocked"):
        run_gate(con, rules=RULES, release=[blocked.load_id])


def test_jsonl_huge_and_broken_rows_quarantine_while_valid_rows_pass(con, tmp_path):
    good = [row(f"j{i}", properties={"page": f"/p{i}", "revenue": i}) for i in range(5)]
    huge = row("j-huge", properties={"blob": "y" * 70_000})
    good_lines = [json.dumps(g) for g in good]
    lines = [good_lines[0], json.dumps(huge), good_lines[1], '{"event_id": "j-cut', "[1, 2]",
             good_lines[2], "", good_lines[3], good_lines[4]]  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, lines)
    load_path(con, path)

    run_gate(con, rules=RULES)

    assert verdicts(con, path) == {
        1: None, 2: "properties_too_large", 3: None, 4: "unparseable_row",
        5: "unparseable_row", 6: None, 8: None, 9: None,
    }  # fmt: skip
    validated = table(con, "select event_id, properties from raw.events_validated order by 1")
    assert [(e, json.loads(p)) for e, p in validated] == [
        (g["event_id"], g["properties"]) for g in good
    ]
    payload = table(con, "select raw_payload from raw.events_quarantine where row_number = 4")
    assert payload == [('{"event_id": "j-cut',)]


def test_validated_rows_are_typed_and_in_utc(con, tmp_path):
    forms = {  # every timestamp form the contract accepts -> the same UTC instant
        "t1": "2025-03-01T12:00:00+02:00",
        "t2": "2025-03-01T04:30:00.000-05:30",
        "t3": "2025-03-01 10:00:00",
        "t4": "2025-03-01T10:00:00Z",
        "t5": "2025-03-01T10:00:00z",
        "t6": "2025-03-01T10:00:00,000Z",
        "t7": "2025-03-01T11:00:00 +01:00",
        "t8": "2025-03-01T15:30:00+0530",
        "t9": "2025-03-01T10:00Z",
        "t10": " 2025-03-01T10:00:00Z ",
        "t11": "2025-03-01T12:00:00+02",
    }
    path = tmp_path / "times.jsonl"
    write_jsonl(path, [json.dumps(row(k, event_ts=v, received_at="2025-03-01T10:00:02Z"))
                       for k, v in forms.items()]
                + [json.dumps(row("d1", received_at="2025-03-01", properties=None))])  # fmt: skip
    load_path(con, path)
    run_gate(con, rules=RULES)

    typed = dict(table(con, "select event_id, event_ts from raw.events_validated"))
    assert typed == {**dict.fromkeys(forms, datetime(2025, 3, 1, 10, 0)),
                     "d1": datetime(2025, 3, 1, 10, 0)}  # fmt: skip
    assert table(con, "select received_at, properties from raw.events_validated "
                      "where event_id = 'd1'") == [(datetime(2025, 3, 1), "{}")]  # fmt: skip
    types = dict(table(con, "select column_name, data_type from information_schema.columns "
                            "where table_name = 'events_validated'"))  # fmt: skip
    assert types["event_ts"] == types["received_at"] == "TIMESTAMP"


def test_the_session_time_zone_does_not_change_verdicts(con, tmp_path):
    path = tmp_path / "naive.jsonl"
    write_jsonl(path, [json.dumps(row("z1", event_ts="2025-03-01 10:00:00"))])
    load_path(con, path)
    con.execute("set TimeZone = 'America/New_York'")
    run_gate(con, rules=RULES)
    assert table(con, "select event_ts from raw.events_validated") == [
        (datetime(2025, 3, 1, 10, 0),)
    ]
    assert table(con, "select current_setting('TimeZone')") == [("America/New_York",)]


def snapshot(con) -> tuple:
    return (
        # loaded_at is when each file went in, which differs between the two warehouses.
        table(con, "select * exclude (loaded_at) from raw.events_validated order by raw_id"),
        table(con, "select * exclude (quarantined_at) from raw.events_quarantine order by raw_id"),
    )


def test_gate_is_idempotent_and_batching_does_not_change_verdicts(csv_file, tmp_path):
    one = connect(tmp_path / "one.duckdb")
    many = connect(tmp_path / "many.duckdb")
    load_path(one, csv_file)
    run_gate(one, rules=RULES)
    load_path(many, csv_file)
    run_gate(many, rules=RULES)
    assert snapshot(one) == snapshot(many)

    before = snapshot(one)
    again = run_gate(one, rules=RULES)
    assert again.success and again.rows_checked == again.rows_valid == 0
    assert again.rows_quarantined == 0 and again.evaluated_expectations > 0
    assert snapshot(one) == before
    assert table(one, "select count(*), count(distinct run_id) from raw.gate_runs") == [(2, 2)]
    one.close()
    many.close()


def recorded_slices(monkeypatch) -> list:
    """The slices the gate writes (sql.write_slices' results), as it writes them."""
    slices: list = []
    real = gate_run.sql.write_slices
    monkeypatch.setattr(gate_run.sql, "write_slices", lambda r: slices.extend(real(r)) or slices)
    return slices


def test_write_slices_split_big_batches_and_group_small_ones(monkeypatch):
    monkeypatch.setattr(gate_run.sql, "WRITE_SLICE_ROWS", 3)
    ranges = [(1, 1, 7, 7), (4, 10, 12, 3), (5, 1, 2, 2), (6, 3, 3, 1), (8, 1, 5, 3)]
    assert gate_run.sql.write_slices(ranges) == [
        (1, 1, 1, 3), (1, 1, 4, 6), (1, 1, 7, 7),  # 7 rows: in spans of 3
        (4, 4, 10, 12),  # 3 rows: whole, and no room left beside it
        (5, 6, 1, 3),  # 2 + 1 rows together
        (8, 8, 1, 5),  # 3 rows with gaps: whole
    ]  # fmt: skip


def test_small_batches_share_a_slice_without_the_blocked_one_between_them(
    con, tmp_path, monkeypatch
):
    files = []
    for name, bad in (("good", 0), ("corrupt", 7), ("later", 0)):
        path = tmp_path / f"{name}.jsonl"
        lines = [
            row(f"{name}{i}", **({"event_ts": "yesterday"} if i < bad else {})) for i in range(10)
        ]
        write_jsonl(path, [json.dumps(line) for line in lines])
        files.append(path)
    load_path(con, files)
    pieces = recorded_slices(monkeypatch)

    result = run_gate(con, rules=GateRules(max_quarantine_rate=0.5))

    assert [b.status for b in result.batches] == ["passed", "blocked", "passed"]
    assert pieces == [(1, 3, 1, 10)]  # one statement for both passing batches
    assert set(verdicts(con, files[0]).values()) == set(verdicts(con, files[2]).values()) == {None}
    assert list(verdicts(con, files[1]).values()).count("batch_blocked") == 3
    assert reconciles(con)


def test_verdicts_hold_with_small_write_slices_and_colliding_id_hashes(con, csv_file, monkeypatch):
    """The gate writes valid rows a slice of a batch at a time and finds the ids repeated in a
    batch among those whose hash repeats: with 4-row slices and a hash under which ids of one
    length collide, every planted row still gets its verdict."""
    monkeypatch.setattr(gate_run.sql, "WRITE_SLICE_ROWS", 4)
    slices = recorded_slices(monkeypatch)
    monkeypatch.setattr(DuckDBDialect, "id_hash", lambda self, text: f"length({text})")
    load_path(con, csv_file)

    said = []
    result = run_gate(con, rules=RULES, progress=said.append)

    assert len(slices) >= len(CSV_PLAN) // 4
    assert sum("valid rows written, slice" in line for line in said) == len(slices)
    assert verdicts(con, csv_file) == {i + 1: reasons for i, (_, reasons) in enumerate(CSV_PLAN)}
    assert result.rows_checked == len(CSV_PLAN) and reconciles(con)


def test_event_id_accepted_in_an_earlier_run_is_a_duplicate_later(con, csv_file, tmp_path):
    load_path(con, csv_file)
    run_gate(con, rules=RULES)
    later = tmp_path / "later.jsonl"
    write_jsonl(later, [json.dumps(row("ok-1", received_at="2025-03-01T10:05:00Z")),
                        json.dumps(row("new-1"))])  # fmt: skip
    load_path(con, later)

    result = run_gate(con, rules=RULES)

    assert verdicts(con, later) == {1: "duplicate_event_id", 2: None}
    assert result.rows_checked == 2 and result.reasons == {"duplicate_event_id": 1}
    assert reconciles(con)


def test_a_suite_without_expectations_fails_the_gate(con, csv_file, monkeypatch):
    load_path(con, csv_file)
    monkeypatch.setattr(
        gate_batches, "build_suite", lambda rules: gx.ExpectationSuite(name="gate_batches_empty")
    )
    with pytest.raises(GateError, match="zero expectations"):
        run_gate(con, rules=RULES)
    assert table(con, "select count(*) from raw.events_validated") == [(0,)]


def test_zero_evaluated_expectations_fail_the_gate(con, csv_file, monkeypatch):
    """A suite whose expectations are all skipped by GX evaluates nothing: not a pass."""
    load_path(con, csv_file)
    real = gate_run.validate_frame

    def evaluating_nothing(*args, **kwargs):
        outcome = real(*args, **kwargs)
        return type(outcome)(**{**outcome.__dict__, "evaluated_expectations": 0})

    monkeypatch.setattr(gate_run, "validate_frame", evaluating_nothing)
    with pytest.raises(GateError, match="zero expectations"):
        run_gate(con, rules=RULES)
    assert table(con, "select count(*) from raw.events_quarantine") == [(0,)]


def test_rows_that_do_not_reconcile_fail_the_run_and_write_nothing(con, csv_file, monkeypatch):
    load_path(con, csv_file)
    real = gate_run.sql.insert_quarantine_sql
    # Lose the quarantined rows on the way: the reconciliation suite must catch it.
    monkeypatch.setattr(
        gate_run.sql, "insert_quarantine_sql", lambda blocked: real(blocked) + " limit 0"
    )
    with pytest.raises(GateError, match="reconcile"):
        run_gate(con, rules=RULES)
    assert table(
        con,
        "select (select count(*) from raw.events_validated), "
        "(select count(*) from raw.events_quarantine), (select count(*) from raw.gate_runs)",
    ) == [(0, 0, 0)]


def test_new_rows_are_found_by_load_batch(con, csv_file, tmp_path):
    load_path(con, csv_file)
    run_gate(con, rules=RULES)
    assert table(con, "select count(*) from raw.gate_batches where status = 'passed'") == [(1,)]
    later = tmp_path / "later.jsonl"
    write_jsonl(later, [json.dumps(row("late-1"))])
    load_path(con, later)
    result = run_gate(con, rules=RULES)
    assert [b.source_file for b in result.batches] == [str(later)]
    assert table(con, "select load_id from raw.events_validated where event_id = 'late-1'") == [
        (2,)
    ]


def test_synthetic_sample_quarantine_matches_planted_truth(gated_warehouse, sample_data):
    """Per row: each planted defect is quarantined with its reason, each re-sent copy as a
    duplicate (the first received copy kept), and nothing else is quarantined."""
    defects = pl.read_parquet(sample_data.truth_dir / "defects.parquet")
    duplicates = pl.read_parquet(sample_data.truth_dir / "duplicates.parquet")
    con = connect(gated_warehouse, read_only=True)
    try:
        quarantine = con.execute(
            "select coalesce(nullif(trim(event_id), ''), session_id) as row_key, reasons, "
            "event_id from raw.events_quarantine"
        ).pl()
        kept_first = con.execute(
            """
            select count(*) from raw.events_validated as v
            join raw.events_quarantine as q on q.event_id = v.event_id
            where try_cast(q.received_at as timestamptz) < try_cast(
                (select received_at from raw.events as e where e.raw_id = v.raw_id) as timestamptz)
            """
        ).fetchone()[0]
        assert reconciles(con)
    finally:
        con.close()

    planted = defects.select("row_key", pl.col("expected_reason").alias("reasons"))
    found_defects = quarantine.filter(pl.col("reasons") != "duplicate_event_id").select(
        "row_key", "reasons"
    )
    assert found_defects.sort("row_key").equals(planted.sort("row_key"))

    found_dups = (
        quarantine.filter(pl.col("reasons") == "duplicate_event_id")
        .group_by("event_id")
        .agg(pl.len().cast(pl.Int64).alias("extra_copies"))
    )
    expected_dups = duplicates.select("event_id", (pl.col("copies") - 1).alias("extra_copies"))
    assert found_dups.sort("event_id").equals(expected_dups.sort("event_id"))
    assert kept_first == 0


def test_gate_imports_great_expectations_without_what_it_never_uses():
    """GX's import pulls in pyspark (when installed), SQLAlchemy, scipy.stats and altair, about
    40% of its CPU on every gate run, none of which a validation of a pandas frame uses: the
    gate's GX import leaves them out, each stays importable afterwards, and GX's one user of
    scipy.stats (the KL divergence) still reaches the real module when it runs."""
    code = (
        "import sys; import expectations.gate.run; from expectations.suites import gate_batches; "
        "left_out = ['pyspark', 'sqlalchemy', 'scipy.stats', 'altair']; "
        "print(*(name in sys.modules for name in left_out)); "
        "import pyspark.sql, sqlalchemy.engine, altair; "
        "print(*(name in sys.modules for name in ['pyspark.sql', 'sqlalchemy.engine', 'altair'])); "
        "from great_expectations.expectations.core import "
        "expect_column_kl_divergence_to_be_less_than as kl; "
        "print(round(kl.stats.entropy([0.5, 0.5], [0.9, 0.1]), 4), 'scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[-3:] == ["False False False False", "True True True", "0.5108 True"], (
        out.stdout[-500:] + out.stderr[-500:]
    )


def test_the_suites_import_starts_once_in_its_own_thread():
    """expectations.preload: importing it loads neither pandas nor GX (starting it costs the
    caller nothing); the first call starts the thread importing GX and the gate's suites, a
    second call returns that thread; once joined, they are imported (in a fresh process)."""
    code = (
        "import sys; from expectations import preload; "
        "print('pandas' in sys.modules, 'great_expectations' in sys.modules); "
        "first = preload.start_suites_import(); second = preload.start_suites_import(); "
        "first.join(); "
        "print(first is second, first.name, 'expectations.suites.gate_batches' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.splitlines()[-2:] == ["False False", "True gate-gx-import True"], (
        out.stdout[-500:] + out.stderr[-500:]
    )


def test_uba_load_and_uba_gate_run_without_polars(csv_file, tmp_path):
    """`uba load` and `uba gate` use DuckDB (and GX on pandas) only: polars, which the
    warehouse interface imported for every command (~0.5 s at start), stays out of both."""
    code = (
        "import sys; from python_models.cli import main; "
        f"print(main(['load', {str(csv_file)!r}]), main(['gate', '--no-docs']), "
        "'great_expectations' in sys.modules, 'polars' in sys.modules)"
    )
    env = {
        **os.environ,
        "UBA_DUCKDB_PATH": str(tmp_path / "cli.duckdb"),
        "UBA_DATA_DIR": str(tmp_path / "data"),
        "UBA_MAX_QUARANTINE_RATE": "1.0",
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    # 0: loaded; 0: gated, no batch blocked; GX ran; polars was never imported
    assert out.stdout.splitlines()[-1:] == ["0 0 True False"], out.stdout[-800:] + out.stderr[-800:]


def test_the_gate_tables_store_the_raw_text_columns_as_raw_events_does(tmp_path):
    """raw.events_validated and raw.events_quarantine declare the contract's storage methods
    for the raw text columns they copy (on DuckDB): planted repeating values, which DuckDB's
    own trial stores as dictionaries, are stored as the contract says."""
    from expectations.gate.tables import ensure_gate_tables
    from python_models.ingest.contract import RAW_COMPRESSION

    def stored(table: str) -> dict[str, str]:
        con.execute("checkpoint")
        return dict(
            con.execute(
                "select column_name, string_agg(distinct lower(compression), ',') from "
                f"pragma_storage_info('{table}') where segment_type = 'VARCHAR' group by 1"
            ).fetchall()
        )

    con = connect(tmp_path / "warehouse.duckdb")
    try:
        ensure_gate_tables(con)
        con.execute(
            "insert into raw.events_validated select 'r' || (i % 7), 'e' || (i % 5), null, null, "
            "'click', timestamp '2025-01-01', timestamp '2025-01-01', null, '{}', "
            "timestamp '2025-01-01', 1 from range(5000) t(i)"
        )
        validated = stored("raw.events_validated")
        assert {c: validated[c] for c in ("raw_id", "event_id")} == {
            c: RAW_COMPRESSION[c] for c in ("raw_id", "event_id")
        }
        con.execute(
            "insert into raw.events_quarantine (raw_id, load_id, reason, reasons, source_file, "
            "row_number, event_ts, quarantined_at) select 'r' || (i % 7), 1, 'x', 'x', 'f.csv', "
            "i, '2025-01-0' || (i % 3 + 1), timestamp '2025-01-01' from range(5000) t(i)"
        )
        quarantined = stored("raw.events_quarantine")
        assert {c: quarantined[c] for c in ("raw_id", "source_file", "event_ts")} == {
            c: RAW_COMPRESSION[c] for c in ("raw_id", "source_file", "event_ts")
        }
    finally:
        con.close()
