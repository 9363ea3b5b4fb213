-- Contracts as a type-2 dimension: one row per version of a contract in the
-- register. "What did the register say in month M" is
-- `where M between valid_from_month and coalesce(valid_to_month, 'infinity')`.
with versions as (
    select * from {{ ref('int_funding__contract_versions') }}
)

select
    contract_version_id,
    contract_id,
    area_code as area_id,
    version_number,
    provider_code as provider_id,
    provider_name,
    service_line as service_line_id,
    start_date,
    end_date,
    extension_end_date,
    effective_end_date,
    annual_value_gbp,
    status,
    valid_from_month,
    valid_to_month,
    is_current,
    is_novation,
    previous_provider_code as previous_provider_id,
    first_submission_id,
    last_submission_id
from versions
