-- Grant allocations of the current submission of each area and financial year.
with current_submissions as (
    select submission_id, period_start
    from {{ ref('stg_raw__submissions') }}
    where feed = 'grants'
),

allocation_rows as (
    select * from {{ source('raw', 'grant_allocations') }}
)

select
    allocation_rows.area_code || '|' || allocation_rows.financial_year || '|' || allocation_rows.funding_stream
        as grant_allocation_id,
    allocation_rows.submission_id,
    allocation_rows.area_code,
    allocation_rows.financial_year,
    current_submissions.period_start as financial_year_start_month,
    allocation_rows.funding_stream,
    allocation_rows.allocation_gbp,
    allocation_rows.ring_fenced_gbp
from allocation_rows
inner join current_submissions
    on current_submissions.submission_id = allocation_rows.submission_id
