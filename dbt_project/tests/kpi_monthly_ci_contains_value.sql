-- A published Wilson interval contains its value, and comes as a pair.
select area_code, month, kpi_code, breakdown, ci_lower, value, ci_upper
from {{ ref('kpi_monthly') }}
where (ci_lower is null) <> (ci_upper is null)
    or (ci_lower is not null and not (ci_lower <= value and value <= ci_upper))
