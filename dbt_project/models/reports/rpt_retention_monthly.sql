{#- Monthly cohort x month-number retention matrix (period 0 = the acquisition month). -#}
{{ mart_retention_report('month') }}
