-- Calendar months with the financial year (1 April - 31 March, labelled 2025-26)
-- and its quarter.
with months as (
    select * from {{ ref('int_calendar__months') }}
),

financial_years as (
    select
        month,
        month_end_date,
        case when extract(month from month) >= 4
            then extract(year from month)::integer
            else extract(year from month)::integer - 1
        end as financial_year_start
    from months
)

select
    month as month_id,
    to_char(month, 'YYYY-MM') as month_label,
    month as month_start_date,
    month_end_date,
    extract(year from month)::integer as calendar_year,
    extract(month from month)::integer as calendar_month_number,
    financial_year_start::text || '-' || lpad(((financial_year_start + 1) % 100)::text, 2, '0') as financial_year,
    financial_year_start,
    (extract(month from month)::integer + 8) % 12 + 1 as financial_month_number,
    'Q' || (((extract(month from month)::integer + 8) % 12) / 3 + 1)::text as financial_quarter
from financial_years
