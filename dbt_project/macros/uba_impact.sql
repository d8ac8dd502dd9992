{#- Helpers for the impact models (docs/impact.md). -#}

{#- Holdout bucket 0..9999 of a raw identifier: the first 8 hex digits of
    sha256(holdout key | 'holdout' | namespace | raw id) as an integer, modulo 10000.
    The key is var uba__holdout_key, NOT the pseudonymization salt, so rotating the salt keeps
    every user's bucket. Must match python_models.impact.holdout.holdout_bucket. -#}
{% macro uba_holdout_bucket(raw_id, namespace) -%}
    {{ return(adapter.dispatch('uba_holdout_bucket', 'uba')(raw_id, namespace)) }}
{%- endmacro %}

{% macro default__uba_holdout_bucket(raw_id, namespace) -%}
    (cast(('0x' || left(sha256(
        '{{ uba_holdout_key() }}' || '|holdout|' || {{ namespace }} || '|' || {{ raw_id }}
    ), 8)) as bigint) % 10000)
{%- endmacro %}

{% macro postgres__uba_holdout_bucket(raw_id, namespace) -%}
    (('x' || lpad(left(encode(sha256(convert_to(
        '{{ uba_holdout_key() }}' || '|holdout|' || {{ namespace }} || '|' || {{ raw_id }},
        'UTF8'
    )), 'hex'), 8), 16, '0'))::bit(64)::bigint % 10000)
{%- endmacro %}

{% macro uba_holdout_key() -%}
    {{- uba_string_body(var('uba__holdout_key') | string) -}}
{%- endmacro %}

{#- The holdout share as a bucket threshold (a bucket below it is in the holdout), with a clear
    error for a share outside [0, 1). -#}
{% macro uba_holdout_threshold() -%}
    {%- set share = var('uba__holdout_share') | float -%}
    {%- if share < 0 or share >= 1 -%}
        {{ exceptions.raise_compiler_error(
            'var uba__holdout_share must be in [0, 1), got ' ~ var('uba__holdout_share')) }}
    {%- endif -%}
    {{- (share * 10000) | round | int -}}
{%- endmacro %}

{#- Experiment metrics from var uba__experiment_metrics, checked once so every model reads the
    same validated list: [{name, kind, event_name?, window_days?, day?}]. -#}
{% macro uba_experiment_metrics() -%}
    {%- set metrics = var('uba__experiment_metrics') or [] -%}
    {%- if not metrics -%}
        {{ exceptions.raise_compiler_error('var uba__experiment_metrics is empty: declare at '
            ~ 'least one metric (docs/impact.md)') }}
    {%- endif -%}
    {%- set seen = [] -%}
    {%- for metric in metrics -%}
        {%- set where = 'uba__experiment_metrics entry ' ~ loop.index -%}
        {%- if metric.name is not defined or metric.kind is not defined -%}
            {{ exceptions.raise_compiler_error(where ~ ' needs a name and a kind') }}
        {%- endif -%}
        {%- if metric.kind not in ('conversion', 'retention', 'revenue') -%}
            {{ exceptions.raise_compiler_error(where ~ ' (' ~ metric.name ~ '): kind must be '
                ~ 'conversion, retention or revenue, got ' ~ metric.kind) }}
        {%- endif -%}
        {%- if metric.kind == 'conversion' and metric.event_name is not defined -%}
            {{ exceptions.raise_compiler_error(where ~ ' (' ~ metric.name ~ '): a conversion '
                ~ 'metric needs event_name') }}
        {%- endif -%}
        {%- if metric.kind == 'retention' and ((metric.day | int) < 1) -%}
            {{ exceptions.raise_compiler_error(where ~ ' (' ~ metric.name ~ '): a retention '
                ~ 'metric needs day >= 1') }}
        {%- endif -%}
        {%- if metric.kind != 'retention' and ((metric.window_days | int) < 1) -%}
            {{ exceptions.raise_compiler_error(where ~ ' (' ~ metric.name ~ '): window_days '
                ~ 'must be >= 1') }}
        {%- endif -%}
        {%- if metric.name in seen -%}
            {{ exceptions.raise_compiler_error('uba__experiment_metrics: duplicate name '
                ~ metric.name) }}
        {%- endif -%}
        {%- do seen.append(metric.name) -%}
    {%- endfor -%}
    {{ return(metrics) }}
{%- endmacro %}
