{#- How often each event is followed by each next and second-next event inside a session, per
    event day: the counts behind rpt_event_transitions and rpt_path_ngrams, so those reports
    sum a few thousand rows instead of re-counting every event each run.

    Incremental by day: a run recounts the days of the fct_event_transitions rows written since
    this model last read it (that model stamps each row with its batch_id and is recorded as
    this model's producer, macros/uba_batches.sql); a rewritten row keeps its event, so its day
    is the day of the row it replaced. -#}
{%- set transitions = ref('fct_event_transitions') -%}
{{ config(
    materialized=uba_incremental_unless_spark(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=["{% if is_incremental() %}delete from {{ this }} where "
        ~ "{{ uba_reads_everything(ref('fct_event_transitions')) }} or event_date in ("
        ~ "select event_date from ({{ uba_changed_rows(ref('fct_event_transitions'), "
        ~ "'event_date') }}) as changed){% endif %}"],
    post_hook=["{{ uba_record_consumed_batch(ref('fct_event_transitions')) }}"],
) }}

select
    event_date,
    event_name,
    next_event_name,
    second_next_event_name,
    cast(count(*) as bigint) as transitions
from {{ transitions }}
{%- if is_incremental() %}
where event_date in (
    select event_date from ({{ uba_changed_rows(transitions, 'event_date') }}) as changed
)
{%- endif %}
group by 1, 2, 3, 4
