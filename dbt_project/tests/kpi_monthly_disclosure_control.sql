-- Disclosure control held: hidden rows carry no figures, no published person or
-- episode count is 1-4, no published rate rests on 1-4, and no breakdown family
-- published with its total hides exactly one cell while another cell above 0 shows.
with published as (
    select * from {{ ref('kpi_monthly') }}
),

broken_rows as (
    select area_code, month, kpi_code, breakdown, 'suppressed row shows figures' as problem
    from published
    where is_suppressed
        and (numerator is not null or denominator is not null or value is not null
            or ci_lower is not null or ci_upper is not null)
    union all
    select area_code, month, kpi_code, breakdown, 'count of 1-4 published'
    from published
    where not is_suppressed
        and kpi_code in ('T1', 'T2', 'T7_month', 'T7_12m', 'T8', 'C1_unlinked', 'C5_starts', 'C5_completions')
        and value between 1 and 4
    union all
    select area_code, month, kpi_code, breakdown, 'rate on 1-4 published'
    from published
    where not is_suppressed
        and kpi_code in ('T3_pct_over_21d', 'T4', 'T5', 'T6', 'T8_change_pct', 'C1', 'C3_positivity', 'C3_attendance', 'C4')
        and (numerator between 1 and 4 or denominator between 1 and 4)
),

families as (
    select
        area_code,
        month,
        kpi_code,
        split_part(breakdown, '=', 1) as family,
        count(*) filter (where is_suppressed) as suppressed_cells,
        count(*) filter (where not is_suppressed and value > 0) as shown_cells_above_0
    from published
    where (kpi_code = 'T1' and split_part(breakdown, '=', 1) in ('service_type', 'kpi_group'))
        or (kpi_code = 'T2' and split_part(breakdown, '=', 1) = 'service_type')
    group by area_code, month, kpi_code, split_part(breakdown, '=', 1)
)

select * from broken_rows
union all
select area_code, month, kpi_code, family, 'one cell hidden in a family'
from families
where suppressed_cells = 1 and shown_cells_above_0 > 0
