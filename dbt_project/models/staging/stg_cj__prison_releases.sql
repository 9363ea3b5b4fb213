-- Prison releases of the current submission of each area and month. The plain
-- attributor never comes here (the transformer cannot read it): only its
-- pseudonym (person_key) goes on; initials XX cannot be linked (person_key NULL).
with current_submissions as (
    select submission_id
    from {{ ref('stg_raw__submissions') }}
    where feed = 'prison-releases'
),

release_rows as (
    select
        submission_id, release_id, area_code, release_date, prison_code, person_key,
        client_sex, treatment_need, treated_in_custody, referred_to_community
    from {{ source('raw', 'prison_releases') }}
)

select
    release_rows.area_code || '|' || release_rows.release_id as prison_release_id,
    release_rows.submission_id,
    release_rows.release_id,
    release_rows.area_code,
    release_rows.release_date,
    {{ month_of('release_rows.release_date') }} as release_month,
    release_rows.prison_code,
    release_rows.person_key,
    release_rows.person_key is not null as is_linkable,
    release_rows.client_sex as sex,
    release_rows.treatment_need = 'yes' as has_treatment_need,
    release_rows.treated_in_custody = 'yes' as was_treated_in_custody,
    release_rows.referred_to_community = 'yes' as was_referred_to_community
from release_rows
inner join current_submissions
    on current_submissions.submission_id = release_rows.submission_id
