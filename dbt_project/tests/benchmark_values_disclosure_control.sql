-- Fingertips' figures published under our disclosure rule: no count or
-- denominator of 1-4, and a hidden row shows no figure built on it.
select benchmark_value_id, 'count or denominator of 1-4 published' as problem
from {{ ref('fct_benchmark_values') }}
where count between 1 and 4 or denominator between 1 and 4
union all
select benchmark_value_id, 'suppressed row shows figures'
from {{ ref('fct_benchmark_values') }}
where is_suppressed
    and (value is not null or ci_lower is not null or ci_upper is not null
        or count is not null or denominator is not null)
