{#- What the feature marts take from the user's tracking plan (seed event_taxonomy), declared
    once: the event types with their own feature columns (var uba__top_event_types, checked
    against the plan) and the purchase events (the plan's conversions that carry revenue).
    Python reads the same rules in python_models/common/feature_events.py. -#}

{#- The seeded plan's rows (event_name, is_conversion, required_properties,
    optional_properties), or none where there is no table to read: at parse time, in a dbt unit
    test (its fixtures stand for the data; dbt gives it no graph), or when compiling against an
    empty warehouse (the scoring service compiles that way). The seed's relation comes from the
    graph, not ref(), so the models keep their dependencies. -#}
{% macro uba_tracking_plan_rows() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set seeds = (graph.get('nodes') or {}).values()
        | selectattr('resource_type', 'equalto', 'seed')
        | selectattr('name', 'equalto', 'event_taxonomy') | list -%}
    {%- if seeds | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(
        database=seeds[0].database, schema=seeds[0].schema, identifier=seeds[0].alias) -%}
    {%- if relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query(
        'select event_name, is_conversion, required_properties, optional_properties from '
        ~ relation) -%}
    {{ return(result.rows) }}
{%- endmacro %}

{#- The event types that get their own feature columns (count_<event>_<N>d, share_<event>_<N>d,
    session_count_<event>, share_<event>_so_far), validated: a list of distinct event names
    usable in column names, each declared in the tracking plan. A mistake stops the model with
    one line naming the setting to edit; never a column of silent zeros. -#}
{% macro uba_feature_event_types() -%}
    {%- set setting = "uba__top_event_types (dbt_project/dbt_project.yml)" -%}
    {%- set configured = var('uba__top_event_types', none) -%}
    {%- if configured is none or configured is string or configured is mapping
            or configured | length == 0 -%}
        {{ exceptions.raise_compiler_error(setting ~ " must be a non-empty list of event names from the tracking plan, like [page_view, purchase]") }}
    {%- endif -%}
    {%- set names = [] -%}
    {%- for name in configured -%}
        {%- if name is not string or not modules.re.match('^[a-z][a-z0-9_]*$', name) -%}
            {{ exceptions.raise_compiler_error(setting ~ ": '" ~ name ~ "' cannot name a feature column; list events whose names are lowercase letters, digits and _") }}
        {%- endif -%}
        {%- if name in names -%}
            {{ exceptions.raise_compiler_error(setting ~ " lists '" ~ name ~ "' twice") }}
        {%- endif -%}
        {%- do names.append(name) -%}
    {%- endfor -%}
    {%- set plan = uba_tracking_plan_rows() -%}
    {%- if plan is not none -%}
        {%- set planned = plan | map(attribute='event_name') | list -%}
        {%- set unplanned = names | reject('in', planned) | list -%}
        {%- if unplanned -%}
            {{ exceptions.raise_compiler_error(setting ~ " lists " ~ unplanned | join(', ') ~ ", not in the tracking plan dbt_project/seeds/event_taxonomy.csv: name events of your plan there (then run `uba features sync`)") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(names) }}
{%- endmacro %}

{#- Purchases: the plan's conversion events (is_conversion = true) that declare a `revenue`
    property (required or optional). They feed count_purchases, the average order value and
    days_since_last_purchase; with the shipped plan that is exactly `purchase` (plan_upgraded
    is a conversion without revenue). -#}
{% macro uba_purchase_event_names() -%}
    {%- set names = [] -%}
    {%- for row in uba_tracking_plan_rows() or [] -%}
        {%- set declared = [] -%}
        {%- for text in [row['required_properties'], row['optional_properties']] -%}
            {%- for item in (text or '').split(';') -%}
                {%- do declared.append(item.split(':')[0] | trim) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if row['is_conversion'] and 'revenue' in declared -%}
            {%- do names.append(row['event_name']) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{#- SQL: true when `column` names a purchase event (false when the plan has none, or is not
    built yet, in which case no staged event exists either). -#}
{% macro uba_is_purchase(column) -%}
    {%- set names = uba_purchase_event_names() -%}
    {%- if names -%}
        {{ column }} in ({% for name in names %}'{{ name | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        1 = 0
    {%- endif -%}
{%- endmacro %}

{#- Stops a feature mart whose per-event columns (built from uba__top_event_types) differ from
    the ones its contract documents (meta event_type), with the command that regenerates them;
    dbt's own contract error would list every column instead. -#}
{% macro uba_assert_columns_documented(expected) -%}
    {%- if execute and model.resource_type == 'model' -%}
        {%- set documented = [] -%}
        {%- for name, column in model.columns.items() -%}
            {%- if (column.meta or {}).get('event_type') is not none -%}
                {%- do documented.append(name) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set missing = expected | reject('in', model.columns.keys() | list) | list -%}
        {%- set stale = documented | reject('in', expected) | list -%}
        {%- if missing or stale -%}
            {%- set shown = (missing or stale) -%}
            {{ exceptions.raise_compiler_error(model.name ~ ": uba__top_event_types (dbt_project/dbt_project.yml) and the columns documented in models/features/_features__models.yml differ (" ~ ("not documented: " if missing else "no longer configured: ") ~ shown[:4] | join(', ') ~ (" ..." if shown | length > 4 else "") ~ "): run `uba features sync` to regenerate the feature catalogue") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
