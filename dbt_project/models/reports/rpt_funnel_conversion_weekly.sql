{#- Funnel conversion per week (Monday of the week each attempt started):
    macro funnel_conversion_report. -#}
{{ funnel_conversion_report('week') }}
