-- Type-2 history of the contract register, rebuilt from every current register
-- submission so it is idempotent under reruns and restated register months. A
-- version is a run of register months in which a contract reads the same; it
-- holds from its first register month until the month before the area's next
-- register month that says something else (a change, or the contract gone).
-- A contract keeps its identity (area, contract_id) when its provider changes
-- (novation).
with register_rows as (
    select * from {{ ref('stg_funding__contract_register_rows') }}
),

register_months as (
    select
        area_code,
        register_month,
        lead(register_month) over (partition by area_code order by register_month) as next_register_month,
        dense_rank() over (partition by area_code order by register_month) as register_rank
    from (select distinct area_code, register_month from register_rows) as months
),

fingerprinted_rows as (
    select
        register_rows.*,
        register_months.register_rank,
        md5(concat_ws('|',
            provider_code, provider_name, service_line, start_date, end_date,
            extension_end_date, annual_value_gbp, status
        )) as fingerprint
    from register_rows
    inner join register_months
        on register_months.area_code = register_rows.area_code
        and register_months.register_month = register_rows.register_month
),

changes as (
    select
        *,
        case
            when lag(fingerprint) over contract_history is distinct from fingerprint then 1
            when lag(register_rank) over contract_history <> register_rank - 1 then 1
            else 0
        end as is_change,
        lag(provider_code) over contract_history as previous_row_provider_code
    from fingerprinted_rows
    window contract_history as (partition by area_code, contract_id order by register_month)
),

numbered_rows as (
    select
        *,
        sum(is_change) over (
            partition by area_code, contract_id order by register_month rows unbounded preceding
        ) as version_number
    from changes
),

versions as (
    select
        area_code,
        contract_id,
        version_number,
        min(register_month) as valid_from_month,
        max(register_month) as last_register_month,
        min(submission_id) as first_submission_id,
        max(submission_id) as last_submission_id
    from numbered_rows
    group by area_code, contract_id, version_number
)

select
    versions.area_code || '|' || versions.contract_id || '|' || to_char(versions.valid_from_month, 'YYYY-MM')
        as contract_version_id,
    versions.area_code,
    versions.contract_id,
    versions.version_number::integer as version_number,
    first_rows.provider_code,
    first_rows.provider_name,
    first_rows.service_line,
    first_rows.start_date,
    first_rows.end_date,
    first_rows.extension_end_date,
    first_rows.effective_end_date,
    first_rows.annual_value_gbp,
    first_rows.status,
    versions.valid_from_month,
    {{ add_months('register_months.next_register_month', -1) }} as valid_to_month,
    register_months.next_register_month is null as is_current,
    coalesce(
        first_rows.previous_row_provider_code is not null
        and first_rows.previous_row_provider_code <> first_rows.provider_code,
        false
    ) as is_novation,
    case
        when first_rows.previous_row_provider_code <> first_rows.provider_code then first_rows.previous_row_provider_code
    end as previous_provider_code,
    versions.first_submission_id,
    versions.last_submission_id
from versions
inner join numbered_rows as first_rows
    on first_rows.area_code = versions.area_code
    and first_rows.contract_id = versions.contract_id
    and first_rows.register_month = versions.valid_from_month
inner join register_months
    on register_months.area_code = versions.area_code
    and register_months.register_month = versions.last_register_month
