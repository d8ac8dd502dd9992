{#- A view: the event fact is int_events_sessionized's rows with the columns BI reads, so it
    stores no copy of its own (a full-width write of every event at each first build, ~15 s
    and ~485 MB at 10M events, and a delete+insert of each re-cut event daily). Its readers
    scan only the columns they select; that table is stored in time order and filters on
    event_ts / event_date skip its older row groups, as they did on the copy (event_date is
    stored there: DuckDB skips row groups by a stored column's bounds, not by an expression's).
    The published copy is a table (python_models/publish.py materializes views). -#}
{{ config(materialized='view') }}

with

sessionized as (

    select * from {{ ref('int_events_sessionized') }}

),

final as (

    select
        event_id,
        user_id,
        session_id,
        event_name,
        event_ts,
        received_at,
        event_date,
        revenue_usd,
        page,
        device,
        country,
        plan,
        feature
    from sessionized

)

select * from final
