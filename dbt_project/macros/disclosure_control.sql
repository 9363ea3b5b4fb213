{#-
    The one implementation of disclosure control for published aggregates
    (kpis.md "Disclosure control", decision 18). `relation` carries the KPI
    columns plus:
      disclosure_rule      'count' (hide 1-4), 'rate' (hide when numerator or
                           denominator is 1-4), 'always' (decided upstream,
                           e.g. a unit cost over 1-4 persons) or 'none'
                           (money, medians, F2);
      suppression_family   cells published with their total that protect each
                           other (e.g. 'T1|service_type'), else NULL.
    Primary suppression hides counts and rates as above; zero stays zero.
    Secondary suppression: where exactly one cell of a family is hidden, the
    next smallest cell above zero is hidden too (ties by breakdown).
    Hidden rows get NULL numerator, denominator, value and limits.
-#}
{% macro disclosure_control(relation) -%}
    with primary_suppression as (
        select
            *,
            case disclosure_rule
                when 'count' then {{ is_small_count('value') }}
                when 'rate' then {{ is_small_count('numerator') }} or {{ is_small_count('denominator') }}
                when 'always' then true
                else false
            end as is_primary_suppressed
        from {{ relation }}
    ),

    -- only cells in a family are ranked: the others (most rows, e.g. every F1 figure) skip the sort
    family_cells as (
        select
            *,
            count(*) filter (where is_primary_suppressed) over family as family_suppressed_count,
            row_number() over (
                family order by (is_primary_suppressed or coalesce(value, 0) = 0), value, breakdown
            ) as candidate_rank
        from primary_suppression
        where suppression_family is not null
        window family as (partition by area_code, month, suppression_family)
        union all
        select *, null::bigint, null::bigint
        from primary_suppression
        where suppression_family is null
    ),

    suppression as (
        select
            *,
            is_primary_suppressed
            or (
                suppression_family is not null
                and family_suppressed_count = 1
                and candidate_rank = 1
                and not is_primary_suppressed
                and value > 0
            ) as is_suppressed
        from family_cells
    )

    select
        area_code,
        month,
        kpi_code,
        breakdown,
        case when not is_suppressed then numerator end as numerator,
        case when not is_suppressed then denominator end as denominator,
        case when not is_suppressed then value end as value,
        case when not is_suppressed then ci_lower end as ci_lower,
        case when not is_suppressed then ci_upper end as ci_upper,
        is_suppressed,
        is_provisional,
        source_submissions
    from suppression
{%- endmacro %}


{#- The disclosure threshold, in one place: a count of persons (or episodes) from 1 to 4. -#}
{% macro is_small_count(expression) -%}
    coalesce(({{ expression }}) between 1 and 4, false)
{%- endmacro %}

{#- A count published outside kpi_monthly (e.g. a dimension's episode count): NULL when small. -#}
{% macro suppress_small_count(expression) -%}
    case when not {{ is_small_count(expression) }} then {{ expression }} end
{%- endmacro %}
