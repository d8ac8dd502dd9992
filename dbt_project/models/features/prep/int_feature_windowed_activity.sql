{#- Incremental per person (macros/feature_helpers.sql, feature_per_person_config), reading
    which people changed in int_events_sessionized. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**feature_per_person_config()) }}
{#- Feature family "windowed activity": counts, active days and revenue per window, event-type
    counts and shares, the trend ratio, event spacing and the decayed activity score.
    This family also fixes the mart's grain: a (user, snapshot) pair exists when the user has a
    visible event (available_date < as_of_date) in the longest window.

    Weekly buckets instead of user-days x snapshots: snapshots are Mondays, so the user-days
    are first summed per (user, week, visible_from): the week ends on the Monday b after the
    day (a day is j = b - day in 1..7 days before it) and visible_from is the first Monday
    after the day became available (= b unless it arrived late across a Monday). A snapshot
    D = b + 7m then sees the bucket when D >= visible_from, and a window of x days holds
    the whole bucket when 7m + 7 <= x, its days with j <= x - 7m when m = floor(x / 7), and
    nothing beyond: so each bucket carries its totals plus partial sums for the few
    thresholds x mod 7 the windows need. The join is buckets x at most ceil(90 / 7) snapshots
    (each user-week once per snapshot, not each user-day), and exact (no approximation of
    visibility or window edges). Sums of doubles go through exact decimals (bit-identical
    rebuilds, incremental = full refresh). -#}
{%- set windows = var('uba__feature_windows') | sort -%}
{%- set max_window = windows | max -%}
{%- set top_event_types = uba_feature_event_types() -%}
{%- set recent_days = var('uba__feature_recent_days') | int -%}
{%- set trend_recent = var('uba__feature_trend_recent_days') | int -%}
{%- set trend_baseline = var('uba__feature_trend_baseline_days') | int -%}
{%- set half_life = var('uba__feature_decay_half_life_days') -%}
{%- if trend_recent not in windows -%}
    {{ exceptions.raise_compiler_error(
        'uba__feature_trend_recent_days (' ~ trend_recent ~ ') must be one of uba__feature_windows '
        ~ windows | string) }}
{%- endif -%}
{%- set trend_total = trend_recent + trend_baseline -%}
{%- set spans = (windows + [recent_days, trend_total]) | unique | list -%}
{%- set longest = spans | max -%}
{%- set thresholds = [] -%}
{%- for span in spans if span % 7 != 0 and span % 7 not in thresholds -%}
    {%- do thresholds.append(span % 7) -%}
{%- endfor -%}
{%- set measures = ['count_events', 'active_day', 'sum_revenue_usd'] -%}
{%- for event_type in top_event_types -%}
    {%- do measures.append('count_' ~ event_type) -%}
{%- endfor -%}

with

{{ feature_per_person_ctes() }},

user_days as (

    select
        user_days.*,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'user_days.event_date')) }} as date)
            as week_end_date,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'user_days.available_date')) }}
            as date) as visible_from,
        {#- a day counts as active from its first visible row on -#}
        case when row_number() over (
            partition by user_days.user_id, user_days.event_date
            order by user_days.available_date
        ) = 1 then 1 else 0 end as active_day
    from {{ ref('int_feature_user_days') }} as user_days
    {% if is_incremental() -%}
    where user_days.event_date >= (
        select {{ dbt.dateadd('day', -(longest + 7), 'min(as_of_date)') }} from snapshot_dates
    )
        {{- feature_changed_people_only('user_days.user_id') }}
    {%- endif %}

),

week_days as (

    select
        user_days.*,
        {{ dbt.datediff('event_date', 'week_end_date', 'day') }} as days_before_week_end
    from user_days

),

buckets as (

    select
        user_id,
        week_end_date,
        visible_from,
        {% for measure in measures -%}
        {%- set value = 'cast(' ~ measure ~ ' as decimal(38, 6))' if measure == 'sum_revenue_usd'
            else measure -%}
        sum({{ value }}) as {{ measure }}_all,
        {% for threshold in thresholds -%}
        sum(case when days_before_week_end <= {{ threshold }}
            then {{ value }} else 0 end) as {{ measure }}_last_{{ threshold }},
        {% endfor -%}
        {% endfor -%}
        min(first_event_at) as first_event_at_all,
        max(last_event_at) as last_event_at_all,
        {% for threshold in thresholds -%}
        min(case when days_before_week_end <= {{ threshold }}
            then first_event_at end) as first_event_at_last_{{ threshold }},
        max(case when days_before_week_end <= {{ threshold }}
            then last_event_at end) as last_event_at_last_{{ threshold }},
        {% endfor -%}
        {#- decay within the bucket, to its end Monday: count x 2^(-j / half_life) per day -#}
        {%- set day_decay = 'count_events * exp(-0.6931471805599453 * '
            ~ 'days_before_week_end / ' ~ half_life ~ '.0)' %}
        sum(cast({{ day_decay }} as decimal(38, 9))) as decay_all,
        {% for threshold in thresholds -%}
        sum(case when days_before_week_end <= {{ threshold }}
            then cast({{ day_decay }} as decimal(38, 9)) else 0 end) as decay_last_{{ threshold }}
        {{- ',' if not loop.last }}
        {% endfor %}
    from week_days
    group by 1, 2, 3

),

joined as (

    select
        buckets.*,
        snapshot_dates.as_of_date,
        cast({{ dbt.datediff('buckets.week_end_date', 'snapshot_dates.as_of_date', 'day') }} / 7
            as integer) as week_offset
    from buckets
    inner join snapshot_dates
        on buckets.visible_from <= snapshot_dates.as_of_date
        and buckets.week_end_date <= snapshot_dates.as_of_date
        and buckets.week_end_date
            > {{ dbt.dateadd('day', -7 * ((longest + 6) // 7), 'snapshot_dates.as_of_date') }}
    {{- feature_rows_to_rebuild('buckets.user_id', 'snapshot_dates.as_of_date') }}

),

windowed as (

    select
        user_id,
        as_of_date,
        {% for window in windows -%}
        {{ feature_in_span('count_events', window) }} as count_events_{{ window }}d,
        {{ feature_in_span('active_day', window) }} as count_active_days_{{ window }}d,
        {{ feature_in_span('sum_revenue_usd', window) }} as sum_revenue_usd_{{ window }}d,
        {% for event_type in top_event_types -%}
        {{ feature_in_span('count_' ~ event_type, window) }} as count_{{ event_type }}_{{ window }}d,
        {% endfor -%}
        {% endfor -%}
        {#- the trend's baseline: the trend_baseline days before the trend_recent ones -#}
        {{ feature_in_span('count_events', trend_total) }} - {{ feature_in_span('count_events', trend_recent) }}
            as count_events_trend_baseline,
        {{ feature_in_span('count_events', recent_days) }} as count_events_recent,
        {{ feature_in_span('first_event_at', recent_days, 'min', 'null') }} as first_event_at_recent,
        {{ feature_in_span('last_event_at', recent_days, 'max', 'null') }} as last_event_at_recent,
        {#- the decayed score over the longest window: each bucket's decay to its end Monday,
            times 2^(-7 m / half_life) for the m weeks from there to the snapshot -#}
        cast(sum(cast(case
            {%- if max_window // 7 > 0 %}
            when week_offset < {{ max_window // 7 }} then decay_all
            {%- endif %}
            {%- if max_window % 7 != 0 %}
            when week_offset = {{ max_window // 7 }} then decay_last_{{ max_window % 7 }}
            {%- endif %}
            else 0
        end * exp(-0.6931471805599453 * 7 * week_offset / {{ half_life }}.0) as decimal(38, 9)))
            as {{ uba_type_double() }}) as decayed_activity_score
    from joined
    group by 1, 2
    having {{ feature_in_span('count_events', max_window) }} > 0

),

final as (

    select
        user_id,
        as_of_date,
        {% for window in windows -%}
        cast(count_events_{{ window }}d as bigint) as count_events_{{ window }}d,
        cast(count_active_days_{{ window }}d as bigint) as count_active_days_{{ window }}d,
        cast(sum_revenue_usd_{{ window }}d as {{ uba_type_double() }})
            as sum_revenue_usd_{{ window }}d,
        {% for event_type in top_event_types -%}
        cast(count_{{ event_type }}_{{ window }}d as bigint)
            as count_{{ event_type }}_{{ window }}d,
        {% endfor -%}
        {% endfor -%}
        {% for event_type in top_event_types -%}
        cast({{ feature_safe_divide(
            'count_' ~ event_type ~ '_' ~ max_window ~ 'd',
            'count_events_' ~ max_window ~ 'd') }} as {{ uba_type_double() }})
            as share_{{ event_type }}_{{ max_window }}d,
        {% endfor -%}
        {#- (events in the recent days + 1) / (their rate over the baseline days + 1):
            1 = steady, > 1 = rising, < 1 = falling; the +1 keeps it defined for new users. -#}
        cast(
            (count_events_{{ trend_recent }}d + 1.0)
            / (count_events_trend_baseline * {{ trend_recent }}.0 / {{ trend_baseline }}.0 + 1.0)
            as {{ uba_type_double() }}
        ) as trend_ratio_events_{{ trend_recent }}d_{{ trend_baseline }}d,
        {#- Fewer than two events in the window: the window length, "as slow as we can measure". -#}
        cast(case
            when count_events_recent >= 2
                then {{ dbt.datediff('first_event_at_recent', 'last_event_at_recent', 'second') }}
                    * 1.0 / (count_events_recent - 1)
            else {{ recent_days * 86400 }}
        end as {{ uba_type_double() }}) as avg_seconds_between_events_{{ recent_days }}d,
        cast(decayed_activity_score as {{ uba_type_double() }})
            as decayed_activity_score_{{ max_window }}d
    from windowed

)

select * from final
