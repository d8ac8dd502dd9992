{#- Funnels as analysts define them. The configuration is var uba__funnels (dbt_project.yml);
    docs/models.md ("Funnels") defines attempts, windows and the two matching orders. -#}

{%- macro _funnel_config_error(message) -%}
    {{ exceptions.raise_compiler_error("var uba__funnels: " ~ message) }}
{%- endmacro -%}

{#- Text safe inside a single-quoted SQL literal. -#}
{%- macro _funnel_quote(value) -%}
    '{{ (value | string).replace("'", "''") }}'
{%- endmacro -%}

{#- The events that match a step: its event name and its property filters. -#}
{%- macro _funnel_step_filter(step) -%}
    event_name = {{ _funnel_quote(step.event) }}
        {%- for column, value in step.where | dictsort %}
        and {{ column }} = {{ _funnel_quote(value) }}
        {%- endfor %}
{%- endmacro -%}

{#- The configured funnels, validated and normalized into a list of
    {name, order ('strict' | 'any'), window_seconds, window_text,
     steps: [{event, where: {column: value}, label}]}.
    A mistake stops compilation with one line naming the funnel and what is wrong. -#}
{% macro uba_funnels() -%}
    {%- set configured = var('uba__funnels', none) -%}
    {%- if configured is none or configured is string or configured is mapping
            or configured | length == 0 -%}
        {{ _funnel_config_error("must be a non-empty list of funnels, each {name, steps, conversion_window, order}") }}
    {%- endif -%}
    {%- set seconds_per_unit = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800} -%}
    {%- set identifier = '^[a-z][a-z0-9_]*$' -%}
    {%- set funnels = [] -%}
    {%- set seen_names = [] -%}
    {%- for funnel in configured -%}
        {%- if funnel is not mapping -%}
            {{ _funnel_config_error("funnel #" ~ loop.index ~ " is not a mapping: " ~ funnel) }}
        {%- endif -%}
        {%- set name = funnel.get('name') | string -%}
        {%- if not modules.re.match(identifier, name) -%}
            {{ _funnel_config_error("funnel #" ~ loop.index ~ " needs a name of lowercase letters, digits and _ (got '" ~ name ~ "')") }}
        {%- endif -%}
        {%- if name in seen_names -%}
            {{ _funnel_config_error("two funnels are named '" ~ name ~ "'") }}
        {%- endif -%}
        {%- do seen_names.append(name) -%}
        {%- set unknown_keys = funnel.keys() | reject('in', ['name', 'steps', 'conversion_window', 'order', 'description']) | list -%}
        {%- if unknown_keys -%}
            {{ _funnel_config_error("funnel '" ~ name ~ "' has unknown keys " ~ unknown_keys ~ " (known: name, steps, conversion_window, order, description)") }}
        {%- endif -%}
        {%- set order = funnel.get('order', 'strict') | string -%}
        {%- if order not in ['strict', 'any'] -%}
            {{ _funnel_config_error("funnel '" ~ name ~ "': order must be 'strict' or 'any' (got '" ~ order ~ "')") }}
        {%- endif -%}
        {%- set window_text = funnel.get('conversion_window', '7d') | string | trim | lower -%}
        {%- set window_match = modules.re.match('^([0-9]+)\s*([smhdw])$', window_text) -%}
        {%- if not window_match or (window_match.group(1) | int) < 1 -%}
            {{ _funnel_config_error("funnel '" ~ name ~ "': conversion_window must be a positive number with a unit s, m, h, d or w, like '30m' or '7d' (got '" ~ window_text ~ "')") }}
        {%- endif -%}
        {%- set window_seconds = (window_match.group(1) | int) * seconds_per_unit[window_match.group(2)] -%}
        {%- set configured_steps = funnel.get('steps') -%}
        {%- if configured_steps is none or configured_steps is string or configured_steps is mapping
                or configured_steps | length < 2 -%}
            {{ _funnel_config_error("funnel '" ~ name ~ "': steps must be a list of at least two steps") }}
        {%- endif -%}
        {%- set steps = [] -%}
        {%- set labels = [] -%}
        {%- set definitions = [] -%}
        {%- for step in configured_steps -%}
            {%- if step is string -%}
                {%- set step = {'event': step} -%}
            {%- endif -%}
            {%- if step is not mapping or not step.get('event') -%}
                {{ _funnel_config_error("funnel '" ~ name ~ "' step " ~ loop.index ~ ": an event name, or {event, where, label} (got " ~ step ~ ")") }}
            {%- endif -%}
            {%- set unknown_step_keys = step.keys() | reject('in', ['event', 'where', 'label']) | list -%}
            {%- if unknown_step_keys -%}
                {{ _funnel_config_error("funnel '" ~ name ~ "' step " ~ loop.index ~ " has unknown keys " ~ unknown_step_keys ~ " (known: event, where, label)") }}
            {%- endif -%}
            {%- set where = step.get('where') or {} -%}
            {%- if where is not mapping -%}
                {{ _funnel_config_error("funnel '" ~ name ~ "' step " ~ loop.index ~ ": where must map fct_events columns to values (got " ~ where ~ ")") }}
            {%- endif -%}
            {%- for column in where -%}
                {%- if not modules.re.match(identifier, column | string) -%}
                    {{ _funnel_config_error("funnel '" ~ name ~ "' step " ~ loop.index ~ ": '" ~ column ~ "' is not a column name") }}
                {%- endif -%}
            {%- endfor -%}
            {%- set conditions = [] -%}
            {%- for column, value in where | dictsort -%}
                {%- do conditions.append(column ~ '=' ~ value) -%}
            {%- endfor -%}
            {%- set default_label = step.event ~ (' [' ~ conditions | join(', ') ~ ']' if conditions else '') -%}
            {#- the same event may serve two steps at one instant, so identical steps are meaningless -#}
            {%- if default_label in definitions -%}
                {{ _funnel_config_error("funnel '" ~ name ~ "' repeats the step " ~ default_label ~ " (an event can count for both; add a where condition)") }}
            {%- endif -%}
            {%- do definitions.append(default_label) -%}
            {%- set label = step.get('label') or default_label -%}
            {%- if label in labels -%}
                {{ _funnel_config_error("funnel '" ~ name ~ "' has two steps labelled '" ~ label ~ "' (give one a label)") }}
            {%- endif -%}
            {%- do labels.append(label) -%}
            {%- do steps.append({'event': step.event | string, 'where': where, 'label': label}) -%}
        {%- endfor -%}
        {%- do funnels.append({
            'name': name, 'order': order, 'window_seconds': window_seconds,
            'window_text': window_text, 'steps': steps}) -%}
    {%- endfor -%}
    {{ return(funnels) }}
{%- endmacro %}

{#- Breakdown dimensions (var uba__funnel_breakdowns): columns of fct_events. -#}
{% macro uba_funnel_breakdowns() -%}
    {%- set configured = var('uba__funnel_breakdowns', []) -%}
    {%- if configured is string or configured is mapping -%}
        {{ exceptions.raise_compiler_error("var uba__funnel_breakdowns must be a list of fct_events columns, like [device, country]") }}
    {%- endif -%}
    {%- for column in configured -%}
        {%- if not modules.re.match('^[a-z][a-z0-9_]*$', column | string) or column == 'all' -%}
            {{ exceptions.raise_compiler_error("var uba__funnel_breakdowns: '" ~ column ~ "' is not a column name (and 'all' is reserved)") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(configured | list) }}
{%- endmacro %}

{#- The longest configured funnel: the number of step_<k>_at columns. -#}
{% macro uba_funnel_max_steps() -%}
    {{ return(uba_funnels() | map(attribute='steps') | map('length') | max) }}
{%- endmacro %}

{#- Incremental funnel models replay a changed person's attempts from their earliest changed
    event minus the longest conversion window: an attempt that ends at or after the change
    started after this (fct_funnel_attempts explains why that is enough). -#}
{% macro funnel_replay_from(changed_from_ts) -%}
    {%- set longest_window = uba_funnels() | map(attribute='window_seconds') | max -%}
    {{ dbt.dateadd('second', -longest_window, changed_from_ts) }}
{%- endmacro %}

{#- `and <column> >= <the earliest replay_from of the people whose events changed>` as a
    literal, read before the model's SQL runs (once per model run): every stored attempt a run
    deletes or re-reads, and every event it replays, is at or after its person's replay_from.
    A redundant bound beside the per-person one (a join condition, which skips nothing), so
    DuckDB skips the row groups before it: the funnel tables are stored in started_at order by
    a full build, daily rows appended after. Nothing on a full build, while dbt only parses or
    when nothing changed. -#}
{% macro funnel_and_replayed_from(column) -%}
{%- if is_incremental() -%}
{%- set first = uba_cached_query_value('funnel_replayed_from',
    'select min(' ~ funnel_replay_from('changed.changed_from_ts') ~ ') from ('
    ~ uba_changed_people(ref('int_events_sessionized')) ~ ') as changed') -%}
{{- uba_and_literal_from(column, first) -}}
{%- endif -%}
{%- endmacro %}

{#- Incremental conversion reports (rpt_funnel_conversion_daily / weekly): the first period to
    rebuild, the earliest of the periods that replayed attempts can fall in and of the stored
    periods not complete yet (the watermark may have passed them); null: none. A period's
    rows depend only on the attempts that started in it and on the watermark. -#}
{% macro funnel_report_rebuild_from(grain) -%}
    (
        select min(period_start) from (
            select cast({{ dbt.date_trunc(grain, funnel_replay_from('changed.changed_from_ts')) }}
                as date) as period_start
            from ({{ uba_changed_people(ref('int_events_sessionized')) }}) as changed
            union all
            select min(period_start) from {{ this }} where not is_complete
        ) as stale
    )
{%- endmacro %}

{#- Where an incremental conversion report reads the attempt steps from: the period after the
    last one its pre-hook keeps (every period before it is kept whole). A literal read before
    the model's SQL runs (the kept periods are those the pre-hook will not delete), so DuckDB
    skips the row groups of fct_funnel_attempt_steps (stored in started_at order) before it;
    while dbt only parses, the same bound as a subquery of the table after the delete. -#}
{% macro funnel_report_read_from(grain) -%}
    {%- set after_kept = dbt.dateadd(grain, 1, 'max(period_start)') -%}
    {%- set first_read = "coalesce(cast(" ~ after_kept ~ " as " ~ dbt.type_timestamp()
        ~ "), cast('0001-01-01' as " ~ dbt.type_timestamp() ~ "))" -%}
    {%- if not execute -%}
    (select {{ first_read }} from {{ this }})
    {%- else -%}
    {%- set value = uba_query_value("select " ~ first_read ~ " from " ~ this
        ~ " where not (" ~ uba_reads_everything(ref('int_events_sessionized'))
        ~ ") and not coalesce(period_start >= " ~ funnel_report_rebuild_from(grain) ~ ", false)") -%}
    cast('{{ value }}' as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- One row per configured funnel: name, step count, window, matching order. -#}
{% macro funnel_settings_rows() -%}
    {%- for funnel in uba_funnels() %}
    select
        {{ _funnel_quote(funnel.name) }} as funnel_name,
        {{ funnel.steps | length }} as step_count,
        {{ funnel.window_seconds }} as window_seconds,
        {{ 'true' if funnel.order == 'any' else 'false' }} as is_any_order
    {{ 'union all' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- One row per configured funnel step: funnel_name, step_number, step_name (its label). -#}
{% macro funnel_step_rows() -%}
    {%- set rows = [] -%}
    {%- for funnel in uba_funnels() -%}
        {%- for step in funnel.steps -%}
            {%- do rows.append("select " ~ _funnel_quote(funnel.name) ~ " as funnel_name, "
                ~ loop.index ~ " as step_number, "
                ~ "cast(" ~ _funnel_quote(step.label) ~ " as " ~ dbt.type_string() ~ ") as step_name") -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ rows | join('\nunion all\n') }}
{%- endmacro %}

{#- Funnel attempts over `events` (any relation with event_id, user_id, session_id, event_name,
    event_ts and the breakdown / `where` columns): one row per (funnel, level, attempt).

    Levels: 'user' (steps may span sessions) and 'session' (every step in step 1's session).
    Attempt: starts at an occurrence of step 1 that is not inside an earlier open attempt of
    the same user (session); an attempt is open from its step 1 until it converts or its
    conversion window ends, whichever is first (both ends inclusive).
    Steps (strict): step k = the first step-k event at or after step k-1 (same instant allowed)
    and within the window. Steps (any order): step k is reached once steps 2..k have each
    happened at or after step 1 and within the window; its time is the latest of them.

    How, without a loop per event: every step-1 instant is a candidate; its steps come from
    "first step-k event at or after t" columns (one ordered window pass over the step events),
    so its end is known; the attempts are then the chain of "first candidate after my end"
    from each user's (session's) first candidate (macro uba_funnel_chosen_attempts: a
    recursive walk, one engine's way or another's).

    Resuming (incremental fct_funnel_attempts): `ctes` are CTE definitions put first in the
    WITH; `resume` names two of them: `people` (user_id, replay_from: events before it are
    ignored) and `kept` (funnel_name, funnel_level, partition_id, resume_after, kept_attempts:
    the attempts kept for that key end at resume_after, so only events after it count, and
    attempt numbers continue after kept_attempts). The caller guarantees that no attempt
    starts between a key's resume_after (or its person's replay_from) and the first step-1
    event after it that this macro sees, so that event starts an attempt here as it would in
    a build from all events. -#}
{% macro funnel_attempts(events, ctes=none, resume=none) -%}
{%- set funnels = uba_funnels() -%}
{%- set breakdowns = uba_funnel_breakdowns() -%}
{%- set max_steps = uba_funnel_max_steps() -%}
{%- set keys = ['funnel_name', 'funnel_level', 'partition_id'] -%}
{%- set step_timeline = 'partition by ' ~ keys | join(', ') ~ ' order by event_ts, step_number' -%}
with

{% if ctes -%}
{{ ctes }},

{% endif -%}
{#- The step events, narrow: what the step pass and the levels need. Read once (by_level),
    so it streams rather than being held through the query; the attempts' step-1 event
    columns are read again in first_step_events, for the chosen attempts only. -#}
step_matches as (

    {% for funnel in funnels -%}
    {%- set funnel_loop = loop -%}
    {%- for step in funnel.steps %}
    select
        {{ _funnel_quote(funnel.name) }} as funnel_name,
        {{ loop.index }} as step_number,
        user_id,
        session_id,
        event_ts
    from {{ events }}
    where {{ _funnel_step_filter(step) }}
    {{ 'union all' if not (loop.last and funnel_loop.last) }}
    {%- endfor %}
    {%- endfor %}

),

first_step_events as (

    {% for funnel in funnels -%}
    select
        {{ _funnel_quote(funnel.name) }} as funnel_name,
        event_id,
        user_id,
        session_id,
        event_ts{% for column in breakdowns %},
        {{ column }}{% endfor %}
    from {{ events }}
    where {{ _funnel_step_filter(funnel.steps[0]) }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

funnel_levels as (

    select 'user' as funnel_level
    union all
    select 'session' as funnel_level

),

by_level as (

    {% if resume -%}
    select leveled.*
    from (
    {%- endif %}
    select
        funnel_levels.funnel_level,
        case
            when funnel_levels.funnel_level = 'user' then step_matches.user_id
            else step_matches.session_id
        end as partition_id,
        step_matches.*
    from step_matches
    cross join funnel_levels
    {%- if resume %}
    ) as leveled
    inner join {{ resume.people }} as people
        on leveled.user_id = people.user_id
    left join {{ resume.kept }} as kept
        on {% for key in keys %}leveled.{{ key }} = kept.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    where leveled.event_ts >= people.replay_from
        and (kept.resume_after is null or leveled.event_ts > kept.resume_after)
    {%- endif %}

),

{#- One ordered pass over each user's (session's) step events, by time, then step: from a
    row on come the rows of its instant with the same or a later step and every later row, so
    "the first step-k event at or after this row" is a running min() over the rows that
    follow (events of the same instant count as after). The first step-1 row of an instant is
    that instant's candidate; the first step-k row of an instant carries the first step k+1
    from it, for the strict chain. Row frames and a previous-row test instead of a grouping
    per instant, and only the keys in the sort: the attempts' event columns are looked up
    afterwards (attempt_events). -#}
step_rows as (

    select
        funnel_name,
        funnel_level,
        partition_id,
        event_ts,
        step_number{% for k in range(2, max_steps + 1) %},
        min(case when step_number = {{ k }} then event_ts end) over (
            {{ step_timeline }}
            rows between current row and unbounded following
        ) as next_step_{{ k }}_at{% endfor %},
        lag(event_ts) over ({{ step_timeline }}) as previous_row_at,
        lag(step_number) over ({{ step_timeline }}) as previous_row_step
    from by_level

),

{#- The first row of each (instant, step). -#}
instant_steps as (

    select *
    from step_rows
    where previous_row_at is null
        or previous_row_at < event_ts
        or previous_row_step < step_number

),

funnel_settings as (

    {{ funnel_settings_rows() }}

),

{#- Every distinct step-1 instant is a candidate attempt start. -#}
candidates as (

    select
        funnel_name,
        funnel_level,
        partition_id,
        event_ts as started_at{% for k in range(2, max_steps + 1) %},
        next_step_{{ k }}_at as start_next_step_{{ k }}_at{% endfor %}
    from instant_steps
    where step_number = 1

),

{#- Strict order: step k+1 is the first step-(k+1) event at or after step k's instant (the
    instant's first step-k row carries it). -#}
{%- for k in range(2, max_steps) %}

after_step_{{ k }} as (

    select {{ keys | join(', ') }}, event_ts, next_step_{{ k + 1 }}_at
    from instant_steps
    where step_number = {{ k }}

),
{%- endfor %}

candidate_steps as (

    select
        candidates.*,
        funnel_settings.step_count,
        funnel_settings.is_any_order,
        {{ dbt.dateadd('second', 'funnel_settings.window_seconds', 'candidates.started_at') }}
            as window_ends_at{% for k in range(2, max_steps + 1) %},
        candidates.start_next_step_{{ k }}_at as first_step_{{ k }}_at,
        {% if k == 2 -%}
        candidates.start_next_step_2_at
        {%- else -%}
        after_step_{{ k - 1 }}.next_step_{{ k }}_at
        {%- endif %} as strict_step_{{ k }}_at{% endfor %}
    from candidates
    inner join funnel_settings
        on candidates.funnel_name = funnel_settings.funnel_name
    {%- for k in range(2, max_steps) %}
    left join after_step_{{ k }}
        on {% for key in keys %}candidates.{{ key }} = after_step_{{ k }}.{{ key }} and {% endfor -%}
        {%- if k == 2 %}candidates.start_next_step_2_at{% else %}after_step_{{ k - 1 }}.next_step_{{ k }}_at{% endif %} = after_step_{{ k }}.event_ts
    {%- endfor %}

),

{#- Step k reached: the strict chain, or (any order) the latest of steps 2..k once all
    happened; kept only inside the window. Reached steps are always a prefix 1..k. -#}
candidate_attempts as (

    select
        {{ keys | join(', ') }},
        started_at,
        step_count,
        window_ends_at,
        started_at as step_1_at{% for k in range(2, max_steps + 1) %},
        case
            when step_count < {{ k }} then null
            when is_any_order then
                case
                    when {% for j in range(2, k + 1) %}first_step_{{ j }}_at is not null{{ ' and ' if not loop.last }}{% endfor %}
                        and {% if k == 2 %}first_step_2_at{% else %}greatest({% for j in range(2, k + 1) %}first_step_{{ j }}_at{{ ', ' if not loop.last }}{% endfor %}){% endif %} <= window_ends_at
                        then {% if k == 2 %}first_step_2_at{% else %}greatest({% for j in range(2, k + 1) %}first_step_{{ j }}_at{{ ', ' if not loop.last }}{% endfor %}){% endif %}
                end
            when strict_step_{{ k }}_at <= window_ends_at then strict_step_{{ k }}_at
        end as step_{{ k }}_at{% endfor %}
    from candidate_steps

),

candidate_ends as (

    select
        candidate_attempts.*,
        case step_count{% for k in range(2, max_steps + 1) %}
            when {{ k }} then step_{{ k }}_at{% endfor %}
        end as converted_at
    from candidate_attempts

),

{#- The attempts, each with its 1-based place among its user's (session's) attempts; what
    else they carry is their steps' times (the rest follows from the funnel's settings). -#}
{%- set carried = [] -%}
{%- for k in range(2, max_steps + 1) %}{% do carried.append('step_' ~ k ~ '_at') %}{% endfor %}
chosen as (

    {{ uba_funnel_chosen_attempts('candidate_ends', keys, carried) }}

),

{#- Each attempt's step-1 event columns: per column the smallest among the step-1 events of
    its start instant. Almost every instant has one such event, so only the tied attempts are
    grouped: a grouping of every attempt with text minimums held ~1.1 GB of hash table at 10M
    events and ran out of memory at a 1.2 GB DuckDB limit, where the rest of the query fits. -#}
{%- set instant = keys + ['started_at'] %}
attempt_matches as (

    select
        {% for column in instant + ['attempt_index'] + carried %}chosen.{{ column }},
        {% endfor -%}
        first_step_events.user_id,
        first_step_events.session_id,
        first_step_events.event_id as first_event_id{% for column in breakdowns %},
        first_step_events.{{ column }}{% endfor %}
    from chosen
    inner join first_step_events
        on chosen.funnel_name = first_step_events.funnel_name
        and chosen.started_at = first_step_events.event_ts
        and chosen.partition_id = case
            when chosen.funnel_level = 'user' then first_step_events.user_id
            else first_step_events.session_id
        end

),

tied_attempts as (

    select {{ instant | join(', ') }}
    from attempt_matches
    group by {{ instant | join(', ') }}
    having count(*) > 1

),

attempt_events as (

    select attempt_matches.*
    from attempt_matches
    where not exists (
        select 1
        from tied_attempts
        where {% for column in instant %}tied_attempts.{{ column }} = attempt_matches.{{ column }}{{ '\n            and ' if not loop.last }}{% endfor %}
    )
    union all
    select
        {%- for column in instant %}
        attempt_matches.{{ column }},
        {%- endfor %}
        {%- for column in ['attempt_index'] + carried + ['user_id', 'session_id', 'first_event_id'] + breakdowns %}
        min(attempt_matches.{{ column }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from attempt_matches
    inner join tied_attempts
        on {% for column in instant %}tied_attempts.{{ column }} = attempt_matches.{{ column }}{{ '\n        and ' if not loop.last }}{% endfor %}
    group by {% for column in instant %}attempt_matches.{{ column }}{{ ', ' if not loop.last }}{% endfor %}

),

attempts as (

    select
        attempt_events.*,
        funnel_settings.step_count,
        {{ dbt.dateadd('second', 'funnel_settings.window_seconds', 'attempt_events.started_at') }}
            as window_ends_at,
        attempt_events.started_at as step_1_at,
        case funnel_settings.step_count{% for k in range(2, max_steps + 1) %}
            when {{ k }} then attempt_events.step_{{ k }}_at{% endfor %}
        end as converted_at
    from attempt_events
    inner join funnel_settings
        on attempt_events.funnel_name = funnel_settings.funnel_name

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            'attempts.funnel_name', "'|'",
            'attempts.funnel_level', "'|'",
            'attempts.partition_id', "'|'",
            uba_timestamp_text('attempts.started_at')])) }} as attempt_id,
        attempts.user_id,
        attempts.session_id,
        attempts.first_event_id,
        attempts.funnel_name,
        attempts.funnel_level,{% for column in breakdowns %}
        attempts.{{ column }},{% endfor %}
        cast(attempts.attempt_index{% if resume %} + coalesce(kept.kept_attempts, 0){% endif %} as integer)
            as attempt_number,
        cast(attempts.step_count as integer) as step_count,
        cast({% for k in range(1, max_steps + 1) -%}
            case when attempts.step_{{ k }}_at is not null then 1 else 0 end{{ ' + ' if not loop.last }}
        {%- endfor %} as integer) as steps_completed,
        case when attempts.converted_at is not null
            then {{ uba_epoch_seconds('attempts.converted_at') }} - {{ uba_epoch_seconds('attempts.started_at') }}
        end as seconds_to_convert,
        attempts.converted_at is not null as is_converted,
        cast(attempts.started_at as date) as started_date,
        attempts.started_at,
        attempts.converted_at,
        attempts.window_ends_at{% for k in range(1, max_steps + 1) %},
        attempts.step_{{ k }}_at{% endfor %}
    from attempts
    {%- if resume %}
    left join {{ resume.kept }} as kept
        on {% for key in keys %}attempts.{{ key }} = kept.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    {%- endif %}

)

select * from final
{%- endmacro %}

{#- The attempts among `candidates` (funnel_attempts' candidate_ends: `keys`, started_at,
    window_ends_at, converted_at and the other `carried` columns): per key, the first
    candidate, then the first candidate that starts after the previous attempt's end (its
    conversion, else its window end), and so on; the chosen candidates' keys, started_at and
    `carried` columns, plus attempt_index (1, 2, ... in time order). How: integer candidate
    ids, each candidate's next candidate (macro uba_funnel_next_candidates), and the chains
    of next pointers from each island start (a candidate more than a window after the
    previous candidate always starts an attempt; the chains are walked by macro
    uba_funnel_attempt_chain). Nested so that the model's own WITH stays plain (dbt
    injects unit-test fixtures there). Only the keys and times are carried through it: the
    step-1 event's columns are looked up for the chosen attempts only (funnel_attempts). -#}
{% macro uba_funnel_chosen_attempts(candidates, keys, carried) -%}
    select
        {% for column in keys + ['started_at'] + carried %}numbered.{{ column }},
        {% endfor -%}
        row_number() over (
            partition by {% for key in keys %}numbered.{{ key }}{{ ', ' if not loop.last }}{% endfor %}
            order by numbered.started_at
        ) as attempt_index
    from (
        with numbered as (
            {# only the columns read below: DuckDB materializes this CTE (read more than
                once), every column it selects (fct_funnel_attempts at 10M events: 23.7 / 23.7
                -> 22.8 / 23.0 s) #}
            select
                {% for column in keys + ['started_at', 'window_ends_at', 'converted_at'] + carried -%}
                {{ candidates }}.{{ column }},
                {% endfor -%}
                {#- the previous candidate's window, from the same ordered pass as the ids -#}
                case
                    when {% for key in keys %}lag({{ key }}) over (order by {{ keys | join(', ') }}, started_at) = {{ key }}
                        and {% endfor %}lag(window_ends_at) over (order by {{ keys | join(', ') }}, started_at) >= started_at
                        then false
                    else true
                end as is_island_start,
                row_number() over (order by {{ keys | join(', ') }}, started_at) as candidate_id
            from {{ candidates }}
        ),
        next_candidates as (
            {{ uba_funnel_next_candidates('numbered', keys) }}
        ),
        chain as (
            {{ uba_funnel_attempt_chain('next_candidates', keys) }}
        )
        select numbered.*
        from numbered
        inner join chain
            on numbered.candidate_id = chain.candidate_id
    ) as numbered
{%- endmacro %}

{#- Per candidate of `numbered` (`keys`, started_at, window_ends_at, converted_at, candidate_id:
    consecutive integers in (keys, started_at) order, is_island_start): its keys,
    candidate_id, is_island_start and next_candidate_id, the id of the key's first candidate
    that starts strictly after its end (its conversion, else its window end), null if none. -#}
{% macro uba_funnel_next_candidates(numbered, keys) -%}
    {{ return(adapter.dispatch('uba_funnel_next_candidates', 'uba')(numbered, keys)) }}
{%- endmacro %}

{#- Candidate starts (kind 0) and ends (kind 1) in one ordered stream: the next start after an
    end is the first kind-0 row following it (a start at the end's own time sorts before it). -#}

{% macro default__uba_funnel_next_candidates(numbered, keys) -%}
    select
        {{ keys | join(', ') }},
        candidate_id,
        next_candidate_id,
        is_island_start
    from (
        select
            boundaries.*,
            min(case when boundary_kind = 0 then candidate_id end) over (
                partition by {{ keys | join(', ') }}
                order by boundary_at, boundary_kind
                rows between 1 following and unbounded following
            ) as next_candidate_id
        from (
            select
                {{ keys | join(', ') }},
                started_at as boundary_at,
                0 as boundary_kind,
                candidate_id,
                is_island_start
            from {{ numbered }}
            union all
            select
                {{ keys | join(', ') }},
                coalesce(converted_at, window_ends_at) as boundary_at,
                1 as boundary_kind,
                candidate_id,
                is_island_start
            from {{ numbered }}
        ) as boundaries
    ) as ordered_boundaries
    where boundary_kind = 1
{%- endmacro %}

{#- DuckDB takes a RANGE frame's offset from a column (the other engines only constants): the
    key's candidates that start from this one's start to its end are counted, and the next
    one's id is that many further on, the ids being consecutive within a key. One window over
    the candidates instead of a stream of twice as many rows sorted (fct_funnel_attempts at
    10M events: this step alone 2.6-2.7 -> 1.5 s, the same pointers). Candidates start at
    distinct times within a key (funnel_attempts' instant steps), so the frame's peers are
    the candidate itself. -#}
{% macro duckdb__uba_funnel_next_candidates(numbered, keys) -%}
    select
        {{ keys | join(', ') }},
        candidate_id,
        case when in_reach < remaining then candidate_id + in_reach end as next_candidate_id,
        is_island_start
    from (
        select
            {{ keys | join(', ') }},
            candidate_id,
            is_island_start,
            count(*) over (
                partition by {{ keys | join(', ') }}
                order by started_at
                range between current row
                    and (coalesce(converted_at, window_ends_at) - started_at) following
            ) as in_reach,
            count(*) over (
                partition by {{ keys | join(', ') }}
                order by started_at
                rows between current row and unbounded following
            ) as remaining
        from {{ numbered }}
    ) as counted
{%- endmacro %}

{#- The candidate ids on the chains of next-candidate pointers (`next_candidates`: `keys`,
    candidate_id, next_candidate_id, is_island_start) that start at each island start: a
    recursive CTE whose depth is the number of attempts inside one island. Spark's version
    walks each key's candidates in one aggregate (uba_cross_db_engines.sql). -#}
{% macro uba_funnel_attempt_chain(next_candidates, keys) -%}
    {{ return(adapter.dispatch('uba_funnel_attempt_chain', 'uba')(next_candidates, keys)) }}
{%- endmacro %}

{#- DuckDB: the recursion re-reads its links at every level (one per attempt inside an island:
    43 at 1M, ~71 at 10M), so they are first materialized as integer-sized columns: the whole
    next_candidates rows carry the three text keys, and at 10M events, under a 1.2 GB memory
    limit, that CTE spilled and every level read it back from disk. Inside a recursive CTE
    DuckDB builds each level's hash table on the join's right side as written, so the level's
    chain rows are on the right and the links stream past them. With the links on the right
    every level hashed all 3.6M of them again (10M events: the join 16.9 s and the recursion
    10.0 s of the full build's 90 s of operator time; now 1.2 s and 0.9 s). The island starts
    are the anchor, so the levels read only the other links. -#}
{% macro duckdb__uba_funnel_attempt_chain(next_candidates, keys) -%}
    select chain.candidate_id
    from (
        with recursive links as materialized (
            select candidate_id, next_candidate_id, is_island_start
            from {{ next_candidates }}
        ),
        followers as materialized (
            select candidate_id, next_candidate_id
            from links
            where not is_island_start
        ),
        chain as (
            select candidate_id, next_candidate_id
            from links
            where is_island_start
            union all
            select followers.candidate_id, followers.next_candidate_id
            from followers
            inner join chain
                on followers.candidate_id = chain.next_candidate_id
        )
        select candidate_id from chain
    ) as chain
{%- endmacro %}

{% macro default__uba_funnel_attempt_chain(next_candidates, keys) -%}
    select chain.candidate_id
    from (
        with recursive chain as (
            select candidate_id, next_candidate_id
            from {{ next_candidates }}
            where is_island_start
            union all
            select {{ next_candidates }}.candidate_id, {{ next_candidates }}.next_candidate_id
            from chain
            inner join {{ next_candidates }}
                on chain.next_candidate_id = {{ next_candidates }}.candidate_id
            where not {{ next_candidates }}.is_island_start
        )
        select candidate_id from chain
    ) as chain
{%- endmacro %}

{#- Funnel conversion per period (`grain`: 'day' or 'week', by the day each attempt started),
    funnel, level, breakdown and step: attempts entering the step (those that reached the
    previous step; step 1: all attempts), attempts converting (reaching it), distinct users,
    rates, and median / p90 seconds from the previous step and from step 1.
    Incremental (config in the models): the pre-hook deletes the periods from
    funnel_report_rebuild_from on, and every period after the last one kept is rebuilt. -#}
{% macro funnel_conversion_report(grain) -%}
{%- set breakdowns = uba_funnel_breakdowns() -%}
{%- set group_keys = ['period_start', 'funnel_name', 'funnel_level', 'breakdown', 'breakdown_value'] -%}
with

{# Inlined where it is read (once per breakdown): DuckDB materialized every column of every
   step row and read that back (the daily report's full build alone at 10M events: 5.3-5.5 s,
   inlined 3.8-4.0 s). #}
attempt_steps as {{ uba_cte_not_materialized() }} (

    select * from {{ ref('fct_funnel_attempt_steps') }}
    {%- if is_incremental() %}
    where started_at >= {{ funnel_report_read_from(grain) }}
    {%- endif %}

),

funnel_steps as (

    {{ funnel_step_rows() }}

),

funnel_settings as (

    {{ funnel_settings_rows() }}

),

{#- Incrementally, from the newest event the run wrote, as a literal (fct_events holds every
    event and is stored in time order): the same maximum, without reading every event. -#}
watermark as (

    select max(event_ts) as watermark_at from {{ ref('fct_events') }}
    {%- if is_incremental() %}
    where true
        {{- uba_and_at_or_after('event_ts', 'select max(event_ts) from ('
            ~ uba_changed_rows(ref('int_events_sessionized'), 'event_ts') ~ ') as written') }}
    {%- endif %}

),

segmented as (

    select
        cast('all' as {{ dbt.type_string() }}) as breakdown,
        cast('all' as {{ dbt.type_string() }}) as breakdown_value,
        attempt_steps.*
    from attempt_steps
    {%- for column in breakdowns %}
    union all
    select
        cast('{{ column }}' as {{ dbt.type_string() }}) as breakdown,
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), 'unknown') as breakdown_value,
        attempt_steps.*
    from attempt_steps
    {%- endfor %}

),

step_counts as (

    select
        cast({{ dbt.date_trunc(grain, 'started_at') }} as date) as period_start,
        funnel_name,
        funnel_level,
        breakdown,
        breakdown_value,
        step_number,
        count(*) as attempts_converted,
        count(distinct user_id) as users_converted,
        {{ uba_percentile_cont(0.5, 'seconds_from_previous_step') }}
            as median_seconds_from_previous_step,
        {{ uba_percentile_cont(0.9, 'seconds_from_previous_step') }}
            as p90_seconds_from_previous_step,
        {{ uba_percentile_cont(0.5, 'seconds_from_first_step') }}
            as median_seconds_from_first_step,
        {{ uba_percentile_cont(0.9, 'seconds_from_first_step') }}
            as p90_seconds_from_first_step
    from segmented
    group by 1, 2, 3, 4, 5, 6

),

{#- Every step of every (period, funnel, level, breakdown value) that had attempts, so a step
    nobody reached shows 0 rather than no row. -#}
spine as (

    select
        {% for key in group_keys %}step_counts.{{ key }}, {% endfor %}
        funnel_steps.step_number,
        funnel_steps.step_name
    from step_counts
    inner join funnel_steps
        on step_counts.funnel_name = funnel_steps.funnel_name
    where step_counts.step_number = 1

),

filled as (

    select
        spine.*,
        coalesce(step_counts.attempts_converted, 0) as attempts_converted,
        coalesce(step_counts.users_converted, 0) as users_converted,
        step_counts.median_seconds_from_previous_step,
        step_counts.p90_seconds_from_previous_step,
        step_counts.median_seconds_from_first_step,
        step_counts.p90_seconds_from_first_step
    from spine
    left join step_counts
        on {% for key in group_keys %}spine.{{ key }} = step_counts.{{ key }} and {% endfor %}spine.step_number = step_counts.step_number

),

with_entered as (

    select
        filled.*,
        coalesce(
            lag(attempts_converted) over (
                partition by {{ group_keys | join(', ') }} order by step_number
            ),
            attempts_converted
        ) as attempts_entered,
        max(case when step_number = 1 then attempts_converted end) over (
            partition by {{ group_keys | join(', ') }}
        ) as attempts_started
    from filled

),

final as (

    select
        with_entered.funnel_name,
        with_entered.funnel_level,
        with_entered.breakdown,
        with_entered.breakdown_value,
        with_entered.step_name,
        cast(with_entered.step_number as integer) as step_number,
        cast(with_entered.attempts_started as bigint) as attempts_started,
        cast(with_entered.attempts_entered as bigint) as attempts_entered,
        cast(with_entered.attempts_converted as bigint) as attempts_converted,
        cast(with_entered.users_converted as bigint) as users_converted,
        {{ feature_safe_divide('with_entered.attempts_converted', 'with_entered.attempts_entered', 'null') }}
            as conversion_rate,
        {{ feature_safe_divide('with_entered.attempts_converted', 'with_entered.attempts_started') }}
            as conversion_from_first_step,
        cast(with_entered.median_seconds_from_previous_step as {{ uba_type_double() }})
            as median_seconds_from_previous_step,
        cast(with_entered.p90_seconds_from_previous_step as {{ uba_type_double() }})
            as p90_seconds_from_previous_step,
        cast(with_entered.median_seconds_from_first_step as {{ uba_type_double() }})
            as median_seconds_from_first_step,
        cast(with_entered.p90_seconds_from_first_step as {{ uba_type_double() }})
            as p90_seconds_from_first_step,
        {{ dbt.dateadd('second', 'funnel_settings.window_seconds',
            dbt.dateadd(grain, 1, 'with_entered.period_start')) }}
            <= (select watermark_at from watermark) as is_complete,
        with_entered.period_start
    from with_entered
    inner join funnel_settings
        on with_entered.funnel_name = funnel_settings.funnel_name

)

select * from final
{%- endmacro %}

{#- Incident detection settings (var uba__funnel_incidents) with their defaults. -#}
{% macro uba_funnel_incident_settings() -%}
    {%- set defaults = {
        'baseline_days': 28, 'min_baseline_days': 7, 'min_attempts': 50, 'z_threshold': 3.0,
        'min_relative_drop': 0.2, 'refinement_passes': 2, 'alert_recent_days': 3} -%}
    {%- set configured = var('uba__funnel_incidents', {}) or {} -%}
    {%- if configured is not mapping -%}
        {{ exceptions.raise_compiler_error("var uba__funnel_incidents must be a mapping of settings " ~ defaults.keys() | list) }}
    {%- endif -%}
    {%- set settings = {} -%}
    {%- for key, default in defaults.items() -%}
        {%- set value = configured.get(key, default) -%}
        {%- if value is not number or value < 0 -%}
            {{ exceptions.raise_compiler_error("var uba__funnel_incidents." ~ key ~ " must be a number >= 0 (got " ~ value ~ ")") }}
        {%- endif -%}
        {%- do settings.update({key: value}) -%}
    {%- endfor -%}
    {%- set unknown = configured.keys() | reject('in', defaults.keys() | list) | list -%}
    {%- if unknown -%}
        {{ exceptions.raise_compiler_error("var uba__funnel_incidents: unknown settings " ~ unknown ~ " (known: " ~ defaults.keys() | list ~ ")") }}
    {%- endif -%}
    {{ return(settings) }}
{%- endmacro %}

{#- Score each day of `baseline` (a CTE with the day's and its trailing baseline's counts)
    against that baseline: a one-sided binomial z-score of the day's step conversion, and the
    flag when the fall is both significant and large. -#}
{% macro funnel_incident_scored(baseline) -%}
    select
        {{ baseline }}.*,
        conversion_rate - baseline_conversion_rate as rate_change,
        case when baseline_conversion_rate > 0
            then 1 - conversion_rate / baseline_conversion_rate
        end as relative_drop,
        {#- the baseline rate is kept off 0 and 1 so the variance is never 0 -#}
        (conversion_rate - baseline_conversion_rate) / sqrt(
            greatest(least(baseline_conversion_rate, 1 - 0.5 / baseline_attempts_entered),
                0.5 / baseline_attempts_entered)
            * (1 - greatest(least(baseline_conversion_rate, 1 - 0.5 / baseline_attempts_entered),
                0.5 / baseline_attempts_entered))
            / attempts_entered
        ) as z_score
    from {{ baseline }}
{%- endmacro %}

{% macro funnel_incident_flag() -%}
    {%- set settings = uba_funnel_incident_settings() -%}
    coalesce(
        baseline_days_used >= {{ settings.min_baseline_days }}
        and attempts_entered >= {{ settings.min_attempts }}
        and z_score <= -{{ settings.z_threshold }}
        and relative_drop >= {{ settings.min_relative_drop }},
        false
    )
{%- endmacro %}

{#- Fails on each incident (rpt_funnel_incidents) within the latest `alert_recent_days`
    evaluated days, so an old incident stops warning; used with severity warn. -#}
{% test uba_no_recent_funnel_incidents(model) %}
    {%- set settings = uba_funnel_incident_settings() -%}
    select *
    from {{ model }}
    where days_before_evaluated_through < {{ settings.alert_recent_days }}
{% endtest %}
