-- The current submission of each feed, source and reporting month. A later loaded
-- file for the same key replaces the earlier one whole (a restatement); refused
-- files never count.
with submissions as (
    select * from {{ source('raw', 'submissions') }}
),

loaded_submissions as (
    select
        *,
        row_number() over (
            partition by feed, source_code, period_start order by submission_id desc
        ) as recency_rank,
        count(*) over (partition by feed, source_code, period_start) as loaded_submission_count
    from submissions
    where status = 'loaded'
)

select
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
where recency_rank = 1
