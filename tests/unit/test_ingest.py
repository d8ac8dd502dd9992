"""File loaders against a real DuckDB file: CSV, JSON Lines and Parquet into raw.events."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from python_models.ingest import CONTRACT_COLUMNS, IngestError, load_path
from python_models.ingest.loaders import MAX_PAYLOAD_CHARS, file_sha256
from python_models.warehouse import connect


@pytest.fixture
def con(tmp_path):
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def rows(con, where: str = "true") -> list[dict]:
    cursor = con.execute(f"select * from raw.events where {where} order by source_file, row_number")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def count(con, table: str = "raw.events") -> int:
    return con.execute(f"select count(*) from {table}").fetchone()[0]


CSV_TEXT = (
    "event_name,event_id,user_id,event_ts,received_at,properties,unused_extra\n"
    'page_view,e1,u1,2025-01-01T10:00:00Z,2025-01-01T10:00:01Z,"{""page"": ""/a, b""}",x\n'
    "click,e2,,2025-01-01T10:00:02Z,,,y\n"
)


def test_csv_rows_keep_text_and_missing_columns_are_null(con, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(CSV_TEXT)

    result = load_path(con, path)

    assert result.files_loaded == 1 and result.rows_loaded == 2
    loaded = rows(con)
    prefix = file_sha256(path)[:16]
    assert [r["raw_id"] for r in loaded] == [f"{prefix}:1", f"{prefix}:2"]
    assert [r["row_number"] for r in loaded] == [1, 2]
    first, second = loaded
    assert first["event_id"] == "e1" and first["event_name"] == "page_view"
    assert first["properties"] == '{"page": "/a, b"}'
    assert first["anonymous_id"] is None and first["session_id"] is None  # absent columns
    assert second["user_id"] is None and second["received_at"] is None  # empty fields
    assert first["load_error"] is None and first["raw_payload"] is None
    assert "unused_extra" not in first
    assert con.execute("select format, row_count from raw.load_log").fetchall() == [("csv", 2)]


def test_loading_the_same_file_twice_adds_nothing(con, tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text(CSV_TEXT)
    load_path(con, path)
    before = rows(con)

    again = load_path(con, path)
    copy = tmp_path / "renamed_copy.csv"  # same bytes under another name: same file
    copy.write_text(CSV_TEXT)
    third = load_path(con, copy)

    assert again.files_loaded == 0 and again.files_skipped == 1 and again.rows_loaded == 0
    assert third.files_skipped == 1
    assert rows(con) == before
    assert count(con, "raw.load_log") == 1
    assert "already loaded" in capsys.readouterr().out


def test_jsonl_bad_lines_become_rows_and_do_not_stop_the_load(con, tmp_path):
    long_broken = '{"event_id": "' + "z" * (MAX_PAYLOAD_CHARS + 500)
    lines = [
        json.dumps({"event_id": "j1", "event_name": "click", "properties": {"revenue": 9.5}}),
        "",  # blank line: not an event, but it still counts for line numbers
        "{not json",
        "[1, 2, 3]",
        '"just a string"',
        json.dumps({"event_id": "j2", "properties": '{"page": "/p"}', "extra": 1}),
        long_broken,
        json.dumps({"event_id": 7, "user_id": None, "properties": None}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = load_path(con, path)

    by_line = {r["row_number"]: r for r in rows(con)}
    assert result.rows_loaded == 7 and sorted(by_line) == [1, 3, 4, 5, 6, 7, 8]
    assert json.loads(by_line[1]["properties"]) == {"revenue": 9.5}
    assert by_line[6]["properties"] == '{"page": "/p"}'  # a JSON string stays the text it holds
    assert by_line[8]["event_id"] == "7" and by_line[8]["user_id"] is None
    assert by_line[8]["properties"] is None
    for line_no in (3, 4, 5, 7):
        assert by_line[line_no]["load_error"] == "malformed_json_line"
        assert by_line[line_no]["event_id"] is None
    assert by_line[3]["raw_payload"] == "{not json"
    assert by_line[7]["raw_payload"] == long_broken[:MAX_PAYLOAD_CHARS]
    assert by_line[1]["load_error"] is None and by_line[1]["raw_payload"] is None


def test_jsonl_crlf_line_endings(con, tmp_path):
    path = tmp_path / "windows.ndjson"
    body = [json.dumps({"event_id": f"w{i}", "event_name": "click"}) for i in range(3)]
    path.write_bytes(("\r\n".join(body) + "\r\n").encode())

    load_path(con, path)

    loaded = rows(con)
    assert [(r["row_number"], r["event_id"]) for r in loaded] == [(1, "w0"), (2, "w1"), (3, "w2")]
    assert all(r["load_error"] is None for r in loaded)


def test_parquet_nested_properties_become_json_text(con, tmp_path):
    table = pa.table(
        {
            "event_id": ["p1", "p2"],
            "user_id": pa.array([42, None], pa.int64()),  # not text in the file: cast
            "event_name": ["purchase", "click"],
            "properties": pa.array(
                [{"revenue": 12.5, "currency": "USD"}, None],
                pa.struct([("revenue", pa.float64()), ("currency", pa.string())]),
            ),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)

    load_path(con, path)

    first, second = rows(con)
    assert (first["row_number"], second["row_number"]) == (1, 2)
    assert json.loads(first["properties"]) == {"revenue": 12.5, "currency": "USD"}
    assert first["user_id"] == "42" and second["user_id"] is None
    assert first["received_at"] is None


def test_directory_loads_supported_files_in_sorted_order(con, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "b.jsonl").write_text(json.dumps({"event_id": "b1"}) + "\n")
    (folder / "a.csv").write_text("event_id\na1\n")
    (folder / "notes.txt").write_text("not events")
    pq.write_table(pa.table({"event_id": ["c1"]}), folder / "c.parquet")

    result = load_path(con, folder)

    assert result.files_loaded == 3 and result.rows_loaded == 3
    loaded_order = [
        r[0] for r in con.execute("select format from raw.load_log order by loaded_at").fetchall()
    ]
    assert loaded_order == ["csv", "jsonl", "parquet"]


def test_format_override_and_unknown_extension(con, tmp_path):
    path = tmp_path / "export.txt"
    path.write_text(json.dumps({"event_id": "t1", "event_name": "click"}) + "\n")
    with pytest.raises(IngestError, match="extension"):
        load_path(con, path)
    assert load_path(con, path, fmt="jsonl").rows_loaded == 1
    with pytest.raises(IngestError, match="format"):
        load_path(con, path, fmt="xml")


def test_file_without_any_contract_column_is_a_clear_error(con, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(CSV_TEXT)
    load_path(con, good)
    for name, text in (
        ("bad.csv", "foo,bar\n1,2\n"),
        ("bad.jsonl", json.dumps({"foo": 1}) + "\n"),
    ):
        bad = tmp_path / name
        bad.write_text(text)
        with pytest.raises(IngestError, match="contract"):
            load_path(con, bad)
    assert count(con) == 2 and count(con, "raw.load_log") == 1


def test_a_file_that_fails_midway_leaves_nothing_behind(con, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(CSV_TEXT)
    load_path(con, good)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("event_id,event_name\n" + "ok,click\n" * 50 + "broken,click,extra,fields\n")

    with pytest.raises(IngestError, match="nothing was written"):
        load_path(con, ragged)

    assert count(con) == 2
    assert con.execute("select source_file from raw.load_log").fetchall() == [(str(good),)]


def test_contract_columns_are_the_raw_columns(con, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(CSV_TEXT)
    load_path(con, path)
    columns = [r[0] for r in con.execute("describe raw.events").fetchall()]
    assert columns[5:13] == list(CONTRACT_COLUMNS)
    with pytest.raises(duckdb.ConstraintException):  # raw_id is the primary key
        con.execute("insert into raw.events select * from raw.events limit 1")
