-- The area-months treatment KPIs are published for, with what the loaded data
-- cover (decision 1), whether later files can still restate them, and the
-- submissions behind them. Areas are followed by lineage (the code they end at
-- today) so a recode does not restart coverage; each month is labelled with the
-- code valid in it.
with reporting_codes as (
    select * from {{ ref('int_areas__reporting_codes') }}
),

lineage_codes as (
    select distinct area_code, lineage_area_code from reporting_codes
),

episodes as (
    select * from {{ ref('int_treatment__episodes') }}
),

-- reporting months in which a current submission carried rows for the lineage
submitted_months as (
    select distinct
        lineage_codes.lineage_area_code,
        submission_areas.area_code,
        submission_areas.submission_month
    from {{ ref('int_treatment__submission_areas') }} as submission_areas
    inner join lineage_codes
        on lineage_codes.area_code = submission_areas.area_code
),

lineage_spans as (
    select lineage_area_code, min(submission_month) as first_month, max(submission_month) as last_month
    from submitted_months
    group by lineage_area_code
),

-- a file for month S restates every episode open in S-11..S
covered_ranges as (
    select distinct
        lineage_area_code,
        {{ add_months('submission_month', -11) }} as from_month,
        submission_month as to_month
    from submitted_months
),

covered_islands as (
    {{ merge_month_ranges('covered_ranges', ['lineage_area_code']) }}
),

lineage_months as (
    select
        lineage_spans.lineage_area_code,
        lineage_spans.last_month,
        months.month::date as month
    from lineage_spans
    cross join lateral generate_series(
        lineage_spans.first_month, lineage_spans.last_month, interval '1 month'
    ) as months (month)
),

-- the code each month is published under: every code seen for the lineage, as valid then
area_months as (
    select distinct
        reporting_codes.reporting_area_code as area_code,
        lineage_months.month,
        lineage_months.lineage_area_code,
        lineage_months.last_month
    from lineage_months
    inner join (select distinct lineage_area_code, area_code from submitted_months) as seen_codes
        on seen_codes.lineage_area_code = lineage_months.lineage_area_code
    inner join reporting_codes
        on reporting_codes.area_code = seen_codes.area_code
        and lineage_months.month between reporting_codes.from_month and reporting_codes.to_month
),

-- submissions holding the latest version of an episode of the lineage, with the
-- months that episode's rows span
submission_spans as (
    select
        lineage_codes.lineage_area_code,
        episodes.latest_submission_id as submission_id,
        min(episodes.referral_month) as from_month,
        max(coalesce(episodes.discharge_month, episodes.latest_submission_month)) as to_month
    from episodes
    inner join lineage_codes
        on lineage_codes.area_code = episodes.area_code
    group by lineage_codes.lineage_area_code, episodes.latest_submission_id
),

-- windows reach back at most 23 months (T8's previous 12 months)
source_submissions as (
    select
        area_months.area_code,
        area_months.month,
        array_agg(submission_spans.submission_id::text order by submission_spans.submission_id) as source_submissions
    from area_months
    inner join submission_spans
        on submission_spans.lineage_area_code = area_months.lineage_area_code
        and submission_spans.from_month <= area_months.month
        and submission_spans.to_month >= {{ add_months('area_months.month', -23) }}
    group by area_months.area_code, area_months.month
)

select
    area_months.area_code || '|' || to_char(area_months.month, 'YYYY-MM') as area_month_id,
    area_months.area_code,
    area_months.month,
    area_months.lineage_area_code,
    covered_islands.from_month as covered_from_month,
    -- a later file for M..M+11 can still restate the month's rows
    area_months.last_month < {{ add_months('area_months.month', 11) }} as is_provisional,
    coalesce(source_submissions.source_submissions, array[]::text[]) as source_submissions
from area_months
inner join covered_islands
    on covered_islands.lineage_area_code = area_months.lineage_area_code
    and area_months.month between covered_islands.from_month and covered_islands.to_month
left join source_submissions
    on source_submissions.area_code = area_months.area_code
    and source_submissions.month = area_months.month
