{#- Funnel conversion per day (the day each attempt started): macro funnel_conversion_report. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config(
    'rows', where="period_start >= {{ funnel_report_rebuild_from('day') }}")) }}
{{ funnel_conversion_report('day') }}
