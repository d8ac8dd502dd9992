"""What BI readers get, on the one full pipeline run (fixture full_pipeline): the published copy
holds only BI tables, every column described as a warehouse comment, a manifest; the semantic
layer answers `mf query`; the dashboard, driven in Debian's chromium, shows the same numbers as
SQL written here against the published copy (not the dashboard's own queries)."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from python_models.config import DBT_PROJECT_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

BI_SCHEMAS = {"marts", "features", "reports", "ml_scores", "ml", "impact"}
# The churn spec's label: predicted to churn when the calibrated probability is >= 0.5.
CHURN_RISK_SHARE = (
    "select avg(case when predicted_label then 1.0 else 0.0 end) from ml_scores.churn_scores"
)
PAGES = ("/", "/retention", "/funnels", "/churn", "/segments", "/anomalies", "/models", "/quality")


def _read(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_published_copy_holds_documented_bi_tables_only(full_pipeline):
    published = full_pipeline.published
    pipeline_tables = {
        f"{s}.{t}"
        for s, t in _read(
            full_pipeline.settings.duckdb_path,
            "select table_schema, table_name from information_schema.tables",
        )
    }
    copy_tables = {
        f"{s}.{t}"
        for s, t in _read(published, "select schema_name, table_name from duckdb_tables()")
    }
    # The pipeline's intermediate steps and raw/staging data stay behind.
    assert any(t.split(".")[1].startswith("int_") for t in pipeline_tables)
    assert not any(t.split(".")[1].startswith("int_") for t in copy_tables), copy_tables
    assert {t.split(".")[0] for t in copy_tables} == BI_SCHEMAS | {"docs"}
    assert "raw.events" in pipeline_tables and "marts.fct_churn_scores" in copy_tables

    # Every table and column carries its description as a warehouse comment.
    missing = _read(
        published,
        "select schema_name || '.' || table_name || '.' || column_name from duckdb_columns() "
        "where not internal and coalesce(trim(comment), '') = ''",
    )
    assert not missing, missing[:20]
    untitled = _read(
        published,
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where not internal and coalesce(trim(comment), '') = ''",
    )
    assert not untitled, untitled

    # The comments are the YAML's (dbt persist_docs) and the model specs' (score tables).
    product = yaml.safe_load(
        (DBT_PROJECT_DIR / "models" / "marts" / "product" / "_product__models.yml").read_text()
    )
    activity = next(m for m in product["models"] if m["name"] == "fct_user_activity_daily")
    declared = {c["name"]: c["description"].strip() for c in activity["columns"]}
    comments = dict(
        _read(
            published,
            "select column_name, comment from duckdb_columns() "
            "where schema_name = 'marts' and table_name = 'fct_user_activity_daily'",
        )
    )
    assert {k: comments[k].strip() for k in declared} == declared
    from python_models.churn.spec import SPEC as CHURN

    (score_comment,) = _read(
        published,
        "select comment from duckdb_columns() where schema_name = 'ml_scores' "
        "and table_name = 'churn_scores' and column_name = 'score'",
    )[0]
    assert score_comment.startswith(CHURN.column_docs["score"])

    # The manifest lists exactly what the copy holds, column by column.
    manifest = json.loads((published.parent / "manifest.json").read_text())
    listed = {
        f"{t['schema']}.{t['table']}": [c["name"] for c in t["columns"]] for t in manifest["tables"]
    }
    actual: dict[str, list[str]] = {}
    for table, column in _read(
        published,
        "select schema_name || '.' || table_name, column_name from duckdb_columns() "
        "where not internal and schema_name <> 'docs' "
        "order by schema_name, table_name, column_index",
    ):
        actual.setdefault(table, []).append(column)
    assert listed == actual
    (rows,) = _read(published, "select count(*) from ml_scores.churn_scores")[0]
    assert next(t for t in manifest["tables"] if t["table"] == "churn_scores")["row_count"] == rows


def _mf_query(published: Path, tmp_path: Path, *args: str) -> list[dict[str, str]]:
    out = tmp_path / "mf.csv"
    env = {
        **os.environ,
        "UBA_DBT_TARGET": "published",
        "UBA_PUBLISHED_DUCKDB_PATH": str(published),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
    }
    mf = shutil.which("mf") or str(Path(sys.executable).with_name("mf"))
    done = subprocess.run(
        [mf, "query", *args, "--csv", str(out)],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with out.open() as handle:
        return list(csv.DictReader(handle))


def test_semantic_layer_answers_metric_queries(full_pipeline, tmp_path):
    published = full_pipeline.published
    weekly = _mf_query(
        published, tmp_path, "--metrics", "active_users,revenue", "--group-by", "metric_time__week"
    )
    expected = {
        str(week)[:10]: (users, revenue)
        for week, users, revenue in _read(
            published,
            "select date_trunc('week', event_date), count(distinct user_id), "
            "sum(coalesce(revenue_usd, 0)) from marts.fct_events group by 1",
        )
    }
    got = {
        row["metric_time__week"][:10]: (int(row["active_users"]), float(row["revenue"] or 0))
        for row in weekly
    }
    assert got.keys() == expected.keys()
    for week, (users, revenue) in expected.items():
        assert got[week][0] == users, week
        assert got[week][1] == pytest.approx(float(revenue), abs=0.01), week

    (share,) = _mf_query(published, tmp_path, "--metrics", "churn_risk_share")
    (truth,) = _read(published, CHURN_RISK_SHARE)[0]
    assert float(share["churn_risk_share"]) == pytest.approx(float(truth))


def _chromium() -> str | None:
    for name in (os.environ.get("UBA_CHROMIUM", ""), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(full_pipeline):
    """`uba dashboard` over the run's published copy and Data Docs, as a user starts it."""
    port = _free_port()
    settings = full_pipeline.settings
    uba = shutil.which("uba") or str(Path(sys.executable).with_name("uba"))
    env = {**os.environ, "UBA_DATA_DIR": str(settings.data_dir)}
    process = subprocess.Popen(
        [uba, "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"uba dashboard exited: {process.stdout.read()}")
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("uba dashboard did not listen within 60 s")
    yield url, process
    if process.poll() is None:
        process.kill()
        process.wait()


def _plot_data(page, graph_id: str) -> list[dict]:
    """The traces Plotly drew in the browser (its full data: typed arrays as plain lists)."""
    page.wait_for_function(
        "id => document.querySelector(`#${id} .js-plotly-plot`)?._fullData?.length > 0",
        arg=graph_id,
        timeout=60_000,
    )
    return page.evaluate(
        """id => {
            const plain = v => ArrayBuffer.isView(v) ? Array.from(v)
                : Array.isArray(v) ? v.map(plain) : v;
            const graph = document.querySelector(`#${id} .js-plotly-plot`);
            return graph._fullData.map(t => ({name: t.name, x: plain(t.x), y: plain(t.y),
                                             z: plain(t.z)}));
        }""",
        graph_id,
    )


def test_dashboard_in_a_real_browser(dashboard, full_pipeline, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    url, server = dashboard
    published = full_pipeline.published
    shots = Path(os.environ.get("UBA_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            seen = {}
            for path in PAGES:
                page.goto(url + path)
                page.wait_for_selector("#page-title", timeout=60_000)
                page.wait_for_load_state("networkidle")
                assert page.locator("#page-error, #no-publication").count() == 0, path
                if path != "/quality":  # Plotly draws after the page's layout arrives
                    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
                name = "overview" if path == "/" else path.strip("/")
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                seen[path] = page.inner_text("#page")
                if path == "/":
                    _check_overview(page, published)
                elif path == "/retention":
                    _check_retention(page, published)
                elif path == "/funnels":
                    _check_funnel(page, published)
                elif path == "/churn":
                    _check_churn(page, published)
                elif path == "/segments":
                    _check_segments(page, published)
                elif path == "/quality":
                    _check_data_docs(page, url)
        finally:
            browser.close()
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        ("overview" if p == "/" else p.strip("/")) + ".png" for p in PAGES
    )
    assert all(p.stat().st_size > 10_000 for p in shots.glob("*.png"))
    assert "Model health" in seen["/models"] and "churn" in seen["/models"]

    # SIGTERM stops the server promptly and cleanly.
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0


def _check_overview(page, published: Path) -> None:
    (dau,) = _read(
        published,
        "select count(distinct user_id) from marts.fct_events "
        "where event_date = (select max(event_date) from marts.fct_events)",
    )[0]
    assert page.inner_text("#kpi-dau .kpi-value") == f"{dau:,}"
    (share,) = _read(published, CHURN_RISK_SHARE)[0]
    assert page.inner_text("#kpi-churn-risk .kpi-value") == f"{share:.1%}"
    # Churn probability x expected revenue over the LTV horizon (0 for a user who never bought).
    (at_risk,) = _read(
        published,
        "select sum(c.score * coalesce(l.expected_revenue_usd, 0)) from ml_scores.churn_scores c "
        "left join ml_scores.ltv_scores l using (user_id)",
    )[0]
    shown = float(page.inner_text("#kpi-value-at-risk .kpi-value").replace(",", ""))
    assert shown == pytest.approx(at_risk, abs=0.5)


def _check_retention(page, published: Path) -> None:
    """Every cell of the heatmap = the cohort's share active in that week, from the events."""
    (trace,) = _plot_data(page, "graph-retention")
    truth = {
        (str(cohort), int(week)): share
        for cohort, week, share in _read(
            published,
            """
            with cohorts as (
                select user_id, date_trunc('week', min(event_ts))::date as cohort_week
                from marts.fct_events group by 1
            ),
            active as (select distinct user_id, date_trunc('week', event_ts)::date as week
                from marts.fct_events)
            select cohort_week, date_diff('week', cohort_week, week),
                count(distinct user_id) / any_value(size)
            from cohorts join active using (user_id)
            join (select cohort_week, count(*) as size from cohorts group by 1) using (cohort_week)
            group by 1, 2
            """,
        )
    }
    cells = 0
    for label, row in zip(trace["y"], trace["z"], strict=True):
        cohort = label[:10]
        for week, value in zip(trace["x"], row, strict=True):
            if value is None or math.isnan(value):
                continue
            assert value == pytest.approx(truth.get((cohort, int(week)), 0.0)), (cohort, week)
            cells += 1
    assert cells >= 20


def _check_funnel(page, published: Path) -> None:
    purchase = next(t for t in _plot_data(page, "graph-funnel") if t["name"] == "purchase")
    truth = {
        str(day): rate
        for day, rate in _read(
            published,
            "select started_date, avg(case when is_converted then 1.0 else 0.0 end) "
            "from marts.fct_funnel_attempts where funnel_name = 'purchase' "
            "and funnel_level = 'user' group by 1",
        )
    }
    assert len(purchase["x"]) >= 30
    for day, rate in zip(purchase["x"], purchase["y"], strict=True):
        assert rate == pytest.approx(truth[day[:10]]), day


def _check_churn(page, published: Path) -> None:
    top = _read(
        published,
        "select user_id, reasons from ml_scores.churn_scores order by score desc, user_id",
    )
    first = page.locator("#table-churn-risk tbody tr").nth(1)  # row 0 is the header
    assert top[0][0] in first.inner_text()
    assert top[0][1].split(";")[0].strip() in first.inner_text()
    bars = _plot_data(page, "graph-churn-histogram")[0]
    assert sum(bars["y"]) == len(top)


def _check_segments(page, published: Path) -> None:
    bars = _plot_data(page, "graph-segments")[0]
    truth = dict(
        _read(published, "select segment_name, count(*) from ml_scores.user_segments group by 1")
    )
    assert dict(zip(bars["x"], bars["y"], strict=True)) == truth


def _check_data_docs(page, url: str) -> None:
    runs = page.locator("#data-docs-runs tbody tr")
    assert runs.count() >= 2  # the batch and the reconciliation suites of the run
    assert "passed" in page.inner_text("#data-docs-runs")
    site = page.request.get(url + page.get_attribute("#data-docs-link", "href"))
    assert site.ok and "Great Expectations" in site.text()
    validation = page.locator("#data-docs-runs tbody tr a").first.get_attribute("href")
    assert page.request.get(url + validation).ok


def test_gate_progress_reaches_the_dagster_log(full_pipeline):
    gate = [message for step, message in full_pipeline.logs if step == "raw__events_validated"]
    progress = [m for m in gate if m.startswith("gate:")]
    # Start, batches checked, suite evaluated, rows written, summary: never minutes of silence.
    assert len(progress) >= 4, gate
    assert any("rows checked" in m for m in progress) and "quarantined" in progress[-1]
