-- English upper-tier local authorities (reference data) with their successions:
-- a figure is published under the code valid in its month, and
-- current_area_id rolls a code forward to today's through whole-area
-- successions (NULL where the area was split between successors).
with areas as (
    select * from {{ ref('ref_upper_tier_local_authorities') }}
),

lineages as (
    select distinct area_code, lineage_area_code
    from {{ ref('int_areas__reporting_codes') }}
),

successions as (
    select
        old_area_code,
        count(*) as successor_count,
        min(effective_date) as effective_date,
        string_agg(new_area_code, ';' order by new_area_code) as successor_area_ids
    from {{ ref('ref_area_successions') }}
    group by old_area_code
)

select
    areas.area_code as area_id,
    areas.area_name,
    areas.area_type,
    areas.region_code,
    areas.region_name,
    areas.valid_from,
    areas.valid_to,
    areas.valid_to is null as is_current,
    successions.successor_area_ids,
    successions.effective_date as succession_date,
    coalesce(successions.successor_count > 1, false) as is_split,
    case
        when coalesce(successions.successor_count, 0) <= 1 then lineages.lineage_area_code
    end as current_area_id
from areas
left join lineages
    on lineages.area_code = areas.area_code
left join successions
    on successions.old_area_code = areas.area_code
