"""The bad-input catalogue: every kind of broken file through the real `uba load` and `uba gate`.

Each case writes tiny files into its own warehouse and runs the two commands as a user would
(python_models.cli.main, in-process so the catalogue stays fast). Per case it asserts the exit
codes; for a file that cannot be loaded at all, one line on stderr naming the file and the
problem (no traceback) and nothing written; otherwise, for every row of the file, its verdict
(validated, or quarantined with its reasons, and for an unreadable row why it could not be
read), so every valid row in the same file is kept; and raw = validated + quarantined.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from python_models.cli import main
from python_models.ingest import CONTRACT_COLUMNS
from python_models.warehouse import connect

GOOD = {
    "user_id": "u1",
    "anonymous_id": "a1",
    "event_name": "page_view",
    "event_ts": "2025-03-01T10:00:00Z",
    "received_at": "2025-03-01T10:00:02Z",
    "session_id": "s1",
    "properties": '{"page": "/home"}',
}
NBSP = "\u00a0"


def event(event_id, **changes) -> dict:
    return {"event_id": event_id, **GOOD, **changes}


def csv_bytes(rows: list[dict], header: list[str] | None = None, newline="\n") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(
        out, fieldnames=header or list(CONTRACT_COLUMNS), lineterminator=newline
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue().encode("utf-8")


def jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")


def parquet_file(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@dataclass
class Case:
    """files(tmp) writes the input and returns its paths. expected: row number -> None
    (validated), "reasons" (quarantined) or "unparseable_row/<load_error>"."""

    name: str
    files: Callable[[Path], list[Path]]
    expected: dict[int, str | None] = field(default_factory=dict)
    load_error: str | None = None  # a problem the one-line error must name
    load_note: str | None = None  # something `uba load` must say on a successful run


def write(path: Path, data: bytes) -> list[Path]:
    path.write_bytes(data)
    return [path]


FIVE = [event(f"e{i}") for i in range(1, 6)]
ALL_VALID = dict.fromkeys(range(1, 6))


def latin1_at(row: int) -> Callable[[Path], list[Path]]:
    def files(tmp):
        lines = csv_bytes(FIVE).split(b"\n")
        lines[row] = lines[row].replace(b"/home", b"/caf\xe9")  # a latin-1 byte in that row
        return write(tmp / "latin1.csv", b"\n".join(lines))

    return files


def truncated_parquet(tmp):
    path = parquet_file(tmp / "whole.parquet", {c: [r[c] for r in FIVE] for c in CONTRACT_COLUMNS})
    return write(tmp / "truncated.parquet", path.read_bytes()[:-40])


def zipped(tmp):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("events.csv", csv_bytes(FIVE))
    return write(tmp / "events.csv", buffer.getvalue())


def parquet_named_csv(tmp):
    path = parquet_file(tmp / "p.parquet", {c: [r[c] for r in FIVE] for c in CONTRACT_COLUMNS})
    return write(tmp / "events.csv", path.read_bytes())


def integer_id_columns(tmp):
    return [
        parquet_file(
            tmp / "ints.parquet",
            {
                "event_id": pa.array([1, 7, 70], pa.int64()),
                "user_id": pa.array([7, 7, 7], pa.int32()),
                **{c: [GOOD[c]] * 3 for c in CONTRACT_COLUMNS if c not in ("event_id", "user_id")},
            },
        )
    ]


TIMESTAMP_FORMS = [
    "2025-03-01T10:00:00Z",
    "2025-03-01T10:00:00.000Z",
    "2025-03-01T12:00:00+02:00",
    "2025-03-01T15:30:00+0530",
    "2025-03-01T05:00:00-05",
    "2025-03-01 10:00:00",
    "2025-03-01T10:00:00,5z",
    "2025-03-01T11:00:00 +01:00",
    " 2025-03-01T10:00:00Z ",
]

CASES = [
    Case("clean csv", lambda t: write(t / "ok.csv", csv_bytes(FIVE)), ALL_VALID),
    Case(
        "gzip content under a .csv name",
        lambda t: write(t / "events.csv", gzip.compress(csv_bytes(FIVE))),
        ALL_VALID,
    ),
    Case("csv.gz", lambda t: write(t / "events.csv.gz", gzip.compress(csv_bytes(FIVE))), ALL_VALID),
    Case(
        "jsonl.gz",
        lambda t: write(t / "events.jsonl.gz", gzip.compress(jsonl_bytes(FIVE))),
        ALL_VALID,
    ),
    Case("zip archive named .csv", zipped, load_error="is a zip archive"),
    Case("parquet named .csv", parquet_named_csv, load_error="this is a Parquet file"),
    Case("truncated parquet", truncated_parquet, load_error="cannot read as Parquet"),
    Case(
        "unknown extension",
        lambda t: write(t / "events.txt", jsonl_bytes(FIVE)),
        load_error="--format",
    ),
    Case(
        "latin-1 byte in the header",
        lambda t: write(t / "h.csv", csv_bytes(FIVE).replace(b"user_id", b"us\xe9r_id", 1)),
        load_error="header line is not UTF-8",
    ),
    Case(
        "latin-1 byte in the first row",
        latin1_at(1),
        {1: "unparseable_row/invalid_utf8", 2: None, 3: None, 4: None, 5: None},
    ),
    Case(
        "latin-1 byte further down",
        latin1_at(4),
        {1: None, 2: None, 3: None, 4: "unparseable_row/invalid_utf8", 5: None},
    ),
    Case(
        "a column named twice",
        lambda t: write(
            t / "twice.csv",
            csv_bytes([{**e, "event_id ": ""} for e in FIVE], [*CONTRACT_COLUMNS, "event_id "]),
        ),
        load_error="names column 'event_id' 2 times",
    ),
    Case(
        "no contract column",
        lambda t: write(t / "other.csv", b"foo,bar\n1,2\n"),
        load_error="none of the contract columns",
    ),
    Case(
        "0-byte csv",
        lambda t: write(t / "empty.csv", b""),
        load_note="is empty",
    ),
    Case(
        "0-byte jsonl",
        lambda t: write(t / "empty.jsonl", b""),
        load_note="is empty",
    ),
    Case(
        "jsonl line with invalid UTF-8",
        lambda t: write(
            t / "bad_utf8.jsonl",
            jsonl_bytes(FIVE[:2])
            + b'{"event_id": "x", "page": "caf\xe9"}\n'
            + jsonl_bytes(FIVE[2:]),
        ),
        {1: None, 2: None, 3: "unparseable_row/invalid_utf8", 4: None, 5: None, 6: None},
    ),
    Case(
        "jsonl line over 2 MB",
        lambda t: write(
            t / "long.jsonl",
            jsonl_bytes(FIVE[:1])
            + jsonl_bytes([event("big", properties=json.dumps({"blob": "x" * 2_500_000}))])
            + jsonl_bytes(FIVE[1:]),
        ),
        {1: None, 2: "unparseable_row/line_too_long", 3: None, 4: None, 5: None, 6: None},
    ),
    Case(
        "jsonl line that is not an object",
        lambda t: write(t / "arr.jsonl", jsonl_bytes(FIVE[:1]) + b"[1, 2]\n{cut\n"),
        {
            1: None,
            2: "unparseable_row/malformed_json_line",
            3: "unparseable_row/malformed_json_line",
        },
    ),
    Case(
        "ragged csv row",
        lambda t: write(t / "ragged.csv", csv_bytes(FIVE[:2]) + b"e9,u,a,click,x,y,z,w,extra\n"),
        {1: None, 2: None, 3: "unparseable_row/too_many_fields"},
    ),
    Case(
        "ids of no-break spaces or holding NUL",
        lambda t: write(
            t / "ids.csv",
            csv_bytes([event(NBSP * 2), event("ok"), event("n\x00ul"), event("o", user_id=NBSP)]),
        ),
        {1: "invalid_identifier", 2: None, 3: "invalid_identifier", 4: "invalid_identifier"},
    ),
    Case(
        "negative, absurd and infinite revenue",
        lambda t: write(
            t / "revenue.jsonl",
            jsonl_bytes(
                [
                    event("r1", event_name="purchase", properties='{"revenue": -12.5}'),
                    event("r2", event_name="purchase", properties='{"revenue": 1e300}'),
                    event("r3", event_name="purchase", properties='{"revenue": 19.9}'),
                    event("r4", event_name="purchase", properties='{"revenue": "1e999"}'),
                ]
            ),
        ),
        {1: "implausible_revenue", 2: "implausible_revenue", 3: None, 4: "invalid_property_type"},
    ),
    Case(
        "BOM and CRLF",
        lambda t: write(t / "bom.csv", b"\xef\xbb\xbf" + csv_bytes(FIVE, newline="\r\n")),
        ALL_VALID,
    ),
    Case(
        "embedded newlines in quoted fields",
        lambda t: write(
            t / "multiline.csv",
            csv_bytes([event("m1", properties='{"page": "/a\\nb",\n "plan": "x"}'), *FIVE[1:]]),
        ),
        ALL_VALID,
    ),
    Case(
        "SQL-looking and emoji ids",
        lambda t: write(
            t / "odd_ids.csv",
            csv_bytes(
                [
                    event("'); drop table raw.events; --", user_id="u' or '1'='1"),
                    event("\U0001f680\U0001f525", anonymous_id="\u00e9\u00e8\u00ea"),
                ]
            ),
        ),
        {1: None, 2: None},
    ),
    Case(
        "1 MB properties",
        lambda t: write(
            t / "big_props.jsonl",
            jsonl_bytes([event("b1", properties=json.dumps({"blob": "y" * 1_000_000})), *FIVE[1:]]),
        ),
        {1: "properties_too_large", 2: None, 3: None, 4: None, 5: None},
    ),
    Case(
        "duplicate ids with different content",
        lambda t: write(
            t / "dups.csv",
            csv_bytes(
                [
                    event("d1", received_at="2025-03-01T10:00:05Z", event_name="click"),
                    event("d1", event_name="search"),  # received first: kept
                    event("d1", event_name="page_view", properties="{bad"),
                ]
            ),
        ),
        {1: "duplicate_event_id", 2: None, 3: "invalid_properties_json;duplicate_event_id"},
    ),
    Case(
        "every timestamp form",
        lambda t: write(
            t / "times.jsonl",
            jsonl_bytes([event(f"t{i}", event_ts=ts) for i, ts in enumerate(TIMESTAMP_FORMS)]),
        ),
        dict.fromkeys(range(1, len(TIMESTAMP_FORMS) + 1)),
    ),
    Case(
        "purchases from 1997",
        lambda t: write(
            t / "cdnow.csv",
            csv_bytes(
                [
                    event(
                        "p1",
                        event_name="purchase",
                        event_ts="1997-01-12T00:00:00Z",
                        received_at="1997-01-12T00:00:00Z",
                        properties='{"revenue": 29.33}',
                    )
                ]
            ),
        ),
        {1: None},
    ),
    Case(
        "ids that look like numbers stay text",
        lambda t: write(
            t / "numeric_ids.csv",
            csv_bytes([event("00001"), event("007"), event("7", user_id="007")]),
        ),
        {1: None, 2: None, 3: None},
    ),
    Case("integer id columns in parquet", integer_id_columns, {1: None, 2: None, 3: None}),
]


def run_uba(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def verdicts(db: Path) -> dict[int, str | None]:
    con = connect(db, read_only=True)
    try:
        rows = con.execute(
            """
            select e.row_number,
                case when q.raw_id is not null and q.load_error is not null
                    then q.reasons || '/' || q.load_error
                    else q.reasons end,
                (q.raw_id is null) <> (v.raw_id is null) as exactly_one
            from raw.events as e
            left join raw.events_quarantine as q using (raw_id)
            left join raw.events_validated as v using (raw_id)
            order by 1
            """
        ).fetchall()
    finally:
        con.close()
    assert all(one for _, _, one in rows), "a raw row is in both tables or in neither"
    return {number: reasons for number, reasons, _ in rows}


def counts(db: Path) -> tuple[int, int, int]:
    con = connect(db, read_only=True)
    try:
        return con.execute(
            """select (select count(*) from raw.events),
                (select count(*) from raw.events_validated),
                (select count(*) from raw.events_quarantine)"""
        ).fetchone()
    finally:
        con.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = case.files(inputs)
    db = tmp_path / "warehouse.duckdb"

    code, out, err = run_uba(capsys, "load", "--duckdb", str(db), *map(str, files))

    if case.load_error:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith("uba load: ") and str(files[0]) in lines[0], lines[0]
        assert case.load_error in lines[0], lines[0]
        if db.exists():  # nothing of the file was written
            con = connect(db, read_only=True)
            try:
                assert con.execute("select count(*) from raw.events").fetchone() == (0,)
            finally:
                con.close()
        return
    assert code == 0, err
    assert "Traceback" not in err
    if case.load_note:
        assert case.load_note in out, out

    code, out, err = run_uba(
        capsys, "gate", "--duckdb", str(db), "--no-docs", "--max-quarantine-rate", "1"
    )

    assert code == 0, err
    assert verdicts(db) == case.expected
    raw, valid, quarantined = counts(db)
    assert raw == valid + quarantined == len(case.expected)
    assert valid == sum(v is None for v in case.expected.values())


def test_ids_keep_their_text_through_the_gate(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    path = tmp_path / "ids.csv"
    path.write_bytes(csv_bytes([event("00001"), event("007"), event("7", user_id="007")]))
    run_uba(capsys, "load", "--duckdb", str(db), str(path))
    run_uba(capsys, "gate", "--duckdb", str(db), "--no-docs")
    con = connect(db, read_only=True)
    try:
        ids = con.execute(
            "select event_id, user_id from raw.events_validated order by 1"
        ).fetchall()
    finally:
        con.close()
    assert ids == [("00001", "u1"), ("007", "u1"), ("7", "007")]


def test_a_corrupt_batch_fails_uba_gate_with_the_counts(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    path = tmp_path / "corrupt.csv"
    path.write_bytes(csv_bytes([event(f"c{i}", event_ts="yesterday") for i in range(8)] + FIVE[:2]))
    run_uba(capsys, "load", "--duckdb", str(db), str(path))

    code, out, err = run_uba(capsys, "gate", "--duckdb", str(db), "--no-docs")

    assert code == 3
    assert "BLOCKED load 1" in out and "8 of 10 rows defective (80.0% > 20.0%)" in out
    assert err.strip().splitlines()[-1] == (
        "uba gate: 1 batch(es) blocked as corrupt: load 1 8/10 defective"
    )
    assert set(verdicts(db).values()) == {"invalid_event_ts", "batch_blocked"}
    assert counts(db) == (10, 0, 10)

    code, out, _ = run_uba(capsys, "gate", "--duckdb", str(db), "--no-docs", "--release", "1")
    assert code == 0 and counts(db) == (10, 2, 8)


def test_a_0_byte_csv_and_a_0_byte_jsonl_are_treated_alike(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    for name in ("empty.csv", "empty.jsonl", "empty.parquet"):
        (tmp_path / name).write_bytes(b"")
    code, out, err = run_uba(capsys, "load", "--duckdb", str(db), str(tmp_path))
    assert code == 0, err
    assert out.count("is empty") == 3
    assert "skipped 3 already-loaded or empty file(s)" in out


def test_an_unset_salt_stops_the_run_with_a_clear_message(tmp_path, capsys, monkeypatch):
    from python_models.config import reload_settings

    monkeypatch.delenv("UBA_PSEUDONYM_SALT")
    monkeypatch.delenv("UBA_ALLOW_DEV_SALT", raising=False)
    try:  # the settings are read once per process: read them again each time
        with pytest.raises(Exception, match="UBA_PSEUDONYM_SALT is not set"):
            reload_settings()
        code, _, err = run_uba(capsys, "gate", "--duckdb", str(tmp_path / "w.duckdb"))
        assert code in (1, 2)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "UBA_PSEUDONYM_SALT is not set" in lines[0]
        monkeypatch.setenv("UBA_ALLOW_DEV_SALT", "1")
        assert reload_settings().pseudonym_salt == "uba-dev-salt"
    finally:
        monkeypatch.undo()
        reload_settings()


def test_duckdb_out_of_memory_stops_a_command_with_one_line(tmp_path, capsys, monkeypatch):
    """A DuckDB memory limit too small for the gate: `uba gate` says so in one line naming
    the setting (no traceback), writes no verdict, and passes once the limit is back."""
    from python_models.config import reload_settings

    db = tmp_path / "w.duckdb"
    path = tmp_path / "events.csv"
    rows = 5000
    path.write_bytes(csv_bytes([event(f"e{i}") for i in range(rows)]))
    code, _, err = run_uba(capsys, "load", "--duckdb", str(db), str(path))
    assert code == 0, err
    monkeypatch.setenv("UBA_DUCKDB_MEMORY_LIMIT", "2MB")
    try:  # the settings are read once per process: read them again each time
        reload_settings()
        code, _, err = run_uba(capsys, "gate", "--duckdb", str(db), "--no-docs")
    finally:
        monkeypatch.undo()
        reload_settings()
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("uba gate: DuckDB ran out of memory within its limit of 2MB: ")
    assert "raise UBA_DUCKDB_MEMORY_LIMIT" in lines[0]
    assert "(DuckDB: Out of Memory Error: " in lines[0]
    assert counts(db) == (rows, 0, 0)  # the gate's tables exist by then, without a verdict

    code, _, err = run_uba(capsys, "gate", "--duckdb", str(db), "--no-docs")
    assert code == 0, err
    raw, valid, quarantined = counts(db)
    assert raw == valid + quarantined == rows and valid > 0
