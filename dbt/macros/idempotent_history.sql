{#-
  Incremental strategy `idempotent_history`: the model is what its rows look
  like now, and the table keeps every version of each key (type-2 history,
  a dbt snapshot's job):

    {{ config(materialized='incremental', incremental_strategy='idempotent_history',
              unique_key='customer_id',        -- optional: else the unique index's columns less valid_from
              valid_from='valid_from',         -- optional, the defaults shown
              valid_to='valid_to',
              deletes='ignore',                -- 'close' when the model is a full snapshot
              full_refresh=false) }}           -- a full refresh would drop the history

  It renders

    SELECT * FROM idempotent_history('<target>'::regclass, '<temp>'::regclass,
        key => ARRAY[...]::text[], as_of => '<the run's time>'::pg_catalog.timestamptz,
        valid_from => '...', valid_to => '...', deletes => '...')

  so a retried run writes nothing, a corrected re-run of the same run
  rewrites its versions in place, and a backfill lands at its place in
  history (docs: idempotent_history).

  - as_of is the run's time, as set_run_time() takes it: config 'as_of' if
    given, else var('pg_idempotent_run_time'), else dbt's run_started_at.
    Pass the orchestrator's logical time as the var, so that a retry (a new
    dbt invocation with a new run_started_at) is the same run.
  - The table must exist before the model's first run, with the validity
    columns (timestamptz) and a unique index over the key columns and
    valid_from: dbt's first run of an incremental model creates the table
    as the model's SELECT, which has neither.  Create it before dbt runs (a
    hook is too late: dbt caches which relations exist at the start of the
    run), and keep full_refresh=false.
  - dest_columns is not used: columns match by name; the model must not
    select the validity columns (the function sets them).
  - incremental_predicates cannot be honoured, so they are refused.
-#}
{% macro get_incremental_idempotent_history_sql(arg_dict) -%}
  {%- if arg_dict.get('incremental_predicates') -%}
    {%- do exceptions.raise_compiler_error(
          "pg_idempotent: incremental strategy 'idempotent_history' does not support incremental_predicates") -%}
  {%- endif -%}
  {%- set deletes = config.get('deletes', 'ignore') -%}
  {%- if deletes not in ('ignore', 'close') -%}
    {%- do exceptions.raise_compiler_error(
          "pg_idempotent: deletes must be 'ignore' or 'close', not '" ~ deletes ~ "'") -%}
  {%- endif -%}
  {%- set args = [pg_idempotent.regclass(arg_dict['target_relation']),
                  pg_idempotent.regclass(arg_dict['temp_relation'])] -%}
  {%- set unique_key = arg_dict.get('unique_key') -%}
  {%- if unique_key -%}
    {%- do args.append('key => ' ~ pg_idempotent.text_array(unique_key)) -%}
  {%- endif -%}
  {%- do args.append('as_of => ' ~ pg_idempotent.quote_literal(pg_idempotent.run_time_text(config.get('as_of')))
                     ~ '::pg_catalog.timestamptz') -%}
  {%- do args.append('valid_from => ' ~ pg_idempotent.quote_literal(config.get('valid_from', 'valid_from'))) -%}
  {%- do args.append('valid_to => ' ~ pg_idempotent.quote_literal(config.get('valid_to', 'valid_to'))) -%}
  {%- do args.append('deletes => ' ~ pg_idempotent.quote_literal(deletes)) -%}
  {%- do return('SELECT * FROM ' ~ pg_idempotent.function_name('idempotent_history')
                ~ '(' ~ (args | join(', ')) ~ ')') -%}
{%- endmacro %}
