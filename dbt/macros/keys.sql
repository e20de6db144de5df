{#-
  generate_idempotent_key(columns) -> idempotent_key("col1", "col2", ...)

  A deterministic uuid from the named columns (docs/keys-and-fingerprints.md, "idempotent_key"):
  the same values give the same key in every session and on every run, so it
  can be a model's unique_key, or a generated column's expression.

    select {{ pg_idempotent.generate_idempotent_key(['event_id', 'event_date']) }} as id, ...

  columns: a list of column names (or one name).  Each is quoted as an
  identifier, so names with capitals, spaces or quotes work; expressions do not
  (compute them in the model first).
-#}
{% macro generate_idempotent_key(columns) -%}
  {%- set names = [columns] if columns is string else columns -%}
  {%- if not names -%}
    {%- do exceptions.raise_compiler_error('pg_idempotent: generate_idempotent_key needs at least one column') -%}
  {%- endif -%}
  {%- set quoted = [] -%}
  {%- for name in names -%}
    {%- do quoted.append(pg_idempotent.quote_ident(name)) -%}
  {%- endfor -%}
  {%- do return(pg_idempotent.function_name('idempotent_key') ~ '(' ~ (quoted | join(', ')) ~ ')') -%}
{%- endmacro %}
