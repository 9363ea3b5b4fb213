-- marts.partnership_scorecard: what a Combating Drugs Partnership board reads. One
-- row per area, reporting month and scorecard KPI (seed ref_scorecard_kpis) as
-- published in kpi_monthly, with its target where one exists, England's value and
-- the comparison (B1), and the trend over the 12 months ending M. Numerators and
-- denominators stay in kpi_monthly: for money and crime KPIs they are no person
-- counts, and a board reads the value with its interval.
with scorecard_kpis as (
    select * from {{ ref('ref_scorecard_kpis') }}
),

published_kpis as (
    select
        kpi_monthly.*,
        scorecard_kpis.kpi_label,
        scorecard_kpis.unit,
        scorecard_kpis.polarity,
        scorecard_kpis.domain,
        scorecard_kpis.sort_order,
        (extract(year from kpi_monthly.month) * 12 + extract(month from kpi_monthly.month))::integer as month_index
    from {{ ref('kpi_monthly') }} as kpi_monthly
    inner join scorecard_kpis
        on scorecard_kpis.kpi_code = kpi_monthly.kpi_code
        and scorecard_kpis.breakdown = kpi_monthly.breakdown
),

-- published (not suppressed) values of M-12..M: the slope over M-11..M and the value a year before
kpi_trends as (
    select
        current_kpis.area_code,
        current_kpis.month,
        current_kpis.kpi_code,
        current_kpis.breakdown,
        count(earlier_kpis.value) filter (where earlier_kpis.month_index >= current_kpis.month_index - 11)
            as trend_points,
        regr_slope(earlier_kpis.value::double precision, earlier_kpis.month_index::double precision)
            filter (where earlier_kpis.month_index >= current_kpis.month_index - 11) as trend_slope,
        max(earlier_kpis.value) filter (where earlier_kpis.month_index = current_kpis.month_index - 12)
            as value_12_months_ago
    from published_kpis as current_kpis
    left join published_kpis as earlier_kpis
        on earlier_kpis.area_code = current_kpis.area_code
        and earlier_kpis.kpi_code = current_kpis.kpi_code
        and earlier_kpis.breakdown = current_kpis.breakdown
        and earlier_kpis.month_index between current_kpis.month_index - 12 and current_kpis.month_index
    group by current_kpis.area_code, current_kpis.month, current_kpis.kpi_code, current_kpis.breakdown
),

area_targets as (
    select * from {{ ref('dim_kpi_target') }}
    where area_id is not null
),

general_targets as (
    select * from {{ ref('dim_kpi_target') }}
    where area_id is null
),

england_benchmarks as (
    select kpi_code, breakdown, time_period, indicator_id
    from {{ ref('int_benchmarks__kpi_england_values') }}
),

areas as (
    select area_id, area_name from {{ ref('dim_area') }}
),

scorecard_rows as (
    select
        published_kpis.*,
        areas.area_name,
        coalesce(area_targets.target_value, general_targets.target_value) as target_value,
        coalesce(area_targets.source, general_targets.source) as target_source,
        england_benchmarks.time_period as england_time_period,
        england_benchmarks.indicator_id as england_indicator_id,
        kpi_trends.value_12_months_ago,
        kpi_trends.trend_points,
        case when kpi_trends.trend_points >= 6 then round(kpi_trends.trend_slope::numeric, 3) end as trend_slope
    from published_kpis
    inner join kpi_trends
        on kpi_trends.area_code = published_kpis.area_code
        and kpi_trends.month = published_kpis.month
        and kpi_trends.kpi_code = published_kpis.kpi_code
        and kpi_trends.breakdown = published_kpis.breakdown
    left join areas
        on areas.area_id = published_kpis.area_code
    left join area_targets
        on area_targets.kpi_code = published_kpis.kpi_code
        and area_targets.breakdown = published_kpis.breakdown
        and area_targets.area_id = published_kpis.area_code
    left join general_targets
        on general_targets.kpi_code = published_kpis.kpi_code
        and general_targets.breakdown = published_kpis.breakdown
    left join england_benchmarks
        on england_benchmarks.kpi_code = published_kpis.kpi_code
        and england_benchmarks.breakdown = published_kpis.breakdown
),

scorecard_trends as (
    select
        *,
        case
            when trend_slope > 0 then 'increasing'
            when trend_slope < 0 then 'decreasing'
            when trend_slope = 0 then 'no change'
        end as trend_movement
    from scorecard_rows
)

select
    area_code || '|' || to_char(month, 'YYYY-MM') || '|' || kpi_code || '|' || breakdown as scorecard_id,
    area_code as area_id,
    area_name,
    month as month_id,
    kpi_code,
    breakdown,
    kpi_label,
    domain,
    unit,
    polarity,
    sort_order,
    value,
    ci_lower,
    ci_upper,
    is_suppressed,
    is_provisional,
    target_value,
    target_source,
    case
        when target_value is null or value is null then null
        when polarity = 'lower' then value <= target_value
        else value >= target_value
    end as is_target_met,
    england_value,
    england_time_period,
    england_indicator_id,
    comparison,
    value_12_months_ago,
    value - value_12_months_ago as change_on_12_months_ago,
    trend_points,
    trend_slope as trend_slope_per_month,
    trend_movement,
    case
        when polarity = 'neither' or trend_movement is null then null
        when trend_movement = 'no change' then 'no change'
        when (trend_movement = 'increasing') = (polarity = 'higher') then 'improving'
        else 'worsening'
    end as trend_direction
from scorecard_trends
