-- Measures of the current partnership criminal-justice return of each area and
-- month. A measure missing from a file is unknown that month, not zero.
with current_submissions as (
    select submission_id
    from {{ ref('stg_raw__submissions') }}
    where feed = 'cj-return'
),

return_rows as (
    select * from {{ source('raw', 'cj_returns') }}
)

select
    return_rows.area_code || '|' || to_char(return_rows.period_month, 'YYYY-MM') || '|' || return_rows.measure
        as return_measure_id,
    return_rows.submission_id,
    return_rows.area_code,
    return_rows.period_month as month,
    return_rows.agency,
    return_rows.measure,
    return_rows.value
from return_rows
inner join current_submissions
    on current_submissions.submission_id = return_rows.submission_id
