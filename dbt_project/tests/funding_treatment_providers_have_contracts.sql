-- Warning, not a refusal (issue 4): a provider treating an area's residents in
-- a month with no contract in that area's register as at the month. Over the
-- twelve months the newest treatment files restate: earlier months were warned
-- about by the builds that read them, and a later register only clears a warning.
{{ config(severity='warn') }}

with newest_months as (
    select {{ add_months('max(latest_submission_month)', -11) }} as first_month
    from {{ ref('fct_treatment_episodes') }}
),

provider_area_months as (
    select distinct
        episodes.provider_id,
        episodes.area_id,
        months.month_id
    from {{ ref('fct_treatment_episodes') }} as episodes
    inner join {{ ref('dim_month') }} as months
        on episodes.first_intervention_month <= months.month_id
        and (episodes.discharge_month is null or episodes.discharge_month >= months.month_id)
        and months.month_id <= episodes.latest_submission_month
    inner join newest_months
        on months.month_id >= newest_months.first_month
        and coalesce(episodes.discharge_month, episodes.latest_submission_month) >= newest_months.first_month
    where episodes.has_structured_treatment
),

register_area_months as (
    select distinct area_id, valid_from_month, valid_to_month
    from {{ ref('dim_contract') }}
)

select provider_area_months.*
from provider_area_months
-- only where the area has a register that month
inner join register_area_months
    on register_area_months.area_id = provider_area_months.area_id
    and {{ version_valid_in_month('register_area_months', 'provider_area_months.month_id') }}
where not exists (
    select 1
    from {{ ref('dim_contract') }} as contracts
    where contracts.area_id = provider_area_months.area_id
        and contracts.provider_id = provider_area_months.provider_id
        and {{ version_valid_in_month('contracts', 'provider_area_months.month_id') }}
)
