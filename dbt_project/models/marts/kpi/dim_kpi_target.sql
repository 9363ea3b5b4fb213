-- Targets that published KPIs are read against (reference seed ref_kpi_targets,
-- replaceable by the partnership): area_code NULL applies to every area.
select
    kpi_code || '|' || breakdown || '|' || coalesce(area_code, '*') as kpi_target_id,
    kpi_code,
    breakdown,
    area_code as area_id,
    target_value,
    polarity,
    source
from {{ ref('ref_kpi_targets') }}
