-- marts.kpi_monthly: the publication contract (kpis.md). The per-domain KPI
-- models are unioned and pass once through the shared disclosure control.
{%- set domain_kpi_models = ['int_kpi__treatment', 'int_kpi__funding', 'int_kpi__criminal_justice'] %}

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
)

select
    area_code::text as area_code,
    month::date as month,
    kpi_code::text as kpi_code,
    breakdown::text as breakdown,
    numerator::numeric as numerator,
    denominator::numeric as denominator,
    value::numeric as value,
    ci_lower::numeric as ci_lower,
    ci_upper::numeric as ci_upper,
    is_suppressed::boolean as is_suppressed,
    is_provisional::boolean as is_provisional,
    null::numeric as england_value,
    null::text as comparison,
    source_submissions::text[] as source_submissions
from disclosed_kpis
