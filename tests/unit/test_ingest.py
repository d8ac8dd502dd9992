"""File loaders against a real DuckDB file: CSV, JSON Lines and Parquet into raw.events."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from python_models.ingest import CONTRACT_COLUMNS, IngestError, load_path
from python_models.ingest.contract import RAW_COMPRESSION
from python_models.ingest.files import file_sha256
from python_models.ingest.readers import MAX_PAYLOAD_CHARS
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


def test_on_new_file_is_called_before_each_new_file_s_rows_only(con, tmp_path):
    """`uba refresh` starts the gate's GX import from load_path's on_new_file: called once per
    new file, before its rows are written, and never for a file already loaded or an empty
    one."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(CSV_TEXT)
    (folder / "b.csv").write_text(CSV_TEXT.replace("e1", "e3").replace("e2", "e4"))
    (folder / "c.csv").write_text("")
    rows_seen = []

    def on_new_file() -> None:
        rows_seen.append(count(con))  # raw.events exists: load_path makes it first

    first = load_path(con, folder, on_new_file=on_new_file)
    again = load_path(con, folder, on_new_file=on_new_file)

    assert first.files_loaded == 2 and again.files_loaded == 0
    assert rows_seen == [0, 2]  # twice, each before that file's rows


def test_refresh_starts_the_gate_s_gx_import_when_its_load_finds_a_new_file(
    con, tmp_path, monkeypatch
):
    """`uba refresh`'s load starts the gate's GX import before a new file's rows (a new file
    always means a gate), and not when every file was loaded already (nothing to gate)."""
    from expectations import preload
    from python_models.commands.refresh import _load

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(CSV_TEXT)
    started = []
    monkeypatch.setattr(preload, "start_suites_import", lambda: started.append(count(con)))

    first = _load(con, [str(folder)])
    again = _load(con, [str(folder)])

    assert first.files_loaded == 1 and again.files_loaded == 0
    assert started == [0]  # once, before the new file's rows


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
    with pytest.raises(IngestError, match="extension.*--format"):
        load_path(con, path)
    assert load_path(con, path, fmt="jsonl").rows_loaded == 1
    with pytest.raises(IngestError, match="--format"):
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


def test_a_ragged_row_becomes_an_unreadable_row_and_the_rest_loads(con, tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(
        "event_id,event_name\n" + "ok,click\n" * 50 + "broken,click,extra,fields\nlast,click\n"
    )

    result = load_path(con, ragged)

    assert result.rows_loaded == 52 and result.rows_unreadable == 1
    bad = rows(con, "load_error is not null")
    assert [(r["row_number"], r["load_error"], r["raw_payload"]) for r in bad] == [
        (51, "too_many_fields", "broken,click,extra,fields")
    ]
    assert [r["event_id"] for r in rows(con, "row_number = 52")] == ["last"]


def test_a_file_that_fails_midway_leaves_nothing_behind(con, tmp_path, monkeypatch):
    good = tmp_path / "good.csv"
    good.write_text(CSV_TEXT)
    load_path(con, good)
    second = tmp_path / "second.csv"
    second.write_text("event_id,event_name\n" + "ok,click\n" * 50)
    from python_models.ingest import drift

    def crash(*args, **kwargs):  # fails after the rows went in, before the commit
        raise duckdb.IOException("disk full")

    monkeypatch.setattr(drift, "record_drift", crash)
    with pytest.raises(IngestError, match="nothing was written"):
        load_path(con, second)

    assert count(con) == 2
    assert con.execute("select source_file from raw.load_log").fetchall() == [(str(good),)]


def test_contract_columns_are_the_raw_columns(con, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(CSV_TEXT)
    load_path(con, path)
    columns = [r[0] for r in con.execute("describe raw.events").fetchall()]
    assert columns[6:14] == list(CONTRACT_COLUMNS)
    assert con.execute("select distinct load_id from raw.events").fetchall() == [(1,)]


def test_ids_are_text_never_type_guessed(con, tmp_path):
    """'00001' keeps its zeros and '007' and '7' stay two ids, in every format; an integer
    Parquet column becomes its decimal text and is reported as re-typed drift."""
    ids = ["00001", "007", "7", "1e3", "0x1F"]
    csv_path = tmp_path / "ids.csv"
    csv_path.write_text("event_id,user_id\n" + "".join(f"c{i},{v}\n" for i, v in enumerate(ids)))
    jsonl_path = tmp_path / "ids.jsonl"
    jsonl_path.write_text(
        "".join(json.dumps({"event_id": f"j{i}", "user_id": v}) + "\n" for i, v in enumerate(ids))
    )
    text_parquet = tmp_path / "ids_text.parquet"
    pq.write_table(pa.table({"event_id": ["p0", "p1"], "user_id": ["007", "7"]}), text_parquet)
    int_parquet = tmp_path / "ids_int.parquet"
    pq.write_table(
        pa.table({"event_id": pa.array([1, 7], pa.int64()), "user_id": pa.array([7, 70])}),
        int_parquet,
    )

    load_path(con, [csv_path, jsonl_path, text_parquet, int_parquet])

    def user_ids(prefix):
        return [r["user_id"] for r in rows(con, f"event_id like '{prefix}%'")]

    assert user_ids("c") == ids
    assert user_ids("j") == ids
    assert user_ids("p") == ["007", "7"]
    assert [(r["event_id"], r["user_id"]) for r in rows(con, "source_file like '%ids_int%'")] == [
        ("1", "7"),
        ("7", "70"),
    ]
    retyped = con.execute(
        "select name, observed from raw.schema_drift where kind = 'retyped_column' order by 1"
    ).fetchall()
    assert retyped == [("event_id", "integer"), ("user_id", "integer")]


def test_schema_drift_is_recorded_per_load_and_accepted_once(con, tmp_path):
    from datetime import datetime

    from python_models.ingest.drift import accept_drift, pending_drift

    first = tmp_path / "a.jsonl"
    first.write_text(
        json.dumps({"event_id": "e1", "event_name": "purchase", "user_id": "u",
                    "properties": {"revenue": 5, "coupon": "X"}, "app_version": "1.2"}) + "\n"
        + json.dumps({"event_id": "e2", "event_name": "wishlist_added", "user_id": 9,
                      "properties": {"page": "/p"}}) + "\n"
    )  # fmt: skip
    load_path(con, first)
    found = {(k, e, n, o, rows) for k, e, n, o, _, rows in pending_drift(con)}
    assert found == {
        ("new_column", None, "app_version", "string", 1),
        ("missing_column", None, "anonymous_id", None, 2),
        ("missing_column", None, "event_ts", None, 2),
        ("missing_column", None, "received_at", None, 2),
        ("missing_column", None, "session_id", None, 2),
        ("retyped_column", None, "user_id", "integer", 1),
        ("new_event_name", None, "wishlist_added", None, 1),
        ("new_property_key", "purchase", "coupon", None, 1),
    }
    assert accept_drift(con, datetime(2025, 1, 1)) == len(found)

    again = tmp_path / "b.jsonl"  # the same shape again, plus one new key
    again.write_text(
        json.dumps({"event_id": "e3", "event_name": "purchase", "user_id": "u",
                    "properties": {"revenue": 1, "coupon": "Y", "gift": True},
                    "app_version": "1.3"}) + "\n"
    )  # fmt: skip
    load_path(con, again)
    assert [(k, e, n) for k, e, n, *_ in pending_drift(con)] == [
        ("new_property_key", "purchase", "gift")
    ]


# Planted: what a load of these events must report, whatever the file's format.
_DRIFT_EVENTS = [
    ("e1", "purchase", '{"revenue": 5, "coupon": "X"}'),
    ("e2", "wishlist_added", '{"page": "/p"}'),
    ("e3", " purchase ", '{"revenue": 1, "coupon": "Y", "gift": true}'),
    ("e4", "page_view", "not json"),  # not an object: no keys to report
    ("e5", "page_view", "[1, 2]"),
    ("e6", "wishlist_added", None),
]
_DRIFT_FOUND = {
    ("new_event_name", None, "wishlist_added", 2),
    ("new_property_key", "purchase", "coupon", 2),
    ("new_property_key", "purchase", "gift", 1),
}


def _event_drift(con) -> set[tuple]:
    from python_models.ingest.drift import pending_drift

    return {
        (kind, event_name, name, rows)
        for kind, event_name, name, _, _, rows in pending_drift(con)
        if kind in ("new_event_name", "new_property_key")
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_unplanned_event_names_and_property_keys_are_found_in_every_format(tmp_path, fmt):
    """The load's event findings from one scan of its rows: a Parquet file's read again from
    the file (drift.event_findings' `rows`), the text formats' from raw.events."""
    ids, names, properties = (list(column) for column in zip(*_DRIFT_EVENTS, strict=True))
    table = pa.table({"event_id": ids, "event_name": names, "user_id": ["u"] * len(ids),
                      "properties": properties})  # fmt: skip
    path = tmp_path / f"events.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=2)  # several row groups, read in parallel
    elif fmt == "csv":
        table.to_pandas().to_csv(path, index=False)
    else:
        path.write_text(
            "".join(json.dumps(row) + "\n" for row in table.to_pylist())  # properties as text
        )
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        load_path(con, path, progress=False)
        assert _event_drift(con) == _DRIFT_FOUND
    finally:
        con.close()


def test_a_parquet_file_s_nested_properties_are_read_as_their_json(tmp_path):
    """A struct column of properties is loaded as its JSON text, and its keys are found as
    those of the same properties written as text."""
    path = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table({
            "event_id": ["n1", "n2"],
            "event_name": ["purchase", "purchase"],
            "properties": [{"revenue": 2.0, "coupon": "A"}, {"revenue": 3.0, "coupon": None}],
        }),
        path,
    )  # fmt: skip
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        load_path(con, path, progress=False)
        assert _event_drift(con) == {("new_property_key", "purchase", "coupon", 2)}
    finally:
        con.close()


def test_raw_tables_from_before_load_batches_are_migrated(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        """
        create schema raw;
        create table raw.events (raw_id varchar primary key, source_file varchar not null,
            file_sha256 varchar not null, row_number bigint not null, loaded_at timestamp not null,
            event_id varchar, user_id varchar, anonymous_id varchar, event_name varchar,
            event_ts varchar, received_at varchar, session_id varchar, properties varchar,
            load_error varchar, raw_payload varchar);
        create table raw.load_log (file_sha256 varchar primary key, source_file varchar not null,
            format varchar not null, row_count bigint not null, loaded_at timestamp not null);
        insert into raw.load_log values ('bbb', 'b.csv', 'csv', 1, '2025-01-02'),
            ('aaa', 'a.csv', 'csv', 2, '2025-01-01');
        insert into raw.events (raw_id, source_file, file_sha256, row_number, loaded_at, event_id)
        values ('aaa:1', 'a.csv', 'aaa', 1, '2025-01-01', 'x'),
            ('aaa:2', 'a.csv', 'aaa', 2, '2025-01-01', 'y'),
            ('bbb:1', 'b.csv', 'bbb', 1, '2025-01-02', 'z');
        """
    )
    con.close()
    con = connect(path)
    from python_models.ingest import ensure_raw_tables

    ensure_raw_tables(con)
    assert con.execute(
        "select event_id, load_id, row_number from raw.events order by event_id"
    ).fetchall() == [("x", 1, 1), ("y", 1, 2), ("z", 2, 1)]
    assert con.execute("select load_id, source_file from raw.load_log order by 1").fetchall() == [
        (1, "a.csv"),
        (2, "b.csv"),
    ]
    con.close()


def test_raw_columns_of_a_known_shape_are_stored_with_their_declared_method(con, tmp_path):
    """The contract's declared storage (RAW_COMPRESSION) is what the file holds after a load,
    and the rows read back as written. The planted ids and times repeat, so DuckDB's own trial
    would store them as dictionaries: the declaration, not the data, chose FSST."""
    written = range(5_000)

    def event_id(i: int) -> str:
        return f"{i % 50:08x}-4c1e-9a7b-{i % 50 * 7919:012d}"

    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "event_id": [event_id(i) for i in written],
                "user_id": [f"u{i % 97}" for i in written],
                "event_name": [("page_view", "click")[i % 2] for i in written],
                "event_ts": [f"2025-01-01T10:00:{i % 10:02d}Z" for i in written],
                "received_at": [f"2025-01-01T11:00:{i % 10:02d}Z" for i in written],
            }
        ),
        path,
    )
    load_path(con, path)
    con.execute("checkpoint")
    stored = dict(
        con.execute(
            "select column_name, string_agg(distinct lower(compression), ',') "
            "from pragma_storage_info('raw.events') where segment_type = 'VARCHAR' group by 1"
        ).fetchall()
    )
    for column, method in RAW_COMPRESSION.items():
        assert stored[column] == method, (column, stored[column])
    assert count(con) == len(written)
    row = rows(con, "row_number = 4242")[0]  # row numbers count from 1
    assert (row["event_id"], row["event_ts"]) == (event_id(4241), "2025-01-01T10:00:01Z")
