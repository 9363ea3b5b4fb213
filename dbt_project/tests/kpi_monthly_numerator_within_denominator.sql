-- Proportions cannot count more than their denominator.
select area_code, month, kpi_code, breakdown, numerator, denominator
from {{ ref('kpi_monthly') }}
where kpi_code in ('T3_pct_over_21d', 'T4', 'T5', 'T6', 'C1', 'C3_positivity', 'C3_attendance', 'C4')
    and numerator > denominator
