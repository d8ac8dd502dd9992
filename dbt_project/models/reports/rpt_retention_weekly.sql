{#- Weekly cohort x week-number retention matrix (period 0 = the acquisition week). -#}
{{ mart_retention_report('week') }}
