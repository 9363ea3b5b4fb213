-- Funding KPIs F3 and F4 (kpis.md) before disclosure control, in the shape of
-- marts.kpi_monthly: year-to-date actual on treatment service lines against T1
-- and the T4 numerators at M. Apart from int_kpi__funding so that F1, F2 and F5
-- are built while treatment is still being built.
with funding_kpis as (
    select * from {{ ref('int_kpi__funding') }}
),

service_lines as (
    select * from {{ ref('dim_service_line') }}
),

treatment_kpis as (
    select * from {{ ref('int_kpi__treatment') }}
),

-- F1's year-to-date actual of each treatment service line
treatment_spend_lines as (
    select funding_kpis.*
    from funding_kpis
    inner join service_lines
        on funding_kpis.breakdown = 'period=fytd;service_line=' || service_lines.service_line_id
    where funding_kpis.kpi_code = 'F1_actual' and service_lines.is_treatment
),

treatment_spend as (
    select
        area_code,
        month,
        bool_or(is_provisional) as is_provisional,
        sum(numerator) as actual_gbp
    from treatment_spend_lines
    group by area_code, month
),

-- the submissions behind those lines and behind the area-month's treatment KPIs
-- (every treatment KPI of an area-month carries the same submissions: T1's)
source_submissions as (
    select area_code, month, array_agg(distinct submission_id::bigint order by submission_id::bigint) as submission_ids
    from (
        select area_code, month, unnest(source_submissions) as submission_id
        from treatment_spend_lines
        union all
        select area_code, month, unnest(source_submissions)
        from treatment_kpis
        where kpi_code = 'T1' and breakdown = 'all'
    ) as submissions
    group by area_code, month
),

treatment_counts as (
    select
        area_code,
        month,
        max(value) filter (where kpi_code = 'T1' and breakdown = 'all') as persons_in_treatment,
        max(value) filter (where kpi_code = 'T1' and breakdown = 'kpi_group=alcohol') as alcohol_persons,
        sum(numerator) filter (where kpi_code = 'T4') as successful_completions,
        count(*) filter (where kpi_code = 'T4') as t4_group_count,
        -- decision 21: a figure built from another is provisional while any input is
        coalesce(bool_or(is_provisional) filter (where kpi_code = 'T1'), false) as is_t1_provisional,
        coalesce(bool_or(is_provisional) filter (where kpi_code = 'T4'), false) as is_t4_provisional
    from treatment_kpis
    where kpi_code in ('T1', 'T4')
    group by area_code, month
),

unit_costs as (
    select
        treatment_spend.area_code,
        treatment_spend.month,
        -- F3 per person and F4 rest on T1, F3 per completion on the T4 numerators
        treatment_spend.is_provisional or treatment_counts.is_t1_provisional as is_provisional,
        treatment_spend.is_provisional or treatment_counts.is_t4_provisional as is_completions_provisional,
        treatment_spend.actual_gbp,
        treatment_counts.persons_in_treatment,
        treatment_counts.alcohol_persons,
        case when treatment_counts.t4_group_count > 0 then treatment_counts.successful_completions end
            as successful_completions,
        source_submissions.submission_ids::text[] as source_submissions
    from treatment_spend
    inner join treatment_counts
        on treatment_counts.area_code = treatment_spend.area_code
        and treatment_counts.month = treatment_spend.month
    inner join source_submissions
        on source_submissions.area_code = treatment_spend.area_code
        and source_submissions.month = treatment_spend.month
),

f3 as (
    select
        area_code, month, is_provisional, 'F3_per_person' as kpi_code, 'all' as breakdown,
        actual_gbp as numerator, persons_in_treatment as denominator,
        round(actual_gbp / persons_in_treatment, 2) as value, source_submissions
    from unit_costs
    where persons_in_treatment > 0
    union all
    select
        area_code, month, is_completions_provisional, 'F3_per_completion', 'all',
        actual_gbp, successful_completions,
        round(actual_gbp / successful_completions, 2), source_submissions
    from unit_costs
    where successful_completions > 0
),

-- £3 a £1 on alcohol treatment, £4 on drug treatment, split by the share of
-- persons in treatment who are alcohol-only (an estimate, kpis.md F4)
f4 as (
    select
        area_code, month, is_provisional, 'F4' as kpi_code, 'all' as breakdown,
        actual_gbp as numerator, persons_in_treatment as denominator,
        round(
            actual_gbp * (3 * alcohol_persons + 4 * (persons_in_treatment - alcohol_persons)) / persons_in_treatment,
            2
        ) as value,
        source_submissions
    from unit_costs
    where persons_in_treatment > 0
),

kpi_values as (
    select * from f3
    union all
    select * from f4
)

select
    area_code,
    month,
    kpi_code,
    breakdown,
    numerator::numeric as numerator,
    denominator::numeric as denominator,
    value::numeric as value,
    null::numeric as ci_lower,
    null::numeric as ci_upper,
    -- provisional while the ledger (as F1) or the treatment KPIs it divides by are (decision 21)
    is_provisional,
    source_submissions,
    -- a unit cost over 1-4 persons would give the count away (spend is published in F1)
    case when denominator between 1 and 4 then 'always' else 'none' end as disclosure_rule,
    null::text as suppression_family
from kpi_values
