-- Criminal-justice KPIs C1, C2, C3 and C5 (kpis.md; C4 is counted from treatment
-- episodes in int_kpi__treatment) before disclosure control, in the shape
-- kpi_monthly unions. Each is published for the area-months its source holds.
-- C2 of an area-month whose latest police pull was refused or found the API down
-- carries quality_flag and quality_note (kpi_monthly publishes them): stale_source
-- when an older pull stays in force, missing_source (NULL figures) when none does.
with releases as (
    select * from {{ ref('stg_cj__prison_releases') }}
),

episodes as (
    select * from {{ ref('int_treatment__episodes') }}
),

return_measures as (
    select * from {{ ref('stg_cj__return_measures') }}
),

street_crimes as (
    select * from {{ ref('stg_police__street_crimes') }}
),

police_submissions as (
    select submission_id, source_code as area_code, period_start as month
    from {{ ref('stg_raw__submissions') }}
    where feed = 'police'
),

-- area-months whose latest pull left the last good one (or none) in force
police_gaps as (
    select *
    from {{ ref('stg_ops__police_pulls') }}
    where is_gap
),

treatment_submissions as (
    select submission_id, source_code as provider_code, period_start as month
    from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
),

release_submissions as (
    select submission_id, source_code as area_code, period_start as month
    from {{ ref('stg_raw__submissions') }}
    where feed = 'prison-releases'
),

-- C1: releases with a need, linked through person_key to an episode starting
-- treatment from the release day to day 21 inclusive (any area, decision 3)
releases_with_need as (
    select
        releases.*,
        exists (
            select 1
            from episodes
            where releases.is_linkable
                and episodes.person_id = releases.person_key
                and episodes.first_intervention_date between releases.release_date and releases.release_date + 21
        ) as has_treatment_within_21_days
    from releases
    where releases.has_treatment_need
),

-- counted per submission before joining the submissions: a join first was planned as a
-- loop over the submissions that re-read the releases for each (quadratic in history)
release_counts as (
    select
        submission_id,
        max(release_date) as last_release_date,
        count(*) as releases_with_need,
        count(*) filter (where has_treatment_within_21_days) as releases_linked,
        count(*) filter (where not is_linkable) as releases_unlinkable
    from releases_with_need
    group by submission_id
),

release_months as (
    select
        release_submissions.area_code,
        release_submissions.month,
        release_submissions.submission_id,
        -- the treatment month that must be loaded before C1 is final
        date_trunc(
            'month',
            coalesce(release_counts.last_release_date, {{ add_months('release_submissions.month', 1) }} - 1) + 21
        )::date as covering_month,
        coalesce(release_counts.releases_with_need, 0) as releases_with_need,
        coalesce(release_counts.releases_linked, 0) as releases_linked,
        coalesce(release_counts.releases_unlinkable, 0) as releases_unlinkable
    from release_submissions
    left join release_counts
        on release_counts.submission_id = release_submissions.submission_id
),

-- the providers that submitted for each month
provider_months as (
    select distinct provider_code, month
    from treatment_submissions
),

-- C1 for M is final once the covering month has treatment files and every provider that
-- submitted for M has submitted for it too; judged once per pair of months, not once per
-- area-month with a scan of every treatment submission for each (quadratic in history)
month_pair_finality as (
    select
        month_pairs.month,
        month_pairs.covering_month,
        exists (select 1 from provider_months where provider_months.month = month_pairs.covering_month)
        and coalesce(
            bool_and(submitted_later.provider_code is not null)
                filter (where submitted_for_m.provider_code is not null),
            true
        ) as is_final
    from (select distinct month, covering_month from release_months) as month_pairs
    left join provider_months as submitted_for_m
        on submitted_for_m.month = month_pairs.month
    left join provider_months as submitted_later
        on submitted_later.provider_code = submitted_for_m.provider_code
        and submitted_later.month = month_pairs.covering_month
    group by month_pairs.month, month_pairs.covering_month
),

release_month_status as (
    select
        release_months.*,
        month_pair_finality.is_final,
        array(
            select release_months.submission_id::text
            union
            select treatment_submissions.submission_id::text
            from treatment_submissions
            where treatment_submissions.month between release_months.month and release_months.covering_month
        ) as source_submissions
    from release_months
    inner join month_pair_finality
        on month_pair_finality.month = release_months.month
        and month_pair_finality.covering_month = release_months.covering_month
),

c1 as (
    select
        area_code, month, 'C1' as kpi_code, 'all' as breakdown,
        releases_linked as numerator, releases_with_need as denominator,
        {{ percentage('releases_linked', 'releases_with_need') }} as value,
        'rate' as disclosure_rule, true as is_proportion, not is_final as is_provisional, source_submissions
    from release_month_status
    where releases_with_need > 0
    union all
    select
        area_code, month, 'C1_unlinked', 'all',
        releases_unlinkable, null, releases_unlinkable,
        'count', false, not is_final, source_submissions
    from release_month_status
),

-- C2: drugs crimes by outcome; ';' in an outcome text becomes ',' so the
-- breakdown stays name=value pairs
drugs_crimes as (
    select
        area_code,
        month,
        submission_id,
        coalesce(replace(outcome_category, ';', ','), 'No outcome recorded') as outcome
    from street_crimes
    where requested_category = 'drugs'
),

-- the police pulls holding any crime: found by the crimes' key, not by reading every crime
police_months as (
    select police_submissions.submission_id, police_submissions.area_code, police_submissions.month
    from police_submissions
    where exists (
        select 1 from {{ source('raw', 'police_crimes') }} as crime_rows
        where crime_rows.submission_id = police_submissions.submission_id
    )
),

drugs_crime_counts as (
    select
        police_months.area_code,
        police_months.month,
        police_months.submission_id,
        grouping(drugs_crimes.outcome) = 1 as is_total,
        drugs_crimes.outcome,
        count(drugs_crimes.submission_id) as crime_count
    from police_months
    left join drugs_crimes
        on drugs_crimes.submission_id = police_months.submission_id
    group by grouping sets (
        (police_months.area_code, police_months.month, police_months.submission_id),
        (police_months.area_code, police_months.month, police_months.submission_id, drugs_crimes.outcome)
    )
    having grouping(drugs_crimes.outcome) = 1 or drugs_crimes.outcome is not null
),

populations as (
    select area_code, year, population_all_ages
    from {{ ref('ref_population_mid_year') }}
),

c2 as (
    select
        area_code, month, 'C2' as kpi_code,
        case when is_total then 'all' else 'outcome=' || outcome end as breakdown,
        crime_count as numerator, null::numeric as denominator, crime_count as value,
        array[submission_id::text] as source_submissions
    from drugs_crime_counts
    union all
    -- per 10,000 residents: the latest mid-year estimate up to M's year
    select
        drugs_crime_counts.area_code, drugs_crime_counts.month, 'C2_per_10k', 'all',
        drugs_crime_counts.crime_count, population.population_all_ages,
        round(10000 * drugs_crime_counts.crime_count::numeric / population.population_all_ages, 2),
        array[drugs_crime_counts.submission_id::text]
    from drugs_crime_counts
    cross join lateral (
        select populations.population_all_ages
        from populations
        where populations.area_code = drugs_crime_counts.area_code
        order by populations.year <= extract(year from drugs_crime_counts.month) desc, populations.year desc
        limit 1
    ) as population
    where drugs_crime_counts.is_total
),

-- a gap with no pull in force that holds crimes: C2 published as missing (NULL, flagged),
-- not silently absent; its source is the refused answer, if that is what the gap was
c2_missing as (
    select
        police_gaps.area_code, police_gaps.month, c2_kpis.kpi_code, 'all' as breakdown,
        null::numeric as numerator, null::numeric as denominator, null::numeric as value,
        array_remove(array[police_gaps.submission_id::text], null) as source_submissions
    from police_gaps
    cross join (values ('C2'), ('C2_per_10k')) as c2_kpis (kpi_code)
    where not exists (
        select 1 from police_months
        where police_months.area_code = police_gaps.area_code and police_months.month = police_gaps.month
    )
),

-- C3, C5 from the partnership return; a measure missing is unknown, not zero
return_months as (
    select
        area_code,
        month,
        array_agg(distinct submission_id::text) as source_submissions,
        max(value) filter (where measure = 'dtoa_tests') as dtoa_tests,
        max(value) filter (where measure = 'dtoa_positive') as dtoa_positive,
        max(value) filter (where measure = 'required_assessments') as required_assessments,
        max(value) filter (where measure = 'required_assessments_attended') as required_assessments_attended,
        max(value) filter (where measure = 'drr_starts') as drr_starts,
        max(value) filter (where measure = 'drr_completions') as drr_completions,
        max(value) filter (where measure = 'atr_starts') as atr_starts,
        max(value) filter (where measure = 'atr_completions') as atr_completions
    from return_measures
    group by area_code, month
),

c3 as (
    select
        area_code, month, 'C3_positivity' as kpi_code, 'all' as breakdown,
        dtoa_positive as numerator, dtoa_tests as denominator,
        {{ percentage('dtoa_positive', 'dtoa_tests') }} as value, source_submissions
    from return_months
    where dtoa_positive is not null and dtoa_tests > 0
    union all
    select
        area_code, month, 'C3_attendance', 'all',
        required_assessments_attended, required_assessments,
        {{ percentage('required_assessments_attended', 'required_assessments') }}, source_submissions
    from return_months
    where required_assessments_attended is not null and required_assessments > 0
),

c5 as (
    select
        return_months.area_code, return_months.month, c5_measures.kpi_code,
        'requirement=' || c5_measures.requirement as breakdown,
        c5_measures.measure_value as numerator, null::numeric as denominator, c5_measures.measure_value as value,
        return_months.source_submissions
    from return_months
    cross join lateral (
        values
            ('C5_starts', 'drr', return_months.drr_starts),
            ('C5_completions', 'drr', return_months.drr_completions),
            ('C5_starts', 'atr', return_months.atr_starts),
            ('C5_completions', 'atr', return_months.atr_completions)
    ) as c5_measures (kpi_code, requirement, measure_value)
    where c5_measures.measure_value is not null
),

kpi_values as (
    select
        area_code, month, kpi_code, breakdown, numerator, denominator, value,
        disclosure_rule, is_proportion, is_provisional, source_submissions, false as is_source_missing
    from c1
    union all
    select
        area_code, month, kpi_code, breakdown, numerator, denominator, value,
        'none', false, false, source_submissions, false
    from c2
    union all
    select
        area_code, month, kpi_code, breakdown, numerator, denominator, value,
        'none', false, false, source_submissions, true
    from c2_missing
    union all
    select
        area_code, month, kpi_code, breakdown, numerator, denominator, value,
        'rate', true, false, source_submissions, false
    from c3
    union all
    select
        area_code, month, kpi_code, breakdown, numerator, denominator, value,
        'count', false, false, source_submissions, false
    from c5
),

-- what a reader of C2 must know when the latest pull did not give it (docs/operations.md)
flagged_values as (
    select
        kpi_values.*,
        case
            when police_gaps.area_code is null then null
            when kpi_values.is_source_missing then 'missing_source'
            else 'stale_source'
        end as quality_flag,
        case when police_gaps.area_code is not null then
            case police_gaps.status
                when 'unavailable' then 'data.police.uk was unavailable at the pull of '
                    || to_char(police_gaps.pulled_at, 'YYYY-MM-DD') || ' (' || left(police_gaps.reason, 160) || ')'
                else 'the answer of the pull of ' || to_char(police_gaps.pulled_at, 'YYYY-MM-DD')
                    || ' was refused (' || police_gaps.refusal_code || ')'
            end
            || case
                when kpi_values.is_source_missing then '; no earlier pull is in force: C2 missing'
                else '; C2 from the earlier pull'
                    || coalesce(' of ' || to_char(police_gaps.in_force_received_at, 'YYYY-MM-DD'), '')
                    || ' (submission ' || array_to_string(kpi_values.source_submissions, ', ') || ')'
            end
        end as quality_note
    from kpi_values
    left join police_gaps
        on kpi_values.kpi_code in ('C2', 'C2_per_10k')
        and police_gaps.area_code = kpi_values.area_code
        and police_gaps.month = kpi_values.month
)

select
    area_code,
    month,
    kpi_code,
    breakdown,
    numerator::numeric as numerator,
    denominator::numeric as denominator,
    value::numeric as value,
    case when is_proportion then {{ wilson_lower('numerator', 'denominator') }} end as ci_lower,
    case when is_proportion then {{ wilson_upper('numerator', 'denominator') }} end as ci_upper,
    -- a flagged figure changes once the API gives the area-month again
    is_provisional or quality_flag is not null as is_provisional,
    array(select distinct unnest(source_submissions)::bigint order by 1)::text[] as source_submissions,
    disclosure_rule,
    null::text as suppression_family,
    quality_flag,
    quality_note
from flagged_values
