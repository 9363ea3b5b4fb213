-- Street-level crimes of the current police pull of each area and month, per
-- requested category (drugs; all-crime for context). persistent_id is the key;
-- the API's id is not stable and is not used.
with current_submissions as (
    select submission_id, source_code, period_start
    from {{ ref('stg_raw__submissions') }}
    where feed = 'police'
),

crime_rows as (
    select * from {{ source('raw', 'police_crimes') }}
)

select
    crime_rows.submission_id::text || '-' || crime_rows.source_row::text as police_crime_id,
    crime_rows.submission_id,
    current_submissions.source_code as area_code,
    current_submissions.period_start as month,
    crime_rows.requested_category,
    crime_rows.persistent_id,
    crime_rows.category,
    crime_rows.latitude,
    crime_rows.longitude,
    crime_rows.street_id,
    crime_rows.street_name,
    crime_rows.location_type,
    crime_rows.context,
    crime_rows.outcome_category,
    crime_rows.outcome_month
from crime_rows
inner join current_submissions
    on current_submissions.submission_id = crime_rows.submission_id
