{#- Event-to-event transitions within sessions: counts and P(next | current), summed from the
    per-day counts (int_event_paths_counted). -#}
with counted as (

    select
        event_name as from_event_name,
        next_event_name as to_event_name,
        cast(sum(transitions) as bigint) as transitions
    from {{ ref('int_event_paths_counted') }}
    where next_event_name is not null
    group by 1, 2

)

select
    from_event_name,
    to_event_name,
    cast(transitions as bigint) as transitions,
    cast(transitions as {{ uba_type_double() }})
        / sum(transitions) over (partition by from_event_name) as transition_probability
from counted
