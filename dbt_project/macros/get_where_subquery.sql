{#-
  Tests of the treatment rows read what the last build has not read yet (bench/RESULTS.md §2).

  A test's `where` may name one of these placeholders; each becomes a condition on submission_id
  with the newest treatment submission the last build read as a literal, fetched when the test
  runs (a literal, so the planner reads raw by its key instead of scanning every version):
  - `__new_treatment_rows__`: the rows of the submissions loaded since;
  - `__new_treatment_months__`: the rows of every current submission for a reporting month that
    one of those restates (a key repeated across two files of one month is caught there).
  The last build's state is `int_treatment__latest_episode_versions`: a build runs the staging
  tests before that model and skips it when they fail, so what it has read has been tested.
  Otherwise dbt's default__get_where_subquery.
-#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where') or '' -%}
    {%- if '__new_treatment_' in where -%}
        {%- set read_through = treatment_tested_through() -%}
        {%- set where = where
            | replace('__new_treatment_rows__', 'submission_id > ' ~ read_through)
            | replace('__new_treatment_months__', treatment_months_restated_since(read_through)) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}


{#- The newest treatment submission the last build read; 0 before the first build. -#}
{% macro treatment_tested_through() -%}
    {%- if not execute -%}{{ return(0) }}{%- endif -%}
    {%- set relation = adapter.get_relation(
        database=target.database, schema='intermediate', identifier='int_treatment__latest_episode_versions'
    ) -%}
    {%- if relation is none -%}{{ return(0) }}{%- endif -%}
    {%- set result = run_query('select coalesce(max(built_through_submission_id), 0) from ' ~ relation) -%}
    {{ return(result.columns[0].values()[0] | int) }}
{%- endmacro %}


{#- The current treatment submissions of every reporting month a submission after `read_through` restates. -#}
{% macro treatment_months_restated_since(read_through) -%}
    submission_id = any (array(
        select submission_id
        from {{ source('raw', 'submissions') }}
        where feed = 'treatment'
            and period_start in (
                select period_start from {{ source('raw', 'submissions') }}
                where feed = 'treatment' and submission_id > {{ read_through }}
            )
    ))
{%- endmacro %}
