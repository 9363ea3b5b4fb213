{#
  Month-keyed incremental models (decision 11 in docs/data_dictionary.md).

  A treatment file for reporting month S restates S-11..S, so a build recomputes only
  the months from the earliest new file's S-11 onwards: every treatment submission
  loaded since the previous build (a resubmission has a new id and the same month,
  so it is covered too). Earlier months are final and kept. Everything is recomputed
  when the build's fingerprint changes: the reporting codes (seeds), a key rotation
  (every person_id changes), or the model's own SQL.

  Each row carries the state of the build that wrote it (`built_through_submission_id`,
  `build_fingerprint`); the latest month's rows are rewritten by every build that has
  anything to do, so they hold the previous build's state.
#}

{#- The first month any treatment file describes (S-11 of the earliest). -#}
{% macro treatment_first_month() -%}
    (select {{ add_months('min(period_start)', -11) }}
     from {{ ref('stg_raw__submissions') }}
     where feed = 'treatment')
{%- endmacro %}

{#- The newest current treatment submission: what this build has read. -#}
{% macro treatment_built_through() -%}
    (select max(submission_id) from {{ ref('stg_raw__submissions') }} where feed = 'treatment')
{%- endmacro %}

{#- The checksum of the model's own SQL (empty where dbt renders without a model, e.g. an operation):
    an incremental model whose rows carry it rebuilds them when its SQL changes. -#}
{% macro model_sql_checksum() -%}
    {{- model.checksum.checksum if model is mapping and model.checksum is defined else '' -}}
{%- endmacro %}

{#- What, besides new files, changes every row: the model's SQL, a key rotation (every person_id
    changes) and, for the month-keyed models, the reporting codes. -#}
{% macro treatment_build_fingerprint(reporting_codes=true) -%}
    (select md5(
        '{{ model_sql_checksum() }}'
        || '|' || (select count(*) from {{ source('ops', 'key_rotations') }})::text
        {%- if reporting_codes %}
        || '|' || coalesce((
            select string_agg(codes::text, ';' order by codes::text)
            from {{ ref('int_areas__reporting_codes') }} as codes
        ), '')
        {%- endif %}
    ))
{%- endmacro %}

{#- The first month this build recomputes; NULL when there is nothing new. -#}
{% macro treatment_rebuild_from(relation) -%}
    (select
        case
            when previous.build_fingerprint is distinct from {{ treatment_build_fingerprint() }}
                then {{ treatment_first_month() }}
            else (
                select {{ add_months('min(period_start)', -11) }}
                from {{ ref('stg_raw__submissions') }}
                where feed = 'treatment'
                    and submission_id > previous.built_through_submission_id
            )
        end
     from (select 1) as anchor
     left join lateral (
        select build_fingerprint, built_through_submission_id
        from {{ relation }}
        where month = (select max(month) from {{ relation }})
        limit 1
     ) as previous on true)
{%- endmacro %}

{#- The first month this build computes: all of them on a first build or --full-refresh. -#}
{% macro treatment_months_from() -%}
    {%- if is_incremental() -%}
        {{ treatment_rebuild_from(this) }}
    {%- else -%}
        {{ treatment_first_month() }}
    {%- endif -%}
{%- endmacro %}

{#- The state columns every row of a month-keyed incremental model carries. -#}
{% macro treatment_build_state() -%}
    {{ treatment_built_through() }} as built_through_submission_id,
    {{ treatment_build_fingerprint() }} as build_fingerprint
{%- endmacro %}

{#- Config of a model rebuilt from `treatment_rebuild_from` onwards. -#}
{% macro treatment_month_increments() -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'treatment_months',
        'on_schema_change': 'fail',
        'indexes': [{'columns': ['month']}],
    }) }}
{%- endmacro %}

{#
  Incremental strategy `treatment_months`: delete the months from `treatment_rebuild_from`
  onwards (read before the delete, so from the previous build's state), insert the new
  rows. Unlike delete+insert, a month in range that no longer has rows is emptied too.
#}
{% macro get_incremental_treatment_months_sql(arg_dict) %}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where month >= {{ treatment_rebuild_from(target) }};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
{% endmacro %}
