-- One row per treatment episode as in its latest version: the one from the
-- latest reporting month whose current submission holds it (decision 2), with
-- the first such month and how many months hold it.
-- Incremental on the episode (decision 13): a build reads only the rows of the
-- files loaded since the last one and merges them into their episodes' rows.
-- The episodes of a file a restatement replaced are read again from every
-- current version (a restatement holds every record of the file it replaces:
-- the loader refuses one that leaves any out), and every episode is read again
-- when the key rotates or this SQL changes.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='treatment_episode_id',
    on_schema_change='fail',
) }}

{%- set version_columns = [
    'provider_code', 'episode_id', 'person_key', 'area_code', 'age_at_referral', 'sex', 'ethnicity',
    'service_type', 'substance_group', 'primary_substance', 'injecting_status', 'referral_source',
    'referral_date', 'triage_date', 'first_intervention_date', 'modality', 'discharge_date',
    'discharge_reason', 'top_start_days_used', 'top_review_days_used', 'housing_problem',
] %}

with build as (
    select
        {{ treatment_built_through() }} as built_through_submission_id,
        {{ treatment_build_fingerprint(reporting_codes=false) }} as build_fingerprint
),

current_submissions as (
    select submission_id, source_code, period_start
    from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
),

{% if is_incremental() %}

previous as (
    select
        coalesce(max(built_through_submission_id), 0) as built_through_submission_id,
        coalesce(bool_or(build_fingerprint <> (select build_fingerprint from build)), false) as is_rebuilt
    from {{ this }}
),

new_submissions as (
    select current_submissions.submission_id
    from current_submissions
    inner join previous on current_submissions.submission_id > previous.built_through_submission_id
),

-- current at the last build and replaced since by a restatement
loaded_submissions as (
    select submission_id, source_code, period_start
    from {{ source('raw', 'submissions') }}
    where feed = 'treatment' and status = 'loaded'
),

replaced_submissions as (
    select loaded_submissions.submission_id
    from loaded_submissions
    inner join previous on loaded_submissions.submission_id <= previous.built_through_submission_id
    where loaded_submissions.submission_id not in (select submission_id from current_submissions)
        and not exists (
            select 1
            from loaded_submissions as later
            where later.source_code = loaded_submissions.source_code
                and later.period_start = loaded_submissions.period_start
                and later.submission_id > loaded_submissions.submission_id
                and later.submission_id <= previous.built_through_submission_id
        )
),

-- episodes read again from every current version; `= any (array(...))` reads
-- raw by its key, and nothing at all when no file was replaced
reread_episodes as (
    select distinct provider_code || ':' || episode_id as treatment_episode_id
    from {{ source('raw', 'treatment_episodes') }}
    where submission_id = any (array(select submission_id from replaced_submissions))
),

-- read twice below: not materialized, so neither read copies the versions to disk
versions_read as not materialized (
    -- every current version of the episodes read again (all of them after a key rotation or new SQL)
    select versions.*, true as is_reread
    from {{ ref('stg_treatment__episode_versions') }} as versions
    where (select is_rebuilt from previous)
    union all
    select versions.*, true
    from {{ ref('stg_treatment__episode_versions') }} as versions
    where not (select is_rebuilt from previous)
        and exists (select 1 from replaced_submissions)
        and versions.treatment_episode_id in (select treatment_episode_id from reread_episodes)
    union all
    -- the new files' versions of every other episode, merged with its row below
    select versions.*, false
    from {{ ref('stg_treatment__episode_versions') }} as versions
    where versions.submission_id = any (array(select submission_id from new_submissions))
        and not (select is_rebuilt from previous)
        and versions.treatment_episode_id not in (select treatment_episode_id from reread_episodes)
),

{% else %}

versions_read as not materialized (
    select *, true as is_reread from {{ ref('stg_treatment__episode_versions') }}
),

{% endif %}

-- an episode's latest version is the one of its latest month: found by
-- aggregating narrow keys instead of sorting every version whole
version_months as (
    select
        treatment_episode_id,
        max(submission_month) as latest_submission_month,
        min(submission_month) as first_submission_month,
        count(*) as version_count,
        bool_and(is_reread) as is_reread
    from versions_read
    group by treatment_episode_id
),

latest_read as (
    select
        versions_read.treatment_episode_id,
        {% for column in version_columns %}versions_read.{{ column }},{% endfor %}
        versions_read.submission_id as latest_submission_id,
        versions_read.submission_month as latest_submission_month,
        version_months.first_submission_month,
        version_months.version_count
    from versions_read
    inner join version_months
        on version_months.treatment_episode_id = versions_read.treatment_episode_id
        and version_months.latest_submission_month = versions_read.submission_month
),

-- with an episode's row so far, the later month's version stands and the months
-- add up (an episode has one version a month)
candidates as (
    select * from latest_read
    {% if is_incremental() %}
    union all
    select
        treatment_episode_id,
        {% for column in version_columns %}{{ column }},{% endfor %}
        latest_submission_id,
        latest_submission_month,
        first_submission_month,
        version_count
    from {{ this }}
    where treatment_episode_id in (select treatment_episode_id from version_months where not is_reread)
    {% endif %}
)

{% if is_incremental() %}
select distinct on (treatment_episode_id)
    treatment_episode_id,
    {% for column in version_columns %}{{ column }},{% endfor %}
    latest_submission_id,
    latest_submission_month,
    min(first_submission_month) over episode as first_submission_month,
    (sum(version_count) over episode)::bigint as version_count,
    build.built_through_submission_id,
    build.build_fingerprint
from candidates
cross join build
window episode as (partition by treatment_episode_id)
order by treatment_episode_id, latest_submission_month desc
{% else %}
-- a first build read every version: one row per episode already
select candidates.*, build.built_through_submission_id, build.build_fingerprint
from candidates
cross join build
{% endif %}
