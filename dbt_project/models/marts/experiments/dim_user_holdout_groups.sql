{#- One row per person (dim_users.user_id): `treatment` (score-driven actions allowed) or
    `holdout` (never acted on, so their outcomes show what happens without the models).
    Deterministic: the group is a pure function of the raw identifier and var uba__holdout_key
    (stg_app__user_holdout_buckets), so it is stable across runs, new users never move anyone,
    and a pseudonymization-salt rotation keeps every group. A never-identified visitor is
    bucketed by device; once identified, the person key becomes the user's and so may the
    group (campaign tools act on identified users). -#}
with

users as (

    select user_id, is_identified, first_seen_at from {{ ref('dim_users') }}

),

buckets as (

    select person_key, holdout_bucket from {{ ref('stg_app__user_holdout_buckets') }}

),

final as (

    select
        users.user_id,
        case
            when buckets.holdout_bucket < {{ uba_holdout_threshold() }} then 'holdout'
            else 'treatment'
        end as holdout_group,
        cast(buckets.holdout_bucket as integer) as holdout_bucket,
        cast({{ var('uba__holdout_key_version') | int }} as integer) as holdout_key_version,
        cast({{ var('uba__holdout_share') | float }} as {{ uba_type_double() }}) as holdout_share,
        users.is_identified,
        {#- A person is in their group from the moment they exist, but never before the key
            that decides it took effect. -#}
        greatest(
            users.first_seen_at,
            cast('{{ var("uba__holdout_key_effective_from") }}' as {{ dbt.type_timestamp() }})
        ) as assigned_at
    from users
    left join buckets
        on users.user_id = buckets.person_key

)

select * from final
