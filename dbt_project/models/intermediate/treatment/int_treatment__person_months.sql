-- One row per person, area and month in which the person had an episode of
-- that area in structured treatment on at least one day of the month, over the
-- months the loaded files can describe (first reporting month - 11 to the
-- latest). Attributes that describe the person (substance group, TOP progress)
-- come from their deciding episode across all areas (decisions 3, 5, 10).
-- Incremental on the month: a build recomputes the months new files restate
-- (decision 11, macros/incremental_months.sql).
{{ config(**treatment_month_increments()) }}

with episodes as (
    select * from {{ ref('int_treatment__episodes') }}
    where has_structured_treatment
),

reporting_codes as (
    select * from {{ ref('int_areas__reporting_codes') }}
),

horizon as (
    select
        {{ treatment_months_from() }} as first_month,
        max(period_start) as last_month,
        {{ treatment_build_state() }}
    from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
),

-- each episode in each month it is in treatment (the columns read below: this is
-- sorted twice); months from the calendar, whose join the planner estimates, where
-- generate_series counted 1,000 rows an episode and spilled every sort and hash to disk
episode_months as (
    select
        episodes.person_id,
        episodes.area_code,
        episodes.service_type,
        episodes.substance_group,
        episodes.kpi_group,
        episodes.top_start_days_used,
        episodes.top_review_days_used,
        episodes.is_new_presentation,
        episodes.is_successful_completion,
        episodes.first_intervention_month,
        episodes.discharge_month,
        episodes.referral_date,
        episodes.first_intervention_date,
        episodes.provider_code,
        episodes.episode_id,
        months.month
    from episodes
    inner join horizon
        on horizon.first_month is not null
        and coalesce(episodes.discharge_month, horizon.last_month) >= horizon.first_month
    inner join {{ ref('int_calendar__months') }} as months
        on months.month between greatest(episodes.first_intervention_month, horizon.first_month)
        and least(coalesce(episodes.discharge_month, horizon.last_month), horizon.last_month)
),

deciding_substance as (
    select distinct on (person_id, month)
        person_id,
        month,
        substance_group,
        kpi_group
    from episode_months
    order by person_id, month, {{ deciding_episode_order() }}
),

-- T6: review 0, or at most half of a start above 0 (decision 10)
deciding_top as (
    select distinct on (person_id, month)
        person_id,
        month,
        top_review_days_used = 0
            or (top_start_days_used > 0 and top_review_days_used <= top_start_days_used / 2.0)
            as is_top_progress
    from episode_months
    where top_start_days_used is not null and top_review_days_used is not null
    order by person_id, month, {{ deciding_episode_order() }}
),

person_area_months as (
    select
        episode_months.person_id,
        reporting_codes.reporting_area_code as area_code,
        episode_months.month,
        count(*) as episode_count,
        bool_or(episode_months.service_type = 'adult') as has_adult_episode,
        bool_or(episode_months.service_type = 'young_people') as has_young_people_episode,
        bool_or(episode_months.top_start_days_used is not null
            and episode_months.top_review_days_used is not null) as has_top_pair,
        bool_or(episode_months.is_new_presentation
            and episode_months.first_intervention_month = episode_months.month) as has_new_presentation,
        bool_or(episode_months.is_successful_completion
            and episode_months.discharge_month = episode_months.month) as has_successful_completion,
        coalesce(bool_or(episode_months.discharge_month = episode_months.month), false) as has_discharge
    from episode_months
    inner join reporting_codes
        on reporting_codes.area_code = episode_months.area_code
        and episode_months.month between reporting_codes.from_month and reporting_codes.to_month
    group by episode_months.person_id, reporting_codes.reporting_area_code, episode_months.month
)

select
    person_area_months.person_id || '|' || person_area_months.area_code
        || '|' || to_char(person_area_months.month, 'YYYY-MM') as person_month_id,
    person_area_months.person_id,
    person_area_months.area_code,
    person_area_months.month,
    person_area_months.episode_count,
    person_area_months.has_adult_episode,
    person_area_months.has_young_people_episode,
    deciding_substance.substance_group,
    deciding_substance.kpi_group,
    person_area_months.has_top_pair,
    deciding_top.is_top_progress,
    person_area_months.has_new_presentation,
    person_area_months.has_successful_completion,
    person_area_months.has_discharge,
    horizon.built_through_submission_id,
    horizon.build_fingerprint
from person_area_months
cross join horizon
inner join deciding_substance
    on deciding_substance.person_id = person_area_months.person_id
    and deciding_substance.month = person_area_months.month
left join deciding_top
    on deciding_top.person_id = person_area_months.person_id
    and deciding_top.month = person_area_months.month
