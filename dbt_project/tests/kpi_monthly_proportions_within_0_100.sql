-- Proportions and their limits are percentages 0-100 with a positive denominator.
select area_code, month, kpi_code, breakdown, value, ci_lower, ci_upper, denominator
from {{ ref('kpi_monthly') }}
where kpi_code in ('T3_pct_over_21d', 'T4', 'T5', 'T6', 'C1', 'C3_positivity', 'C3_attendance', 'C4')
    and not is_suppressed
    and (
        value is null or value < 0 or value > 100
        or ci_lower < 0 or ci_upper > 100
        or denominator is null or denominator <= 0
    )
