{{ config(materialized='view') }}
{#- The churn model's latest scores as a dbt model, so the semantic layer (metric
    churn_risk_share) can read them: MetricFlow reads dbt models, not sources. A view, so it
    always shows the current ml_scores.churn_scores. Before the model has ever scored, the
    table does not exist yet and the view is empty with the same columns (the next dbt run
    after scoring, which Dagster does within the same job, points it at the table). -#}
-- depends_on: {{ source('ml_scores', 'churn_scores') }}
{%- set scores = adapter.get_relation(
    database=source('ml_scores', 'churn_scores').database,
    schema=source('ml_scores', 'churn_scores').schema,
    identifier=source('ml_scores', 'churn_scores').identifier,
) if execute else none %}
{% if scores is not none %}
select
    user_id,
    as_of_date,
    model_version,
    score,
    predicted_label,
    reasons,
    scored_at
from {{ scores }}
{% else %}
select
    cast(null as {{ dbt.type_string() }}) as user_id,
    cast(null as date) as as_of_date,
    cast(null as {{ dbt.type_string() }}) as model_version,
    cast(null as {{ uba_type_double() }}) as score,
    cast(null as boolean) as predicted_label,
    cast(null as {{ dbt.type_string() }}) as reasons,
    cast(null as {{ dbt.type_timestamp() }}) as scored_at
where 1 = 0
{% endif %}
