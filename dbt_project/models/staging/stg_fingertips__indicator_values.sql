-- Fingertips values of the latest pull of each indicator: the current submission
-- of its most recent pull month (an indicator refused this month keeps last
-- month's values). Breakdown rows (deprivation deciles and the like) are kept and
-- flagged; headline values are the rows without a category type.
with current_submissions as (
    select submission_id, source_code, period_start
    from {{ ref('stg_raw__submissions') }}
    where feed = 'fingertips'
),

latest_pulls as (
    select distinct on (source_code)
        submission_id,
        source_code,
        period_start as pulled_month
    from current_submissions
    order by source_code, period_start desc, submission_id desc
),

value_rows as (
    select * from {{ source('raw', 'fingertips_values') }}
)

select
    value_rows.submission_id::text || '-' || value_rows.source_row::text as fingertips_value_id,
    value_rows.submission_id,
    latest_pulls.pulled_month,
    value_rows.indicator_id::integer as indicator_id,
    value_rows.indicator_name,
    value_rows.unit_label,
    value_rows.child_area_type_id,
    value_rows.area_code,
    value_rows.area_name,
    value_rows.area_type,
    value_rows.parent_code,
    value_rows.parent_name,
    value_rows.sex,
    value_rows.age,
    value_rows.category_type,
    value_rows.category,
    value_rows.category_type is not null as is_breakdown,
    value_rows.time_period,
    value_rows.time_period_sortable,
    value_rows.time_period_range,
    value_rows.value,
    value_rows.lower_ci_95,
    value_rows.upper_ci_95,
    value_rows.lower_ci_99_8,
    value_rows.upper_ci_99_8,
    value_rows.count,
    value_rows.denominator,
    value_rows.value is null as is_value_missing,
    value_rows.value_note,
    value_rows.recent_trend,
    value_rows.compared_to_england,
    value_rows.compared_to_parent,
    value_rows.parent_comparison_label,
    value_rows.compared_to_goal,
    value_rows.new_data
from value_rows
inner join latest_pulls
    on latest_pulls.submission_id = value_rows.submission_id
