-- The current submission of each feed, source and reporting month. A later loaded
-- file for the same key replaces the earlier one whole (a restatement); refused
-- files never count. `distinct on` rather than a row_number() filter: the planner
-- estimates its rows from the keys' statistics (a rank filter it takes for one row,
-- which made every join to this view a loop over it).
with loaded_submissions as (
    select
        *,
        count(*) over (partition by feed, source_code, period_start) as loaded_submission_count
    from {{ source('raw', 'submissions') }}
    where status = 'loaded'
)

select distinct on (feed, source_code, period_start)
    submission_id,
    feed,
    source_code,
    period_start,
    file_name,
    file_sha256,
    row_count,
    received_at,
    loaded_at,
    loaded_submission_count - 1 as superseded_submission_count
from loaded_submissions
order by feed, source_code, period_start, submission_id desc
