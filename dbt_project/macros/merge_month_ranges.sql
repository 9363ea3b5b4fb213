{#-
    Merge overlapping or adjacent month ranges [from_month, to_month] within each
    partition into islands (gaps and islands). `relation` is a CTE or relation
    with the partition columns, from_month and to_month (first days of months).
    Returns the partition columns, from_month and to_month, one row per island.
-#}
{% macro merge_month_ranges(relation, partition_by) -%}
    {%- set partition = partition_by | join(', ') -%}
    select {{ partition }}, min(from_month) as from_month, max(to_month) as to_month
    from (
        select
            *,
            sum(is_island_start) over (
                partition by {{ partition }} order by from_month, to_month
                rows unbounded preceding
            ) as island_number
        from (
            select
                *,
                case
                    when from_month <= {{ add_months('max(to_month) over (partition by ' ~ partition ~ ' order by from_month, to_month rows between unbounded preceding and 1 preceding)', 1) }}
                        then 0
                    else 1
                end as is_island_start
            from {{ relation }}
        ) as flagged
    ) as numbered
    group by {{ partition }}, island_number
{%- endmacro %}
