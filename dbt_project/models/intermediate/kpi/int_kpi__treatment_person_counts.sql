-- T1 and T4 persons per area-month (kpis.md), counted from each person's runs of
-- counted months (macros/treatment_person_ranges.sql) with +1/-1 events. A model
-- of its own, not a CTE of int_kpi__treatment, so that it builds beside
-- int_treatment__person_months: it needs only the episodes. Incremental on the
-- month like the KPI model it feeds (decision 11).
{{ config(**treatment_month_increments()) }}

with build as (
    select
        {{ treatment_months_from() }} as first_month,
        {{ treatment_build_state() }}
),

area_months as (
    select area_months.area_code, area_months.month
    from {{ ref('int_treatment__area_months') }} as area_months
    inner join build on area_months.month >= build.first_month
),

-- exact from the first month this build counts
person_ranges as (
    {{ treatment_person_ranges('(select first_month from build)') }}
),

person_counts as (
    {{ count_persons_by_month('person_ranges', 'area_months') }}
)

select
    person_counts.area_code,
    person_counts.month,
    person_counts.measure,
    person_counts.breakdown,
    person_counts.person_count,
    build.built_through_submission_id,
    build.build_fingerprint
from person_counts
cross join build
