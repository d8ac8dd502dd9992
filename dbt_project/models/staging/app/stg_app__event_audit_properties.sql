{#- One row per (event, declared attribute) for events that carry one of the event properties
    declared in var uba__audit_property_attributes (attribute name -> property key; default
    acquisition_channel <- channel). Read by dim_user_audit_attributes for the fairness report.
    A text match on the key first, so the JSON of other events is never parsed. -#}
-- depends_on: {{ ref('stg_app__pseudonym_salts') }}
{%- set attributes = var('uba__audit_property_attributes') or {} %}
{%- for name, key in attributes.items() %}
    {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', name | string)
        or not modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', key | string) %}
        {{ exceptions.raise_compiler_error('uba__audit_property_attributes: attribute names '
            ~ 'must be lowercase identifiers and property keys plain identifiers, got '
            ~ name ~ ': ' ~ key) }}
    {%- endif %}
{%- endfor %}
with

{% if attributes %}
carrying as (

    select event_id, properties
    from {{ source('app', 'events_validated') }}
    where
        {%- for key in attributes.values() %}
        properties like '%"{{ key }}"%'{% if not loop.last %} or{% endif %}
        {%- endfor %}

),

values_long as (

    {%- for name, key in attributes.items() %}
    select
        event_id,
        '{{ name }}' as attribute_name,
        trim({{ uba_json_text('properties', key) }}) as attribute_value
    from carrying
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),
{% else %}
values_long as (

    select
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_string() }}) as attribute_name,
        cast(null as {{ dbt.type_string() }}) as attribute_value
    where 1 = 0

),
{% endif %}

final as (

    select distinct event_id, attribute_name, attribute_value
    from values_long
    where attribute_value is not null and attribute_value <> ''

)

select * from final
