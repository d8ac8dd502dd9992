{#- The steps each funnel attempt reached, one row per step, with the time taken from the
    previous step and from step 1. Incremental like fct_funnel_attempts, with the same rule:
    the attempts of the people whose events changed, from their replay_from on, are deleted
    (the pre-hook) and unpivoted again from fct_funnel_attempts; stored in started_at order
    by a full build, so both skip the row groups before the earliest replay_from. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set max_steps = uba_funnel_max_steps() -%}
{%- set breakdowns = uba_funnel_breakdowns() -%}
{%- set replay_from = funnel_replay_from('changed.changed_from_ts') -%}
{{ config(**uba_events_consumer_config(
    'people_since', since="{{ this }}.started_at >= " ~ replay_from,
    stale_from="{{ funnel_and_replayed_from(this ~ '.started_at') }}")) }}

with

{# Read by each step's branch below. A full build inlines it (each branch scans the stored
    table's columns it needs): materialized, the copy of every attempt and the final sort held
    the pool together and could not spill, so at 10M events this node alone ran out of memory
    at 1 GB and needed most of a 1.5 GB pool shared with the nodes beside it; inlined, it
    completes within 300 MB. An incremental run keeps the copy: the changed people's attempts
    are few, and the join that finds them runs once. -#}
attempts as {% if not is_incremental() %}{{ uba_cte_not_materialized() }} {% endif %}(

    select attempts.*
    from {{ ref('fct_funnel_attempts') }} as attempts
    {%- if is_incremental() %}
    inner join ({{ uba_changed_people(sessionized) }}) as changed
        on attempts.user_id = changed.user_id
    where attempts.started_at >= {{ replay_from }}
        {{- funnel_and_replayed_from('attempts.started_at') }}
    {%- endif %}

),

funnel_steps as (

    {{ funnel_step_rows() }}

),

{#- One branch per step, each carrying the attempt's columns: no join back to the attempts on
    attempt_id (at 10M events a hash join of ~3.5M step rows with ~2.3M attempts). -#}
reached as (

    {% for k in range(1, max_steps + 1) -%}
    select
        attempt_id,
        user_id,
        session_id,
        funnel_name,
        funnel_level,{% for column in breakdowns %}
        {{ column }},{% endfor %}
        started_date,
        started_at,
        {{ k }} as step_number,
        step_{{ k }}_at as reached_at,
        {% if k == 1 -%}
        cast(null as {{ uba_type_double() }})
        {%- else -%}
        {{ uba_epoch_seconds('step_' ~ k ~ '_at') }} - {{ uba_epoch_seconds('step_' ~ (k - 1) ~ '_at') }}
        {%- endif %} as seconds_from_previous_step,
        {{ uba_epoch_seconds('step_' ~ k ~ '_at') }} - {{ uba_epoch_seconds('step_1_at') }}
            as seconds_from_first_step
    from attempts
    where step_{{ k }}_at is not null
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

final as (

    select
        reached.attempt_id,
        reached.user_id,
        reached.session_id,
        reached.funnel_name,
        reached.funnel_level,
        funnel_steps.step_name,{% for column in breakdowns %}
        reached.{{ column }},{% endfor %}
        cast(reached.step_number as integer) as step_number,
        cast(reached.seconds_from_previous_step as {{ uba_type_double() }})
            as seconds_from_previous_step,
        cast(reached.seconds_from_first_step as {{ uba_type_double() }})
            as seconds_from_first_step,
        reached.started_date,
        reached.started_at,
        reached.reached_at
    from reached
    inner join funnel_steps
        on reached.funnel_name = funnel_steps.funnel_name
        and reached.step_number = funnel_steps.step_number

)

select * from final
{% if not is_incremental() %}order by started_at{% endif %}
