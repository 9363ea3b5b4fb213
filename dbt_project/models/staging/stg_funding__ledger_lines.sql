-- Ledger lines of the current submission of each area and month: a resubmitted
-- month replaces the earlier one whole. Money stays numeric(14, 2).
with current_submissions as (
    select submission_id
    from {{ ref('stg_raw__submissions') }}
    where feed = 'funding'
),

ledger_rows as (
    select * from {{ source('raw', 'funding_ledger_lines') }}
)

select
    ledger_rows.area_code || '|' || to_char(ledger_rows.period_month, 'YYYY-MM') || '|' || ledger_rows.line_id
        as ledger_line_id,
    ledger_rows.submission_id,
    ledger_rows.source_row,
    ledger_rows.area_code,
    ledger_rows.period_month as month,
    ledger_rows.line_id,
    ledger_rows.cost_centre,
    nullif(ledger_rows.contract_id, '') as contract_id,
    nullif(ledger_rows.provider_code, '') as provider_code,
    ledger_rows.funding_stream,
    ledger_rows.service_line,
    ledger_rows.budget_gbp,
    ledger_rows.actual_gbp
from ledger_rows
inner join current_submissions
    on current_submissions.submission_id = ledger_rows.submission_id
