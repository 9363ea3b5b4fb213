-- Providers, conformed across domains: every code that submits treatment files
-- or holds a contract in a register, named as the latest register names it.
-- Area-free: read whole by every analyst, so nothing here counts or lists what a
-- provider does in each area (that is fct_provider_area_episodes, under row-level
-- security by area).
with submissions as (
    select * from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
),

register_rows as (
    select * from {{ ref('stg_funding__contract_register_rows') }}
),

provider_submissions as (
    select
        source_code as provider_id,
        min(period_start) as first_submission_month,
        max(period_start) as latest_submission_month,
        count(*) as submission_count
    from submissions
    group by source_code
),

provider_names as (
    select distinct on (provider_code)
        provider_code as provider_id,
        provider_name
    from register_rows
    order by provider_code, register_month desc, contract_id
),

provider_ids as (
    select provider_id from provider_submissions
    union
    select provider_id from provider_names
)

select
    provider_ids.provider_id,
    provider_names.provider_name,
    provider_submissions.provider_id is not null as is_treatment_submitter,
    provider_names.provider_id is not null as is_in_contract_register,
    provider_submissions.first_submission_month,
    provider_submissions.latest_submission_month,
    coalesce(provider_submissions.submission_count, 0) as submission_count
from provider_ids
left join provider_submissions
    on provider_submissions.provider_id = provider_ids.provider_id
left join provider_names
    on provider_names.provider_id = provider_ids.provider_id
