-- A provider's treatment episodes in each area of residence: the per-area facts
-- dim_provider must not hold (every analyst reads a dimension whole). One row per
-- provider and area; its area_id puts it under row-level security, so an analyst
-- sees a provider's work in the analyst's own areas only.
with episodes as (
    select * from {{ ref('int_treatment__episodes') }}
),

provider_areas as (
    select
        provider_code as provider_id,
        area_code as area_id,
        count(*) as episode_count
    from episodes
    group by provider_code, area_code
)

select
    provider_id || '|' || area_id as provider_area_id,
    provider_id,
    area_id,
    {{ suppress_small_count('episode_count') }} as episode_count
from provider_areas
