{#- Funnel conversion per week (Monday of the week each attempt started):
    macro funnel_conversion_report. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config(
    'rows', where="period_start >= {{ funnel_report_rebuild_from('week') }}")) }}
{{ funnel_conversion_report('week') }}
