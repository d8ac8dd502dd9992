{#- One row per (experiment, person): the first exposure decides the variant and the time the
    person entered the experiment. A person exposed to more than one variant is kept here,
    flagged (is_multi_variant), and left out of the per-user metrics and the results, which
    report how many were excluded. Exposures without an experiment_key or variant cannot be
    attributed and are counted in the staging model's warn-level tests. -#}
with

exposures as (

    select * from {{ ref('stg_app__experiment_exposures') }}
    where experiment_key is not null and variant is not null

),

events as (

    select event_id, user_id from {{ ref('fct_events') }}

),

attributed as (

    select
        exposures.experiment_key,
        events.user_id,
        exposures.variant,
        exposures.event_ts,
        exposures.event_id
    from exposures
    inner join events
        on exposures.event_id = events.event_id

),

ranked as (

    select
        attributed.*,
        row_number() over (
            partition by experiment_key, user_id
            order by event_ts, event_id
        ) as exposure_rank
    from attributed

),

per_person as (

    select
        experiment_key,
        user_id,
        count(*) as count_exposures,
        count(distinct variant) as count_variants,
        max(event_ts) as last_exposed_at
    from attributed
    group by 1, 2

),

final as (

    select
        ranked.experiment_key,
        ranked.user_id,
        ranked.variant,
        per_person.count_exposures,
        per_person.count_variants,
        per_person.count_variants > 1 as is_multi_variant,
        ranked.event_ts as first_exposed_at,
        per_person.last_exposed_at
    from ranked
    inner join per_person
        on ranked.experiment_key = per_person.experiment_key
        and ranked.user_id = per_person.user_id
    where ranked.exposure_rank = 1

)

select * from final
