-- One row per file a reporting month should bring: who owes it, when it was due,
-- and whether (and how late) it came. A refused file has not come.
with expected_submissions as (
    select * from {{ ref('int_ops__expected_submissions') }}
),

received_dates as (
    select
        *,
        (received_at at time zone 'Europe/London')::date as received_date
    from expected_submissions
)

select
    expected_submission_id,
    month,
    area_code as area_id,
    feed,
    source_code,
    due_date,
    submission_id,
    received_at,
    is_received,
    coalesce(received_date > due_date, false) as is_late,
    case when received_date > due_date then received_date - due_date end as days_late
from received_dates
