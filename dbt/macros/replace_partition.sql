{#-
  Incremental strategy `replace_partition`: the model's rows replace one slice
  of the table, and nothing outside the slice changes (API.md section 3).

    {{ config(materialized='incremental', incremental_strategy='replace_partition',
              partition_by={'column': 'order_date', 'value': var('ds')},
              replace_mode='auto',      -- optional: auto | diff | swap | delete_insert
              allow_empty=false) }}     -- optional

  or, for a half-open range [lower, upper):

              partition_by={'column': 'order_date', 'lower': var('start'), 'upper': var('end')}

  partition_by keys:
    column     the slice column ('field' is accepted too, as BigQuery spells it)
    value      one slice value             -> replace_partition(...)
    lower, upper  a range [lower, upper)   -> replace_partition_range(...)
    data_type  optional: cast the value(s), e.g. 'date'.  Without it a string
               value is passed as text and the function casts it to the
               column's type.

  Renders
    SELECT * FROM replace_partition('<target>'::regclass, '<temp>'::regclass,
        '<column>', <value>, mode => '<mode>', allow_empty => <bool>)

  unique_key and dest_columns are not used (the slice is replaced as a whole,
  columns matched by name); incremental_predicates are refused, since the slice
  is what partition_by says.
-#}
{% macro get_incremental_replace_partition_sql(arg_dict) -%}
  {%- if arg_dict.get('incremental_predicates') -%}
    {%- do exceptions.raise_compiler_error(
          "pg_idempotent: incremental strategy 'replace_partition' does not support incremental_predicates; the slice is given by partition_by") -%}
  {%- endif -%}
  {%- set partition_by = config.get('partition_by') -%}
  {%- if partition_by is not mapping -%}
    {%- do exceptions.raise_compiler_error(
          "pg_idempotent: incremental strategy 'replace_partition' needs config partition_by={'column': ..., 'value': ...} (or 'lower' and 'upper')") -%}
  {%- endif -%}
  {%- set column = partition_by.get('column') or partition_by.get('field') -%}
  {%- if not column -%}
    {%- do exceptions.raise_compiler_error("pg_idempotent: partition_by has no 'column'") -%}
  {%- endif -%}
  {%- set data_type = partition_by.get('data_type') -%}
  {%- set has_value = 'value' in partition_by -%}
  {%- set has_range = 'lower' in partition_by or 'upper' in partition_by -%}
  {%- if has_value == has_range -%}
    {%- do exceptions.raise_compiler_error(
          "pg_idempotent: partition_by needs either 'value' or both 'lower' and 'upper'") -%}
  {%- endif -%}

  {%- set args = [pg_idempotent.regclass(arg_dict['target_relation']),
                  pg_idempotent.regclass(arg_dict['temp_relation']),
                  pg_idempotent.quote_literal(column)] -%}
  {%- if has_value -%}
    {%- set fn = 'replace_partition' -%}
    {%- do args.append(pg_idempotent.sql_value(partition_by['value'], data_type, 'partition_by value')) -%}
  {%- else -%}
    {%- set fn = 'replace_partition_range' -%}
    {%- do args.append(pg_idempotent.sql_value(partition_by.get('lower'), data_type, 'partition_by lower')) -%}
    {%- do args.append(pg_idempotent.sql_value(partition_by.get('upper'), data_type, 'partition_by upper')) -%}
  {%- endif -%}
  {%- do args.append('mode => ' ~ pg_idempotent.quote_literal(config.get('replace_mode', 'auto'))) -%}
  {%- set allow_empty = config.get('allow_empty', false) -%}
  {%- if allow_empty is not sameas true and allow_empty is not sameas false -%}
    {#- a string 'false' would be truthy: insist on a real boolean -#}
    {%- do exceptions.raise_compiler_error('pg_idempotent: allow_empty must be true or false') -%}
  {%- endif -%}
  {%- do args.append('allow_empty => ' ~ pg_idempotent.sql_value(allow_empty)) -%}
  {%- do return('SELECT * FROM ' ~ pg_idempotent.function_name(fn)
                ~ '(' ~ (args | join(', ')) ~ ')') -%}
{%- endmacro %}
