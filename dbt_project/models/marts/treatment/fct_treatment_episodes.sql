-- Accumulating snapshot of treatment episodes: one row per episode in its
-- latest version, milestone dates from referral to discharge, waits and TOP,
-- keys to the dimensions. Carries the pseudonymous person_id only: no initials
-- or date of birth (age is kept as a band).
with episodes as (
    select * from {{ ref('int_treatment__episodes') }}
),

age_bands as (
    select * from {{ ref('dim_age_band') }}
)

select
    episodes.treatment_episode_id,
    episodes.provider_code as provider_id,
    episodes.episode_id,
    episodes.person_id,
    episodes.is_linkable,
    episodes.area_code as area_id,
    episodes.sex as sex_id,
    episodes.ethnicity as ethnicity_id,
    age_bands.age_band_id,
    episodes.service_type as service_type_id,
    episodes.substance_group as substance_id,
    episodes.kpi_group,
    episodes.primary_substance,
    episodes.injecting_status,
    episodes.referral_source as referral_source_id,
    episodes.modality as modality_id,
    episodes.discharge_reason as discharge_reason_id,
    episodes.housing_problem,
    episodes.referral_date,
    episodes.triage_date,
    episodes.first_intervention_date,
    episodes.discharge_date,
    episodes.referral_month,
    episodes.first_intervention_month,
    episodes.discharge_month,
    episodes.referral_to_triage_days,
    episodes.wait_days,
    case when episodes.has_structured_treatment
        then coalesce(episodes.discharge_date, episodes.latest_submission_month + interval '1 month' - interval '1 day')::date
            - episodes.first_intervention_date + 1
    end as days_in_structured_treatment,
    episodes.top_start_days_used,
    episodes.top_review_days_used,
    episodes.has_structured_treatment,
    episodes.discharge_date is not null as is_discharged,
    episodes.is_successful_completion,
    episodes.is_transfer,
    episodes.is_early_unplanned_exit,
    episodes.is_new_presentation,
    episodes.is_re_presented_within_6_months,
    episodes.latest_submission_id,
    episodes.latest_submission_month,
    episodes.first_submission_month,
    episodes.version_count
from episodes
left join age_bands
    on episodes.age_at_referral between age_bands.min_age and age_bands.max_age
