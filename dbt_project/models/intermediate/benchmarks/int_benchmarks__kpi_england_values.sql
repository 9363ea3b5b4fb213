-- B1: England's latest Fingertips value for each KPI that has a benchmark
-- (seed ref_benchmark_indicators): the headline England row (no breakdown, the
-- indicator's headline sex) with a value, of the highest Time period Sortable.
with benchmark_indicators as (
    select * from {{ ref('ref_benchmark_indicators') }}
    where kpi_code is not null
),

england_values as (
    select
        indicator_values.*,
        benchmark_indicators.kpi_code,
        benchmark_indicators.breakdown,
        benchmark_indicators.polarity,
        row_number() over (
            partition by indicator_values.indicator_id
            order by indicator_values.time_period_sortable desc, indicator_values.time_period desc,
                indicator_values.age
        ) as recency_rank
    from {{ ref('stg_fingertips__indicator_values') }} as indicator_values
    inner join benchmark_indicators
        on benchmark_indicators.indicator_id = indicator_values.indicator_id
        and benchmark_indicators.headline_sex = indicator_values.sex
    where indicator_values.area_code = 'E92000001'
        and not indicator_values.is_breakdown
        and indicator_values.value is not null
)

select
    kpi_code || '|' || breakdown as kpi_benchmark_id,
    kpi_code,
    breakdown,
    indicator_id,
    indicator_name,
    polarity,
    time_period,
    time_period_sortable,
    value as england_value,
    lower_ci_95 as england_ci_lower,
    upper_ci_95 as england_ci_upper,
    submission_id,
    pulled_month
from england_values
where recency_rank = 1
