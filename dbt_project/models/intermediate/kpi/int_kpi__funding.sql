-- Funding KPIs F1, F2 and F5 (kpis.md) before disclosure control, in the shape
-- of marts.kpi_monthly plus the disclosure columns the shared macro reads. Money
-- stays numeric(14, 2) until the published value. F3 and F4 divide by treatment
-- counts: int_kpi__funding_unit_costs, so this model need not wait for treatment.
with ledger_lines as (
    select * from {{ ref('stg_funding__ledger_lines') }}
),

months as (
    select * from {{ ref('dim_month') }}
),

contract_versions as (
    select * from {{ ref('int_funding__contract_versions') }}
),

grant_allocations as (
    select * from {{ ref('fct_grant_allocations') }}
),

funding_streams as (
    select * from {{ ref('dim_funding_stream') }}
),

financial_years as (
    select * from {{ ref('dim_financial_year') }}
),

-- what F2 compares each stream's allocation with: its own last year (decision 15), or,
-- for a stream new this year that replaced another (dim_funding_stream), the replaced
-- stream's allocation last year (decision 22: DATRIG 2025-26 against SSMTRG 2024-25),
-- provided the replaced stream has no allocation of its own this year
grant_comparisons as (
    select
        grant_allocations.area_id,
        grant_allocations.financial_year_id,
        grant_allocations.funding_stream_id,
        grant_allocations.allocation_gbp,
        grant_allocations.submission_id,
        coalesce(grant_allocations.previous_year_allocation_gbp, replaced_stream.allocation_gbp)
            as previous_year_allocation_gbp,
        case
            when grant_allocations.previous_year_allocation_gbp is not null
                then grant_allocations.previous_year_submission_id
            else replaced_stream.submission_id
        end as previous_year_submission_id
    from grant_allocations
    inner join funding_streams
        on funding_streams.funding_stream_id = grant_allocations.funding_stream_id
    inner join financial_years
        on financial_years.financial_year_id = grant_allocations.financial_year_id
    left join financial_years as previous_years
        on previous_years.financial_year_start = financial_years.financial_year_start - 1
    left join grant_allocations as replaced_stream
        on grant_allocations.previous_year_allocation_gbp is null
        and replaced_stream.area_id = grant_allocations.area_id
        and replaced_stream.funding_stream_id = funding_streams.replaces_funding_stream_id
        and replaced_stream.financial_year_id = previous_years.financial_year_id
        and not exists (
            select 1
            from grant_allocations as replaced_this_year
            where replaced_this_year.area_id = grant_allocations.area_id
                and replaced_this_year.financial_year_id = grant_allocations.financial_year_id
                and replaced_this_year.funding_stream_id = funding_streams.replaces_funding_stream_id
        )
),

-- areas' ledger months, whether every month from April to M is loaded
-- (decision 14), and whether a later month's ledger has arrived yet
ledger_months as (
    select
        area_code,
        month,
        array_agg(distinct submission_id::text order by submission_id::text) as source_submissions
    from ledger_lines
    group by area_code, month
),

ledger_month_status as (
    select
        ledger_months.area_code,
        ledger_months.month,
        months.financial_year,
        months.financial_month_number,
        ledger_months.source_submissions,
        count(*) over financial_year_to_date = months.financial_month_number as is_year_to_date_complete,
        lead(ledger_months.month) over (partition by ledger_months.area_code order by ledger_months.month) is null
            as is_latest_ledger_month
    from ledger_months
    inner join months
        on months.month_id = ledger_months.month
    window financial_year_to_date as (
        partition by ledger_months.area_code, months.financial_year order by ledger_months.month
    )
),

-- each area's ledger month summed whole and by stream, service line and contract
-- (lines without a contract are in the totals, not in the contract breakdown);
-- year to date then adds up these sums, not the lines again
month_groups as (
    select
        area_code,
        month,
        case
            when grouping(funding_stream) = 0 then 'funding_stream'
            when grouping(service_line) = 0 then 'service_line'
            when grouping(contract_id) = 0 then 'contract_id'
        end as dimension,
        coalesce(funding_stream, service_line, contract_id) as dimension_value,
        submission_id,
        sum(budget_gbp) as budget_gbp,
        sum(actual_gbp) as actual_gbp
    from ledger_lines
    group by grouping sets (
        (area_code, month, submission_id),
        (area_code, month, submission_id, funding_stream),
        (area_code, month, submission_id, service_line),
        (area_code, month, submission_id, contract_id)
    )
    having not (grouping(contract_id) = 0 and contract_id is null)
),

-- each group in its own month, and year to date in each month of the same
-- financial year from its own on
period_groups as (
    select
        ledger_month_status.area_code,
        ledger_month_status.month,
        'month' as period,
        month_groups.dimension,
        month_groups.dimension_value,
        month_groups.budget_gbp,
        month_groups.actual_gbp,
        month_groups.submission_id
    from ledger_month_status
    inner join month_groups
        on month_groups.area_code = ledger_month_status.area_code
        and month_groups.month = ledger_month_status.month
    union all
    select
        ledger_month_status.area_code,
        ledger_month_status.month,
        'fytd',
        month_groups.dimension,
        month_groups.dimension_value,
        month_groups.budget_gbp,
        month_groups.actual_gbp,
        month_groups.submission_id
    from ledger_month_status
    -- the area's ledger months of the same financial year up to M, then their sums
    inner join ledger_month_status as line_months
        on line_months.area_code = ledger_month_status.area_code
        and line_months.financial_year = ledger_month_status.financial_year
        and line_months.month <= ledger_month_status.month
    inner join month_groups
        on month_groups.area_code = line_months.area_code
        and month_groups.month = line_months.month
    where ledger_month_status.is_year_to_date_complete
),

period_totals as (
    select
        area_code,
        month,
        period,
        dimension,
        dimension_value,
        sum(budget_gbp) as budget_gbp,
        sum(actual_gbp) as actual_gbp,
        -- distinct and in submission order, as published: no sorting again per row
        array_agg(distinct submission_id order by submission_id)::text[] as source_submissions
    from period_groups
    group by area_code, month, period, dimension, dimension_value
),

f1_totals as (
    select
        area_code,
        month,
        period,
        case dimension
            when 'funding_stream' then 'funding_stream=' || dimension_value || ';period=' || period
            when 'service_line' then 'period=' || period || ';service_line=' || dimension_value
            when 'contract_id' then 'contract_id=' || dimension_value || ';period=' || period
            else 'period=' || period
        end as breakdown,
        budget_gbp,
        actual_gbp,
        source_submissions
    from period_totals
),

f1 as (
    select
        area_code, month, 'F1_actual' as kpi_code, breakdown,
        actual_gbp as numerator, null::numeric as denominator, actual_gbp as value, source_submissions
    from f1_totals
    union all
    select area_code, month, 'F1_budget', breakdown, budget_gbp, null, budget_gbp, source_submissions
    from f1_totals
    union all
    select area_code, month, 'F1_variance', breakdown, actual_gbp - budget_gbp, null, actual_gbp - budget_gbp,
        source_submissions
    from f1_totals
    union all
    select area_code, month, 'F1_variance_pct', breakdown, actual_gbp - budget_gbp, budget_gbp,
        round(100 * (actual_gbp - budget_gbp) / nullif(budget_gbp, 0), 1), source_submissions
    from f1_totals
    where budget_gbp <> 0
),

-- F2: this year's allocation on last year's, streams present in both years
-- with last year above 0 (decision 15) or new this year in place of a stream
-- that was (decision 22), for every ledger month of the year; the breakdown
-- names this year's stream
f2 as (
    select
        ledger_month_status.area_code,
        ledger_month_status.month,
        'F2' as kpi_code,
        'funding_stream=' || grant_comparisons.funding_stream_id as breakdown,
        grant_comparisons.allocation_gbp as numerator,
        grant_comparisons.previous_year_allocation_gbp as denominator,
        round(
            100 * (grant_comparisons.allocation_gbp - grant_comparisons.previous_year_allocation_gbp)
            / grant_comparisons.previous_year_allocation_gbp,
            1
        ) as value,
        array(
            select distinct unnest(
                array[grant_comparisons.previous_year_submission_id, grant_comparisons.submission_id]
            )
            order by 1
        )::text[] as source_submissions
    from ledger_month_status
    inner join grant_comparisons
        on grant_comparisons.area_id = ledger_month_status.area_code
        and grant_comparisons.financial_year_id = ledger_month_status.financial_year
    where grant_comparisons.previous_year_allocation_gbp > 0
),

-- F5: contracts in the register as at M whose effective end falls from the
-- first day of M+1 to the last day of M+6 (decision 16)
register_as_at as (
    select
        ledger_month_status.area_code,
        ledger_month_status.month,
        contract_versions.contract_id,
        contract_versions.annual_value_gbp,
        contract_versions.effective_end_date,
        contract_versions.last_submission_id
    from ledger_month_status
    inner join contract_versions
        on contract_versions.area_code = ledger_month_status.area_code
        and {{ version_valid_in_month('contract_versions', 'ledger_month_status.month') }}
),

f5 as (
    select
        area_code, month, 'F5' as kpi_code, 'contract_id=' || contract_id as breakdown,
        annual_value_gbp as numerator, null::numeric as denominator, annual_value_gbp as value,
        array[last_submission_id::text] as source_submissions
    from register_as_at
    where effective_end_date between {{ add_months('month', 1) }} and {{ add_months('month', 7) }} - 1
),

kpi_values as (
    select *, 'none' as disclosure_rule from f1
    union all
    select *, 'none' from f2
    union all
    select *, 'none' from f5
)

select
    kpi_values.area_code,
    kpi_values.month,
    kpi_values.kpi_code,
    kpi_values.breakdown,
    kpi_values.numerator::numeric as numerator,
    kpi_values.denominator::numeric as denominator,
    kpi_values.value::numeric as value,
    null::numeric as ci_lower,
    null::numeric as ci_upper,
    -- month-end corrections come with the next close: a month is provisional
    -- until a later month's ledger has loaded
    ledger_month_status.is_latest_ledger_month as is_provisional,
    kpi_values.source_submissions,
    kpi_values.disclosure_rule,
    null::text as suppression_family
from kpi_values
inner join ledger_month_status
    on ledger_month_status.area_code = kpi_values.area_code
    and ledger_month_status.month = kpi_values.month
