{#-
  set_run_time(timestamp=none) -> a statement that sets pg_idempotent.run_time
  for the session:

    SELECT pg_catalog.set_config('pg_idempotent.run_time', '2025-01-15T02:00:00.123456+00:00', false)

  Use it as a pre-hook, so run_time() (API.md section 7) is the run's start,
  the same on every retry of that run, where now() would differ:

    {{ config(pre_hook="{{ pg_idempotent.set_run_time() }}") }}
    select ..., run_time() as loaded_at from ...

  The time is, in order: `timestamp` if given; else var('pg_idempotent_run_time')
  if the project or command line sets it; else dbt's run_started_at.  A
  datetime or ISO 8601 text.  run_started_at is fixed for one dbt invocation
  only: `dbt retry` or a scheduler's retry is a new invocation with a new
  run_started_at, so an orchestrator should pass its logical time
  (--vars '{pg_idempotent_run_time: "2025-01-15T00:00:00+00:00"}', Airflow's
  ts) to make those retries write the same values.  A datetime is written as
  ISO 8601 with its UTC offset so the value does not depend on the server's
  TimeZone.  A datetime without a zone is taken as
  UTC, which is what run_started_at is.  The setting is session-level (third
  argument false) so that it lasts past the pre-hook's transaction, for the
  model's own statements on the same connection.
-#}
{% macro set_run_time(timestamp=none) -%}
  {%- do return("SELECT pg_catalog.set_config('pg_idempotent.run_time', "
                ~ pg_idempotent.quote_literal(pg_idempotent.run_time_text(timestamp)) ~ ", false)") -%}
{%- endmacro %}


{#-
  run_time_text(timestamp=none) -> the run's time as ISO 8601 text, chosen
  as set_run_time() describes (timestamp, else var('pg_idempotent_run_time'),
  else run_started_at); what set_run_time() sets and what the
  idempotent_history strategy passes as as_of.
-#}
{% macro run_time_text(timestamp=none) -%}
  {%- set ts = timestamp if timestamp is not none else var('pg_idempotent_run_time', none) -%}
  {%- set ts = run_started_at if ts is none else ts -%}
  {%- if ts is string -%}
    {%- do return(ts) -%}
  {%- endif -%}
  {%- if ts.tzinfo is none -%}
    {%- set ts = ts.replace(tzinfo=modules.datetime.timezone.utc) -%}
  {%- endif -%}
  {%- do return(ts.isoformat()) -%}
{%- endmacro %}
