{#- Incremental per person (macros/feature_helpers.sql, feature_per_person_config), reading
    which people changed in int_events_sessionized. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**feature_per_person_config()) }}
{#- Feature family "diversity": distinct event names and product features a user touched in the
    recent window (uba__feature_recent_days) before each snapshot, from the visible
    (user, day, event name, feature) items. Users without visible events in that window have no
    row (the mart reads 0).

    A snapshot D (a Monday) sees an item when available_date < D and D - event_date <= the
    window, i.e. on the Mondays from visible_from (the first one after available_date) to
    covered_until (the last one on or before event_date + the window). Each (user, name) and
    (user, feature) is counted on the union of its items' spans: overlapping spans are merged
    into islands, so the islands of one key never overlap and a distinct count is the number of
    islands holding D. Each island adds 1 from its first Monday and removes it after its last;
    running sums of those changes per user give the counts from one change to the next, joined
    to the snapshots in between. Each item is read once, whatever the number of snapshots. -#}
{%- set recent_days = var('uba__feature_recent_days') | int -%}

with

{{ feature_per_person_ctes() }},

items as (

    select
        user_id,
        event_name,
        feature,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'available_date')) }} as date)
            as visible_from,
        cast({{ dbt.date_trunc('week', dbt.dateadd('day', recent_days, 'event_date')) }} as date)
            as covered_until
    from {{ ref('int_feature_user_day_items') }}
    {% if is_incremental() -%}
    {#- an item counts for no snapshot more than the window after its day -#}
    where event_date >= (
        select {{ dbt.dateadd('day', -recent_days, 'min(as_of_date)') }} from snapshot_dates
    )
        {{- feature_and_rebuilt_from('event_date', recent_days) }}
        {{- feature_changed_people_only('user_id') }}
    {%- endif %}

),

{#- one span per key and first Monday (its longest); a null event name still makes the row
    exist (as in a count over the items), a null feature counts nothing -#}
spans as (

    select
        user_id,
        'name' as kind,
        event_name as item,
        visible_from,
        max(covered_until) as covered_until
    from items
    group by 1, 2, 3, 4

    union all

    select
        user_id,
        'feature' as kind,
        feature as item,
        visible_from,
        max(covered_until) as covered_until
    from items
    where feature is not null
    group by 1, 2, 3, 4

),

{% if is_incremental() -%}
{#- An incremental run writes a few snapshot dates: joining the spans to them is cheaper there
    than islands over every span of the window (one 10M day's SELECT: 1.8 against 2.2 s CPU). -#}
in_snapshots as (

    select
        spans.user_id,
        snapshot_dates.as_of_date,
        count(distinct case when spans.kind = 'name' then spans.item end) as count_names,
        count(distinct case when spans.kind = 'feature' then spans.item end) as count_features
    from spans
    inner join snapshot_dates
        on snapshot_dates.as_of_date >= spans.visible_from
        and snapshot_dates.as_of_date <= spans.covered_until
    group by 1, 2

),

{% else -%}
{#- Along each key's spans by first Monday: a span starts an island when it begins after every
    earlier span has ended, and ends one when the next span begins after every span so far
    has ended. Windows spelled out in each OVER (Snowflake has no named WINDOW clause). -#}
{%- set by_key = 'partition by user_id, kind, item order by visible_from' %}
span_reach as (

    select
        user_id,
        kind,
        item,
        visible_from,
        max(covered_until) over (
            {{ by_key }} rows between unbounded preceding and 1 preceding
        ) as reached_before,
        max(covered_until) over (
            {{ by_key }} rows between unbounded preceding and current row
        ) as reached,
        lead(visible_from) over ({{ by_key }}) as next_visible_from
    from spans
    {# a span that ends before it begins (received more than the window late) counts nowhere #}
    where visible_from <= covered_until

),

{#- +1 on an island's first Monday, -1 on the Monday after its last -#}
changes as (

    select
        user_id,
        change_date,
        sum(case when kind = 'name' then step else 0 end) as step_items,
        sum(case when kind = 'name' and item is not null then step else 0 end) as step_names,
        sum(case when kind = 'feature' then step else 0 end) as step_features
    from (
        select user_id, kind, item, visible_from as change_date, 1 as step
        from span_reach
        where reached_before is null or visible_from > reached_before
        union all
        select
            user_id,
            kind,
            item,
            cast({{ dbt.dateadd('day', 7, 'reached') }} as date) as change_date,
            -1 as step
        from span_reach
        where next_visible_from is null or next_visible_from > reached
    ) as steps
    group by 1, 2

),

counts as (

    select
        user_id,
        change_date,
        {{ feature_running_totals('change_date', 'next_change_date', [
            ['sum', 'step_items', 'count_items'],
            ['sum', 'step_names', 'count_names'],
            ['sum', 'step_features', 'count_features'],
        ]) }}
    from changes

),

{#- the last change of a person ends every island: no next change, nothing counted -#}
in_snapshots as (

    select
        counts.user_id,
        snapshot_dates.as_of_date,
        counts.count_names,
        counts.count_features
    from counts
    inner join snapshot_dates
        on snapshot_dates.as_of_date >= counts.change_date
        and snapshot_dates.as_of_date < counts.next_change_date
    where counts.count_items > 0

),

{% endif -%}
final as (

    select
        user_id,
        as_of_date,
        cast(count_names as bigint) as count_distinct_event_names_{{ recent_days }}d,
        cast(count_features as bigint) as count_distinct_features_{{ recent_days }}d
    from in_snapshots
    {{- feature_rows_to_rebuild('user_id', 'as_of_date') }}

)

select * from final
{{- feature_stored_in_order() }}
