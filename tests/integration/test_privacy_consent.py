"""Consent on a whole pipeline run with planted choices (generator truth consent.parquet): the
consent mart says what each person chose, people without analytics consent are in no feature
table and no score table, and the marketing filter drops the people who denied marketing."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from conftest import TEST_SALT, copy_warehouse, pipeline_env

from python_models.privacy import pseudonymize

pytestmark = pytest.mark.slow


def _truth(pipeline) -> pl.DataFrame:
    return pl.read_parquet(pipeline.sample.truth_dir / "consent.parquet").with_columns(
        key=pl.col("user_id").map_elements(
            lambda u: pseudonymize(u, "user", TEST_SALT), return_dtype=pl.String
        )
    )


def _connect(pipeline):
    return duckdb.connect(str(pipeline.data_dir / "warehouse.duckdb"), read_only=True)


def test_consent_mart_matches_the_planted_choices(privacy_pipeline):
    truth = _truth(privacy_pipeline)
    con = _connect(privacy_pipeline)
    try:
        mart = con.execute(
            "select user_id as key, has_analytics_consent, has_marketing_consent, "
            "has_consent_record from marts.dim_user_consent"
        ).pl()
    finally:
        con.close()
    joined = truth.join(mart, on="key", how="inner")
    assert joined.height == truth.height  # every identified user is in the mart
    # No record: the default (granted); a record: the latest choice, withdrawals included, and
    # choices made before logging in count for the person the device is stitched to.
    expected_analytics = joined["analytics_consent"].fill_null(True)
    expected_marketing = joined["marketing_consent"].fill_null(True)
    assert (joined["has_analytics_consent"] == expected_analytics).all()
    assert (joined["has_marketing_consent"] == expected_marketing).all()
    assert (joined["has_consent_record"] == joined["has_consent_record_right"]).all()
    planted = truth.filter(pl.col("has_consent_record"))
    assert planted.filter(pl.col("withdrew_analytics")).height >= 3
    assert planted.filter(pl.col("choice_before_login") & ~pl.col("analytics_consent")).height


def test_no_feature_or_score_row_without_analytics_consent(privacy_pipeline):
    truth = _truth(privacy_pipeline)
    denied = truth.filter(pl.col("analytics_consent") == False)["key"].to_list()  # noqa: E712
    assert len(denied) >= 10
    con = _connect(privacy_pipeline)
    try:
        # They were active, so without the filter they would be everywhere.
        in_events = con.execute(
            "select count(distinct user_id) from marts.fct_events where user_id in "
            "(select unnest(?))",
            [denied],
        ).fetchone()[0]
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.columns "
            "where column_name = 'user_id' and table_schema in ('features', 'ml_scores') "
            "and table_catalog = current_database() order by 1"
        ).fetchall()
        rows = {
            table: con.execute(
                f"select count(*) from {table} where user_id in (select unnest(?))", [denied]
            ).fetchone()[0]
            for (table,) in tables
        }
        granted_scored = con.execute(
            "select count(*) from ml_scores.ltv_scores where user_id not in (select unnest(?))",
            [denied],
        ).fetchone()[0]
    finally:
        con.close()
    assert in_events == len(denied)
    assert {
        "features.ftr_user_features",
        "features.ftr_user_labels",
        "features.ftr_user_day_activity",
        "ml_scores.ltv_scores",
    } <= set(rows)
    assert rows == dict.fromkeys(rows, 0)
    assert granted_scored > 0


def test_value_at_risk_holds_only_people_with_marketing_consent(built_warehouse, tmp_path):
    """ml_scores.value_at_risk (who to act on first) is built through the marketing filter.
    On the session sample (where churn beats its baselines; the consent sample is too small
    for that), every third churn-scored person is marked as having denied marketing in the
    consent mart: churn still scores them (analytics is another purpose), the action list
    leaves exactly them out and stays ranked 1..n."""
    from python_models.lifecycle import build_derived, score_each, train_model
    from python_models.warehouse import connect

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    copy_warehouse(built_warehouse, data_dir)
    with pipeline_env(data_dir):
        con = connect()
        try:
            train_model(con, "churn", params={"min_class_examples": 50})
            train_model(con, "ltv")
            assert all(s.status == "scored" for s in score_each(con, ["churn", "ltv"]))
            churn = con.execute("select user_id from ml_scores.churn_scores order by 1").pl()
            denied = churn["user_id"].gather_every(3).to_list()
            con.execute(
                "update marts.dim_user_consent set has_marketing_consent = false "
                "where user_id in (select unnest(?))",
                [denied],
            )
            built = build_derived(con, ["churn", "ltv"])
            ranked = con.execute(
                "select rank, user_id from ml_scores.value_at_risk order by rank"
            ).pl()
        finally:
            con.close()
    assert [b.status for b in built if b.model_name == "ml_scores.value_at_risk"] == ["built"]
    assert len(denied) >= 10
    assert set(ranked["user_id"]) == set(churn["user_id"]) - set(denied)
    assert ranked["rank"].to_list() == list(range(1, ranked.height + 1))


def test_marketing_filter_drops_people_who_denied_marketing(privacy_pipeline):
    from python_models.privacy.consent import keep_consented

    truth = _truth(privacy_pipeline)
    denied = set(truth.filter(pl.col("marketing_consent") == False)["key"])  # noqa: E712
    con = _connect(privacy_pipeline)
    try:
        scores = con.execute("select user_id, score from ml_scores.ltv_scores").pl()
        kept = keep_consented(con, scores, "marketing")
        with pytest.raises(LookupError, match="uba__consent_purposes"):
            keep_consented(con, scores, "profiling")
    finally:
        con.close()
    assert denied & set(scores["user_id"])  # some scored people denied marketing
    assert not denied & set(kept["user_id"])
    assert kept.height == scores.filter(~pl.col("user_id").is_in(list(denied))).height


def test_the_scoring_service_honours_consent(privacy_pipeline, tmp_path):
    """`uba serve` on the published copy: nobody without analytics consent is scored, and no
    trigger (an action on the person) fires for someone without marketing consent."""
    from dataclasses import replace
    from datetime import datetime

    from python_models.config import get_settings
    from python_models.service.app import NoConsent, ScoreRequest, build_service

    truth = _truth(privacy_pipeline).filter(pl.col("has_consent_record"))
    no_analytics = truth.filter(~pl.col("analytics_consent"))["user_id"][0]
    no_marketing = truth.filter(pl.col("analytics_consent") & ~pl.col("marketing_consent"))
    both = truth.filter(pl.col("analytics_consent") & pl.col("marketing_consent"))
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n  - name: every_scoring\n"
        '    when: {feature: count_events_so_far, op: ">=", value: 1}\n'
        "    action: {type: log}\n    rate_limit: {max_fires: 1000, per_seconds: 60}\n"
    )
    settings = replace(
        get_settings(),
        data_dir=privacy_pipeline.data_dir,
        service_dir=tmp_path / "service",
        service_rules_path=rules,
    )
    service = build_service(settings)

    def score(raw_user_id: str) -> dict:
        event = {"event_name": "page_view", "event_ts": datetime(2025, 7, 7, 12)}
        body, _webhooks = service.score(ScoreRequest(raw_user_id=raw_user_id, events=[event]))
        return body

    with pytest.raises(NoConsent, match="analytics consent"):
        score(no_analytics)
    skipped = score(no_marketing["user_id"][0])["triggers"]
    assert skipped == [{"rule": "every_scoring", "status": "no_marketing_consent"}]
    fired = score(both["user_id"][0])["triggers"]
    assert [(t["rule"], t["status"]) for t in fired] == [("every_scoring", "logged")]
    assert [row["rule_name"] for row in service.triggers.audit.rows()] == ["every_scoring"]
