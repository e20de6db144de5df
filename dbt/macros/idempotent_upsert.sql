{#-
  Incremental strategy `idempotent_upsert`:

    {{ config(materialized='incremental', incremental_strategy='idempotent_upsert',
              unique_key='order_id',            -- optional: else the table's primary key
              version_column='updated_at',      -- optional
              on_duplicate='error') }}          -- or 'last'

  dbt builds the model's rows into a temp relation, then calls this macro with
  arg_dict = {target_relation, temp_relation, unique_key, dest_columns,
  incremental_predicates} and runs the SQL it returns.  It renders

    SELECT * FROM idempotent_upsert('<target>'::regclass, '<temp>'::regclass,
        key => ARRAY[...]::text[], version_column => '...', on_duplicate => '...')

  so a retried or re-run model writes nothing for rows it already loaded
  (docs/upsert.md, "idempotent_upsert").

  - key: from unique_key (a name or a list of names) when given; without one the
    function uses the target's primary key or its one unique index.  Either way
    the target needs such an index: dbt creates the table with CREATE TABLE AS,
    which makes none, so add one (a post_hook, or a model contract's
    primary_key constraint).
  - dest_columns is not used: the function matches columns by name.  A model
    column the target lacks is an error (42703), not silently dropped, so use
    on_schema_change='append_new_columns' (or 'fail') with this strategy.
  - incremental_predicates cannot be honoured (the function has no predicate
    argument), so they are refused rather than ignored.
-#}
{% macro get_incremental_idempotent_upsert_sql(arg_dict) -%}
  {%- if arg_dict.get('incremental_predicates') -%}
    {%- do exceptions.raise_compiler_error(
          "pg_idempotent: incremental strategy 'idempotent_upsert' does not support incremental_predicates") -%}
  {%- endif -%}
  {%- set args = [pg_idempotent.regclass(arg_dict['target_relation']),
                  pg_idempotent.regclass(arg_dict['temp_relation'])] -%}
  {%- set unique_key = arg_dict.get('unique_key') -%}
  {%- if unique_key -%}
    {%- do args.append('key => ' ~ pg_idempotent.text_array(unique_key)) -%}
  {%- endif -%}
  {%- set version_column = config.get('version_column') -%}
  {%- if version_column -%}
    {%- do args.append('version_column => ' ~ pg_idempotent.quote_literal(version_column)) -%}
  {%- endif -%}
  {%- do args.append('on_duplicate => ' ~ pg_idempotent.quote_literal(config.get('on_duplicate', 'error'))) -%}
  {%- do return('SELECT * FROM ' ~ pg_idempotent.function_name('idempotent_upsert')
                ~ '(' ~ (args | join(', ')) ~ ')') -%}
{%- endmacro %}
