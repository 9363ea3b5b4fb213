-- The contract register as each area's current submission for a month states
-- it (the whole register at the end of that month, past contracts included).
with current_submissions as (
    select submission_id, period_start
    from {{ ref('stg_raw__submissions') }}
    where feed = 'contracts'
),

register_rows as (
    select * from {{ source('raw', 'contract_register_rows') }}
)

select
    register_rows.area_code || '|' || to_char(current_submissions.period_start, 'YYYY-MM')
        || '|' || register_rows.contract_id as register_row_id,
    register_rows.submission_id,
    current_submissions.period_start as register_month,
    register_rows.area_code,
    register_rows.contract_id,
    register_rows.provider_code,
    register_rows.provider_name,
    register_rows.service_line,
    register_rows.start_date,
    register_rows.end_date,
    register_rows.extension_end_date,
    coalesce(register_rows.extension_end_date, register_rows.end_date) as effective_end_date,
    register_rows.annual_value_gbp,
    register_rows.status
from register_rows
inner join current_submissions
    on current_submissions.submission_id = register_rows.submission_id
