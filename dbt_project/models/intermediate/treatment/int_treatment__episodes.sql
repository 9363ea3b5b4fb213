-- One row per treatment episode (provider_code, episode_id) as in its latest
-- version: the one from the latest reporting month that holds it (decision 2),
-- so an episode that ages out of the 12-month restatement keeps its last form.
-- Adds the person (pseudonym, or an unlinkable id of its own for XX initials),
-- the outcome flags and the person-level look-ups T2 and T4 need (decision 3:
-- across every area the warehouse holds).

-- each episode in its latest version, kept incrementally (decision 13)
with latest_versions as (
    select
        treatment_episode_id,
        provider_code,
        episode_id,
        coalesce(person_key, 'unlinked:' || treatment_episode_id) as person_id,
        person_key is not null as is_linkable,
        area_code,
        age_at_referral,
        sex,
        ethnicity,
        service_type,
        substance_group,
        case substance_group
            when 'opiate' then 'opiate'
            when 'alcohol_only' then 'alcohol'
            else 'non_opiate'
        end as kpi_group,
        primary_substance,
        injecting_status,
        referral_source,
        referral_date,
        triage_date,
        first_intervention_date,
        modality,
        discharge_date,
        discharge_reason,
        top_start_days_used,
        top_review_days_used,
        housing_problem,
        coalesce(discharge_reason in (
            'completed_drug_free', 'completed_alcohol_free', 'completed_occasional_user'
        ), false) as is_successful_completion,
        coalesce(discharge_reason like 'transferred%', false) as is_transfer,
        first_intervention_date is not null
            and (discharge_date is null or discharge_date >= first_intervention_date)
            as has_structured_treatment,
        latest_submission_id,
        latest_submission_month,
        first_submission_month,
        version_count
    from {{ ref('int_treatment__latest_episode_versions') }}
),

-- T2: another episode of the same person in structured treatment on the day
-- before this one's first intervention
continuing_treatment as (
    select distinct episode.treatment_episode_id
    from latest_versions as episode
    inner join latest_versions as other_episode
        on other_episode.person_id = episode.person_id
        and other_episode.treatment_episode_id <> episode.treatment_episode_id
    where episode.first_intervention_date is not null
        and other_episode.has_structured_treatment
        and other_episode.first_intervention_date <= episode.first_intervention_date - 1
        and (other_episode.discharge_date is null
            or other_episode.discharge_date >= episode.first_intervention_date - 1)
),

-- T4: a referral of the same person strictly after a successful discharge and no
-- later than six calendar months after it, clipped to the month's end (decision 8)
re_presentations as (
    select distinct completion.treatment_episode_id
    from latest_versions as completion
    inner join latest_versions as later_episode
        on later_episode.person_id = completion.person_id
        and later_episode.treatment_episode_id <> completion.treatment_episode_id
    where completion.is_successful_completion
        and later_episode.referral_date > completion.discharge_date
        and later_episode.referral_date <= {{ add_months('completion.discharge_date', 6) }}
)

select
    latest_versions.*,
    latest_versions.first_intervention_date - latest_versions.referral_date as wait_days,
    latest_versions.triage_date - latest_versions.referral_date as referral_to_triage_days,
    latest_versions.first_intervention_date is not null
        and continuing_treatment.treatment_episode_id is null as is_new_presentation,
    latest_versions.discharge_date is not null
        and latest_versions.first_intervention_date is not null
        and latest_versions.discharge_date between latest_versions.first_intervention_date
            and latest_versions.first_intervention_date + 84
        and not latest_versions.is_successful_completion
        and not latest_versions.is_transfer as is_early_unplanned_exit,
    case
        when latest_versions.is_successful_completion
            then re_presentations.treatment_episode_id is not null
    end as is_re_presented_within_6_months,
    {{ month_of('latest_versions.referral_date') }} as referral_month,
    {{ month_of('latest_versions.first_intervention_date') }} as first_intervention_month,
    {{ month_of('latest_versions.discharge_date') }} as discharge_month
from latest_versions
left join continuing_treatment
    on continuing_treatment.treatment_episode_id = latest_versions.treatment_episode_id
left join re_presentations
    on re_presentations.treatment_episode_id = latest_versions.treatment_episode_id
