{#- Behavioural building blocks parameterized by the event source, so the marts and the
    conformance tests (fixtures loaded as events) run the very same SQL.
    `events` is any relation with user_id, event_name, event_ts. -#}

{#- Retention counts per acquisition cohort and period.
    cohort = the user's first event (any name) truncated to `grain` (day / week / month);
    period p = whole `grain`s between the cohort start and the activity's `grain` start.
    users_exact: active exactly in period p; users_unbounded: active in period p or later.
    `return_filter` (SQL on the events) narrows which events count as activity (first action is
    always any event). Only periods in `periods` (a list) are reported; none = 0..max seen.
    `one_row_per_period`: `events` holds at most one row per user and `grain` (a user's active
    days at the daily grain), so a user's activity in a period needs no distinct (the daily
    report over a 10M history's 1.5M active days: 0.29 -> 0.18 s, the same rows). -#}
{% macro mart_retention_counts(events, grain='day', periods=none, return_filter=none,
    one_row_per_period=false) -%}
    with retention_events as (
        select user_id, event_name, event_ts from {{ events }}
    ),
    first_seen as (
        select
            user_id,
            cast({{ dbt.date_trunc(grain, 'min(event_ts)') }} as date) as cohort_start
        from retention_events
        group by 1
    ),
    cohort_sizes as (
        select cohort_start, count(*) as cohort_users from first_seen group by 1
    ),
    activity as (
        select {{ '' if one_row_per_period else 'distinct' }}
            retention_events.user_id,
            first_seen.cohort_start,
            {{ dbt.datediff(
                'first_seen.cohort_start',
                'cast(' ~ dbt.date_trunc(grain, 'retention_events.event_ts') ~ ' as date)',
                grain) }} as period_number
        from retention_events
        inner join first_seen on retention_events.user_id = first_seen.user_id
        {% if return_filter %}where {{ return_filter }}{% endif %}
    ),
    last_period as (
        select user_id, cohort_start, max(period_number) as last_period_number
        from activity group by 1, 2
    ),
    periods as (
        {% if periods is not none -%}
        {% for period in periods -%}
        select {{ period }} as period_number{{ " union all " if not loop.last }}
        {% endfor -%}
        {%- else -%}
        select distinct period_number from activity where period_number >= 0
        {%- endif %}
    ),
    exact_counts as (
        select cohort_start, period_number, count(*) as users_exact
        from activity group by 1, 2
    ),
    unbounded_counts as (
        select last_period.cohort_start, periods.period_number, count(*) as users_unbounded
        from last_period
        inner join periods on last_period.last_period_number >= periods.period_number
        group by 1, 2
    )
    select
        cohort_sizes.cohort_start,
        periods.period_number,
        cohort_sizes.cohort_users,
        coalesce(exact_counts.users_exact, 0) as users_exact,
        coalesce(unbounded_counts.users_unbounded, 0) as users_unbounded
    from cohort_sizes
    cross join periods
    left join exact_counts
        on cohort_sizes.cohort_start = exact_counts.cohort_start
        and periods.period_number = exact_counts.period_number
    left join unbounded_counts
        on cohort_sizes.cohort_start = unbounded_counts.cohort_start
        and periods.period_number = unbounded_counts.period_number
{%- endmacro %}

{#- fct_user_lifecycle_weekly's people to recompute on an incremental run: those whose events
    changed since it last ran, and, when the data's latest active week moved, everyone active
    from the earlier of the stored and the new latest week (a person's closing 'dormant' row
    exists only before the latest week). Both weeks are read before the model's SQL and its
    pre-hook run, and written in as a literal (the same in both). -#}
{% macro uba_lifecycle_recomputed_people(activity_daily) -%}
    select user_id from ({{ uba_changed_people(ref('int_events_sessionized')) }}) as changed
    {%- if execute %}
    {%- set cache = uba_run_cache() -%}
    {%- set cache_key = 'uba_lifecycle_shifted_week' -%}
    {%- if cache_key not in cache -%}
        {%- set weeks = run_query(
            "select (select max(lifecycle_week) from " ~ this
            ~ " where lifecycle_status <> 'dormant'), (select cast("
            ~ dbt.date_trunc('week', 'max(activity_date)') ~ " as date) from "
            ~ activity_daily ~ ")").rows[0] -%}
        {%- set known = weeks | reject('none') | list -%}
        {%- do cache.update({cache_key: (known | min)
            if known and weeks[0] != weeks[1] else none}) -%}
    {%- endif %}
    {%- if cache[cache_key] is not none %}
    union
    select user_id from {{ activity_daily }}
    where activity_date >= cast('{{ cache[cache_key] }}' as date)
    {%- endif %}
    {%- endif %}
{%- endmacro %}
