-- Treatment episode rows of the current submissions only: one version of an
-- episode per reporting month that holds it. The plain attributor never comes
-- here: the transformer cannot read initials or date of birth; the loader keeps
-- the age at referral in raw so the date of birth can be purged after retention.
with current_submissions as (
    select submission_id
    from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
),

episode_rows as (
    select
        submission_id, source_row, submission_month, provider_code, episode_id, person_key,
        area_code, age_at_referral, client_sex, ethnicity, service_type, substance_group,
        primary_substance, injecting_status, referral_source, referral_date, triage_date,
        first_intervention_date, modality, discharge_date, discharge_reason,
        top_start_days_used, top_review_days_used, housing_problem
    from {{ source('raw', 'treatment_episodes') }}
)

select
    episode_rows.submission_id::text || '-' || episode_rows.source_row::text as episode_version_id,
    episode_rows.provider_code || ':' || episode_rows.episode_id as treatment_episode_id,
    episode_rows.submission_id,
    episode_rows.source_row,
    episode_rows.submission_month,
    episode_rows.provider_code,
    episode_rows.episode_id,
    episode_rows.person_key,
    episode_rows.area_code,
    episode_rows.age_at_referral,
    episode_rows.client_sex as sex,
    episode_rows.ethnicity,
    episode_rows.service_type,
    episode_rows.substance_group,
    episode_rows.primary_substance,
    episode_rows.injecting_status,
    episode_rows.referral_source,
    episode_rows.referral_date,
    episode_rows.triage_date,
    episode_rows.first_intervention_date,
    episode_rows.modality,
    episode_rows.discharge_date,
    episode_rows.discharge_reason,
    episode_rows.top_start_days_used,
    episode_rows.top_review_days_used,
    episode_rows.housing_problem
from episode_rows
inner join current_submissions
    on current_submissions.submission_id = episode_rows.submission_id
