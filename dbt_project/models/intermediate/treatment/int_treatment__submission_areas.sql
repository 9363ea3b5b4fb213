-- One row per current treatment submission, area code and reporting month its
-- rows hold, with the dates they span: what the calendar, the reporting codes
-- and the area-months need of every file, without reading its rows again.
-- Incremental on the submission (decision 12): a loaded file never changes, so a
-- build reads only the rows of current submissions not yet summarised by this
-- SQL, and drops the rows of submissions a restatement has replaced.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='submission_id',
    on_schema_change='fail',
    post_hook="delete from {{ this }} where submission_id not in (select submission_id from {{ ref('stg_raw__submissions') }} where feed = 'treatment')",
) }}

{%- set fingerprint = model_sql_checksum() | trim %}

with new_submissions as (
    select submission_id
    from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
    {%- if is_incremental() %}
        and submission_id not in (
            select submission_id from {{ this }} where build_fingerprint = '{{ fingerprint }}'
        )
    {%- endif %}
),

-- `= any (array(...))`: the new submissions' rows by raw's key, not a scan of all history
versions as (
    select * from {{ ref('stg_treatment__episode_versions') }}
    where submission_id = any (array(select submission_id from new_submissions))
)

select
    submission_id::text || '|' || area_code || '|' || to_char(submission_month, 'YYYY-MM') as submission_area_id,
    submission_id,
    area_code,
    submission_month,
    min(least(referral_date, triage_date, first_intervention_date, discharge_date)) as first_date,
    max(greatest(submission_month, referral_date, triage_date, first_intervention_date, discharge_date)) as last_date,
    count(*) as episode_row_count,
    '{{ fingerprint }}'::text as build_fingerprint
from versions
group by submission_id, area_code, submission_month
