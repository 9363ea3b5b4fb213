-- Headline Fingertips values of the latest pull of each indicator, for England,
-- regions and upper-tier areas and every period: what the benchmarks are, beside
-- kpi_monthly's own figures. Breakdown rows (deprivation deciles...) stay out.
-- Our disclosure rule holds here too (kpis.md): a count or denominator of 1-4
-- hides the count, denominator, value, limits and Fingertips' own comparison.
with benchmark_indicators as (
    select * from {{ ref('ref_benchmark_indicators') }}
),

headline_values as (
    select
        *,
        {{ is_small_count('count') }} or {{ is_small_count('denominator') }} as is_suppressed
    from {{ ref('stg_fingertips__indicator_values') }}
    where not is_breakdown
),

england_values as (
    select indicator_id, sex, age, time_period_sortable, value
    from headline_values
    where area_code = 'E92000001'
)

select
    headline_values.indicator_id::text || '|' || headline_values.area_code || '|' || headline_values.sex
    || '|' || headline_values.age || '|' || headline_values.time_period_sortable::text as benchmark_value_id,
    headline_values.indicator_id,
    headline_values.indicator_name,
    headline_values.unit_label,
    benchmark_indicators.kpi_code,
    benchmark_indicators.breakdown,
    benchmark_indicators.polarity,
    headline_values.area_code as area_id,
    headline_values.area_name,
    case
        when headline_values.area_code = 'E92000001' then 'england'
        when headline_values.child_area_type_id = 6 then 'region'
        else 'upper_tier'
    end as area_level,
    headline_values.parent_code as parent_area_id,
    headline_values.parent_name as parent_area_name,
    headline_values.sex,
    headline_values.age,
    headline_values.sex = benchmark_indicators.headline_sex as is_headline_sex,
    headline_values.time_period,
    headline_values.time_period_sortable,
    headline_values.time_period_sortable = max(headline_values.time_period_sortable) over (
        partition by headline_values.indicator_id, headline_values.sex, headline_values.age
    ) as is_latest_period,
    case when not headline_values.is_suppressed then headline_values.value end as value,
    case when not headline_values.is_suppressed then headline_values.lower_ci_95 end as ci_lower,
    case when not headline_values.is_suppressed then headline_values.upper_ci_95 end as ci_upper,
    case when not headline_values.is_suppressed then headline_values.lower_ci_99_8 end as ci_lower_99_8,
    case when not headline_values.is_suppressed then headline_values.upper_ci_99_8 end as ci_upper_99_8,
    case when not headline_values.is_suppressed then headline_values.count end as count,
    case when not headline_values.is_suppressed then headline_values.denominator end as denominator,
    headline_values.is_suppressed,
    headline_values.is_value_missing,
    headline_values.value_note,
    case when not headline_values.is_suppressed then headline_values.recent_trend end as recent_trend,
    case when not headline_values.is_suppressed then headline_values.compared_to_england end as compared_to_england,
    england_values.value as england_value,
    headline_values.submission_id,
    headline_values.pulled_month
from headline_values
inner join benchmark_indicators
    on benchmark_indicators.indicator_id = headline_values.indicator_id
left join england_values
    on england_values.indicator_id = headline_values.indicator_id
    and england_values.sex = headline_values.sex
    and england_values.age = headline_values.age
    and england_values.time_period_sortable = headline_values.time_period_sortable
