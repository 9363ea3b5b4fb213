-- marts.kpi_monthly: the publication contract (kpis.md). The per-domain KPI
-- models are unioned and pass once through the shared disclosure control.
{%- set domain_kpi_models = [
    'int_kpi__treatment', 'int_kpi__funding', 'int_kpi__funding_unit_costs', 'int_kpi__criminal_justice'
] %}

with domain_kpis as (
    {% for model_name in domain_kpi_models -%}
    select
        area_code, month, kpi_code, breakdown, numerator, denominator, value,
        ci_lower, ci_upper, is_provisional, source_submissions,
        disclosure_rule, suppression_family
    from {{ ref(model_name) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

disclosed_kpis as (
    {{ disclosure_control('domain_kpis') }}
),

-- B1: England's latest Fingertips value for T4 (each group) and C1
england_benchmarks as (
    select kpi_code, breakdown, england_value, polarity, submission_id
    from {{ ref('int_benchmarks__kpi_england_values') }}
)

select
    disclosed_kpis.area_code::text as area_code,
    disclosed_kpis.month::date as month,
    disclosed_kpis.kpi_code::text as kpi_code,
    disclosed_kpis.breakdown::text as breakdown,
    disclosed_kpis.numerator::numeric as numerator,
    disclosed_kpis.denominator::numeric as denominator,
    disclosed_kpis.value::numeric as value,
    disclosed_kpis.ci_lower::numeric as ci_lower,
    disclosed_kpis.ci_upper::numeric as ci_upper,
    disclosed_kpis.is_suppressed::boolean as is_suppressed,
    disclosed_kpis.is_provisional::boolean as is_provisional,
    england_benchmarks.england_value::numeric as england_value,
    {{ benchmark_comparison(
        'disclosed_kpis.ci_lower', 'disclosed_kpis.ci_upper',
        'england_benchmarks.england_value', 'england_benchmarks.polarity'
    ) }}::text as comparison,
    -- a figure compared with England also rests on the Fingertips submission
    case
        when england_benchmarks.submission_id is null then disclosed_kpis.source_submissions
        else array(
            select submission_id
            from unnest(disclosed_kpis.source_submissions || england_benchmarks.submission_id::text) as submission_id
            group by submission_id
            order by submission_id::bigint
        )
    end::text[] as source_submissions
from disclosed_kpis
left join england_benchmarks
    on england_benchmarks.kpi_code = disclosed_kpis.kpi_code
    and england_benchmarks.breakdown = disclosed_kpis.breakdown
