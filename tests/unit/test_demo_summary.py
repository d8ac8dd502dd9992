"""`uba demo`'s closing summary of the published copy (python_models/commands/demo.py)."""

from __future__ import annotations

import duckdb
from conftest import pipeline_env

from python_models.commands.demo import print_summary


def test_the_summary_of_a_copy_without_scores_says_what_is_missing(tmp_path, capsys):
    """A day refreshed before any model was served publishes no score table: the summary names
    each missing one in a line and shows the ones there, instead of failing on the first."""
    data = tmp_path / "data"
    (data / "published").mkdir(parents=True)
    con = duckdb.connect(str(data / "published" / "warehouse.duckdb"))
    con.execute("create schema ml_scores")
    con.execute(
        "create table ml_scores.anomaly_alerts as select 'u1' as user_id, 0.9 as score, "
        "'unusual burst' as reasons"
    )
    con.close()
    with pipeline_env(data):
        print_summary()
    out = capsys.readouterr().out
    for table in ("churn_scores", "churn_lapsed_users", "value_at_risk"):
        assert f"ml_scores.{table} not published" in out, out
    assert "anomaly_alerts not published" not in out
    assert "unusual burst" in out
