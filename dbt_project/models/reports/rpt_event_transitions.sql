{#- Event-to-event transitions within sessions: counts and P(next | current). -#}
with transitions as (

    select event_name as from_event_name, next_event_name as to_event_name
    from {{ ref('fct_event_transitions') }}
    where next_event_name is not null

),

counted as (

    select from_event_name, to_event_name, count(*) as transitions
    from transitions
    group by 1, 2

)

select
    from_event_name,
    to_event_name,
    cast(transitions as bigint) as transitions,
    cast(transitions as {{ uba_type_double() }})
        / sum(transitions) over (partition by from_event_name) as transition_probability
from counted
