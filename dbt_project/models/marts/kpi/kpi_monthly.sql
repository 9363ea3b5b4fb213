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
        disclosure_rule,
        -- T7's months are a family within their financial year, whose total is T7_12m of March
        case when kpi_code = 'T7_month' then 'T7_month|financial_year' else suppression_family end
            as suppression_family,
        case
            when kpi_code = 'T7_month'
                then make_date(extract(year from month)::integer + (extract(month from month) > 3)::integer, 3, 1)
            else month
        end as family_month,
        case when kpi_code = 'T7_month' then 'T7_12m' else kpi_code end as family_total_kpi
    from {{ ref(model_name) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

-- figures that state or undo an input, so they are hidden with it (data dictionary, "Disclosure control")
suppression_dependencies (
    kind, route, dependent_kpi, dependent_breakdown, dependent_months, input_kpi, input_breakdown,
    from_offset, to_offset
) as (
    values
        -- T7_12m less the visible months of its window is the hidden months' sum: hidden when its
        -- window holds a hidden month (March's is the financial year's total: its family decides) ...
        ('hidden_with', null, 'T7_12m', 'all', array[1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'T7_month', 'all', -11, 0),
        -- ... unless it is stated anyway, from either March's T7_12m (a financial year's total, protected
        -- as a family with its months): the last March's, less the months that left the window plus
        -- those that entered; or the next March's (once published), less the months after this one
        -- plus those a year before them
        {%- for calendar_month in [4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2] %}
        {%- set since_march = (calendar_month - 3) % 12 %}
        {%- set until_march = (3 - calendar_month) % 12 %}
        ('shown_with', 'last_march', 'T7_12m', 'all', array[{{ calendar_month }}], 'T7_12m', 'all', {{ -since_march }}, {{ -since_march }}),
        ('shown_with', 'last_march', 'T7_12m', 'all', array[{{ calendar_month }}], 'T7_month', 'all', {{ 1 - since_march }}, 0),
        ('shown_with', 'last_march', 'T7_12m', 'all', array[{{ calendar_month }}], 'T7_month', 'all', {{ -11 - since_march }}, -12),
        ('shown_with', 'next_march', 'T7_12m', 'all', array[{{ calendar_month }}], 'T7_12m', 'all', {{ until_march }}, {{ until_march }}),
        ('shown_with', 'next_march', 'T7_12m', 'all', array[{{ calendar_month }}], 'T7_month', 'all', 1, {{ until_march }}),
        ('shown_with', 'next_march', 'T7_12m', 'all', array[{{ calendar_month }}], 'T7_month', 'all', -11, {{ until_march - 12 }}),
        {%- endfor %}
        -- T4's denominator is T1 of the same KPI group six months earlier
        ('hidden_with', null, 'T4', null, null, 'T1', null, -6, -6),
        -- unit costs divide published spend by T1 all or by the T4 numerators
        ('hidden_with', null, 'F3_per_person', 'all', null, 'T1', 'all', 0, 0),
        ('hidden_with', null, 'F3_per_completion', 'all', null, 'T4', '*', 0, 0),
        -- F4 gives the alcohol share of T1 away
        ('hidden_with', null, 'F4', 'all', null, 'T1', 'all', 0, 0),
        ('hidden_with', null, 'F4', 'all', null, 'T1', 'kpi_group=alcohol', 0, 0)
),

disclosed_kpis as (
    {{ disclosure_control('domain_kpis', 'suppression_dependencies') }}
),

-- B1: England's latest Fingertips value for T4 (each group) and C1
england_benchmarks as (
    select kpi_code, breakdown, england_value, polarity, submission_id
    from {{ ref('int_benchmarks__kpi_england_values') }}
),

-- figures resting on an older pull than the latest, or missing because the source failed (C2 today)
quality_flags as (
    select area_code, month, kpi_code, breakdown, quality_flag, quality_note
    from {{ ref('int_kpi__criminal_justice') }}
    where quality_flag is not null
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
    end::text[] as source_submissions,
    quality_flags.quality_flag::text as quality_flag,
    quality_flags.quality_note::text as quality_note
from disclosed_kpis
left join england_benchmarks
    on england_benchmarks.kpi_code = disclosed_kpis.kpi_code
    and england_benchmarks.breakdown = disclosed_kpis.breakdown
left join quality_flags
    on quality_flags.area_code = disclosed_kpis.area_code
    and quality_flags.month = disclosed_kpis.month
    and quality_flags.kpi_code = disclosed_kpis.kpi_code
    and quality_flags.breakdown = disclosed_kpis.breakdown
