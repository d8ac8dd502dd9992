{#- One row per exposure event (var uba__exposure_event_name, default experiment_exposure):
    which experiment and variant the person saw. Identity comes from fct_events (joined on
    event_id downstream), so only the experiment fields are parsed here; exposures are a small
    share of events, so filtering on the name first keeps the JSON parsing cheap. -#}
-- depends_on: {{ ref('stg_app__pseudonym_salts') }}
with

exposure_rows as (

    select * from {{ source('app', 'events_validated') }}
    where event_name = '{{ var("uba__exposure_event_name") }}'

),

{#- The gate already drops repeated event_ids; this is the same safety net as stg_app__events. -#}
ranked as (

    select
        event_id,
        trim({{ uba_json_text('properties', 'experiment_key') }}) as experiment_key,
        trim({{ uba_json_text('properties', 'variant') }}) as variant,
        cast(event_ts as {{ dbt.type_timestamp() }}) as event_ts,
        row_number() over (partition by event_id order by received_at, raw_id) as copy_rank
    from exposure_rows

),

final as (

    select
        event_id,
        case when experiment_key <> '' then experiment_key end as experiment_key,
        case when variant <> '' then variant end as variant,
        event_ts
    from ranked
    where copy_rank = 1

)

select * from final
