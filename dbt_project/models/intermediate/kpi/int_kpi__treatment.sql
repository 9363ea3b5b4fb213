-- Treatment KPIs T1-T8 (kpis.md) for every area-month the treatment feed
-- covers, before disclosure control, in the shape of marts.kpi_monthly plus the
-- disclosure columns the shared macro reads. Incremental on the month: a build
-- recomputes the months new files restate (decision 11).
{{ config(**treatment_month_increments()) }}

with build as (
    select
        {{ treatment_months_from() }} as first_month,
        {{ treatment_build_state() }}
),

area_months as (
    select area_months.*
    from {{ ref('int_treatment__area_months') }} as area_months
    inner join build on area_months.month >= build.first_month
),

-- episodes with an event in the months this build counts or the 23 before them (T8's window)
episodes as (
    select episodes.*
    from {{ ref('int_treatment__episodes') }} as episodes
    inner join build
        on greatest(episodes.referral_month, episodes.first_intervention_month, episodes.discharge_month)
            >= {{ add_months('build.first_month', -23) }}
),

person_months as (
    select person_months.*
    from {{ ref('int_treatment__person_months') }} as person_months
    inner join build on person_months.month >= build.first_month
),

-- the reported codes published under each area-month (recodes roll forward)
area_month_codes as (
    select
        area_months.area_code,
        area_months.month,
        reporting_codes.area_code as reported_area_code
    from area_months
    inner join {{ ref('int_areas__reporting_codes') }} as reporting_codes
        on reporting_codes.reporting_area_code = area_months.area_code
        and area_months.month between reporting_codes.from_month and reporting_codes.to_month
),

-- T1, T4: persons counted from their month ranges
range_counts as (
    select person_counts.*
    from {{ ref('int_kpi__treatment_person_counts') }} as person_counts
    inner join build on person_counts.month >= build.first_month
),

t1_breakdowns (breakdown, suppression_family) as (
    values
        ('all', null),
        ('service_type=adult', 'T1|service_type'),
        ('service_type=young_people', 'T1|service_type'),
        ('kpi_group=opiate', 'T1|kpi_group'),
        ('kpi_group=non_opiate', 'T1|kpi_group'),
        ('kpi_group=alcohol', 'T1|kpi_group')
),

t1 as (
    select
        area_months.area_code,
        area_months.month,
        'T1' as kpi_code,
        t1_breakdowns.breakdown,
        coalesce(range_counts.person_count, 0) as numerator,
        null::numeric as denominator,
        coalesce(range_counts.person_count, 0) as value,
        11 as lookback_months,
        'count' as disclosure_rule,
        t1_breakdowns.suppression_family,
        false as is_proportion
    from area_months
    cross join t1_breakdowns
    left join range_counts
        on range_counts.area_code = area_months.area_code
        and range_counts.month = area_months.month
        and range_counts.measure = 'T1'
        and range_counts.breakdown = t1_breakdowns.breakdown
),

t4 as (
    select
        denominators.area_code,
        denominators.month,
        'T4' as kpi_code,
        denominators.breakdown,
        coalesce(numerators.person_count, 0) as numerator,
        denominators.person_count as denominator,
        {{ percentage('coalesce(numerators.person_count, 0)', 'denominators.person_count') }} as value,
        17 as lookback_months,
        'rate' as disclosure_rule,
        null as suppression_family,
        true as is_proportion
    from range_counts as denominators
    left join range_counts as numerators
        on numerators.area_code = denominators.area_code
        and numerators.month = denominators.month
        and numerators.breakdown = denominators.breakdown
        and numerators.measure = 'T4_numerator'
    where denominators.measure = 'T4_denominator'
),

-- T2: persons whose episode's first intervention is in M with no other episode
-- of theirs in structured treatment the day before
new_presentations as (
    select
        area_month_codes.area_code,
        area_month_codes.month,
        episodes.person_id,
        episodes.service_type
    from episodes
    inner join area_month_codes
        on area_month_codes.reported_area_code = episodes.area_code
        and area_month_codes.month = episodes.first_intervention_month
    where episodes.is_new_presentation
),

new_presentation_counts as (
    select area_code, month, 'all' as breakdown, count(distinct person_id) as person_count
    from new_presentations
    group by area_code, month
    union all
    select area_code, month, 'service_type=' || service_type, count(distinct person_id)
    from new_presentations
    group by area_code, month, service_type
),

t2 as (
    select
        area_months.area_code,
        area_months.month,
        'T2' as kpi_code,
        t2_breakdowns.breakdown,
        coalesce(new_presentation_counts.person_count, 0) as numerator,
        null::numeric as denominator,
        coalesce(new_presentation_counts.person_count, 0) as value,
        1 as lookback_months,
        'count' as disclosure_rule,
        t2_breakdowns.suppression_family,
        false as is_proportion
    from area_months
    cross join (
        values
            ('all', null),
            ('service_type=adult', 'T2|service_type'),
            ('service_type=young_people', 'T2|service_type')
    ) as t2_breakdowns (breakdown, suppression_family)
    left join new_presentation_counts
        on new_presentation_counts.area_code = area_months.area_code
        and new_presentation_counts.month = area_months.month
        and new_presentation_counts.breakdown = t2_breakdowns.breakdown
),

-- T3: episodes starting structured treatment in M; whole days (decision 7)
waits as (
    select
        area_month_codes.area_code,
        area_month_codes.month,
        count(*) as episode_count,
        count(*) filter (where episodes.wait_days > 21) as over_21_days_count,
        percentile_cont(0.5) within group (order by episodes.wait_days) as median_wait_days
    from episodes
    inner join area_month_codes
        on area_month_codes.reported_area_code = episodes.area_code
        and area_month_codes.month = episodes.first_intervention_month
    group by area_month_codes.area_code, area_month_codes.month
),

t3 as (
    select
        area_code, month, 'T3_median_days' as kpi_code, 'all' as breakdown,
        null::numeric as numerator, null::numeric as denominator,
        median_wait_days::numeric as value,
        -- a median over 1-4 episodes is close to one person's wait (data dictionary, disclosure control)
        0 as lookback_months,
        case when {{ is_small_count('episode_count') }} then 'always' else 'none' end as disclosure_rule,
        null as suppression_family,
        false as is_proportion
    from waits
    union all
    select
        area_code, month, 'T3_pct_over_21d', 'all',
        over_21_days_count, episode_count,
        {{ percentage('over_21_days_count', 'episode_count') }},
        0, 'rate', null, true
    from waits
),

-- T6: persons with both TOP values on an episode in structured treatment in M
t6 as (
    select
        area_code,
        month,
        'T6' as kpi_code,
        'all' as breakdown,
        count(*) filter (where is_top_progress) as numerator,
        count(*) as denominator,
        {{ percentage('count(*) filter (where is_top_progress)', 'count(*)') }} as value,
        0 as lookback_months,
        'rate' as disclosure_rule,
        null as suppression_family,
        true as is_proportion
    from person_months
    where has_top_pair
    group by area_code, month
),

-- T5, T7, T8 and C4 count episodes (decision 11): add up monthly counts over windows
episode_events as (
    select area_code, first_intervention_month as month, 'early_exit_base' as event, 'all' as breakdown
    from episodes
    where first_intervention_date is not null
    union all
    select area_code, first_intervention_month, 'early_exit', 'all'
    from episodes
    where is_early_unplanned_exit
    union all
    select area_code, discharge_month, 'death', 'all'
    from episodes
    where discharge_reason = 'died'
    union all
    select area_code, referral_month, 'young_people_referral', 'referral_source=' || referral_source
    from episodes
    where service_type = 'young_people'
    union all
    select area_code, referral_month, 'referral', 'all'
    from episodes
    union all
    select area_code, referral_month, 'criminal_justice_referral', 'all'
    from episodes
    where referral_source like 'cj\_%'
),

episode_month_counts as (
    select area_code, month, event, breakdown, count(*) as episode_count
    from episode_events
    group by area_code, month, event, breakdown
),

-- window of each measure in months relative to M
event_windows (event, measure, from_offset, to_offset) as (
    values
        ('early_exit_base', 'T5_denominator', -14, -3),
        ('early_exit', 'T5_numerator', -14, -3),
        ('death', 'T7_month', 0, 0),
        ('death', 'T7_12m', -11, 0),
        ('young_people_referral', 'T8_current', -11, 0),
        ('young_people_referral', 'T8_previous', -23, -12),
        ('referral', 'C4_denominator', -11, 0),
        ('criminal_justice_referral', 'C4_numerator', -11, 0)
),

window_counts as (
    select
        area_month_codes.area_code,
        area_month_codes.month,
        event_windows.measure,
        episode_month_counts.breakdown,
        sum(episode_month_counts.episode_count) as episode_count
    from area_month_codes
    cross join event_windows
    inner join episode_month_counts
        on episode_month_counts.area_code = area_month_codes.reported_area_code
        and episode_month_counts.event = event_windows.event
        and episode_month_counts.month
            between {{ add_months('area_month_codes.month', 'event_windows.from_offset') }}
            and {{ add_months('area_month_codes.month', 'event_windows.to_offset') }}
    group by area_month_codes.area_code, area_month_codes.month, event_windows.measure, episode_month_counts.breakdown
),

t5 as (
    select
        denominators.area_code,
        denominators.month,
        'T5' as kpi_code,
        'all' as breakdown,
        coalesce(numerators.episode_count, 0) as numerator,
        denominators.episode_count as denominator,
        {{ percentage('coalesce(numerators.episode_count, 0)', 'denominators.episode_count') }} as value,
        14 as lookback_months,
        'rate' as disclosure_rule,
        null as suppression_family,
        true as is_proportion
    from window_counts as denominators
    left join window_counts as numerators
        on numerators.area_code = denominators.area_code
        and numerators.month = denominators.month
        and numerators.measure = 'T5_numerator'
    where denominators.measure = 'T5_denominator'
),

-- C4: the criminal-justice route into treatment (kpis.md), from treatment episodes
c4 as (
    select
        denominators.area_code,
        denominators.month,
        'C4' as kpi_code,
        'all' as breakdown,
        coalesce(numerators.episode_count, 0) as numerator,
        denominators.episode_count as denominator,
        {{ percentage('coalesce(numerators.episode_count, 0)', 'denominators.episode_count') }} as value,
        11 as lookback_months,
        'rate' as disclosure_rule,
        null as suppression_family,
        true as is_proportion
    from window_counts as denominators
    left join window_counts as numerators
        on numerators.area_code = denominators.area_code
        and numerators.month = denominators.month
        and numerators.measure = 'C4_numerator'
    where denominators.measure = 'C4_denominator'
),

t7 as (
    select
        area_months.area_code,
        area_months.month,
        t7_measures.kpi_code,
        'all' as breakdown,
        coalesce(window_counts.episode_count, 0) as numerator,
        null::numeric as denominator,
        coalesce(window_counts.episode_count, 0) as value,
        t7_measures.lookback_months,
        'count' as disclosure_rule,
        null as suppression_family,
        false as is_proportion
    from area_months
    cross join (values ('T7_month', 0), ('T7_12m', 11)) as t7_measures (kpi_code, lookback_months)
    left join window_counts
        on window_counts.area_code = area_months.area_code
        and window_counts.month = area_months.month
        and window_counts.measure = t7_measures.kpi_code
),

referral_source_windows as (
    select
        area_code,
        month,
        breakdown,
        coalesce(sum(episode_count) filter (where measure = 'T8_current'), 0) as current_count,
        coalesce(sum(episode_count) filter (where measure = 'T8_previous'), 0) as previous_count
    from window_counts
    where measure in ('T8_current', 'T8_previous')
    group by area_code, month, breakdown
),

t8 as (
    -- a source shows when it has referrals in the 12 months ending M, or had
    -- some in the 12 before (a fall to 0 is published as 0 beside its change)
    select
        referral_source_windows.area_code,
        referral_source_windows.month,
        'T8' as kpi_code,
        referral_source_windows.breakdown,
        referral_source_windows.current_count as numerator,
        null::numeric as denominator,
        referral_source_windows.current_count as value,
        case when referral_source_windows.current_count > 0 then 11 else 23 end as lookback_months,
        'count' as disclosure_rule,
        null as suppression_family,
        false as is_proportion
    from referral_source_windows
    union all
    select
        area_code,
        month,
        'T8_change_pct',
        breakdown,
        current_count,
        previous_count,
        round(100 * (current_count - previous_count)::numeric / previous_count, 1),
        23,
        'rate',
        null,
        false
    from referral_source_windows
    where previous_count > 0
),

kpi_values as (
    select * from t1
    union all select * from t2
    union all select * from t3
    union all select * from t4
    union all select * from t5
    union all select * from t6
    union all select * from t7
    union all select * from t8
    union all select * from c4
)

select
    kpi_values.area_code,
    kpi_values.month,
    kpi_values.kpi_code,
    kpi_values.breakdown,
    kpi_values.numerator::numeric as numerator,
    kpi_values.denominator::numeric as denominator,
    kpi_values.value::numeric as value,
    case when kpi_values.is_proportion
        then {{ wilson_lower('kpi_values.numerator', 'kpi_values.denominator') }}
    end as ci_lower,
    case when kpi_values.is_proportion
        then {{ wilson_upper('kpi_values.numerator', 'kpi_values.denominator') }}
    end as ci_upper,
    area_months.is_provisional,
    area_months.source_submissions,
    kpi_values.disclosure_rule,
    kpi_values.suppression_family,
    build.built_through_submission_id,
    build.build_fingerprint
from kpi_values
cross join build
inner join area_months
    on area_months.area_code = kpi_values.area_code
    and area_months.month = kpi_values.month
-- decision 1: publish only when the loaded files cover every month the KPI looks at
where {{ add_months('kpi_values.month', '-kpi_values.lookback_months') }} >= area_months.covered_from_month
