{#- One row per person (dim_users.user_id) with the attributes the fairness report groups by:
    country and device (the person's most frequent values, from dim_users) and one column per
    entry of var uba__audit_property_attributes (default acquisition_channel <- property
    `channel`): the value on the person's first event that carries it. Null when unknown. -#}
{%- set property_attributes = var('uba__audit_property_attributes') or {} %}
{%- for name in property_attributes %}
    {%- if name in ('user_id', 'country', 'device') %}
        {{ exceptions.raise_compiler_error('uba__audit_property_attributes: ' ~ name
            ~ ' is already a column of dim_user_audit_attributes; choose another name') }}
    {%- endif %}
{%- endfor %}
with

users as (

    select user_id, country_mode, device_mode from {{ ref('dim_users') }}

),

property_values as (

    select
        events.user_id,
        properties.attribute_name,
        properties.attribute_value,
        row_number() over (
            partition by events.user_id, properties.attribute_name
            order by events.event_ts, events.event_id
        ) as value_rank
    from {{ ref('stg_app__event_audit_properties') }} as properties
    inner join {{ ref('fct_events') }} as events
        on properties.event_id = events.event_id

),

first_values as (

    select user_id, attribute_name, attribute_value
    from property_values
    where value_rank = 1

),

final as (

    select
        users.user_id,
        users.country_mode as country,
        users.device_mode as device
        {%- for name in property_attributes %},
        max(case when first_values.attribute_name = '{{ name }}'
            then first_values.attribute_value end) as {{ name }}
        {%- endfor %}
    from users
    left join first_values
        on users.user_id = first_values.user_id
    group by 1, 2, 3

)

select * from final
