-- Which files each reporting month should bring, and the one in force if it came.
-- Area-level feeds: every area that has sent the feed before, from its first month.
-- Treatment: every provider holding a live treatment contract (active or extended)
-- in the area's register for the month, if it sends treatment files at all
-- (residential rehab, detox and pharmacy contractors report through others).
-- The file is due on `due_day` of the month after the reporting month.
with deadlines as (
    select * from {{ ref('ref_feed_deadlines') }}
),

submissions as (
    select * from {{ ref('stg_raw__submissions') }}
),

contract_versions as (
    select * from {{ ref('int_funding__contract_versions') }}
),

monthly_submissions as (
    select submissions.*
    from submissions
    inner join deadlines on deadlines.feed = submissions.feed
),

reporting_months as (
    select months.month::date as month
    from generate_series(
        (select min(period_start) from monthly_submissions),
        (select max(period_start) from monthly_submissions),
        interval '1 month'
    ) as months (month)
),

area_feed_starts as (
    select monthly_submissions.feed, monthly_submissions.source_code as area_code, min(period_start) as first_month
    from monthly_submissions
    inner join deadlines
        on deadlines.feed = monthly_submissions.feed
        and deadlines.expected_sources = 'areas'
    group by monthly_submissions.feed, monthly_submissions.source_code
),

expected_area_files as (
    select
        area_feed_starts.feed,
        area_feed_starts.area_code,
        area_feed_starts.area_code as source_code,
        reporting_months.month
    from area_feed_starts
    inner join reporting_months on reporting_months.month >= area_feed_starts.first_month
),

treatment_submitters as (
    select distinct source_code as provider_code
    from monthly_submissions
    where feed = 'treatment'
),

expected_treatment_files as (
    select distinct
        'treatment' as feed,
        contract_versions.area_code,
        contract_versions.provider_code as source_code,
        reporting_months.month
    from contract_versions
    inner join reporting_months
        on {{ version_valid_in_month('contract_versions', 'reporting_months.month') }}
    inner join treatment_submitters
        on treatment_submitters.provider_code = contract_versions.provider_code
    where contract_versions.status in ('active', 'extended')
        and contract_versions.service_line not in ('prevention', 'other')
        and contract_versions.start_date <= reporting_months.month + interval '1 month' - interval '1 day'
        and contract_versions.effective_end_date >= reporting_months.month
),

expected_files as (
    select * from expected_area_files
    union all
    select * from expected_treatment_files
)

select
    expected_files.feed || '|' || expected_files.source_code || '|' || expected_files.area_code
        || '|' || to_char(expected_files.month, 'YYYY-MM') as expected_submission_id,
    expected_files.feed,
    expected_files.source_code,
    expected_files.area_code,
    expected_files.month,
    ({{ add_months('expected_files.month', 1) }} + (deadlines.due_day - 1))::date as due_date,
    monthly_submissions.submission_id,
    monthly_submissions.received_at,
    monthly_submissions.submission_id is not null as is_received
from expected_files
inner join deadlines on deadlines.feed = expected_files.feed
left join monthly_submissions
    on monthly_submissions.feed = expected_files.feed
    and monthly_submissions.source_code = expected_files.source_code
    and monthly_submissions.period_start = expected_files.month
