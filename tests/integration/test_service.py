"""The scoring service end to end: a real uvicorn server on loopback, a real published DuckDB
copy, real trigger webhooks to a loopback receiver, the SQLite audit.

Parity: the published copy the service reads lacks the last events of a few sampled users;
those events are posted to it, and the features it computes for them must equal the rows
the dbt feature mart built when the events were in the warehouse.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import polars as pl
import pytest
from conftest import lightgbm_threads

from python_models.privacy import pseudonymize

pytestmark = pytest.mark.slow

TEST_SALT = "test-salt"  # tests/conftest.py
HELD_BACK = 3  # events per sampled user posted to the service instead of published
SAMPLED_USERS = 6
MIDDLE_POSITION = 5  # of the event withheld from one more user's history, from the end


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(port: int, method: str, path: str, body=None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        _Receiver.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def _serving(app, port: int):
    import uvicorn

    # log_config=None: uvicorn's loggers propagate to the root, where caplog sees them.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def scored_warehouse(built_warehouse, tmp_path_factory):
    """The sample warehouse with next_action and segmentation trained and scored."""
    from python_models.lifecycle import score_model, train_model
    from python_models.warehouse import connect

    path = tmp_path_factory.mktemp("service_wh") / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    con = connect(path)
    try:
        for name in ("next_action", "segmentation"):
            assert train_model(con, name, run_id="svc").status == "champion"
            score_model(con, name, run_id="svc")
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def mart_events(scored_warehouse) -> pl.DataFrame:
    """Every event of the scored warehouse's marts.fct_events (the columns the service reads)."""
    from python_models.warehouse import connect

    con = connect(scored_warehouse, read_only=True)
    try:
        return con.execute(
            "select user_id, event_id, event_name, event_ts from marts.fct_events"
        ).pl()
    finally:
        con.close()


@pytest.fixture(scope="module")
def held_back(mart_events) -> pl.DataFrame:
    """The last HELD_BACK events of SAMPLED_USERS seeded users with a long enough history."""
    events = mart_events
    counts = events.group_by("user_id").len().filter(pl.col("len") >= 20).sort("user_id")
    rng = np.random.default_rng(17)
    users = rng.choice(counts["user_id"].to_numpy(), SAMPLED_USERS, replace=False).tolist()
    return (
        events.filter(pl.col("user_id").is_in(users))
        .sort("user_id", "event_ts", "event_id")
        .group_by("user_id", maintain_order=True)
        .tail(HELD_BACK)
    )


@pytest.fixture(scope="module")
def held_back_middle(mart_events, held_back) -> pl.DataFrame:
    """One more user's event MIDDLE_POSITION from the end: posting it is posting an event
    older than the published history."""
    events = mart_events
    users = (
        events.group_by("user_id")
        .len()
        .filter((pl.col("len") >= 20) & ~pl.col("user_id").is_in(held_back["user_id"].implode()))
        .sort("user_id")["user_id"]
    )
    person = events.filter(pl.col("user_id") == users[0]).sort("event_ts", "event_id")
    return person.slice(person.height - MIDDLE_POSITION, 1)


@pytest.fixture(scope="module")
def service(scored_warehouse, held_back, held_back_middle, tmp_path_factory):
    """(port, service, receiver port, data dir): the service over a publication that lacks
    the held-back events, with a webhook rule to a loopback receiver and a log rule."""
    from python_models.config import get_settings
    from python_models.publish import publish_warehouse
    from python_models.service.app import build_service, create_app
    from python_models.warehouse import connect

    root = tmp_path_factory.mktemp("service")
    withheld = root / "withheld.duckdb"
    shutil.copy(scored_warehouse, withheld)
    con = connect(withheld)
    try:
        withheld_ids = pl.concat([held_back, held_back_middle]).select("event_id")
        con.register("held", withheld_ids.to_arrow())
        con.execute(  # fct_events is a view over int_events_sessionized
            "delete from intermediate.int_events_sessionized "
            "where event_id in (select event_id from held)"
        )
        publish_warehouse(con, root / "data" / "published")
    finally:
        con.close()

    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    receiver_port = receiver.server_address[1]
    rules = root / "rules.yml"
    rules.write_text(
        f"""
rules:
  - name: cart_abandon_watch
    when: {{feature: event_name, op: "==", value: add_to_cart}}
    action: {{type: webhook, url: "http://127.0.0.1:{receiver_port}/hooks/cart"}}
    rate_limit: {{max_fires: 1, per_seconds: 3600}}
  - name: every_scoring
    when: {{feature: count_events_so_far, op: ">=", value: 1}}
    action: {{type: log}}
    rate_limit: {{max_fires: 1000, per_seconds: 60}}
"""
    )
    settings = replace(
        get_settings(),
        data_dir=root / "data",
        service_dir=root / "data" / "service",
        service_rules_path=rules,
    )
    svc = build_service(settings)
    port = _free_port()
    with _serving(create_app(svc), port):
        yield port, svc, receiver_port, root
    receiver.shutdown()


def _mart_rows(path, event_ids: list[str] | None) -> pl.DataFrame:
    """The mart's rows (but the label) of these events (None: all), by time."""
    from python_models.warehouse import connect

    con = connect(path, read_only=True)
    try:
        con.register(
            "wanted",
            pl.DataFrame({"event_id": event_ids or []}, schema={"event_id": pl.String}).to_arrow(),
        )
        where = "" if event_ids is None else "where event_id in (select event_id from wanted)"
        return con.execute(
            "select * exclude (next_event_name) from features.ftr_user_event_sequences "
            f"{where} order by event_ts, event_id"
        ).pl()
    finally:
        con.close()


def _as_json(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _score(port: int, events: pl.DataFrame) -> dict:
    """POST /score of one person's events (as given, in that order); the 200 answer."""
    body = {
        "user_id": events["user_id"][0],
        "events": [
            {
                "event_id": e["event_id"],
                "event_name": e["event_name"],
                "event_ts": e["event_ts"].isoformat() + "Z",
            }
            for e in events.iter_rows(named=True)
        ],
    }
    status, answer = _request(port, "POST", "/score", body)
    assert status == 200, answer
    return answer


def _assert_mart_rows(got: list[dict], expected: pl.DataFrame) -> None:
    """The service's rows are the mart's, every column."""
    assert len(got) == expected.height
    for api, mart in zip(got, expected.iter_rows(named=True), strict=True):
        assert set(api) == set(mart), set(api) ^ set(mart)
        differing = {c: (api[c], _as_json(v)) for c, v in mart.items() if api[c] != _as_json(v)}
        assert not differing, differing


def test_lightgbm_runs_on_one_thread_while_the_service_serves(service):
    """Requests are answered in worker threads and LightGBM's thread count is one setting of
    the process: a serving app holds it at one thread (a next action trained on more would
    mix counts across concurrent requests), and gives it back when it stops."""
    from python_models.service.app import create_app

    _, svc, _, _ = service
    assert lightgbm_threads()[1] == 1  # the module's service is serving
    with _serving(create_app(svc), _free_port()):  # a second app beside it: nested holds
        assert lightgbm_threads()[1] == 1
    assert lightgbm_threads()[1] == 1  # the first still serves


def test_posted_events_get_the_feature_marts_features(service, held_back, scored_warehouse):
    port = service[0]
    compared = []
    for (_,), events in held_back.group_by("user_id", maintain_order=True):
        answer = _score(port, events)
        assert answer["events"]["posted"] == HELD_BACK
        expected = _mart_rows(scored_warehouse, events["event_id"].to_list())
        _assert_mart_rows(answer["posted_features"], expected)
        assert answer["features"] == answer["posted_features"][-1]  # the latest event
        compared.append(expected)
    rows = pl.concat(compared)
    assert rows.height == SAMPLED_USERS * HELD_BACK
    # Posted events that start a new session after the history's, and ones within a session.
    assert ((rows["session_event_number"] == 1) & (rows["count_previous_sessions"] > 0)).any()
    assert (rows["session_event_number"] > 1).any()


def test_events_posted_out_of_order_get_their_place_in_the_timeline(service, held_back):
    """Posted in reverse: the rows of the events sorted by (event_ts, event_id), as the mart's."""
    port = service[0]
    events = held_back.filter(pl.col("user_id") == held_back["user_id"][-1])
    in_order = _score(port, events)
    reversed_ = _score(port, events.reverse())
    assert reversed_["posted_features"] == in_order["posted_features"]
    assert reversed_["features"] == in_order["features"]


def test_an_event_older_than_the_history_gets_the_marts_row_and_moves_the_later_ones(
    service, held_back_middle, scored_warehouse
):
    """A late event lands among the published history: its row is the mart's, and so is the
    latest event's (which counts it)."""
    port, svc = service[0], service[1]
    user_id = held_back_middle["user_id"][0]
    history = svc.published.user_events(user_id)
    assert history["event_ts"].max() > held_back_middle["event_ts"][0]
    answer = _score(port, held_back_middle)
    _assert_mart_rows(
        answer["posted_features"],
        _mart_rows(scored_warehouse, held_back_middle["event_id"].to_list()),
    )
    latest = history.sort("event_ts", "event_id")["event_id"][-1]
    (mart_latest,) = _mart_rows(scored_warehouse, [latest]).iter_rows(named=True)
    _assert_mart_rows([answer["features"]], pl.DataFrame([mart_latest]))
    assert answer["features"]["count_events_so_far"] == history.height + 1


def test_a_posted_event_id_already_published_replaces_the_stored_event(
    service, held_back, held_back_middle, scored_warehouse
):
    """Re-posting a published event unchanged gives the mart's row; re-posting it under
    another name scores the corrected timeline (that event counted as the new name)."""
    port, svc = service[0], service[1]
    withheld = pl.concat([held_back, held_back_middle])["user_id"].implode()
    users = _mart_rows(scored_warehouse, None).filter(~pl.col("user_id").is_in(withheld))
    user_id = users.group_by("user_id").len().filter(pl.col("len") >= 20)["user_id"].min()
    history = svc.published.user_events(user_id).sort("event_ts", "event_id")
    event = history.slice(history.height - 4, 1)
    answer = _score(port, event)
    assert answer["events"] == {"history": history.height - 1, "posted": 1}
    (mart,) = _mart_rows(scored_warehouse, event["event_id"].to_list()).iter_rows(named=True)
    _assert_mart_rows(answer["posted_features"], pl.DataFrame([mart]))
    renamed = "search" if event["event_name"][0] != "search" else "click"
    answer = _score(port, event.with_columns(event_name=pl.lit(renamed)))
    (row,) = answer["posted_features"]
    events_so_far = mart["count_events_so_far"]
    assert row["event_name"] == renamed and row["count_events_so_far"] == events_so_far
    assert row[f"share_{renamed}_so_far"] == pytest.approx(
        mart[f"share_{renamed}_so_far"] + 1 / events_so_far
    )
    assert row[f"session_count_{renamed}"] == mart[f"session_count_{renamed}"] + 1


def test_the_next_action_is_the_champions_on_the_mart_row(service, held_back, scored_warehouse):
    from python_models.common import registry
    from python_models.warehouse import connect

    port = service[0]
    user_events = held_back.filter(pl.col("user_id") == held_back["user_id"][0])
    body = {
        "user_id": user_events["user_id"][0],
        "events": [
            {
                "event_id": e["event_id"],
                "event_name": e["event_name"],
                "event_ts": e["event_ts"].isoformat(),
            }
            for e in user_events.iter_rows(named=True)
        ],
    }
    _, answer = _request(port, "POST", "/score", body)
    con = connect(scored_warehouse, read_only=True)
    try:
        model = registry.require_champion(con, "next_action").load()["model"]
        row = con.execute(
            "select * from features.ftr_user_event_sequences where event_id = ?",
            [user_events["event_id"][-1]],
        ).pl()
    finally:
        con.close()
    expected = model.predict_frame(row).row(0, named=True)
    got = answer["next_action"]
    for rank in (1, 2, 3):
        assert got[f"next_action_{rank}"] == expected[f"next_action_{rank}"]
        assert got[f"probability_{rank}"] == pytest.approx(expected[f"probability_{rank}"])
    assert got["reasons"] == expected["reasons"] and got["reasons"]


def test_stored_scores_by_pseudonym_and_by_raw_id(service, sample_data):
    port = service[0]
    users = pl.read_parquet(sample_data.truth_dir / "users.parquet")
    raw = users.filter(pl.col("persona") != "visitor").sort("user_id")["user_id"][5]
    pseudonym = pseudonymize(raw, "user", TEST_SALT)
    status, by_id = _request(port, "GET", f"/users/{pseudonym}")
    assert status == 200, by_id
    assert by_id["scores"]["next_action"]["next_action_1"]
    assert by_id["segment"]["segment_name"] and by_id["segment"]["reasons"]
    status, by_raw = _request(port, "POST", "/users/lookup", {"raw_user_id": raw})
    assert status == 200 and by_raw == by_id
    status, answer = _request(port, "GET", "/users/" + "0" * 32)
    assert status == 404 and "no user" in answer["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("GET", "/users/not-a-pseudonym", None, 422, "user_id"),
        ("POST", "/users/lookup", {"raw_user_id": ""}, 422, "raw_user_id"),
        ("POST", "/users/lookup", {"raw_user_id": "x", "extra": 1}, 422, "extra"),
        (
            "POST",
            "/score",
            {"events": [{"event_name": "click", "event_ts": "2025-01-01"}]},
            422,
            "exactly one of user_id",
        ),
        ("POST", "/score", {"user_id": "a" * 32, "raw_user_id": "u1", "events": []}, 422, "events"),
        (
            "POST",
            "/score",
            {
                "user_id": "a" * 32,
                "events": [{"event_name": "teleport", "event_ts": "2025-01-01T00:00:00Z"}],
            },
            422,
            "unknown event names ['teleport']",
        ),
        (
            "POST",
            "/score",
            {"user_id": "a" * 32, "events": [{"event_name": "click", "event_ts": "yesterday"}]},
            422,
            "event_ts",
        ),
        (
            "POST",
            "/score",
            {
                "user_id": "a" * 32,
                "events": [{"event_name": "click", "event_ts": "2999-01-01T00:00:00Z"}],
            },
            422,
            "future",
        ),
        (
            "POST",
            "/score",
            {
                "user_id": "a" * 32,
                "events": [
                    {"event_name": "click", "event_ts": "2025-01-01T00:00:00Z", "event_id": "e1"},
                    {"event_name": "click", "event_ts": "2025-01-01T00:01:00Z", "event_id": "e1"},
                ],
            },
            422,
            "repeat",
        ),
        (
            "POST",
            "/score",
            {
                "user_id": "a" * 32,
                "events": [{"event_name": "click", "event_ts": "2025-01-01T00:00:00Z"}] * 1001,
            },
            422,
            "events",
        ),
    ],
)
def test_bad_input_gets_a_4xx_with_a_reason(service, method, path, body, status, reason):
    got, answer = _request(service[0], method, path, body)
    assert got == status, answer
    assert reason in answer["detail"]


def test_triggers_fire_a_loopback_webhook_once_per_user_and_are_audited(service):
    port, svc, _, _ = service
    _Receiver.received.clear()
    user_id = "f" * 32  # a user the warehouse has never seen: scored from the posted events
    event = {"event_name": "add_to_cart", "event_ts": "2025-07-07T12:00:00Z"}
    first = _request(port, "POST", "/score", {"user_id": user_id, "events": [event]})[1]
    second = _request(port, "POST", "/score", {"user_id": user_id, "events": [event]})[1]
    by_rule = lambda answer: {t["rule"]: t["status"] for t in answer["triggers"]}  # noqa: E731
    assert by_rule(first) == {"cart_abandon_watch": "queued", "every_scoring": "logged"}
    assert by_rule(second) == {"cart_abandon_watch": "rate_limited", "every_scoring": "logged"}
    deadline = time.time() + 10
    while not _Receiver.received and time.time() < deadline:
        time.sleep(0.05)
    (payload,) = _Receiver.received
    assert payload["rule"] == "cart_abandon_watch" and payload["user_id"] == user_id
    while time.time() < deadline:
        rows = svc.triggers.audit.rows(user_id)
        if all(r["outcome"] != "queued" for r in rows):
            break
        time.sleep(0.05)
    outcomes = [(r["rule_name"], r["outcome"]) for r in rows]
    assert outcomes.count(("cart_abandon_watch", "delivered")) == 1
    assert outcomes.count(("every_scoring", "logged")) == 2


def test_raw_ids_never_reach_the_logs(service, sample_data, caplog):
    port = service[0]
    users = pl.read_parquet(sample_data.truth_dir / "users.parquet")
    raw = users.filter(pl.col("persona") != "visitor").sort("user_id")["user_id"][7]
    event = {"event_name": "page_view", "event_ts": "2025-07-07T12:00:00Z"}
    with caplog.at_level(logging.DEBUG):
        assert _request(port, "POST", "/score", {"raw_user_id": raw, "events": [event]})[0] == 200
        assert _request(port, "POST", "/users/lookup", {"raw_user_id": raw})[0] == 200
        _request(port, "POST", "/users/lookup", {"raw_user_id": raw, "oops": True})
    pseudonym = pseudonymize(raw, "user", TEST_SALT)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert pseudonym in logged  # the service did log these requests ...
    assert raw not in logged  # ... by pseudonym only


def test_a_new_publication_is_picked_up_without_a_restart(service, scored_warehouse):
    from python_models.publish import publish_warehouse
    from python_models.warehouse import connect

    port, _, _, root = service
    status, health = _request(port, "GET", "/health")
    assert status == 200 and "next_action" in health["champions"]
    con = connect(scored_warehouse, read_only=True)
    try:
        user_id = con.execute("select min(user_id) from ml_scores.user_segments").fetchone()[0]
    finally:
        con.close()
    assert _request(port, "GET", f"/users/{user_id}")[1]["segment"] is not None
    republished = root / "republished.duckdb"
    shutil.copy(scored_warehouse, republished)
    con = connect(republished)
    try:
        con.execute("delete from ml_scores.user_segments where user_id = ?", [user_id])
        time.sleep(0.01)  # a new file: another inode, another mtime
        publish_warehouse(con, root / "data" / "published")
    finally:
        con.close()
    status, answer = _request(port, "GET", f"/users/{user_id}")
    assert status == 200 and answer["segment"] is None and "next_action" in answer["scores"]


def test_a_publication_built_with_other_session_settings_is_not_scored(service, held_back):
    """The pickup recomputes some users' mart rows: a service whose session timeout is not the
    one the warehouse was built with refuses to score (503, one line), lookups go on."""
    from python_models.models import MODELS
    from python_models.service.app import ScoreRequest, ServiceUnavailable
    from python_models.service.features import SequenceFeatures
    from python_models.service.published import PublishedWarehouse

    port, svc, _, _ = service
    assert svc.published.sequence_problem() is None
    drifted = SequenceFeatures(replace(svc.features.settings, timeout_seconds=10 * 60))
    published = PublishedWarehouse(svc.published.path, MODELS, check_sequences=drifted.disagreement)
    problem = published.sequence_problem()
    assert problem is not None and "differ from the service's" in problem
    assert "count_previous_sessions" in problem
    user_id = held_back["user_id"][0]
    assert published.user_scores(user_id)  # lookups still answered
    other = replace(svc, published=published, features=drifted)
    event = {"event_name": "click", "event_ts": "2025-07-07T12:00:00Z"}
    with pytest.raises(ServiceUnavailable, match="posted events cannot be scored"):
        other.score(ScoreRequest(user_id=user_id, events=[event]))
