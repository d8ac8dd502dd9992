{#- A full build written by ranges of time, on DuckDB (int_events_sessionized).

    A model whose full build computes narrow rows over every event (stitching, sessions) and
    then joins them back to the wide staged columns pays for that join in one hash table of
    every event: at 10M events about 27 of the model's 45 s and 3.3 GiB spilled within a
    1.5 GB pool, and at 100M more disk than the machine had. Written by ranges of time, the
    join's hash table and the final sort hold one range at a time:
    1. a pre-hook writes the narrow rows once into a scratch table beside the model, in parts
       of people when their windows outgrow the pool (var
       'uba__full_build_session_rows_per_gib': at 100M events one statement spilled 21.7 GB);
    2. the model's statement writes the first range (joined, sorted);
    3. a post-hook inserts the later ranges in time order, checks the table has every narrow
       row and drops the scratch table.
    All three run in the materialization's transaction: a failure anywhere leaves the previous
    table (and no scratch table) behind. The ranges are whole days (a day is never split) of
    about var('uba__full_build_range_rows_per_gib') rows per GiB of DuckDB's memory_limit
    each (macro uba_rows_per_part), so the table is stored in the same order as a
    build in one statement, with the same rows.

    The SQL of every step is rendered with the model (macro uba_time_sliced_select) and handed
    to the hooks through the run's cache (uba_run_cache): the model is declared once. Other
    engines, incremental runs, builds of fewer rows than one range and commands other than
    run/build (compile, show, unit tests) render the model's one statement as before.

    A full build by parts of people (int_feature_windowed_activity, ftr_user_event_sequences,
    fct_funnel_attempts): a model whose windows run over each person's rows renders its
    statement once per part (macros uba_person_parts, uba_person_part_filter on its per-person
    input) and writes them the same way (macro uba_written_in_person_parts; post-hook
    uba_write_later_parts), each part sorted as the model sorts. -#}

{#- Whether this node's full build may be written in parts: a model (not a unit test) on
    DuckDB, in a `run` or `build` (compile and show render the one statement). -#}
{% macro uba_full_build_may_be_cut() -%}
    {{ return(execute and model.resource_type == 'model' and adapter.type() == 'duckdb'
        and flags.WHICH in ('run', 'build')) }}
{%- endmacro %}

{#- The rows of one part of a full build: var `per_gib_var` per GiB of the pool DuckDB runs in
    (its memory_limit, as it reports it: '1.3 GiB'), so a part's join, sort or windows fit the
    pool; 0 when the var is 0. -#}
{% macro uba_rows_per_part(per_gib_var) -%}
    {%- set per_gib = var(per_gib_var) | int -%}
    {%- if per_gib <= 0 -%}
        {{ return(0) }}
    {%- endif -%}
    {{ return((per_gib * uba_pool_gib()) | int) }}
{%- endmacro %}

{#- DuckDB's memory_limit in GiB, as it reports it ('1.3 GiB'). -#}
{% macro uba_pool_gib() -%}
    {{ return(run_query(
        "select cast(regexp_extract(pool, '^([0-9.]+)', 1) as double)"
        ~ " * case regexp_extract(pool, '([KMGT]iB)$', 1)"
        ~ " when 'KiB' then 1.0 / 1024 / 1024 when 'MiB' then 1.0 / 1024"
        ~ " when 'GiB' then 1 when 'TiB' then 1024 else 0 end"
        ~ " from (select current_setting('memory_limit') as pool)").columns[0].values()[0]) }}
{%- endmacro %}

{#- The [lower, upper) day bounds (literal text; none = open) of the ranges of `column` (a
    timestamp of `relation`) a full build is written in, each of at least
    uba_rows_per_part('uba__full_build_range_rows_per_gib') rows but its last;
    [[none, none]] (one statement) where the build is not cut. -#}
{% macro uba_time_slices(relation, column) -%}
    {%- set whole = [[none, none]] -%}
    {%- if not uba_full_build_may_be_cut() -%}
        {{ return(whole) }}
    {%- endif -%}
    {#- at 10M events within 1.5 GB, ranges of 2M rows spilled nothing beyond the narrow rows'
        0.8 GiB -#}
    {%- set rows_per_range = uba_rows_per_part('uba__full_build_range_rows_per_gib') -%}
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

{#- The statement of a model built by `slices` (uba_time_slices). `narrow_parts`: the narrow
    CTEs (without `with`), ending in CTE `narrow`, once for each part of people the scratch
    table is written in (one text: not cut by people; several only with several slices);
    `wide_ctes` read `narrow` and end in CTE `wide`, whose `column` is the time the rows are
    cut by and that both narrow and wide rows carry; `order_by` the order the table is stored
    in, which must begin with `column`.
    One range: `with narrow_ctes, wide_ctes select * from wide order by ...`. Several: the
    first range's statement over the scratch table, the hooks' SQL kept for
    uba_write_time_sliced_narrow (pre-hook) and uba_write_later_parts (post-hook). -#}
{% macro uba_time_sliced_select(narrow_parts, narrow, wide_ctes, wide, column, order_by, slices) -%}
    {%- if slices | length == 1 -%}
        with {{ narrow_parts[0] }},
        {{ wide_ctes }}
        select * from {{ wide }}
        order by {{ order_by }}
    {%- else -%}
        {%- set scratch = uba_time_sliced_scratch() -%}
        {%- set statements = [] -%}
        {%- set labels = [] -%}
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
            {%- do labels.append(uba_time_slice_label(slice)) -%}
        {%- endfor -%}
        {%- set scratch_parts = [] -%}
        {%- for narrow_ctes in narrow_parts -%}
            {%- do scratch_parts.append('with ' ~ narrow_ctes ~ '\nselect * from ' ~ narrow) -%}
        {%- endfor -%}
        {{ uba_written_in_parts(statements, labels, 'ranges of event time',
            scratch, scratch_parts) }}
    {%- endif -%}
{%- endmacro %}

{#- A range's days for the progress lines. -#}
{% macro uba_time_slice_label(slice) -%}
    {{- (slice[0] or 'the first event') ~ ' to ' ~ (
        ('before ' ~ slice[1]) if slice[1] is not none else 'the last event') -}}
{%- endmacro %}

{#- The first of a full build's statements `statements` (each writing one part of the table,
    in order, described by `labels`: `what` says what the parts are), the others kept for the
    post-hook uba_write_later_parts; `scratch` / `scratch_parts`: a table the pre-hook
    uba_write_time_sliced_narrow writes first (one SELECT per part of people) and the parts
    read (none: no scratch). -#}
{% macro uba_written_in_parts(statements, labels, what, scratch=none, scratch_parts=none) -%}
    {%- if statements | length > 1 -%}
        {%- do uba_run_cache().update({'uba_parts': {
            'scratch': scratch,
            'scratch_parts': scratch_parts,
            'later': statements[1:],
            'labels': labels,
            'what': what,
        }}) -%}
    {%- endif -%}
    {{ statements[0] }}
{%- endmacro %}

{#- Pre-hook: the narrow rows of a time-sliced build into its scratch table, part of people
    after part (nothing otherwise), each run here so that it has its progress line; in the
    materialization's transaction, which the first opens (run_query would run outside it and
    leave the scratch table behind a failed build). -#}
{% macro uba_write_time_sliced_narrow() -%}
    {%- set plan = uba_run_cache().get('uba_parts') -%}
    {%- if plan is not none and plan.scratch is not none -%}
        {%- set people = plan.scratch_parts | length -%}
        {%- do log(this.identifier ~ ': full build in ' ~ (plan.later | length + 1) ~ ' '
            ~ plan.what ~ '; narrow rows first' ~ (
                (' in ' ~ people ~ ' parts of people') if people > 1 else ''), info=true) -%}
        {%- for narrow_sql in plan.scratch_parts -%}
            {%- if loop.first -%}
                {%- do adapter.execute(
                    'create or replace table ' ~ plan.scratch ~ ' as\n' ~ narrow_sql,
                    auto_begin=true) -%}
            {%- else -%}
                {%- do log(this.identifier ~ ': narrow rows, part ' ~ loop.index ~ ' of '
                    ~ people ~ ' of people', info=true) -%}
                {%- do adapter.execute(
                    'insert into ' ~ plan.scratch ~ '\n' ~ narrow_sql, auto_begin=true) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: a full build's later parts, in order, after the model's statement wrote the
    first; with a scratch table, every narrow row must then be in the table (else the error
    rolls the build back) and the scratch table goes. -#}
{% macro uba_write_later_parts() -%}
    {%- set plan = uba_run_cache().get('uba_parts') -%}
    {%- if plan is not none -%}
        {%- set count = plan.later | length + 1 -%}
        {%- for statement in plan.later -%}
            {%- do log(this.identifier ~ ': part ' ~ (loop.index + 1) ~ ' of ' ~ count ~ ' '
                ~ plan.what ~ ' (' ~ plan.labels[loop.index] ~ ')', info=true) -%}
            {%- do run_query('insert into ' ~ this ~ '\n' ~ statement) -%}
        {%- endfor -%}
        {%- if plan.scratch is not none -%}
            {%- set written = run_query(
                'select (select count(*) from ' ~ this ~ '), (select count(*) from '
                ~ plan.scratch ~ ')').rows[0] -%}
            {%- if written[0] != written[1] -%}
                {{ exceptions.raise_compiler_error(
                    this.identifier ~ ': the ' ~ plan.what ~ ' wrote ' ~ written[0]
                    ~ ' rows for ' ~ written[1] ~ ' events; the build is rolled back') }}
            {%- endif -%}
            drop table {{ plan.scratch }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The number of parts by person a full build is written in: the rows of `relation` (the
    model's per-person input) over var `per_gib_var` per GiB of the pool, on DuckDB in a run
    or build (1 elsewhere). A part's windows over its people's rows then fit the pool:
    int_feature_windowed_activity at 100M events (6.5M user-weeks) ran out of a 3.7 GiB pool
    in one statement and in two parts, and took 4 parts of ~15 s with nothing spilled. -#}
{% macro uba_person_parts(relation, per_gib_var='uba__full_build_person_rows_per_gib') -%}
    {%- if not uba_full_build_may_be_cut() -%}
        {{ return(1) }}
    {%- endif -%}
    {%- set per_part = uba_rows_per_part(per_gib_var) -%}
    {%- if per_part <= 0 -%}
        {{ return(1) }}
    {%- endif -%}
    {%- set rows = run_query('select count(*) from ' ~ relation).columns[0].values()[0] -%}
    {{ return([1, ((rows + per_part - 1) // per_part) | int] | max) }}
{%- endmacro %}

{#- A full build written in parts of people (one statement per part, in part order, each
    reading the people of uba_person_part_filter('user_id', part, parts)): the first
    statement, the others kept for the post-hook uba_write_later_parts, each announced by
    its part's filter. -#}
{% macro uba_written_in_person_parts(statements) -%}
    {%- set labels = [] -%}
    {%- for statement in statements -%}
        {%- do labels.append('people with '
            ~ uba_person_part_filter('user_id', loop.index0, statements | length)) -%}
    {%- endfor -%}
    {{ uba_written_in_parts(statements, labels, 'parts of people') }}
{%- endmacro %}

{#- The people of part `part` of `parts` (by a hash of `column`; every person in one part). -#}
{% macro uba_person_part_filter(column, part, parts) -%}
    {{- ('hash(' ~ column ~ ') % ' ~ parts ~ ' = ' ~ part) if parts > 1 else 'true' -}}
{%- endmacro %}
