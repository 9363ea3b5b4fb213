-- Every area is published for every month from its first to its last.
select area_code, min(month) as first_month, max(month) as last_month, count(distinct month) as month_count
from {{ ref('kpi_monthly') }}
group by area_code
having count(distinct month)
    <> (extract(year from age(max(month), min(month))) * 12 + extract(month from age(max(month), min(month))) + 1)
