{#-
    How many ranges cover each spine month: `ranges` holds area_code, measure,
    breakdown, from_month, to_month (non-overlapping per person within an
    area, measure and breakdown); `spine` holds area_code and month. Counted from
    +1/-1 events, so the cost follows the number of ranges, not their length.
    A range that ends before the spine's first month adds 1 and takes it away
    again before every spine month, so only ranges still open then are read:
    an incremental build counting its last twelve months reads the ranges of
    those months, not of all history.
    Returns area_code, month, measure, breakdown, person_count (no zero rows).
-#}
{% macro count_persons_by_month(ranges, spine) -%}
    with open_ranges as (
        select *
        from {{ ranges }}
        where to_month >= (select min(month) from {{ spine }})
    )

    select
        spine.area_code,
        spine.month,
        deltas.measure,
        deltas.breakdown,
        sum(deltas.delta) as person_count
    from {{ spine }} as spine
    inner join (
        select area_code, measure, breakdown, event_month, sum(delta) as delta
        from (
            select area_code, measure, breakdown, from_month as event_month, 1 as delta
            from open_ranges
            union all
            select area_code, measure, breakdown, {{ add_months('to_month', 1) }}, -1
            from open_ranges
        ) as events
        group by area_code, measure, breakdown, event_month
    ) as deltas
        on deltas.area_code = spine.area_code
        and deltas.event_month <= spine.month
    group by spine.area_code, spine.month, deltas.measure, deltas.breakdown
    having sum(deltas.delta) > 0
{%- endmacro %}
