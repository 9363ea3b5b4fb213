-- Periodic snapshot: one row per person, area and month in which the person had
-- an episode of that area in structured treatment on at least one day (the
-- building block of T1, T6 and caseload views).
select
    person_month_id,
    person_id,
    area_code as area_id,
    month as month_id,
    episode_count,
    has_adult_episode,
    has_young_people_episode,
    substance_group as substance_id,
    kpi_group,
    has_top_pair,
    is_top_progress,
    has_new_presentation,
    has_successful_completion,
    has_discharge
from {{ ref('int_treatment__person_months') }}
