-- T1 and T2: a service-type cell is never above the total (decision 4 lets the
-- cells sum to more); T1's KPI groups partition the total exactly.
with published as (
    select * from {{ ref('kpi_monthly') }}
    where kpi_code in ('T1', 'T2')
),

totals as (
    select area_code, month, kpi_code, value as total
    from published
    where breakdown = 'all'
),

service_type_over_total as (
    select published.area_code, published.month, published.kpi_code, published.breakdown
    from published
    inner join totals using (area_code, month, kpi_code)
    where published.breakdown like 'service_type=%'
        and published.value > totals.total
),

kpi_groups_not_adding_up as (
    select published.area_code, published.month, published.kpi_code, 'kpi_group=*' as breakdown
    from published
    inner join totals using (area_code, month, kpi_code)
    where published.breakdown like 'kpi_group=%'
    group by published.area_code, published.month, published.kpi_code, totals.total
    having bool_and(not published.is_suppressed) and totals.total is not null
        and sum(published.value) <> totals.total
)

select * from service_type_over_total
union all
select * from kpi_groups_not_adding_up
