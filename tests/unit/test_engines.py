"""Engine seams that need no server: the Spark profile matches the Python side's settings, the
engine-specific dbt macros parse in their engine's dialect (sqlglot), the gate picks its
dialect from the connection, and the SQL text helpers bind and split as the engines need."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import sqlglot
import yaml

from python_models.warehouse.spark import SHORT_RUN_JAVA_OPTIONS
from python_models.warehouse.sql_text import bind, split_statements

ROOT = Path(__file__).parents[2]
ENGINE_MACROS = ROOT / "dbt_project" / "macros" / "uba_cross_db_engines.sql"
# dbt's adapter type -> sqlglot's dialect
DIALECTS = {"spark": "spark", "snowflake": "snowflake", "bigquery": "bigquery"}
# every cross-database helper an engine must implement (or inherit as the default)
HELPERS = ["uba_json_text", "uba_pseudonymize", "uba_timestamp_text", "uba_epoch_seconds"]
SALT = "salt'with\\quote"
ARGUMENTS = {
    "column": "properties",
    "key": "revenue",
    "namespace": "user",
    "ts": "event_ts",
    "time_zone": "Europe/Berlin",
    "raw_id": "user_id",
    "relation": "events",
    "producer": "intermediate.int_events_sessionized",
    "columns": ["event_id", "event_ts"],
    "value": "user_hash",
    "order_by": ["event_ts", "event_id"],
    "last": True,
    "fraction": 0.9,
    "next_candidates": "next_candidates",
    "keys": ["funnel_name", "funnel_level", "partition_id"],
    "datepart": "second",
    "interval": "window_seconds",
    "from_date_or_timestamp": "started_at",
    "source": "raw.events_validated",
    "version": "0123abcd",
}
# Incremental batch bookkeeping (uba_batches.sql): Spark rebuilds in full and keeps none.
NO_BOOKKEEPING = {
    "uba_create_batch_manifest",
    "uba_record_consumed_batch",
    "uba_forget_consumers_on_full_refresh",
    "uba_record_consumed_loads",
}


@pytest.mark.parametrize("java_options", ["", SHORT_RUN_JAVA_OPTIONS])
def test_spark_profile_uses_the_python_sides_session_settings(tmp_path, java_options):
    from python_models.warehouse.spark import spark_conf

    profile = yaml.safe_load((ROOT / "profiles.yml").read_text())["uba"]["outputs"]["spark"]
    assert profile["method"] == "session"
    environment = {"UBA_SPARK_DIR": str(tmp_path), "UBA_SPARK_JAVA_OPTIONS": java_options}

    def env_var(name: str, default: str = "") -> str:
        return environment.get(name, default)

    rendered = {
        key: jinja2.Template(str(value)).render(env_var=env_var)
        for key, value in profile["server_side_parameters"].items()
    }
    assert rendered == spark_conf(tmp_path, java_options)


def _code_cache_bytes(java_options: str) -> int:
    shown = subprocess.run(
        ["java", *java_options.split(), "-XX:+PrintFlagsFinal", "-version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(re.search(r"\bReservedCodeCacheSize\s*=\s*(\d+)", shown).group(1))


@pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime")
def test_short_run_java_options_reserve_the_jvms_default_code_cache():
    # The first-tier JIT alone gets a client's small code cache, which Spark's generated code
    # filled once in the suite (a fatal JVM stop); the short-run options reserve the default.
    assert _code_cache_bytes(SHORT_RUN_JAVA_OPTIONS) >= _code_cache_bytes("")


def _engine_macros() -> dict[str, list[tuple[str, list[str]]]]:
    found: dict[str, list[tuple[str, list[str]]]] = {engine: [] for engine in DIALECTS}
    pattern = r"\{% macro (spark|snowflake|bigquery)__(\w+)\(([^)]*)\)"
    for engine, name, args in re.findall(pattern, ENGINE_MACROS.read_text()):
        found[engine].append((name, [a.strip() for a in args.split(",") if a.strip()]))
    return found


@pytest.mark.parametrize("engine", list(DIALECTS))
def test_each_engine_implements_the_cross_database_helpers(engine):
    names = {name for name, _ in _engine_macros()[engine]}
    assert set(HELPERS) <= names, f"{engine} lacks {set(HELPERS) - names}"


def expression_of(env: jinja2.Environment, source: str, engine: str, name: str, call: str) -> str:
    return env.from_string(source + f"{{{{ {engine}__{name}({call}) }}}}").render().strip()


@pytest.mark.parametrize("engine", list(DIALECTS))
def test_engine_macros_parse_in_their_dialect(engine):
    """Each snowflake__ / bigquery__ / spark__ macro renders to an expression that sqlglot
    parses in that engine's dialect (a typo or another engine's function shape fails here)."""
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    env.globals.update(
        env_var=lambda name, default=None: SALT, var=lambda n, d=None: d, target={"type": engine}
    )
    macros = _engine_macros()[engine]
    assert macros
    source = ENGINE_MACROS.read_text() + (ROOT / "dbt_project/macros/uba_impact.sql").read_text()
    source += (ROOT / "dbt_project/macros/uba_pseudonymize.sql").read_text()
    for name, params in macros:
        if name in (
            "get_empty_schema_sql",
            "persist_constraints",
            "load_csv_rows",
            "uba_drop_without_consent",
        ):
            continue  # dbt's own hooks, or run statements themselves: the Spark build's
        if name == "uba_cte_not_materialized":
            # Only DuckDB and PostgreSQL take the hint
            assert expression_of(env, source, engine, name, "") == ""
            continue
        call = ", ".join(repr(ARGUMENTS[p]) for p in params)
        expression = expression_of(env, source, engine, name, call)
        if name in NO_BOOKKEEPING:
            assert engine == "spark" and expression == "", (name, expression)
            continue
        if expression.lower().startswith("select"):
            sql = expression
        elif name.startswith("uba_type_"):
            sql = f"select cast(x as {expression}) from t"
        else:
            sql = f"select {expression} as value from t"
        parsed = sqlglot.parse_one(sql, read=DIALECTS[engine])
        assert parsed.find(sqlglot.exp.Select) is not None, sql
        if name == "uba_pseudonymize":
            # the salt reaches the hash as it is, quote and backslash included
            texts = [s.this for s in parsed.find_all(sqlglot.exp.Literal) if s.is_string]
            assert SALT in texts, (sql, texts)


# Functions whose name or shape differs between the engines: models and shared macros call
# them through a dispatched macro (uba_cross_db*.sql) or dbt's cross-database macros
# (dbt.hash, dbt.bool_or, dbt.date_trunc, dbt.datediff ...), never directly.
ENGINE_SPECIFIC_CALL = re.compile(
    r"(?<![\w.])(md5|sha256|bool_or|bool_and|percentile_cont|percentile_disc|median|"
    r"quantile_cont|date_trunc|datediff|date_diff|epoch|epoch_ms|epoch_us|strftime|strptime|"
    r"json_extract_string|json_extract|arg_max|arg_min|max_by|min_by|string_agg|list_\w+|"
    r"regexp_matches|struct_pack|countif|iff|ifnull|nvl)\s*\(",
    re.IGNORECASE,
)
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_MACRO = re.compile(r"\{%-?\s*macro\s+(\w+)\(.*?\{%-?\s*endmacro\s*-?%\}", re.DOTALL)


def _blank(match: re.Match) -> str:
    return "\n" * match.group(0).count("\n")


def test_models_call_engine_specific_functions_only_through_dispatched_macros():
    """Outside an engine's own implementation (a macro named <engine>__...), no model or
    macro spells an engine-specific function: a new direct call would compile on DuckDB and
    PostgreSQL and fail on Spark, Snowflake or BigQuery."""
    found = []
    dbt_dir = ROOT / "dbt_project"
    sources = [*(dbt_dir / "models").rglob("*.sql"), *(dbt_dir / "macros").rglob("*.sql")]
    for path in sorted(sources):
        text = _JINJA_COMMENT.sub(_blank, path.read_text())
        text = _MACRO.sub(lambda m: _blank(m) if "__" in m.group(1) else m.group(0), text)
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("--")[0]
            for call in ENGINE_SPECIFIC_CALL.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {call.group(1)}(")
            if re.search(r"[\w)]::\w", line):
                found.append(f"{path.relative_to(ROOT)}:{number}: :: cast")
            # spellings Spark rejects (uba_iso_weekday, uba_cte_not_materialized instead)
            for word in re.findall(r"\bisodow\b|\bnot\s+materialized\b", line, re.IGNORECASE):
                found.append(f"{path.relative_to(ROOT)}:{number}: {word}")
    assert not found, "call these through a dispatched macro:\n" + "\n".join(found)


def test_gate_dialect_follows_the_connection():
    import duckdb

    from expectations.gate.dialect import DUCKDB, dialect_for

    con = duckdb.connect()
    try:
        assert dialect_for(con) is DUCKDB
    finally:
        con.close()


def test_gate_picks_its_spark_dialect_and_its_sql_parses_as_spark():
    """A Spark warehouse gets the Spark dialect, and every statement of the gate rendered in
    it parses as Spark SQL (sqlglot); its verdicts are compared with DuckDB's for real in
    tests/integration/test_spark_engine.py."""
    import sqlglot

    from expectations.gate import sql
    from expectations.gate.dialect import SPARK, dialect_for
    from expectations.gate.reasons import RuleContext
    from expectations.gate.rules import GateRules
    from python_models.ingest.tracking_plan import read_tracking_plan
    from python_models.warehouse.spark import SparkWarehouse
    from python_models.warehouse.sql_text import split_statements

    assert dialect_for(SparkWarehouse(session=None)) is SPARK
    ctx = RuleContext(rules=GateRules(), plan=read_tracking_plan(), dialect=SPARK)
    scripts = [
        sql.repeated_sql(ctx),
        sql.verdicts_sql(ctx),
        sql.duplicates_sql(ctx),
        sql.batch_stats_sql(ctx),
        sql.insert_validated_sql(ctx, [1]),  # Spark writes in one insert
        sql.insert_quarantine_sql([]),
        sql.reconciliation_sql(ctx),
    ]
    statements = [s for script in scripts for s in split_statements(script)]
    assert len(statements) > len(scripts)  # work tables are dropped and created
    for statement in statements:
        sqlglot.parse_one(statement, read="spark")
    assert "update" not in " ".join(statements).lower().split()  # no UPDATE on Parquet


def test_spark_string_literals_hold_no_quote():
    """Spark reads 'it''s' as 'its' and a backslash as an escape: bound strings and the
    gate's patterns are written with \\u0027 and a doubled backslash."""
    from python_models.warehouse.spark import spark_string
    from python_models.warehouse.sql_text import bind, split_statements

    assert spark_string("it's") == "'it\\u0027s'"
    assert spark_string("\\p{Cc}") == "'\\\\p{Cc}'"
    bound = bind("select ?; select ?", ["a;'b", "c"], string=spark_string)
    assert split_statements(bound) == ["select 'a;\\u0027b'", "select 'c'"]


def test_spark_reads_double_quoted_names_as_identifiers():
    """With ANSI mode off Spark takes "name" for a string literal: the steps' quoted names
    become backticks, literals and comments stay as written."""
    from python_models.warehouse.spark import backtick_identifiers

    sql = 'select f."a b", \'say "hi"\', "q""r" -- "note"\nfrom t where s = \'it\\\'s "x"\''
    assert backtick_identifiers(sql) == (
        'select f.`a b`, \'say "hi"\', `q"r` -- "note"\nfrom t where s = \'it\\\'s "x"\''
    )


def test_bind_leaves_quoted_question_marks_and_counts_placeholders():
    sql = "select '?' as q, $$ ? $$ as d, x from t where a = ? and b = ? -- ?"
    assert bind(sql, [1, "it's"]) == (
        "select '?' as q, $$ ? $$ as d, x from t where a = 1 and b = 'it''s' -- ?"
    )
    with pytest.raises(ValueError, match="placeholders"):
        bind("select ?", [1, 2])


def test_split_statements_keeps_semicolons_inside_function_bodies():
    script = "set a = 1; create function f() as $$ begin; end $$; -- note;\n select 1"
    assert split_statements(script) == [
        "set a = 1",
        "create function f() as $$ begin; end $$",
        "-- note;\n select 1",
    ]


def test_postgres_numeric_text_becomes_the_types_duckdb_gives():
    import pyarrow as pa

    from python_models.warehouse.postgres import _numeric_column

    whole = pa.chunked_array([["11", None, "-3"]])
    assert _numeric_column(whole, -1).type == pa.int64()
    assert _numeric_column(whole, -1).to_pylist() == [11, None, -3]
    fractional = _numeric_column(pa.chunked_array([["1.25", "NaN"]]), -1)
    assert fractional.type == pa.float64() and fractional.to_pylist()[0] == 1.25
    typed = _numeric_column(pa.chunked_array([["2.50"]]), ((10 << 16) | 2) + 4)
    assert typed.type == pa.decimal128(10, 2)
