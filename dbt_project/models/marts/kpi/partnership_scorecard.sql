-- marts.partnership_scorecard: what a Combating Drugs Partnership board reads. One
-- row per area, reporting month and scorecard KPI (seed ref_scorecard_kpis) as
-- published in kpi_monthly, with its target where one exists (decision 19),
-- England's value and the comparison (B1), and the change on M-12 with its test
-- (decision 20). Numerators and denominators stay in kpi_monthly: for money and
-- crime KPIs they are no person counts, and a board reads the value with its interval.
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
        scorecard_kpis.trend_test,
        (extract(year from kpi_monthly.month) * 12 + extract(month from kpi_monthly.month))::integer as month_index,
        -- the 95% interval the trend test reads (decision 20), NULL when the figure is not
        -- published: Wilson as kpi_monthly publishes it (proportions); Byar's Poisson interval
        -- of the count (counts), or of the crimes scaled by the population (crude rates)
        case scorecard_kpis.trend_test
            when 'wilson' then kpi_monthly.ci_lower
            when 'byar' then round({{ byar_lower('kpi_monthly.value') }}, 1)
            when 'byar_rate' then round(10000 * {{ byar_lower('kpi_monthly.numerator') }} / kpi_monthly.denominator, 2)
        end as trend_ci_lower,
        case scorecard_kpis.trend_test
            when 'wilson' then kpi_monthly.ci_upper
            when 'byar' then round({{ byar_upper('kpi_monthly.value') }}, 1)
            when 'byar_rate' then round(10000 * {{ byar_upper('kpi_monthly.numerator') }} / kpi_monthly.denominator, 2)
        end as trend_ci_upper
    from {{ ref('kpi_monthly') }} as kpi_monthly
    inner join scorecard_kpis
        on scorecard_kpis.kpi_code = kpi_monthly.kpi_code
        and scorecard_kpis.breakdown = kpi_monthly.breakdown
),

-- descriptive only (no label or arrow reads it): published (not suppressed) values of
-- the 12 months ending M and their least-squares slope
kpi_slopes as (
    select
        current_kpis.area_code,
        current_kpis.month,
        current_kpis.kpi_code,
        current_kpis.breakdown,
        count(earlier_kpis.value) as trend_points,
        regr_slope(earlier_kpis.value::double precision, earlier_kpis.month_index::double precision)
            as trend_slope
    from published_kpis as current_kpis
    left join published_kpis as earlier_kpis
        on earlier_kpis.area_code = current_kpis.area_code
        and earlier_kpis.kpi_code = current_kpis.kpi_code
        and earlier_kpis.breakdown = current_kpis.breakdown
        and earlier_kpis.month_index between current_kpis.month_index - 11 and current_kpis.month_index
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
        -- an area's own target (reference data with its area code) wins over the general one
        coalesce(area_targets.target_value, general_targets.target_value) as target_value,
        coalesce(area_targets.source, general_targets.source) as target_source,
        coalesce(area_targets.polarity, general_targets.polarity) as target_polarity,
        england_benchmarks.time_period as england_time_period,
        england_benchmarks.indicator_id as england_indicator_id,
        year_ago.value as value_12_months_ago,
        year_ago.trend_ci_lower as trend_ci_lower_12_months_ago,
        year_ago.trend_ci_upper as trend_ci_upper_12_months_ago,
        kpi_slopes.trend_points,
        case when kpi_slopes.trend_points >= 6 then round(kpi_slopes.trend_slope::numeric, 3) end as trend_slope
    from published_kpis
    inner join kpi_slopes
        on kpi_slopes.area_code = published_kpis.area_code
        and kpi_slopes.month = published_kpis.month
        and kpi_slopes.kpi_code = published_kpis.kpi_code
        and kpi_slopes.breakdown = published_kpis.breakdown
    -- M-12: for the 12-month measures a window that does not overlap M's
    left join published_kpis as year_ago
        on year_ago.area_code = published_kpis.area_code
        and year_ago.kpi_code = published_kpis.kpi_code
        and year_ago.breakdown = published_kpis.breakdown
        and year_ago.month_index = published_kpis.month_index - 12
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

-- decision 20: M against M-12, significant only when the two 95% intervals do not overlap
-- (limits as published; touching limits overlap). Either interval missing: no test.
scorecard_trends as (
    select
        *,
        case
            when value is null or value_12_months_ago is null then null
            when trend_ci_lower is null or trend_ci_upper is null
                or trend_ci_lower_12_months_ago is null or trend_ci_upper_12_months_ago is null then null
            when trend_ci_lower > trend_ci_upper_12_months_ago then 'increasing'
            when trend_ci_upper < trend_ci_lower_12_months_ago then 'decreasing'
            else 'no significant change'
        end as trend_movement
    from scorecard_rows
),

scorecard_directions as (
    select
        *,
        case
            when polarity = 'neither' or trend_movement is null then null
            when trend_movement = 'no significant change' then 'no significant change'
            when (trend_movement = 'increasing') = (polarity = 'higher') then 'improving'
            else 'worsening'
        end as trend_direction
    from scorecard_trends
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
        when target_polarity = 'lower' then value <= target_value
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
    trend_direction,
    target_polarity,
    trend_test,
    trend_ci_lower,
    trend_ci_upper,
    trend_ci_lower_12_months_ago,
    trend_ci_upper_12_months_ago,
    -- the arrow follows the figure (up when the value rose), the label says whether that is better
    case trend_movement
        when 'increasing' then '▲'
        when 'decreasing' then '▼'
        when 'no significant change' then '►'
    end as trend_arrow,
    case
        when value is null or value_12_months_ago is null then 'no comparison'
        when trend_test = 'none' then 'not tested'
        else coalesce(trend_direction, trend_movement, 'no comparison')
    end as trend_label
from scorecard_directions
