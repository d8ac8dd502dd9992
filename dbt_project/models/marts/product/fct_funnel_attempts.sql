{#- Funnel attempts for every funnel in var uba__funnels, at user and session level (logic and
    the attempt rule: macro funnel_attempts in macros/funnels.sql). -#}
{{ funnel_attempts(ref('fct_events')) }}
