{#- One row per person of dim_users with their current consent per purpose: the latest choice
    (by changed_at, then received_at, then event_id), else var uba__consent_defaults. Readers
    filter on it (docs/privacy.md, "Consent"): without analytics consent a person is dropped
    from the feature marts (macro uba_drop_without_consent, a post-hook on features/), so no
    model trains on or scores them; outputs used to act on people (value at risk, activation
    lists) keep only has_marketing_consent. -#}
{%- set purposes = var('uba__consent_purposes') -%}
{%- set defaults = var('uba__consent_defaults') -%}
with

users as (

    select user_id from {{ ref('dim_users') }}

),

latest_choices as (

    select user_id, purpose, is_granted, changed_at
    from (
        select
            user_id,
            purpose,
            is_granted,
            changed_at,
            row_number() over (
                partition by user_id, purpose
                order by changed_at desc, received_at desc, event_id desc
            ) as choice_rank
        from {{ ref('fct_consent_changes') }}
    ) as ranked
    where choice_rank = 1

),

final as (

    select
        users.user_id,
        {% for purpose in purposes -%}
        coalesce(
            {{ purpose }}_choice.is_granted,
            {{ 'true' if defaults.get(purpose, true) else 'false' }}
        ) as has_{{ purpose }}_consent,
        {{ purpose }}_choice.changed_at as {{ purpose }}_consent_changed_at,
        {% endfor -%}
        (
            {%- for purpose in purposes %}
            {{ purpose }}_choice.user_id is not null{% if not loop.last %} or{% endif %}
            {%- endfor %}
        ) as has_consent_record
    from users
    {% for purpose in purposes -%}
    left join latest_choices as {{ purpose }}_choice
        on users.user_id = {{ purpose }}_choice.user_id
        and {{ purpose }}_choice.purpose = '{{ purpose }}'
    {% endfor %}

)

select * from final
