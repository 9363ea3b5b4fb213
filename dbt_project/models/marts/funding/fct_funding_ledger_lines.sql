-- One row per ledger line of the current submission of each area and month:
-- budget and actual (exact numeric), with the contract version the register
-- held in that month.
with ledger_lines as (
    select * from {{ ref('stg_funding__ledger_lines') }}
),

contract_versions as (
    select * from {{ ref('int_funding__contract_versions') }}
)

select
    ledger_lines.ledger_line_id,
    ledger_lines.month as month_id,
    ledger_lines.area_code as area_id,
    ledger_lines.line_id,
    ledger_lines.contract_id,
    contract_versions.contract_version_id,
    ledger_lines.provider_code as provider_id,
    ledger_lines.funding_stream as funding_stream_id,
    ledger_lines.service_line as service_line_id,
    ledger_lines.cost_centre,
    ledger_lines.budget_gbp,
    ledger_lines.actual_gbp,
    ledger_lines.actual_gbp - ledger_lines.budget_gbp as variance_gbp,
    ledger_lines.contract_id is not null and contract_versions.contract_version_id is null
        as is_contract_missing_from_register,
    coalesce(contract_versions.provider_code <> ledger_lines.provider_code, false)
        as is_provider_different_from_register,
    ledger_lines.submission_id
from ledger_lines
left join contract_versions
    on contract_versions.area_code = ledger_lines.area_code
    and contract_versions.contract_id = ledger_lines.contract_id
    and {{ version_valid_in_month('contract_versions', 'ledger_lines.month') }}
