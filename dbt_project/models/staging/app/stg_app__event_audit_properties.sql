{#- One row per (event, declared attribute) for events that carry one of the event properties
    declared in var uba__audit_property_attributes (attribute name -> property key; default
    acquisition_channel <- channel). Read by dim_user_audit_attributes for the fairness report.
    A text match on the key first, so the JSON of other events is never parsed.

    Incremental (append) by load batch, as stg_app__user_holdout_buckets: a run matches the
    text of the load batches it has not consumed (the loads consumed are recorded in
    uba_consumed_batches by the post-hook: a batch with no carrying event leaves no row to be
    found by), under a hash of the declared attributes (new declarations re-read every load).
    As a view it matched every validated event's text on each of its three daily reads
    (~0.16 s each at 10M events, for no row on the generated data). An event's rows never
    change once written (the gate appends each batch once); staging keeps them when raw
    retention drops the raw rows, and erasure deletes them by event_id (docs/privacy.md). -#}
-- depends_on: {{ ref('stg_app__pseudonym_salts') }}
{%- set attributes = var('uba__audit_property_attributes') or {} %}
{%- set source_rows = source('app', 'events_validated') -%}
{%- set attributes_version = local_md5(tojson(attributes)) -%}
{{ config(**uba_loads_consumer_config(attributes_version)) }}
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
    from {{ source_rows }}
    where (
        {%- for key in attributes.values() %}
        properties like '%"{{ key }}"%'{% if not loop.last %} or{% endif %}
        {%- endfor %}
    )
    {%- if is_incremental() %}
        and {{ uba_new_loads(source_rows, uba_consumed_loads(source_rows, attributes_version)) }}
    {%- endif %}

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
