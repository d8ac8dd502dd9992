{#- Funnel conversion per day (the day each attempt started): macro funnel_conversion_report. -#}
{{ funnel_conversion_report('day') }}
