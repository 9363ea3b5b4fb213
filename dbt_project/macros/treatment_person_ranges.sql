{#-
    For each person and area, the runs of reporting months M in which the person
    counts towards a windowed person KPI, so figures are counted from a few ranges
    per person rather than one row per person per month:
      T1             in structured treatment on a day of the 12 months ending M
                     (breakdowns: all, service type, KPI group of the window)
      T4_denominator T1 over W = the 12 months ending M-6, by KPI group
      T4_numerator   of those, persons with a successful discharge dated in W and
                     no re-presentation within six calendar months (decision 8)
    Non-overlapping within person, area, measure and breakdown.

    Exact for the months from `from_month` (an SQL expression) onwards: only the
    episodes whose ranges reach them are read, so a monthly build that counts its
    last twelve months reads the episodes of those months (and the six before, for
    T4), not all history. Earlier months may be cut short.
    Returns person_id, area_code, measure, breakdown, from_month, to_month.
-#}
{% macro treatment_person_ranges(from_month) -%}
with episodes as (
    select * from {{ ref('int_treatment__episodes') }}
),

reporting_codes as (
    select * from {{ ref('int_areas__reporting_codes') }}
),

horizon as (
    select max(period_start) as last_month
    from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
),

-- months M an episode puts its person in T1 for: from its first intervention's
-- month to 11 months after its discharge month (open: up to the latest month)
episode_t1_ranges as (
    select
        episodes.person_id,
        episodes.area_code,
        episodes.service_type,
        episodes.kpi_group,
        episodes.referral_date,
        episodes.first_intervention_date,
        episodes.provider_code,
        episodes.episode_id,
        episodes.first_intervention_month as from_month,
        least(
            {{ add_months('coalesce(episodes.discharge_month, horizon.last_month)', 11) }},
            horizon.last_month
        ) as to_month
    from episodes
    cross join horizon
    where episodes.has_structured_treatment
        and episodes.first_intervention_month <= horizon.last_month
        -- T4 counts T1 six months back
        and least(
            {{ add_months('coalesce(episodes.discharge_month, horizon.last_month)', 11) }},
            horizon.last_month
        ) >= {{ add_months(from_month, -6) }}
),

-- split at recodes: each piece under the code valid in its months
episode_area_ranges as (
    select
        episode_t1_ranges.person_id,
        reporting_codes.reporting_area_code as area_code,
        episode_t1_ranges.service_type,
        greatest(episode_t1_ranges.from_month, reporting_codes.from_month) as from_month,
        least(episode_t1_ranges.to_month, reporting_codes.to_month) as to_month
    from episode_t1_ranges
    inner join reporting_codes
        on reporting_codes.area_code = episode_t1_ranges.area_code
        and reporting_codes.from_month <= episode_t1_ranges.to_month
        and reporting_codes.to_month >= episode_t1_ranges.from_month
),

t1_pieces as (
    select person_id, area_code, 'all' as breakdown, from_month, to_month
    from episode_area_ranges
    union all
    -- decision 4: a person counts under each service type they have an episode of
    select person_id, area_code, 'service_type=' || service_type, from_month, to_month
    from episode_area_ranges
),

t1_ranges as (
    {{ merge_month_ranges('t1_pieces', ['person_id', 'area_code', 'breakdown']) }}
),

-- the person's KPI group for the window ending M changes only where one of
-- their episodes enters or leaves it: cut there, pick the deciding episode
group_breakpoints as (
    select person_id, from_month as month from episode_t1_ranges
    union
    select person_id, {{ add_months('to_month', 1) }} from episode_t1_ranges
),

group_segments as (
    select
        person_id,
        month as from_month,
        {{ add_months('lead(month) over (partition by person_id order by month)', -1) }} as to_month
    from group_breakpoints
),

segment_groups as (
    select distinct on (group_segments.person_id, group_segments.from_month)
        group_segments.person_id,
        group_segments.from_month,
        group_segments.to_month,
        episode_t1_ranges.kpi_group
    from group_segments
    inner join episode_t1_ranges
        on episode_t1_ranges.person_id = group_segments.person_id
        and episode_t1_ranges.from_month <= group_segments.from_month
        and episode_t1_ranges.to_month >= group_segments.to_month
    order by
        group_segments.person_id,
        group_segments.from_month,
        {{ deciding_episode_order('episode_t1_ranges.') }}
),

t1_group_ranges as (
    select
        t1_ranges.person_id,
        t1_ranges.area_code,
        'kpi_group=' || segment_groups.kpi_group as breakdown,
        greatest(t1_ranges.from_month, segment_groups.from_month) as from_month,
        least(t1_ranges.to_month, segment_groups.to_month) as to_month
    from t1_ranges
    inner join segment_groups
        on segment_groups.person_id = t1_ranges.person_id
        and segment_groups.from_month <= t1_ranges.to_month
        and segment_groups.to_month >= t1_ranges.from_month
    where t1_ranges.breakdown = 'all'
),

t4_denominator_ranges as (
    select
        t1_group_ranges.person_id,
        t1_group_ranges.area_code,
        t1_group_ranges.breakdown,
        {{ add_months('t1_group_ranges.from_month', 6) }} as from_month,
        least({{ add_months('t1_group_ranges.to_month', 6) }}, horizon.last_month) as to_month
    from t1_group_ranges
    cross join horizon
    where {{ add_months('t1_group_ranges.from_month', 6) }} <= horizon.last_month
),

-- a successful discharge in month D is in W for M = D+6 .. D+17
completion_pieces as (
    select
        episodes.person_id,
        {{ add_months('episodes.discharge_month', 6) }} as from_month,
        least({{ add_months('episodes.discharge_month', 17) }}, horizon.last_month) as to_month
    from episodes
    cross join horizon
    where episodes.is_successful_completion
        and not episodes.is_re_presented_within_6_months
        and {{ add_months('episodes.discharge_month', 6) }} <= horizon.last_month
        and least({{ add_months('episodes.discharge_month', 17) }}, horizon.last_month) >= {{ from_month }}
),

completion_ranges as (
    {{ merge_month_ranges('completion_pieces', ['person_id']) }}
),

t4_numerator_ranges as (
    select
        t4_denominator_ranges.person_id,
        t4_denominator_ranges.area_code,
        t4_denominator_ranges.breakdown,
        greatest(t4_denominator_ranges.from_month, completion_ranges.from_month) as from_month,
        least(t4_denominator_ranges.to_month, completion_ranges.to_month) as to_month
    from t4_denominator_ranges
    inner join completion_ranges
        on completion_ranges.person_id = t4_denominator_ranges.person_id
        and completion_ranges.from_month <= t4_denominator_ranges.to_month
        and completion_ranges.to_month >= t4_denominator_ranges.from_month
),

person_ranges as (
    select 'T1' as measure, * from t1_ranges
    union all
    select 'T1', * from t1_group_ranges
    union all
    select 'T4_denominator', * from t4_denominator_ranges
    union all
    select 'T4_numerator', * from t4_numerator_ranges
)

select person_id, area_code, measure, breakdown, from_month, to_month
from person_ranges
{%- endmacro %}
