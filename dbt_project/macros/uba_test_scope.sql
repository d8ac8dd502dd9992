{#- Data tests on incremental models check the rows this run wrote, not the whole table: a
    daily run then costs a day of tests too. Keys and rules checked on the new rows hold for
    the table as long as the model replaces rows by key (delete+insert) and each row was
    checked when it was written.

    A test opts in with `config: {where: <placeholder>}` (dbt renders `where` without project
    macros, so this override of dbt's get_where_subquery expands the placeholder):
    - __latest_batch__: rows of the latest batch (models with a batch_id column);
    - __latest_batch_events__ / __latest_batch_people__ / __latest_batch_devices__: the
      events / person keys / devices that int_events_sessionized's latest batch wrote;
    - __latest_load_batches__: staged rows of load batches not yet in int_events_sessionized;
    - __latest_snapshots__: the snapshot dates a feature model rebuilds each run (newest
      stored minus the lookback weeks, see feature_snapshot_dates).
    A model can also declare the scope of all its tests at once, in its yml:
    `config: {meta: {uba_test_scope: <placeholder>}}` (a test's own `where` wins).
    Whole tables are checked on `dbt build --full-refresh` and when the var
    uba__full_data_tests is true (the weekly run: `dbt build --vars
    '{uba__full_data_tests: true}'`). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') or uba_model_test_scope() -%}
    {%- if where and where.startswith('__') and where.endswith('__') -%}
        {%- if flags.FULL_REFRESH or var('uba__full_data_tests', false) -%}
            {%- set where = '' -%}
        {%- else -%}
            {%- set where = uba_test_scope_condition(where, relation) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{% macro uba_test_scope_condition(placeholder, relation) -%}
    {%- set sessionized = uba_node_relation('int_events_sessionized') -%}
    {%- set latest_batch_rows -%}
        {{ sessionized }} where batch_id = (select max(batch_id) from {{ sessionized }})
    {%- endset -%}
    {%- if placeholder == '__latest_batch__' -%}
        batch_id = (select max(batch_id) from {{ relation }})
    {%- elif placeholder == '__latest_batch_events__' -%}
        event_id in (select event_id from {{ latest_batch_rows }})
    {%- elif placeholder == '__latest_batch_people__' -%}
        user_id in (
            select user_id from {{ latest_batch_rows }}
            union all
            select previous_user_id from {{ latest_batch_rows }}
        )
    {%- elif placeholder == '__latest_batch_devices__' -%}
        anonymous_hash in (select anonymous_hash from {{ latest_batch_rows }})
    {%- elif placeholder == '__latest_load_batches__' -%}
        {%- if load_relation(sessionized) is none -%}
            1 = 1
        {%- else -%}
            load_id not in (select distinct load_id from {{ sessionized }})
        {%- endif -%}
    {%- elif placeholder == '__latest_snapshots__' -%}
        as_of_date >= (
            select {{ dbt.dateadd('day', -7 * feature_lookback_weeks(), 'max(as_of_date)') }}
            from {{ relation }}
        )
    {%- else -%}
        {{ exceptions.raise_compiler_error('unknown test scope ' ~ placeholder
            ~ ' (macros/uba_test_scope.sql lists them)') }}
    {%- endif -%}
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
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- set node = graph.nodes.get(attached) if attached else none -%}
    {%- if node is none -%}
        {{- return('') -}}
    {%- endif -%}
    {{- return((node.config.get('meta') or {}).get('uba_test_scope', '')) -}}
{%- endmacro %}
