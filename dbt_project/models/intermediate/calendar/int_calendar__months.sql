-- Every month from the earliest date any current treatment row holds (or the
-- first funding period or reporting month of any feed) to the latest reporting
-- month or later date, so every date column, funding period and feed month has its month.
with treatment_bounds as (
    select min(first_date) as first_date, max(last_date) as last_date
    from {{ ref('int_treatment__submission_areas') }}
),

funding_periods as (
    -- every reporting month a current submission is for (criminal-justice months too)
    select period_start as first_date, period_start as last_date
    from {{ ref('stg_raw__submissions') }}
    where feed <> 'grants'
    union all
    select month as first_date, month as last_date from {{ ref('stg_funding__ledger_lines') }}
    union all
    select register_month, register_month from {{ ref('stg_funding__contract_register_rows') }}
    union all
    -- a grant year brings its twelve months
    select financial_year_start_month, {{ add_months('financial_year_start_month', 11) }}
    from {{ ref('stg_funding__grant_allocations') }}
),

bounds as (
    select min(first_date) as first_date, max(last_date) as last_date
    from (
        select first_date, last_date from treatment_bounds
        union all
        select first_date, last_date from funding_periods
    ) as all_bounds
)

select
    months.month::date as month,
    {{ add_months('months.month::date', 1) }} - 1 as month_end_date
from bounds
cross join lateral generate_series(
    {{ month_of('bounds.first_date') }}, {{ month_of('bounds.last_date') }}, interval '1 month'
) as months (month)
