{#- A full build written by ranges of time, on DuckDB (int_events_sessionized).

    A model whose full build computes narrow rows over every event (stitching, sessions) and
    then joins them back to the wide staged columns pays for that join in one hash table of
    every event: at 10M events about 27 of the model's 45 s and 3.3 GiB spilled within a
    1.5 GB pool, and at 100M more disk than the machine had. Written by ranges of time, the
    join's hash table and the final sort hold one range at a time:
    1. a pre-hook writes the narrow rows once into a scratch table beside the model;
    2. the model's statement writes the first range (joined, sorted);
    3. a post-hook inserts the later ranges in time order, checks the table has every narrow
       row and drops the scratch table.
    All three run in the materialization's transaction: a failure anywhere leaves the previous
    table (and no scratch table) behind. The ranges are whole days (a day is never split) of
    about var('uba__full_build_range_rows_per_gib') rows per GiB of DuckDB's memory_limit
    each (macro uba_full_build_range_rows), so the table is stored in the same order as a
    build in one statement, with the same rows.

    The SQL of every step is rendered with the model (macro uba_time_sliced_select) and handed
    to the hooks through the run's cache (uba_run_cache): the model is declared once. Other
    engines, incremental runs, builds of fewer rows than one range and commands other than
    run/build (compile, show, unit tests) render the model's one statement as before. -#}

{#- The rows of a full build's range: var('uba__full_build_range_rows_per_gib') per GiB of the
    pool DuckDB runs in (its memory_limit, as it reports it: '1.3 GiB'); the join's hash
    table and the sort of a range then fit the pool (at 10M events within 1.5 GB, ranges of
    2M rows spilled nothing beyond the narrow rows' 0.8 GiB). 0 when the var is 0. -#}
{% macro uba_full_build_range_rows() -%}
    {%- set per_gib = var('uba__full_build_range_rows_per_gib') | int -%}
    {%- if per_gib <= 0 -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set pool_gib = run_query(
        "select cast(regexp_extract(pool, '^([0-9.]+)', 1) as double)"
        ~ " * case regexp_extract(pool, '([KMGT]iB)$', 1)"
        ~ " when 'KiB' then 1.0 / 1024 / 1024 when 'MiB' then 1.0 / 1024"
        ~ " when 'GiB' then 1 when 'TiB' then 1024 else 0 end"
        ~ " from (select current_setting('memory_limit') as pool)").columns[0].values()[0] -%}
    {{ return((per_gib * pool_gib) | int) }}
{%- endmacro %}

{#- The [lower, upper) day bounds (literal text; none = open) of the ranges of `column` (a
    timestamp of `relation`) a full build is written in, each of at least
    uba_full_build_range_rows() rows but its last; [[none, none]] (one statement) where the
    build is not cut. -#}
{% macro uba_time_slices(relation, column) -%}
    {%- set whole = [[none, none]] -%}
    {%- if not execute or model.resource_type != 'model' or adapter.type() != 'duckdb'
        or flags.WHICH not in ('run', 'build') -%}
        {{ return(whole) }}
    {%- endif -%}
    {%- set rows_per_range = uba_full_build_range_rows() -%}
    {%- if rows_per_range <= 0 -%}
        {{ return(whole) }}
    {%- endif -%}
    {%- set days = run_query(
        'select cast(' ~ column ~ ' as date) as day, count(*) as day_rows from ' ~ relation
        ~ ' where ' ~ column ~ ' is not null group by 1 order by 1') -%}
    {%- set cut = namespace(rows=0, starts=[]) -%}
    {%- for day in days.rows -%}
        {%- if cut.rows >= rows_per_range -%}
            {%- do cut.starts.append(day[0] ~ '') -%}
            {%- set cut.rows = 0 -%}
        {%- endif -%}
        {%- set cut.rows = cut.rows + day[1] -%}
    {%- endfor -%}
    {%- set bounds = [none] + cut.starts + [none] -%}
    {%- set slices = [] -%}
    {%- for lower in bounds[:-1] -%}
        {%- do slices.append([lower, bounds[loop.index]]) -%}
    {%- endfor -%}
    {{ return(slices) }}
{%- endmacro %}

{#- `column` within a range of uba_time_slices. -#}
{% macro uba_time_slice_filter(column, slice) -%}
    {%- set conditions = [] -%}
    {%- if slice[0] is not none -%}
        {%- do conditions.append(column ~ " >= cast('" ~ slice[0] ~ "' as timestamp)") -%}
    {%- endif -%}
    {%- if slice[1] is not none -%}
        {%- do conditions.append(column ~ " < cast('" ~ slice[1] ~ "' as timestamp)") -%}
    {%- endif -%}
    {{- conditions | join(' and ') if conditions else 'true' -}}
{%- endmacro %}

{#- The scratch table of a time-sliced build's narrow rows, beside the model. -#}
{% macro uba_time_sliced_scratch() -%}
    {{- return(this.incorporate(path={'identifier': this.identifier ~ '__narrow'})) -}}
{%- endmacro %}

{#- The statement of a model built by `slices` (uba_time_slices). `narrow_ctes` (CTEs, without
    `with`) end in CTE `narrow`; `wide_ctes` read `narrow` and end in CTE `wide`, whose
    `column` is the time the rows are cut by and that both narrow and wide rows carry;
    `order_by` the order the table is stored in, which must begin with `column`.
    One range: `with narrow_ctes, wide_ctes select * from wide order by ...`. Several: the
    first range's statement over the scratch table, the hooks' SQL kept for
    uba_write_time_sliced_narrow (pre-hook) and uba_write_later_time_slices (post-hook). -#}
{% macro uba_time_sliced_select(narrow_ctes, narrow, wide_ctes, wide, column, order_by, slices) -%}
    {%- if slices | length == 1 -%}
        with {{ narrow_ctes }},
        {{ wide_ctes }}
        select * from {{ wide }}
        order by {{ order_by }}
    {%- else -%}
        {%- set scratch = uba_time_sliced_scratch() -%}
        {%- set statements = [] -%}
        {%- for slice in slices -%}
            {%- set statement -%}
            with {{ narrow }} as (
                select * from {{ scratch }}
                where {{ uba_time_slice_filter(column, slice) }}
            ),
            {{ wide_ctes }}
            select * from {{ wide }}
            where {{ uba_time_slice_filter(column, slice) }}
            order by {{ order_by }}
            {%- endset -%}
            {%- do statements.append(statement) -%}
        {%- endfor -%}
        {%- do uba_run_cache().update({'uba_time_sliced_build': {
            'scratch': scratch,
            'narrow_sql': 'with ' ~ narrow_ctes ~ '\nselect * from ' ~ narrow,
            'later': statements[1:],
            'slices': slices,
        }}) -%}
        {{ statements[0] }}
    {%- endif -%}
{%- endmacro %}

{#- A range's days for the progress lines. -#}
{% macro uba_time_slice_label(slice) -%}
    {{- (slice[0] or 'the first event') ~ ' to ' ~ (
        ('before ' ~ slice[1]) if slice[1] is not none else 'the last event') -}}
{%- endmacro %}

{#- Pre-hook: the narrow rows of a time-sliced build into its scratch table (nothing
    otherwise). -#}
{% macro uba_write_time_sliced_narrow() -%}
    {%- set plan = uba_run_cache().get('uba_time_sliced_build') -%}
    {%- if plan is not none -%}
        {%- do log(this.identifier ~ ': full build in ' ~ plan.slices | length
            ~ ' ranges of event time; narrow rows first', info=true) -%}
        create or replace table {{ plan.scratch }} as
        {{ plan.narrow_sql }}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: a time-sliced build's later ranges, in time order, after the model's statement
    wrote the first; then every narrow row must be in the table (else the error rolls the
    build back) and the scratch table goes. -#}
{% macro uba_write_later_time_slices() -%}
    {%- set plan = uba_run_cache().get('uba_time_sliced_build') -%}
    {%- if plan is not none -%}
        {%- set count = plan.slices | length -%}
        {%- for statement in plan.later -%}
            {%- do log(this.identifier ~ ': range ' ~ (loop.index + 1) ~ ' of ' ~ count ~ ' ('
                ~ uba_time_slice_label(plan.slices[loop.index]) ~ ')', info=true) -%}
            {%- do run_query('insert into ' ~ this ~ '\n' ~ statement) -%}
        {%- endfor -%}
        {%- set written = run_query(
            'select (select count(*) from ' ~ this ~ '), (select count(*) from '
            ~ plan.scratch ~ ')').rows[0] -%}
        {%- if written[0] != written[1] -%}
            {{ exceptions.raise_compiler_error(
                this.identifier ~ ': the ranges of event time wrote ' ~ written[0]
                ~ ' rows for ' ~ written[1] ~ ' events; the build is rolled back') }}
        {%- endif -%}
        drop table {{ plan.scratch }}
    {%- endif -%}
{%- endmacro %}
