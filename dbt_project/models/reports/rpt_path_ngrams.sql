{#- Most frequent 2- and 3-event sequences inside sessions (top 50 of each length), summed
    from the per-day counts (int_event_paths_counted). -#}
with paths as (

    select * from {{ ref('int_event_paths_counted') }}

),

counted as (

    select 2 as ngram_length, event_name || ' > ' || next_event_name as path,
        sum(transitions) as occurrences
    from paths where next_event_name is not null
    group by 1, 2
    union all
    select 3 as ngram_length,
        event_name || ' > ' || next_event_name || ' > ' || second_next_event_name as path,
        sum(transitions) as occurrences
    from paths where second_next_event_name is not null
    group by 1, 2

),

ranked as (

    select
        *,
        row_number() over (partition by ngram_length order by occurrences desc, path)
            as path_rank
    from counted

)

select
    cast(ngram_length as integer) as ngram_length,
    cast(path_rank as integer) as path_rank,
    path,
    cast(occurrences as bigint) as occurrences
from ranked
where path_rank <= 50
