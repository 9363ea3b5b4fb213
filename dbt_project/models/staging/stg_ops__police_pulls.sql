-- The latest data.police.uk pull of each area and month (misuse_warehouse.pipeline.pull_police
-- writes one ops.task_runs row per area-month it asks for). Its status says whether the pull
-- in force is this pull's answer (loaded, duplicate) or an older one left standing because the
-- API was unavailable or its answer was refused; not_available is a month not published yet.
with pull_rows as (
    select
        task_run_id,
        ended_at,
        status,
        detail
    from {{ source('ops', 'task_runs') }}
    where task_id = 'pull_police' and detail ? 'area' and detail ? 'month'
)

select distinct on (detail ->> 'area', detail ->> 'month')
    detail ->> 'area' as area_code,
    to_date(detail ->> 'month', 'YYYY-MM') as month,
    status,
    status in ('refused', 'unavailable') as is_gap,
    ended_at as pulled_at,
    (detail ->> 'submission_id')::bigint as submission_id,
    (detail ->> 'in_force_submission_id')::bigint as in_force_submission_id,
    (detail ->> 'in_force_received_at')::timestamptz as in_force_received_at,
    detail ->> 'refusal_code' as refusal_code,
    detail ->> 'reason' as reason
from pull_rows
order by detail ->> 'area', detail ->> 'month', task_run_id desc
