{#- Days between two dates as an integer (end - start); portable. -#}
{% macro feature_days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}

{#- x / y with 0 when y is 0 or null, so numeric features are never null. -#}
{% macro feature_safe_divide(numerator, denominator, default=0) -%}
    case
        when coalesce({{ denominator }}, 0) = 0 then {{ default }}
        else cast({{ numerator }} as {{ uba_type_double() }}) / {{ denominator }}
    end
{%- endmacro %}

{#- Incremental snapshot lookback: uba__late_event_lookback_days rounded up to whole weeks. -#}
{% macro feature_lookback_weeks() -%}
    {{- return(((var('uba__late_event_lookback_days') | int) + 6) // 7) -}}
{%- endmacro %}

{#- The snapshot dates a feature model builds in this run: all of them on a full refresh, else
    the newest stored one minus feature_lookback_weeks() (late events may still land there) and
    every newer one. Each feature family and the mart call it, so they rebuild the same dates. -#}
{% macro feature_snapshot_dates() -%}
    select as_of_date
    from {{ ref('int_feature_snapshot_dates') }}
    {% if is_incremental() -%}
    where as_of_date >= (
        select {{ dbt.dateadd('day', -7 * feature_lookback_weeks(), 'max(as_of_date)') }}
        from {{ this }}
    )
    {%- endif %}
{%- endmacro %}

{#- The Monday after `day` (a date): the end of the weekly bucket holding it, and, for an
    available_date, the first snapshot that sees it. -#}
{% macro feature_week_end(day) -%}
    cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', day)) }} as date)
{%- endmacro %}

{#- The spans (days) int_feature_windowed_activity sums over: its windows, the recent days and
    the trend's recent plus baseline days. -#}
{% macro feature_window_spans() -%}
    {%- set trend_total = (var('uba__feature_trend_recent_days') | int)
        + (var('uba__feature_trend_baseline_days') | int) -%}
    {{- return((var('uba__feature_windows') | sort
        + [var('uba__feature_recent_days') | int, trend_total]) | unique | list) -}}
{%- endmacro %}

{#- The partial-week lengths t (span mod 7, not 0) a weekly bucket carries `_last_<t>` totals
    for (int_feature_user_weeks), so a window's oldest, partial week is one column. -#}
{% macro feature_week_thresholds() -%}
    {%- set thresholds = [] -%}
    {%- for span in feature_window_spans() if span % 7 != 0 and span % 7 not in thresholds -%}
        {%- do thresholds.append(span % 7) -%}
    {%- endfor -%}
    {{- return(thresholds) -}}
{%- endmacro %}

{#- The user-day measures a weekly bucket sums for the windows (int_feature_user_weeks). -#}
{% macro feature_week_measures() -%}
    {%- set measures = ['count_events', 'active_day', 'sum_revenue_usd'] -%}
    {%- for event_type in uba_feature_event_types() -%}
        {%- do measures.append('count_' ~ event_type) -%}
    {%- endfor -%}
    {{- return(measures) -}}
{%- endmacro %}

{#- Weekly buckets (int_feature_windowed_activity, ftr_user_labels): an
    aggregate over bucket rows joined to a snapshot, of `column` over the days of a window of
    `span` days before the snapshot. A row's week_offset m says its week ends 7m days before
    the snapshot; the bucket carries `column`_all (its whole week) and `column`_last_<t> (its
    last t days, the days at most t days before its end). -#}
{% macro feature_in_span(column, span, aggregate='sum', empty='0') -%}
    {{ aggregate }}(case
        {%- if span // 7 > 0 %}
        when week_offset < {{ span // 7 }} then {{ column }}_all
        {%- endif %}
        {%- if span % 7 != 0 %}
        when week_offset = {{ span // 7 }} then {{ column }}_last_{{ span % 7 }}
        {%- endif %}
        else {{ empty }}
    end)
{%- endmacro %}

{#- The same aggregate over a dense weekly grid (one row per person and Monday, ordered by
    as_of_date; a row holds the bucket ending that Monday): the whole buckets of the `span // 7`
    rows up to this one, and the last `span % 7` days of the one before them. A sum over at most
    `lag_rows` rows adds the rows themselves (`lag`s: on DuckDB several times cheaper than a
    frame; the sums are of integers and exact decimals, so equal whatever the grouping); longer
    sums and min / max use a `rows between` frame. -#}
{% macro feature_over_weeks(column, span, aggregate='sum', lag_rows=5) -%}
    {%- set whole_rows = span // 7 -%}
    {%- set over = 'over (partition by user_id order by as_of_date)' -%}
    {%- set rest = 'lag(' ~ column ~ '_last_' ~ span % 7 ~ ', ' ~ whole_rows ~ ') ' ~ over
        if span % 7 != 0 else none -%}
    {%- if aggregate == 'sum' and whole_rows <= lag_rows -%}
        {%- set parts = [] -%}
        {%- for offset in range(whole_rows) -%}
            {%- do parts.append(column ~ '_all' if offset == 0
                else 'lag(' ~ column ~ '_all, ' ~ offset ~ ') ' ~ over) -%}
        {%- endfor -%}
        {%- do parts.append(rest) -%}
        {%- for part in parts | reject('none') %}coalesce({{ part }}, 0){{ ' + ' if not loop.last }}{% endfor -%}
    {%- else -%}
        {%- set whole = aggregate ~ '(' ~ column ~ '_all) over (partition by user_id order by as_of_date'
            ~ ' rows between ' ~ (whole_rows - 1) ~ ' preceding and current row)'
            if whole_rows > 0 else none -%}
        {{- feature_combine(whole, rest, aggregate) -}}
    {%- endif -%}
{%- endmacro %}

{#- Running totals per person along `order_column` (one row per person and value of it): each
    [aggregate, column, name] from the first row up to this one, and the next row's value as
    `next_column` (null on the last), so a row's totals hold until then. -#}
{% macro feature_running_totals(order_column, next_column, totals) -%}
    {%- set over = 'partition by user_id order by ' ~ order_column -%}
    lead({{ order_column }}) over ({{ over }}) as {{ next_column }},
    {%- for aggregate, column, name in totals %}
    {{ aggregate }}({{ column }}) over (
        {{ over }} rows between unbounded preceding and current row
    ) as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- Two partial aggregates (SQL expressions, either may be null or none) combined: sums as 0
    when absent, min / max of those present (least / greatest return null on a null argument
    on some engines). -#}
{% macro feature_combine(left, right, aggregate='sum') -%}
    {%- set parts = [left, right] | reject('none') | list -%}
    {%- if aggregate == 'sum' -%}
        {%- for part in parts %}coalesce({{ part }}, 0){{ ' + ' if not loop.last }}{% endfor -%}
    {%- elif parts | length == 1 -%}
        {{ parts[0] }}
    {%- else -%}
        {%- set pick = 'least' if aggregate == 'min' else 'greatest' -%}
        coalesce({{ pick }}({{ parts | join(', ') }}), {{ parts | join(', ') }})
    {%- endif -%}
{%- endmacro %}

{#- Feature families rebuilt per person (int_feature_windowed_activity, int_feature_diversity):
    in an incremental run the snapshot dates of feature_snapshot_dates() are rebuilt only for
    the people whose events changed since the model last ran (macros in uba_batches.sql), and
    for everyone on a snapshot date not stored yet. A person's row depends only on their own
    rows and the snapshot date, so the other people's stored rows are what a rebuild would
    write; when the model re-reads everything, every snapshot of everyone is rebuilt. Use:
    {{ config(**feature_per_person_config()) }}, then `with {{ feature_per_person_ctes() }}`
    (snapshot_dates, and changed_people in an incremental run), feature_changed_people_only()
    on the input rows and feature_rows_to_rebuild() on the joined (person, snapshot) rows. -#}
{% macro feature_per_person_config() -%}
    {#- the pre-hook deletes the changed people's rows on the rebuilt snapshot dates -#}
    {{- return(uba_events_consumer_config('people_since',
        since='{{ this }}.as_of_date >= (select '
            ~ dbt.dateadd('day', -7 * feature_lookback_weeks(), 'max(as_of_date)')
            ~ ' from {{ this }})',
        stale_from="{{ feature_and_rebuilt_from('as_of_date') }}")) -}}
{%- endmacro %}

{#- The newest stored snapshot (a literal read before the pre-hook deletes anything: the SQL
    runs after it) and whether everything is rebuilt. -#}
{% macro feature_per_person_state() -%}
    {%- set cache = uba_run_cache() -%}
    {%- if 'feature_per_person_state' in cache -%}
        {{- return(cache['feature_per_person_state']) -}}
    {%- endif -%}
    {%- set stored_max = uba_query_value('select max(as_of_date) from ' ~ this) -%}
    {%- if stored_max is none -%}
        {%- set state = {'everything': 'true', 'stored_max': 'cast(null as date)', 'from': none} -%}
    {%- else -%}
        {%- set everything = uba_reads_everything(ref('int_events_sessionized')) | trim -%}
        {%- set state = {
            'everything': '(' ~ everything ~ ')',
            'stored_max': "cast('" ~ stored_max ~ "' as date)",
            'from': stored_max - modules.datetime.timedelta(days=7 * feature_lookback_weeks())
                if everything == 'false' else none} -%}
    {%- endif -%}
    {%- do cache.update({'feature_per_person_state': state}) -%}
    {{- return(state) -}}
{%- endmacro %}

{#- `and <column> >= <the earliest rebuilt snapshot date, less days_before days>` as a literal
    (feature_per_person_state's `from`: the snapshot_dates CTE's earliest date, which only
    a subquery gives there), beside the subquery bound it repeats: a comparison with a literal
    lets DuckDB skip the row groups before it (the feature tables and
    int_events_sessionized are stored in date order by a full build; daily rows are appended
    after them). Nothing on a full build, when everything is rebuilt or while dbt only
    parses. -#}
{% macro feature_and_rebuilt_from(column, days_before=0, type='date') -%}
{%- if is_incremental() -%}
{{- uba_and_literal_from(column, feature_per_person_state()['from'], type, days_before) -}}
{%- endif -%}
{%- endmacro %}

{#- `and <column> >= <the earliest day with events written since this model last consumed
    int_events_sessionized, less days_before days>` as a literal (read before the model's SQL
    runs), for the models that recompute from a changed person's earliest changed day: every
    row they read or delete is on or after it. A redundant bound, so DuckDB skips the row groups
    before it; nothing while dbt only parses or when nothing changed. -#}
{% macro feature_and_changed_days_from(column, type='date', days_before=0) -%}
{%- if is_incremental() -%}
{%- set first_day = uba_cached_query_value('feature_changed_days_from',
    'select min(event_date) from ('
    ~ uba_changed_user_days(ref('int_events_sessionized')) ~ ') as changed') -%}
{{- uba_and_literal_from(column, first_day, type, days_before) -}}
{%- endif -%}
{%- endmacro %}

{#- `order by <column>` on a full build: the table is stored in date order, so the daily runs'
    literal date bounds (feature_and_rebuilt_from, feature_and_changed_days_from) skip the row
    groups before them (a daily run appends its rows after the others). -#}
{% macro feature_stored_in_order(column='as_of_date') -%}
{%- if not is_incremental() %}
order by {{ column }}
{%- endif -%}
{%- endmacro %}

{% macro feature_per_person_ctes() -%}
{%- if is_incremental() -%}
{%- set state = feature_per_person_state() -%}
snapshot_dates as (

    select as_of_date from {{ ref('int_feature_snapshot_dates') }}
    where {{ state.everything }}
        or as_of_date
            >= {{ dbt.dateadd('day', -7 * feature_lookback_weeks(), state.stored_max) }}

),

changed_people as (

    select user_id from ({{ uba_changed_people(ref('int_events_sessionized')) }}) as changed

)
{%- else -%}
snapshot_dates as (

    {{ feature_snapshot_dates() }}

)
{%- endif -%}
{%- endmacro %}

{#- The condition a per-person feature row or input row is rebuilt on: every row when the model
    re-reads everything or `on_new_snapshot` holds (a snapshot date not stored yet: everyone),
    else the changed people's rows. -#}
{% macro _feature_rebuilt(user_column, on_new_snapshot) -%}
{%- set state = feature_per_person_state() -%}
{{ state.everything }}
        or {{ on_new_snapshot }}
        or {{ user_column }} in (select user_id from changed_people)
{%- endmacro %}

{#- `and (...)` keeping the input rows of the people rebuilt (all of them when a snapshot date
    is new); nothing on a full build. -#}
{% macro feature_changed_people_only(user_column) -%}
{%- if is_incremental() %}
        and (
            {{ _feature_rebuilt(user_column, 'exists (select 1 from snapshot_dates where as_of_date > '
                ~ feature_per_person_state().stored_max ~ ')') }}
        )
{%- endif -%}
{%- endmacro %}

{#- `where (...)` keeping the (person, snapshot) rows this run writes; nothing on a full build. -#}
{% macro feature_rows_to_rebuild(user_column, date_column) -%}
{%- if is_incremental() %}
    where {{ _feature_rebuilt(user_column,
        date_column ~ ' > ' ~ feature_per_person_state().stored_max) }}
{%- endif -%}
{%- endmacro %}

{#- People who lost events to re-stitching in the producer rows written since this model last
    consumed it (a written row's previous_user_id): their per-person running state
    (int_user_first_seen) is recomputed from all their events. -#}
{% macro feature_people_who_lost_events(producer) -%}
    select distinct previous_user_id as user_id
    from ({{ uba_changed_rows(producer, 'previous_user_id') }}) as moved
    where previous_user_id is not null
{%- endmacro %}

{#- ftr_user_labels: the snapshots whose stored rows do not show what the watermark says now
    (rows where the shorter horizon has not matured or none where it has; a label null where
    its horizon has matured, or set where it has not), at any date (a watermark that moved
    further than the label window matures snapshots before it): every row of these is
    rebuilt. Read once per run, before the pre-hook deletes, as a list of literals (the SQL and
    the pre-hook rebuild the same dates); while dbt only parses, the query itself. -#}
{% macro labels_rebuilt_dates() -%}
{%- set horizons = {'label_churned': var('uba__churn_horizon_days') | int,
    'label_future_revenue_usd': var('uba__ltv_horizon_days') | int} -%}
{%- set shortest = horizons.values() | min -%}
{%- set watermark = '(select max(watermark_date) from ' ~ ref('int_feature_snapshot_dates') ~ ')' -%}
{%- set sql -%}
    select dates.as_of_date
    from (
        select distinct as_of_date from {{ ref('ftr_user_features') }}
        union
        select distinct as_of_date from {{ this }}
    ) as dates
    left join (
        select
            as_of_date,
            count(*) as stored_rows
            {%- for label in horizons %},
            sum(case when {{ label }} is null then 1 else 0 end) as null_{{ label }}
            {%- endfor %}
        from {{ this }}
        group by 1
    ) as stored
        on dates.as_of_date = stored.as_of_date
    where
        ({{ dbt.dateadd('day', shortest, 'dates.as_of_date') }} <= {{ watermark }})
            <> (coalesce(stored.stored_rows, 0) > 0)
        {%- for label, days in horizons.items() %}
        or (
            stored.stored_rows > 0
            and case
                when {{ dbt.dateadd('day', days, 'dates.as_of_date') }} <= {{ watermark }}
                    then stored.null_{{ label }} > 0
                else stored.null_{{ label }} < stored.stored_rows
            end
        )
        {%- endfor %}
{%- endset -%}
{%- if not execute -%}
    {{ return(sql) }}
{%- endif -%}
{%- set cache = uba_run_cache() -%}
{%- if 'labels_rebuilt_dates' not in cache -%}
    {%- set dates = run_query(sql).columns[0].values() -%}
    {%- do cache.update({'labels_rebuilt_dates': dates | map('string') | list}) -%}
{%- endif -%}
{%- set dates = cache['labels_rebuilt_dates'] -%}
{%- if not dates -%}
    {{ return('select cast(null as date) as as_of_date where false') }}
{%- endif -%}
{%- set literals = [] -%}
{%- for day in dates -%}
    {%- do literals.append("select cast('" ~ day ~ "' as date) as as_of_date") -%}
{%- endfor -%}
{{ return(literals | join(' union all ')) }}
{%- endmacro %}

{#- The first snapshot ftr_user_labels rebuilds anything on: its longer horizon plus the
    late-event lookback (and a week) before the watermark. -#}
{% macro labels_window_start() -%}
{%- set longest = [var('uba__churn_horizon_days') | int, var('uba__ltv_horizon_days') | int] | max -%}
    (
        select {{ dbt.dateadd('day', -(longest + (var('uba__late_event_lookback_days') | int) + 7), 'max(watermark_date)') }}
        from {{ ref('int_feature_snapshot_dates') }}
    )
{%- endmacro %}

{#- The (person, snapshot) rows ftr_user_labels rewrites (the pre-hook's condition on the
    stored rows, and the model's on ftr_user_features): every row when it re-reads
    everything, else the rebuilt dates' rows and, from the label window's start, the changed
    people's. -#}
{% macro labels_rows_to_rebuild(date_column, user_column) -%}
    {{ uba_reads_everything(ref('int_events_sessionized')) }}
        or {{ date_column }} in ({{ labels_rebuilt_dates() }})
        or (
            {{ date_column }} >= {{ labels_window_start() }}
            and {{ user_column }} in (
                select user_id
                from ({{ uba_changed_people(ref('int_events_sessionized')) }}) as changed
            )
        )
{%- endmacro %}

{#- A running count of each of `values` in `column` over `window` (an OVER body with its
    frame), as select-list items `<prefix>_<value>`, each followed by a comma. Where the
    engine packs them (DuckDB), the items are packed sums instead and
    feature_running_counts_unpacked, in a later select over this one, gives the counts. -#}
{% macro feature_running_counts(column, values, window, prefix) -%}
    {{ return(adapter.dispatch('feature_running_counts', 'uba')(column, values, window, prefix)) }}
{%- endmacro %}

{% macro default__feature_running_counts(column, values, window, prefix) -%}
    {%- for value in values %}
        sum(case when {{ column }} = '{{ value }}' then 1 else 0 end) over ({{ window }})
            as {{ prefix }}_{{ value }},
    {%- endfor %}
{%- endmacro %}

{#- The counts, from the packed sums (`relation`: the select that made them); nothing where
    the counts are columns already. -#}
{% macro feature_running_counts_unpacked(values, prefix, relation) -%}
    {{ return(adapter.dispatch('feature_running_counts_unpacked', 'uba')(values, prefix, relation)) }}
{%- endmacro %}

{% macro default__feature_running_counts_unpacked(values, prefix, relation) -%}{%- endmacro %}

{#- The packing: the values whose counts share a sum (a list per sum) and each count's bits. -#}
{% macro feature_packed_groups(values) -%}
    {{ return(values | batch(3) | list) }}
{%- endmacro %}

{% macro feature_packed_slot_bits() -%}
    {{ return(40) }}
{%- endmacro %}

{#- DuckDB evaluates each running sum over a partition on its own (0.6-0.8 s per sum over 10M
    events with 2 threads), so three counts share one HUGEINT sum, 40 bits each (a count
    overflows at 2^40 events of one value for one person). ftr_user_event_sequences' 18
    running counts at 10M events: its windows alone 20.5 -> 12.7 s, its full build alone
    40.5 / 39.8 -> 36.3 / 35.6 s, the same rows. -#}
{% macro duckdb__feature_running_counts(column, values, window, prefix) -%}
    {%- set bits = feature_packed_slot_bits() %}
    {%- for group in feature_packed_groups(values) %}
        sum(case
            {%- for value in group %}
            when {{ column }} = '{{ value }}' then cast(1 as hugeint) << {{ bits * loop.index0 }}
            {%- endfor %}
            else cast(0 as hugeint)
        end) over ({{ window }}) as {{ prefix }}_packed_{{ loop.index0 }},
    {%- endfor %}
{%- endmacro %}

{% macro duckdb__feature_running_counts_unpacked(values, prefix, relation) -%}
    {%- set bits = feature_packed_slot_bits() %}
    {%- for group in feature_packed_groups(values) %}
        {%- set packed = relation ~ '.' ~ prefix ~ '_packed_' ~ loop.index0 %}
        {%- for value in group %}
        cast(({{ packed }} >> {{ bits * loop.index0 }}) & {{ 2 ** bits - 1 }} as bigint)
            as {{ prefix }}_{{ value }},
        {%- endfor %}
    {%- endfor %}
{%- endmacro %}

{#- The window of "the session so far" (an OVER body with its frame) over a person's events
    ordered by (event_ts, event_id), whose sessions are runs of that order and whose
    `index_column` is the event's position in its session (int_events_sessionized's
    event_index_in_session, from 1). -#}
{% macro feature_session_so_far(index_column) -%}
    {{ return(adapter.dispatch('feature_session_so_far', 'uba')(index_column)) }}
{%- endmacro %}

{% macro default__feature_session_so_far(index_column) -%}
    partition by user_id, session_index order by event_ts, event_id rows between unbounded preceding and current row
{%- endmacro %}

{#- DuckDB takes a frame offset from a column (the other engines only constants): the person's
    window framed back to the session's first event, so the session's sums share the person
    window's sort instead of sorting every event again by session. ftr_user_event_sequences'
    windows alone at 10M events 13.9-14.1 -> 9.1-9.2 s, the same values. -#}
{% macro duckdb__feature_session_so_far(index_column) -%}
    partition by user_id order by event_ts, event_id rows between {{ index_column }} - 1 preceding and current row
{%- endmacro %}
