-- Grant allocations by area, financial year and stream, with the ring-fenced
-- part and the same stream's allocation in the financial year before (NULL
-- when that year's file has no such stream).
with allocations as (
    select * from {{ ref('stg_funding__grant_allocations') }}
)

select
    allocations.grant_allocation_id,
    allocations.financial_year as financial_year_id,
    allocations.area_code as area_id,
    allocations.funding_stream as funding_stream_id,
    allocations.allocation_gbp,
    allocations.ring_fenced_gbp,
    previous_year.allocation_gbp as previous_year_allocation_gbp,
    allocations.submission_id,
    previous_year.submission_id as previous_year_submission_id
from allocations
left join allocations as previous_year
    on previous_year.area_code = allocations.area_code
    and previous_year.funding_stream = allocations.funding_stream
    and previous_year.financial_year_start_month = {{ add_months('allocations.financial_year_start_month', -12) }}
