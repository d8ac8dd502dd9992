{#- N-day retention for the periods in var uba__retention_periods (unobserved periods kept,
    flagged by is_period_observed). -#}
{{ mart_retention_report('day', periods=var('uba__retention_periods'), observed_only=false) }}
