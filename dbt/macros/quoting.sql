{#-
  Quoting helpers shared by the package's macros.

  Every value that reaches SQL text goes through one of these, because a model's
  config (a partition value, a column name) is data and must not be able to
  change the statement around it.  The other macros call them qualified as
  pg_idempotent.<name>: dbt resolves an unqualified macro name against the
  calling model's project, not this package.
-#}


{#-
  quote_literal(value) -> a SQL string literal for str(value).

  Single quotes are doubled.  A value holding a backslash is written E'...'
  with the backslashes doubled too, as PostgreSQL's own quote_literal() does,
  so the literal means the same thing whatever standard_conforming_strings is.
-#}
{% macro quote_literal(value) -%}
  {%- set text = value | string -%}
  {%- if '\\' in text -%}
    {%- do return("E'" ~ (text | replace('\\', '\\\\') | replace("'", "''")) ~ "'") -%}
  {%- else -%}
    {%- do return("'" ~ (text | replace("'", "''")) ~ "'") -%}
  {%- endif -%}
{%- endmacro %}


{#-
  quote_ident(name) -> a double-quoted SQL identifier, embedded double quotes
  doubled.  (dbt-postgres's adapter.quote() wraps a name in quotes without
  doubling the ones inside it, so it is not used here.)
-#}
{% macro quote_ident(name) -%}
  {%- do return('"' ~ (name | string | replace('"', '""')) ~ '"') -%}
{%- endmacro %}


{#-
  regclass(relation) -> '<relation as dbt renders it>'::regclass

  dbt renders a relation as its quoted parts, e.g. "analytics"."orders" (or
  "db"."analytics"."orders", which regclass accepts for the current database;
  a postgres temp relation has no schema and renders as "orders__dbt_tmp...").
  That text becomes a string literal, so a quote in a name cannot end it early.
-#}
{% macro regclass(relation) -%}
  {%- do return(pg_idempotent.quote_literal(relation | string) ~ '::regclass') -%}
{%- endmacro %}


{#-
  function_name(name) -> name, or "schema".name when the project sets
  var('pg_idempotent_schema'), so calls need not rely on the search_path.
-#}
{% macro function_name(name) -%}
  {%- set schema = var('pg_idempotent_schema', none) -%}
  {%- if schema -%}
    {%- do return(pg_idempotent.quote_ident(schema) ~ '.' ~ name) -%}
  {%- else -%}
    {%- do return(name) -%}
  {%- endif -%}
{%- endmacro %}


{#-
  text_array(names) -> ARRAY['a', 'b']::text[] from a list (or one string).
  Used for column-name arguments such as idempotent_upsert's key, which take
  names as data, not as identifiers.
-#}
{% macro text_array(names) -%}
  {%- set items = [names] if names is string else names -%}
  {%- set literals = [] -%}
  {%- for n in items -%}
    {%- do literals.append(pg_idempotent.quote_literal(n)) -%}
  {%- endfor -%}
  {%- do return('ARRAY[' ~ (literals | join(', ')) ~ ']::text[]') -%}
{%- endmacro %}


{#-
  sql_value(value, data_type=none, what='value') -> a SQL expression for a
  config value: numbers as numbers, true/false as booleans, dates and
  timestamps as their ISO text, anything else as a string literal; wrapped in
  CAST(... AS data_type) when a type is given.  Without a type a string is
  written '...'::text, and the extension casts it to the column's type
  (replace_partition does: API.md section 3).  The ::text is needed: the
  functions take anyelement, and PostgreSQL cannot resolve anyelement from an
  untyped literal ("could not determine polymorphic type").  NULL is refused:
  no function here takes one.

  data_type is SQL text (it cannot be quoted as a literal), so it must look
  like a type name: letters, digits, _, spaces, dots, double quotes, an
  optional (precision) and [].
-#}
{% macro sql_value(value, data_type=none, what='value') -%}
  {%- if value is none -%}
    {%- do exceptions.raise_compiler_error('pg_idempotent: ' ~ what ~ ' is missing (null)') -%}
  {%- elif value is sameas true or value is sameas false -%}
    {%- set expr = 'true' if value else 'false' -%}
  {%- elif value is number -%}
    {%- set expr = value | string -%}
  {%- elif value.isoformat is defined -%}
    {%- set expr = pg_idempotent.quote_literal(value.isoformat()) -%}
  {%- else -%}
    {%- set expr = pg_idempotent.quote_literal(value) -%}
  {%- endif -%}
  {%- if expr.startswith("'") or expr.startswith("E'") -%}
    {%- set expr = expr if data_type else expr ~ '::text' -%}
  {%- endif -%}
  {%- if data_type -%}
    {%- if not modules.re.match('^[A-Za-z_"][A-Za-z0-9_ ."]*(\\([0-9, ]*\\))?(\\[\\])?$', data_type) -%}
      {%- do exceptions.raise_compiler_error('pg_idempotent: data_type ' ~ data_type ~ ' of ' ~ what ~ ' is not a type name') -%}
    {%- endif -%}
    {%- set expr = 'CAST(' ~ expr ~ ' AS ' ~ data_type ~ ')' -%}
  {%- endif -%}
  {%- do return(expr) -%}
{%- endmacro %}
