-- Treatment providers as known from their current submissions.
with submissions as (
    select * from {{ ref('stg_raw__submissions') }}
    where feed = 'treatment'
),

episodes as (
    select * from {{ ref('int_treatment__episodes') }}
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

provider_episodes as (
    select
        provider_code as provider_id,
        count(*) as episode_count,
        count(distinct area_code) as area_count,
        string_agg(distinct area_code, ';' order by area_code) as area_ids
    from episodes
    group by provider_code
)

select
    provider_submissions.provider_id,
    provider_submissions.first_submission_month,
    provider_submissions.latest_submission_month,
    provider_submissions.submission_count,
    coalesce(provider_episodes.episode_count, 0) as episode_count,
    coalesce(provider_episodes.area_count, 0) as area_count,
    provider_episodes.area_ids
from provider_submissions
left join provider_episodes
    on provider_episodes.provider_id = provider_submissions.provider_id
