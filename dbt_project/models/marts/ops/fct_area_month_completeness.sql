-- Whether an area-month has every file it should: figures are published for what
-- has arrived, and this flags the area-months still waiting for a file.
with expected_submissions as (
    select * from {{ ref('fct_expected_submissions') }}
)

select
    area_id || '|' || to_char(month, 'YYYY-MM') as area_month_id,
    area_id,
    month,
    count(*) as expected_file_count,
    count(*) filter (where is_received) as received_file_count,
    count(*) filter (where not is_received) as missing_file_count,
    count(*) filter (where is_late) as late_file_count,
    bool_and(is_received) as is_complete,
    string_agg(feed || ' ' || source_code, ', ' order by feed, source_code) filter (where not is_received)
        as missing_files
from expected_submissions
group by area_id, month
