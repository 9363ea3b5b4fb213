-- Financial years (1 April - 31 March, labelled 2025-26), derived from the
-- month dimension so the two always agree.
with months as (
    select * from {{ ref('dim_month') }}
)

select
    financial_year as financial_year_id,
    financial_year_start,
    min(month_id) as first_month_id,
    max(month_id) as last_month_id,
    make_date(financial_year_start, 4, 1) as start_date,
    make_date(financial_year_start + 1, 3, 31) as end_date,
    count(*) = 12 as is_complete_in_calendar
from months
group by financial_year, financial_year_start
