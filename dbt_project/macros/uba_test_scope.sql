{#- Data tests on incremental models check the rows this run wrote, not the whole table: a
    daily run then costs a day of tests too. Keys and rules checked on the new rows hold for
    the table as long as the model replaces rows by key (delete+insert) and each row was
    checked when it was written.

    A test opts in with `config: {where: <placeholder>}` (dbt renders `where` without project
    macros, so this override of dbt's get_where_subquery expands the placeholder):
    - __latest_batch__: rows of the latest batch (models with a batch_id column);
    - __latest_batch_events__ / __latest_batch_people__ / __latest_batch_devices__: the
      events / person keys / devices that int_events_sessionized's latest batch wrote (the
      events: rows with event_date on or after that batch's first event day too, a redundant
      bound that skips the older row groups of a table stored in time order: an event's day
      never changes);
    - __latest_batch_days__ (a table with event_date whose runs rewrite the days of the events
      a batch wrote, e.g. (user, day) counts): rows on or after the latest batch's first event
      day. A row the run wrote is on such a day, and so is any row sharing a key that holds
      event_date, so a unique test still counts every new key against every stored row. A
      model whose day column has another name says so in its meta: `uba_day_column`;
    - __latest_load_batches__: staged rows of load batches not yet in int_events_sessionized;
    - __new_loads__ (a table with load_id that only appends: staging, the gate's output): the
      rows of the newest load batches, the ones this run appended;
    - __new_load_keys__ (a test of one column of a table with load_id: a unique test): the
      rows whose tested value occurs among the newest load batches' rows, so a new key is
      checked against every stored row without grouping the whole table;
    - __latest_snapshots__: the snapshot dates a feature model rebuilds each run (newest
      stored minus the lookback weeks, see feature_snapshot_dates).
    A model can also declare the scope of all its tests at once, in its yml:
    `config: {meta: {uba_test_scope: <placeholder>}}` (a test's own `where` wins).
    Whole tables are checked on `dbt build --full-refresh`, when the var
    uba__full_data_tests is true (the weekly run: `dbt build --vars
    '{uba__full_data_tests: true}'`) and, for the __latest_batch*__ and __new_load*__ scopes,
    while int_events_sessionized holds batch 1 only (a first build: its latest batch is every
    row, every load is new).
    `uba refresh` runs these tests' compiled SQL after the whole build, not right after their
    model (python_models/dbt_daily_tests.py): a scope must mean the same then. The ones in use
    do (the tested table's own batches, int_events_sessionized's latest batch);
    __latest_load_batches__ would find nothing after int_events_sessionized consumed the
    batch, so a test scoped by it belongs in `uba build` only, or the plan must skip it. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') or uba_model_test_scope() -%}
    {%- if where and where.startswith('__') and where.endswith('__') -%}
        {%- if uba_whole_table_tests() or uba_latest_batch_is_everything(where) -%}
            {%- set where = '' -%}
        {%- else -%}
            {%- set where = uba_test_scope_condition(where, relation) | trim -%}
            {#- a scope of every row tests the table itself, as a whole-table test does -#}
            {%- if where == uba_every_row() | trim -%}
                {%- set where = '' -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The scope condition of every row: the new-load scopes while int_events_sessionized holds a
    full build only or does not exist yet (every load is new). Singular tests embed the
    condition; get_where_subquery tests the table itself instead (the unique test's digests,
    macros/uba_generic_tests.sql, are for whole tables). -#}
{% macro uba_every_row() -%}
    1 = 1
{%- endmacro %}

{#- True when every data test checks its whole table, whatever its scope: `dbt build
    --full-refresh` and the weekly run (var uba__full_data_tests). The singular tests with a
    daily scope of their own ask the same. -#}
{% macro uba_whole_table_tests() -%}
    {{ return(flags.FULL_REFRESH or var('uba__full_data_tests', false)) }}
{%- endmacro %}

{#- True for a __latest_batch*__ scope while int_events_sessionized holds only the rows of a
    full build (batch 1): its latest batch is then every row, so the scope would select
    (nearly) the whole table through a membership test against a key set built from every
    event (at 1M events a first build's tests took 3x as long scoped as whole). Checking the
    whole table checks the same rows and more, as --full-refresh does. One query per test as
    it compiles: `batch_id > 1` lets DuckDB skip every row group of a full build by its zone
    map. `uba refresh` saves a replay plan only from a build that wrote a batch after 1
    (python_models/commands/refresh.py), so a saved plan keeps its scopes. -#}
{% macro uba_latest_batch_is_everything(placeholder) -%}
    {{ return(placeholder.startswith('__latest_batch') and uba_holds_a_full_build_only()) }}
{%- endmacro %}

{#- True while int_events_sessionized holds a full build's rows only (batch 1); false before it
    exists and while dbt parses. -#}
{% macro uba_holds_a_full_build_only() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set sessionized = load_relation(uba_node_relation('int_events_sessionized')) -%}
    {%- if sessionized is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set later = run_query('select count(*) from (select 1 from ' ~ sessionized
        ~ ' where batch_id > 1 limit 1) as later_batch') -%}
    {{ return(later.rows[0][0] == 0) }}
{%- endmacro %}

{#- The scoped rows are found by a membership test against the latest batch's keys, written
    `coalesce(key in (...), false)` so that DuckDB plans it as a MARK join: a hash table on the
    key set (a day's keys), the tested table streamed past it. A bare `key in (...)` becomes a
    semi join whose build side the optimizer picks by estimated size, and it estimates "rows of
    the latest batch" (a comparison with a scalar subquery) as half of int_events_sessionized:
    on a 10M history it built the hash table on the tested table instead (all of
    fct_funnel_attempt_steps) and ran out of memory under a 1.2 GB memory_limit. Null keys
    count as out of scope, as they did with `in`. -#}
{% macro uba_test_scope_condition(placeholder, relation) -%}
    {%- set sessionized = uba_node_relation('int_events_sessionized') -%}
    {%- set latest_batch_rows -%}
        {{ sessionized }} where batch_id = {{ uba_latest_batch(sessionized) }}
    {%- endset -%}
    {%- if placeholder == '__latest_batch__' -%}
        batch_id = {{ uba_latest_batch(relation) }}
    {%- elif placeholder == '__latest_batch_events__' -%}
        {{ uba_latest_batch_days_from(sessionized) }}
        and {{ uba_in_key_set('event_id', 'select event_id from ' ~ latest_batch_rows) }}
    {%- elif placeholder == '__latest_batch_days__' -%}
        {{ uba_latest_batch_days_from(sessionized, uba_tested_model_meta('uba_day_column')
            or 'event_date') }}
    {%- elif placeholder == '__latest_batch_people__' -%}
        {{ uba_in_key_set('user_id',
            'select user_id from ' ~ latest_batch_rows
            ~ ' union all select previous_user_id from ' ~ latest_batch_rows
            ~ ' and previous_user_id is not null') }}
    {%- elif placeholder == '__latest_batch_devices__' -%}
        {{ uba_in_key_set('anonymous_hash', 'select anonymous_hash from ' ~ latest_batch_rows) }}
    {%- elif placeholder == '__new_load_keys__' -%}
        {#- the tested column's values among the rows of the newest load batches, checked
            against the whole table: rows whose load batch int_events_sessionized has not
            consumed yet (`dbt build` tests staging before it sessionizes the day), and the
            load batches its latest batch consumed (the replay runs after the build) -#}
        {%- set column = ((model.get('test_metadata') or {}).get('kwargs') or {})
            .get('column_name') if model is mapping else none -%}
        {%- if not column -%}
            {{ exceptions.raise_compiler_error('__new_load_keys__ scopes a test of one column') }}
        {%- endif -%}
        {%- set new_loads = uba_new_load_batches(relation) -%}
        {%- if new_loads is none -%}
            {{ uba_every_row() }}
        {%- else -%}
            {{ uba_in_key_set(column, 'select ' ~ column ~ ' from ' ~ relation ~ ' where '
                ~ uba_in_key_set('load_id', new_loads)) }}
        {%- endif -%}
    {%- elif placeholder == '__new_loads__' -%}
        {%- set new_loads = uba_new_load_batches(relation) -%}
        {%- if new_loads is none -%}
            {{ uba_every_row() }}
        {%- else -%}
            {{ uba_in_key_set('load_id', new_loads) }}
        {%- endif -%}
    {%- elif placeholder == '__latest_load_batches__' -%}
        {%- if load_relation(sessionized) is none -%}
            {{ uba_every_row() }}
        {%- else -%}
            load_id not in (select distinct load_id from {{ sessionized }})
        {%- endif -%}
    {%- elif placeholder == '__latest_snapshots__' -%}
        as_of_date >= {{ uba_run_time_value('select '
            ~ dbt.dateadd('day', -7 * feature_lookback_weeks(), 'max(as_of_date)')
            ~ ' from ' ~ relation) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error('unknown test scope ' ~ placeholder
            ~ ' (macros/uba_test_scope.sql lists them)') }}
    {%- endif -%}
{%- endmacro %}

{#- A scalar subquery that the daily tests' replay (python_models/dbt_daily_tests.py,
    run_time_values) runs once when the tests run and replaces by its value as a literal; dbt
    runs it as the subquery it is. The comments mark where it starts and ends; `query` returns
    one row of one integer, date or timestamp column. -#}
{% macro uba_run_time_value(query) -%}
    (/* uba:run_time */ {{ query }} /* uba:end */)
{%- endmacro %}

{#- The same for the values of a key set (`in (...)`): `query` returns a few rows of one
    integer, date or timestamp column; the replay writes them in as a list (`load_id in (3)`),
    so DuckDB skips the row groups of other loads instead of joining every row against the
    subquery. No parentheses here: the caller's `in (...)` holds it. -#}
{% macro uba_run_time_values(query) -%}
    /* uba:run_time_list */ {{ query }} /* uba:end_list */
{%- endmacro %}

{#- The load_ids of the newest load batches among `relation`'s rows (a table with load_id), as a
    query: those int_events_sessionized has not consumed yet (`dbt build` tests staging before
    it sessionizes the day) and those whose first rows its latest batch wrote (the replay runs
    after the build; later batches re-cut some of a load's events: the history's one load is
    in every batch). None before int_events_sessionized exists and while it holds a full
    build's rows only (every load is new: a membership in every load's keys costs twice a
    plain check of the table, 1M first build). The replay writes the ids in
    (uba_run_time_values): both parts read the two tables whole. -#}
{% macro uba_new_load_batches(relation) -%}
    {%- set sessionized = uba_node_relation('int_events_sessionized') -%}
    {%- if load_relation(sessionized) is none or uba_holds_a_full_build_only() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set new_loads -%}
        select load_id from {{ sessionized }} group by load_id
        having min(batch_id) = {{ uba_latest_batch(sessionized) }}
        union all
        select load_id from {{ relation }}
        where load_id not in (select distinct load_id from {{ sessionized }})
    {%- endset -%}
    {{ return(uba_run_time_values(new_loads)) }}
{%- endmacro %}

{#- `<column> >= <the first event day of int_events_sessionized's latest batch>`, the
    value written in when the replay runs (uba_run_time_value). -#}
{% macro uba_latest_batch_days_from(sessionized, column='event_date') -%}
    {{ column }} >= {{ uba_run_time_value('select min(cast(event_ts as date)) from '
        ~ sessionized ~ ' where batch_id = (select max(batch_id) from ' ~ sessionized ~ ')') }}
{%- endmacro %}

{#- The latest batch of a relation with batch_id, for a test's scope: a subquery, never a
    literal read at compile time, since `uba refresh` saves the tests' compiled SQL once and
    replays it on later days (python_models/dbt_daily_tests.py), where a compile-day batch
    number would test the wrong rows. The replay writes its value in when it runs
    (uba_run_time_value), so DuckDB skips the history's row groups. -#}
{% macro uba_latest_batch(relation) -%}
    {{ uba_run_time_value('select max(batch_id) from ' ~ relation) }}
{%- endmacro %}

{#- `column` is one of the keys `key_query` returns: the MARK-join shape on DuckDB (see above),
    a plain `in` elsewhere (their planners size the build side from their own statistics). -#}
{% macro uba_in_key_set(column, key_query) -%}
    {{- return(adapter.dispatch('uba_in_key_set', 'uba')(column, key_query)) -}}
{%- endmacro %}

{% macro default__uba_in_key_set(column, key_query) -%}
    {{ column }} in ({{ key_query }})
{%- endmacro %}

{% macro duckdb__uba_in_key_set(column, key_query) -%}
    coalesce({{ column }} in ({{ key_query }}), false)
{%- endmacro %}

{#- The relation of a model of this project by name, without ref() (a test may not ref a
    model it does not depend on). -#}
{% macro uba_node_relation(model_name) -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ model_name] -%}
    {{- return(api.Relation.create(
        database=node.database, schema=node.schema, identifier=node.alias)) -}}
{%- endmacro %}

{#- The uba_test_scope (meta) of the model a generic test is attached to, else ''. -#}
{% macro uba_model_test_scope() -%}
    {{- return(uba_tested_model_meta('uba_test_scope')) -}}
{%- endmacro %}

{#- A meta key of the model a generic test is attached to, else ''. -#}
{% macro uba_tested_model_meta(key) -%}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- set node = graph.nodes.get(attached) if attached else none -%}
    {%- if node is none -%}
        {{- return('') -}}
    {%- endif -%}
    {{- return((node.config.get('meta') or {}).get(key, '')) -}}
{%- endmacro %}
