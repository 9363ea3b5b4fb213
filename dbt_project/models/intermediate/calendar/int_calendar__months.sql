-- Every month from the earliest date any current treatment row holds to the
-- latest reporting month (or later date), so every date column has its month.
with versions as (
    select * from {{ ref('stg_treatment__episode_versions') }}
),

bounds as (
    select
        min(least(referral_date, triage_date, first_intervention_date, discharge_date)) as first_date,
        max(greatest(submission_month, referral_date, triage_date, first_intervention_date, discharge_date)) as last_date
    from versions
)

select
    months.month::date as month,
    {{ add_months('months.month::date', 1) }} - 1 as month_end_date
from bounds
cross join lateral generate_series(
    {{ month_of('bounds.first_date') }}, {{ month_of('bounds.last_date') }}, interval '1 month'
) as months (month)
