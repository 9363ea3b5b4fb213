-- Gate (issue 4): for every area and month, the published F1 month totals equal
-- the sum of the current ledger file's lines to the penny. Computed from the
-- raw tables, not through the models that built F1.
with current_ledger_submissions as (
    select distinct on (source_code, period_start) submission_id, source_code, period_start
    from {{ source('raw', 'submissions') }}
    where feed = 'funding' and status = 'loaded'
    order by source_code, period_start, submission_id desc
),

file_totals as (
    select
        current_ledger_submissions.source_code as area_code,
        current_ledger_submissions.period_start as month,
        sum(lines.actual_gbp) as actual_gbp,
        sum(lines.budget_gbp) as budget_gbp
    from current_ledger_submissions
    inner join {{ source('raw', 'funding_ledger_lines') }} as lines
        on lines.submission_id = current_ledger_submissions.submission_id
    group by current_ledger_submissions.source_code, current_ledger_submissions.period_start
),

published_totals as (
    select
        area_code,
        month,
        max(value) filter (where kpi_code = 'F1_actual') as actual_gbp,
        max(value) filter (where kpi_code = 'F1_budget') as budget_gbp
    from {{ ref('kpi_monthly') }}
    where kpi_code in ('F1_actual', 'F1_budget') and breakdown = 'period=month'
    group by area_code, month
)

select
    file_totals.area_code,
    file_totals.month,
    file_totals.actual_gbp as file_actual_gbp,
    published_totals.actual_gbp as published_actual_gbp,
    file_totals.budget_gbp as file_budget_gbp,
    published_totals.budget_gbp as published_budget_gbp
from file_totals
left join published_totals
    on published_totals.area_code = file_totals.area_code
    and published_totals.month = file_totals.month
where published_totals.actual_gbp is distinct from file_totals.actual_gbp
    or published_totals.budget_gbp is distinct from file_totals.budget_gbp
