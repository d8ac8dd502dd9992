"""The generator's output against its planted truth (python_models.synthetic)."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime

import duckdb
import numpy as np
import polars as pl
import pytest

from python_models.synthetic import (
    DEFECT_REASONS,
    RAW_COLUMNS,
    generate,
    write_events,
)
from python_models.synthetic.personas import TAXONOMY_PATH

N_EVENTS = 40_000
SEED = 11
PERIOD_START = datetime(2025, 1, 6)
PERIOD_END = datetime(2025, 7, 7)  # 182 days later, exclusive

with TAXONOMY_PATH.open() as _handle:
    KNOWN_EVENTS = {row["event_name"] for row in csv.DictReader(_handle)}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), n_events=N_EVENTS, seed=SEED)


@pytest.fixture(scope="module")
def rows(sample) -> pl.DataFrame:
    return pl.read_parquet(sample.events_dir / "*.parquet")


@pytest.fixture(scope="module")
def truth(sample) -> dict[str, pl.DataFrame]:
    tables = {p.stem: pl.read_parquet(p) for p in sample.truth_dir.glob("*.parquet")}
    tables["manifest"] = json.loads((sample.truth_dir / "manifest.json").read_text())
    return tables


@pytest.fixture(scope="module")
def events(sample, rows) -> pl.DataFrame:
    """Valid rows (no defect rows, one row per event_id) with UTC timestamps parsed by DuckDB."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    clean = rows.filter(~pl.col("session_id").str.starts_with("defect-"))  # noqa: F841
    parsed = con.sql(
        """
        select *,
            cast(cast(event_ts as timestamptz) as timestamp) as ts,
            cast(cast(received_at as timestamptz) as timestamp) as recv
        from clean
        qualify row_number() over (partition by event_id order by recv) = 1
        """
    ).pl()
    con.close()
    return parsed


def _hash_tree(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    first = generate(tmp_path / "a", n_events=10_000, seed=5)
    again = generate(tmp_path / "b", n_events=10_000, seed=5)
    other = generate(tmp_path / "c", n_events=10_000, seed=6)
    assert _hash_tree(first.out_dir) == _hash_tree(again.out_dir)
    assert _hash_tree(first.out_dir) != _hash_tree(other.out_dir)
    # Re-running into the same folder replaces the output rather than adding to it.
    rerun = generate(tmp_path / "a", n_events=10_000, seed=5)
    assert _hash_tree(rerun.out_dir) == _hash_tree(again.out_dir)


def test_event_files_follow_the_raw_contract_all_strings(sample):
    import pyarrow.parquet as pq

    for part in sample.events_dir.glob("part-*.parquet"):
        schema = pq.read_schema(part)
        assert schema.names == list(RAW_COLUMNS)
        assert {str(field.type) for field in schema} == {"string"}


def test_manifest_accounts_for_every_row(sample, rows, truth):
    m = truth["manifest"]
    assert rows.height == sample.n_rows == m["n_rows"]
    assert m["n_rows"] == m["n_valid_events"] + m["n_duplicate_rows"] + m["n_defect_rows"]
    assert abs(m["n_valid_events"] - N_EVENTS) / N_EVENTS < 0.15
    assert m["n_defect_rows"] == truth["defects"].height
    assert m["n_duplicate_rows"] == int((truth["duplicates"]["copies"] - 1).sum())
    assert m["personas"] == dict(truth["users"]["persona"].value_counts().iter_rows())
    assert sample.n_users == truth["users"].height


def test_event_ids_unique_apart_from_planted_duplicates(rows, truth):
    with_id = rows.filter(pl.col("event_id").is_not_null() & (pl.col("event_id") != ""))
    repeated = with_id.group_by("event_id").len().filter(pl.col("len") > 1)
    planted = (
        truth["duplicates"].rename({"copies": "len"}).with_columns(pl.col("len").cast(pl.UInt32))
    )
    assert repeated.sort("event_id").equals(planted.sort("event_id"))


def test_valid_events_are_in_range_named_from_taxonomy_and_received_after(events, truth):
    assert set(events["event_name"].unique()) <= KNOWN_EVENTS
    assert events["ts"].min() >= PERIOD_START
    assert events["ts"].max() < PERIOD_END
    assert (events["recv"] >= events["ts"]).all()
    delay_hours = (events["recv"] - events["ts"]).dt.total_seconds() / 3600
    late_share = float((delay_hours >= 1).mean())
    assert 0.01 < late_share < 0.03  # late_rate 0.02
    assert float(delay_hours.max()) <= 72
    # A small share is written with an explicit offset (the same instant, converted above).
    offset_share = float(events["event_ts"].str.contains(r"[+-]\d\d:\d\d$").mean())
    assert 0.01 < offset_share < 0.06
    assert events.height == truth["manifest"]["n_valid_events"]


def test_at_least_five_personas_with_distinct_recoverable_behaviour(events, truth):
    users = truth["users"]
    assert users["persona"].n_unique() >= 5
    assert users["persona"].value_counts()["count"].min() >= 15
    # Per-user event mix + intensity; a nearest-centroid rule should recover the persona.
    names = sorted(KNOWN_EVENTS)
    mix = (
        events.filter(pl.col("user_id").is_not_null())
        .group_by("user_id")
        .agg(
            [(pl.col("event_name") == n).mean().alias(n) for n in names]
            + [pl.len().log().alias("log_events")]
        )
        .join(users.select("user_id", "persona"), on="user_id")
        .filter(pl.col("log_events") > np.log(20))  # enough events to show a mix
    )
    features = mix.select(names + ["log_events"]).to_numpy()
    features[:, -1] /= 10  # keep intensity from drowning the mix
    labels = mix["persona"].to_numpy()
    personas = np.unique(labels)
    centroids = np.stack([features[labels == p].mean(axis=0) for p in personas])
    nearest = personas[((features[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(axis=1)]
    assert (nearest == labels).mean() > 0.85


def test_defects_one_each_with_the_contract_reason_and_close_to_the_rate(rows, truth):
    defects = truth["defects"]
    m = truth["manifest"]
    assert set(defects["expected_reason"]) == set(DEFECT_REASONS)
    assert 0.0025 < m["n_defect_rows"] / m["n_valid_events"] < 0.0075  # defect_rate 0.005
    assert 1 <= m["defects_by_reason"]["properties_too_large"] <= 2
    assert defects["row_key"].n_unique() == defects.height
    found = rows.join(defects, on="session_id", how="inner", suffix="_truth")
    assert found.height == defects.height
    for row in found.iter_rows(named=True):
        assert _reasons(row) == [row["expected_reason"]], row
        key = row["event_id"] or row["session_id"]
        assert key == row["row_key"]


def _reasons(row: dict) -> list[str]:
    """A tiny independent reading of the gate's checks, to show each row has ONE defect."""

    def parse(ts):
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except (ValueError, AttributeError, TypeError):
            return None

    found = []
    if not row["event_id"]:
        found.append("missing_event_id")
    if not row["event_name"]:
        found.append("missing_event_name")
    elif row["event_name"] not in KNOWN_EVENTS:
        found.append("unknown_event_name")
    if not row["user_id"] and not row["anonymous_id"]:
        found.append("missing_identity")
    event_ts, received = parse(row["event_ts"]), parse(row["received_at"])
    if event_ts is None:
        found.append("invalid_event_ts")
    if received is None:
        found.append("invalid_received_at")
    if event_ts is not None and not (2020 <= event_ts.year <= 2030):
        found.append("event_ts_out_of_range")
    try:
        props = json.loads(row["properties"])
    except json.JSONDecodeError:
        found.append("invalid_properties_json")
    else:
        if len(row["properties"].encode()) > 64 * 1024:
            found.append("properties_too_large")
        if "revenue" in props and not isinstance(props["revenue"], int | float):
            found.append("invalid_property_type")
    return found


def test_duplicates_share_event_id_and_payload_and_arrive_later(rows, truth):
    planted = truth["duplicates"]
    assert 0.005 < planted.height / truth["manifest"]["n_valid_events"] < 0.015
    copies = rows.join(planted.select("event_id"), on="event_id")
    payload = [c for c in RAW_COLUMNS if c != "received_at"]
    distinct = copies.group_by("event_id").agg(pl.struct(payload).n_unique().alias("n"))
    assert (distinct["n"] == 1).all()
    received = copies.group_by("event_id").agg(pl.col("received_at").n_unique().alias("n"))
    assert (
        (received.join(planted, on="event_id").select(pl.col("n") == pl.col("copies")))
        .to_series()
        .all()
    )


def test_churners_stop_at_churn_and_fade_in_the_weeks_before(events, truth):
    users = truth["users"]
    churners = users.filter("churned")
    assert 0.2 < churners.height / users.height < 0.45
    activity = events.filter(pl.col("user_id").is_not_null()).join(users, on="user_id")
    after = activity.filter(pl.col("churned") & (pl.col("ts") >= pl.col("churned_at")))
    assert after.height == 0
    # Events per day in the 3 weeks before churn vs the weeks before that.
    window = pl.duration(days=21)
    per_user = (
        activity.filter("churned")
        .group_by("user_id")
        .agg(
            recent=(pl.col("ts") >= pl.col("churned_at") - window).sum(),
            earlier=(pl.col("ts") < pl.col("churned_at") - window).sum(),
            earlier_days=(
                pl.col("churned_at").first()
                - window
                - pl.max_horizontal("signup_at", pl.lit(PERIOD_START)).first()
            ).dt.total_days(),
        )
        .filter(pl.col("earlier_days") >= 14)
    )
    recent_rate = per_user["recent"].sum() / (21 * per_user.height)
    earlier_rate = per_user["earlier"].sum() / per_user["earlier_days"].sum()
    assert recent_rate < 0.75 * earlier_rate
    # Non-churners stay active to the end (most have an event in the last 30 days).
    last_seen = activity.filter(~pl.col("churned")).group_by("user_id").agg(pl.col("ts").max())
    assert (last_seen["ts"] >= datetime(2025, 6, 7)).mean() > 0.7


def test_account_takeovers_come_from_a_new_country_and_device_at_night(events, truth):
    anomalies = truth["anomalies"].join(truth["users"], on="user_id")
    assert anomalies.height >= 2
    assert set(anomalies["kind"]) == {"account_takeover"}
    assert set(truth["users"].filter("is_ato_victim")["user_id"]) == set(anomalies["user_id"])
    for ato in anomalies.iter_rows(named=True):
        mine = events.filter(pl.col("user_id") == ato["user_id"])
        that_night = mine.filter(
            (pl.col("ts").dt.date() == ato["anomaly_date"])
            & pl.col("ts").dt.hour().is_between(1, 4)
        )
        countries = that_night["properties"].str.json_path_match("$.country")
        foreign = that_night.filter(countries != ato["home_country"])
        assert foreign.height >= 8, ato
        assert {"login", "password_reset", "settings_changed"} <= set(foreign["event_name"])
        new_devices = set(foreign["anonymous_id"]) - set(
            mine.filter(pl.col("ts").dt.date() < ato["anomaly_date"])["anonymous_id"]
        )
        assert new_devices == set(foreign["anonymous_id"])
        burst_minutes = (foreign["ts"].max() - foreign["ts"].min()).total_seconds() / 60
        assert burst_minutes < 60
        # The victim's own events never come from abroad.
        home = mine.filter(~pl.col("anonymous_id").is_in(list(new_devices)))
        assert set(home["properties"].str.json_path_match("$.country")) == {ato["home_country"]}


def test_devices_start_anonymous_then_identify(events, truth):
    by_device = (
        events.sort("ts", "event_id")
        .group_by("anonymous_id", maintain_order=True)
        .agg(
            first_identified=pl.col("user_id").first().is_not_null(),
            ever_identified=pl.col("user_id").is_not_null().any(),
        )
    )
    anonymous_then_identified = by_device.filter(
        ~pl.col("first_identified") & pl.col("ever_identified")
    )
    assert anonymous_then_identified.height > 0.3 * by_device.height
    never = by_device.filter(~pl.col("ever_identified"))
    assert never.height > 0  # anonymous-only visitors
    signups = events.filter(pl.col("event_name") == "signup")
    assert signups["user_id"].is_not_null().all() and signups["anonymous_id"].is_not_null().all()
    assert signups["user_id"].n_unique() == signups.height
    # Every identified event carries its device too.
    assert events.filter(pl.col("user_id").is_not_null())["anonymous_id"].is_not_null().all()
    # Devices truth lists exactly the pairs seen together, 1-4 per user (4 = an attacker's).
    pairs = (
        events.filter(pl.col("user_id").is_not_null()).select("anonymous_id", "user_id").unique()
    )
    listed = truth["devices"].select("anonymous_id", "user_id")
    assert pairs.sort(pl.all()).equals(listed.sort(pl.all()))
    per_user = listed.group_by("user_id").len()["len"]
    assert per_user.max() <= 4


def test_shared_devices_carry_two_identified_users(events, truth):
    shared = truth["devices"].filter("is_shared")
    assert shared["anonymous_id"].n_unique() >= 1
    users_per_device = (
        events.filter(pl.col("user_id").is_not_null())
        .group_by("anonymous_id")
        .agg(pl.col("user_id").n_unique().alias("n"))
    )
    joined = shared.select("anonymous_id").unique().join(users_per_device, on="anonymous_id")
    assert (joined["n"] >= 2).all() and joined.height == shared["anonymous_id"].n_unique()


def test_purchases_carry_revenue_near_the_planted_spend_level(events, truth):
    purchases = events.filter(pl.col("event_name") == "purchase").with_columns(
        revenue=pl.col("properties").str.json_path_match("$.revenue").cast(pl.Float64),
        currency=pl.col("properties").str.json_path_match("$.currency"),
    )
    assert purchases["revenue"].is_not_null().all() and (purchases["revenue"] > 0).all()
    assert set(purchases["currency"]) == {"USD"}
    own = purchases.join(truth["anomalies"].select("user_id"), on="user_id", how="anti")
    per_user = (
        own.group_by("user_id")
        .agg(pl.col("revenue").mean(), pl.len())
        .join(truth["users"], on="user_id")
        .filter(pl.col("len") >= 5)
    )
    ratio = (per_user["revenue"] / per_user["spend_level"]).median()
    assert 0.85 < ratio < 1.15
    shopper = truth["users"].filter(pl.col("persona") == "shopper")["spend_level"].median()
    deal = truth["users"].filter(pl.col("persona") == "deal_hunter")["spend_level"].median()
    assert shopper > 3 * deal


def test_pii_only_on_signup_and_login(events):
    has_email = events["properties"].str.contains('"email"')
    has_ip = events["properties"].str.contains('"ip"')
    assert set(events.filter(has_email)["event_name"]) == {"signup"}
    assert set(events.filter(has_ip)["event_name"]) == {"login"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_write_events_round_trips(rows, tmp_path, fmt):
    frame = rows.head(3000)
    path = write_events(frame, tmp_path / f"events.{fmt}")
    if fmt == "parquet":
        back = pl.read_parquet(path)
    elif fmt == "csv":
        back = pl.read_csv(path, infer_schema=False)  # '' is written quoted, null as nothing
    else:
        lines = path.read_text().splitlines()
        records = [json.loads(line) for line in lines]  # every line is valid JSON
        kinds = {type(r["properties"]) for r in records if r["properties"] is not None}
        assert kinds == {str, dict}  # "mixed": both shapes the contract allows
        for r in records:
            if isinstance(r["properties"], dict):
                r["properties"] = json.dumps(r["properties"], separators=(",", ":"))
        back = pl.DataFrame(records, schema=dict.fromkeys(RAW_COLUMNS, pl.String))
    assert back.equals(frame)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n_events"):
        generate(tmp_path, n_events=0)
    with pytest.raises(ValueError, match="start_date"):
        generate(tmp_path, n_events=1000, start_date="06/01/2025")
    with pytest.raises(ValueError, match="defect_rate"):
        generate(tmp_path, n_events=1000, defect_rate=1.5)
