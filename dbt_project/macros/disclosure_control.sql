{#-
    The one implementation of disclosure control for published aggregates
    (kpis.md "Disclosure control" v2, decision 18; the data dictionary's
    "Disclosure control"). Whether it works is judged by the disclosure audit
    in the mart gate (misuse_warehouse/disclosure_audit.py), not here.
    `relation` carries the KPI columns plus:
      disclosure_rule      'count' (hide 1-4), 'rate' (hide when numerator or
                           denominator is 1-4), 'always' (decided upstream,
                           e.g. a unit cost over 1-4 persons) or 'none'
                           (money, F2);
      suppression_family   cells published with their total that protect each
                           other (e.g. 'T1|service_type'), else NULL.
    `dependencies` lists, with kind 'hidden_with', figures that give an input
    away, so they are hidden with it; with kind 'shown_with', the inputs that
    state a figure anyway, so that one hidden only through its inputs shows
    when all inputs of one of its routes exist and show (a figure may be stated
    in more than one way: T7_12m from the last March or from the next): kind,
    route (NULL for 'hidden_with'), dependent_kpi, dependent_breakdown
    (NULL: any), dependent_months (calendar months of the year it applies in,
    NULL: every), input_kpi, input_breakdown (NULL: the dependent's own; '*':
    any), from_offset and to_offset (the input's months relative to the
    dependent's).
    1. Primary suppression hides counts and rates as above; zero stays zero.
    2. Secondary suppression, per family: cells above 0 are hidden cheapest
       first (primary cells, then by value) until at least two are hidden and
       the hidden ones could each take at least five whole values, or
       exactly 1-4, given the family's sum and that each is no larger than
       the smallest cell left visible. A family that cannot be protected even
       with every cell hidden hides its total too; a family whose total is
       itself 1-4 is hidden whole, zeros included (its cells would only narrow
       the total).
    3. Dependent suppression: a figure with a hidden input is hidden, applied
       twice (T1 -> T4 six months on -> F3 per completion), unless the
       published figures state it anyway ('shown_with').
    Hidden rows get NULL numerator, denominator, value and limits.
-#}
{% macro disclosure_control(relation, dependencies) -%}
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

    -- the cells above 0 of each family, cheapest first, with what hiding the first n of them leaves known
    family_ranks as (
        select
            area_code,
            month,
            kpi_code,
            breakdown,
            suppression_family,
            family_month,
            family_total_kpi,
            count(*) filter (where is_primary_suppressed) over family as family_primary_count,
            row_number() over family_order as family_rank,
            sum(value) over family_order as hidden_sum,
            lead(value) over family_order as next_value
        from primary_suppression
        where suppression_family is not null and value > 0
        window
            family as (partition by area_code, family_month, suppression_family),
            family_order as (
                partition by area_code, family_month, suppression_family
                order by value, breakdown rows between unbounded preceding and current row
            )
    ),

    family_bounds as (
        select
            *,
            case when next_value is null then hidden_sum - (family_rank - 1)
                else least(next_value, hidden_sum - (family_rank - 1)) end as highest_hidden,
            case when next_value is null then 1
                else greatest(1, hidden_sum - (family_rank - 1) * next_value) end as lowest_hidden
        from family_ranks
        where family_primary_count > 0
    ),

    family_protection as (
        select
            area_code,
            family_month,
            suppression_family,
            min(family_total_kpi) as family_total_kpi,
            coalesce(
                min(family_rank) filter (where is_protected),
                max(family_rank)
            ) as hidden_cells,
            coalesce(bool_or(is_protected), false) as is_protectable
        from (
            select
                *,
                family_rank >= greatest(family_primary_count, 2)
                and (highest_hidden - lowest_hidden >= 4 or (lowest_hidden = 1 and highest_hidden = 4))
                    as is_protected
            from family_bounds
        ) as candidates
        group by area_code, family_month, suppression_family
    ),

    -- a total of 1-4 is not broken down at all: every cell of its family is hidden, zeros too
    primary_totals as (
        select area_code, month as family_month, kpi_code as family_total_kpi
        from primary_suppression
        where breakdown = 'all' and is_primary_suppressed
    ),

    -- a family that cannot be protected hides its total (the 'all' row of the same KPI)
    unprotectable_totals as (
        select distinct area_code, family_month as month, family_total_kpi as kpi_code, 'all' as breakdown
        from family_protection
        where not is_protectable
    ),

    secondary_suppression as (
        select
            primary_suppression.*,
            primary_suppression.is_primary_suppressed
            or coalesce(family_ranks.family_rank <= family_protection.hidden_cells, false)
            or unprotectable_totals.area_code is not null
            or primary_totals.area_code is not null as is_family_suppressed
        from primary_suppression
        left join family_ranks
            on family_ranks.area_code = primary_suppression.area_code
            and family_ranks.month = primary_suppression.month
            and family_ranks.kpi_code = primary_suppression.kpi_code
            and family_ranks.breakdown = primary_suppression.breakdown
        left join family_protection
            on family_protection.area_code = primary_suppression.area_code
            and family_protection.family_month = primary_suppression.family_month
            and family_protection.suppression_family = primary_suppression.suppression_family
        left join unprotectable_totals
            on unprotectable_totals.area_code = primary_suppression.area_code
            and unprotectable_totals.month = primary_suppression.month
            and unprotectable_totals.kpi_code = primary_suppression.kpi_code
            and unprotectable_totals.breakdown = primary_suppression.breakdown
        left join primary_totals
            on primary_suppression.suppression_family is not null
            and primary_totals.area_code = primary_suppression.area_code
            and primary_totals.family_month = primary_suppression.family_month
            and primary_totals.family_total_kpi = primary_suppression.family_total_kpi
    ),

    {%- set passes = [('first', 'secondary_suppression', 'is_family_suppressed', 'is_first_suppressed'),
                      ('second', 'first_dependents', 'is_first_suppressed', 'is_suppressed')] %}
    {%- for pass_name, previous, hidden, result in passes %}

    -- figures that would give a hidden input away (hidden inputs are few: start from them)
    {{ pass_name }}_hidden_dependents as (
        select distinct dependents.area_code, dependents.month, dependents.kpi_code, dependents.breakdown
        from {{ previous }} as inputs
        inner join {{ dependencies }} as dependencies
            on dependencies.input_kpi = inputs.kpi_code
            and dependencies.kind = 'hidden_with'
        inner join {{ previous }} as dependents
            on dependents.area_code = inputs.area_code
            and dependents.kpi_code = dependencies.dependent_kpi
            and dependents.breakdown = coalesce(dependencies.dependent_breakdown, dependents.breakdown)
            and (
                dependencies.dependent_months is null
                or extract(month from dependents.month)::integer = any(dependencies.dependent_months)
            )
            and (
                dependencies.input_breakdown = '*'
                or inputs.breakdown = coalesce(dependencies.input_breakdown, dependents.breakdown)
            )
            and inputs.month between {{ add_months('dependents.month', 'dependencies.from_offset') }}
                and {{ add_months('dependents.month', 'dependencies.to_offset') }}
        where inputs.{{ hidden }}
    ),

    {{ pass_name }}_dependents as (
        select
            previous.*,
            previous.{{ hidden }} or hidden_dependents.area_code is not null as {{ result }}
        from {{ previous }} as previous
        left join {{ pass_name }}_hidden_dependents as hidden_dependents
            on hidden_dependents.area_code = previous.area_code
            and hidden_dependents.month = previous.month
            and hidden_dependents.kpi_code = previous.kpi_code
            and hidden_dependents.breakdown = previous.breakdown
    ),
    {%- endfor %}

    -- each 'shown_with' entry of a figure hidden only through its inputs: do those inputs all exist
    -- (a row for every month of the range) and show?
    derivations as (
        select
            dependents.area_code,
            dependents.month,
            dependents.kpi_code,
            dependents.breakdown,
            dependencies.route,
            count(inputs.kpi_code) = dependencies.to_offset - dependencies.from_offset + 1
            and not coalesce(bool_or(inputs.is_suppressed), false) as is_stated
        from second_dependents as dependents
        inner join {{ dependencies }} as dependencies
            on dependencies.kind = 'shown_with'
            and dependencies.dependent_kpi = dependents.kpi_code
            and dependents.breakdown = coalesce(dependencies.dependent_breakdown, dependents.breakdown)
            and (
                dependencies.dependent_months is null
                or extract(month from dependents.month)::integer = any(dependencies.dependent_months)
            )
        left join second_dependents as inputs
            on inputs.area_code = dependents.area_code
            and inputs.kpi_code = dependencies.input_kpi
            and inputs.breakdown = coalesce(dependencies.input_breakdown, dependents.breakdown)
            and inputs.month between {{ add_months('dependents.month', 'dependencies.from_offset') }}
                and {{ add_months('dependents.month', 'dependencies.to_offset') }}
        where dependents.is_suppressed and not dependents.is_family_suppressed
        group by
            dependents.area_code, dependents.month, dependents.kpi_code, dependents.breakdown, dependencies.route,
            dependencies.input_kpi, dependencies.input_breakdown, dependencies.from_offset, dependencies.to_offset
    ),

    -- each route of a figure: are all its inputs stated?
    routes as (
        select area_code, month, kpi_code, breakdown, route, bool_and(is_stated) as is_stated
        from derivations
        group by area_code, month, kpi_code, breakdown, route
    ),

    -- published figures state them anyway, by one route or another: hiding them would protect nothing
    derivable as (
        select area_code, month, kpi_code, breakdown
        from routes
        group by area_code, month, kpi_code, breakdown
        having bool_or(is_stated)
    ),

    final_suppression as (
        select
            second_dependents.*,
            second_dependents.is_suppressed and derivable.area_code is null as is_hidden
        from second_dependents
        left join derivable
            on derivable.area_code = second_dependents.area_code
            and derivable.month = second_dependents.month
            and derivable.kpi_code = second_dependents.kpi_code
            and derivable.breakdown = second_dependents.breakdown
    )

    select
        area_code,
        month,
        kpi_code,
        breakdown,
        case when not is_hidden then numerator end as numerator,
        case when not is_hidden then denominator end as denominator,
        case when not is_hidden then value end as value,
        case when not is_hidden then ci_lower end as ci_lower,
        case when not is_hidden then ci_upper end as ci_upper,
        is_hidden as is_suppressed,
        is_provisional,
        source_submissions
    from final_suppression
{%- endmacro %}


{#- The disclosure threshold, in one place: a count of persons (or episodes) from 1 to 4. -#}
{% macro is_small_count(expression) -%}
    coalesce(({{ expression }}) between 1 and 4, false)
{%- endmacro %}

{#- A count published outside kpi_monthly (e.g. a dimension's episode count): NULL when small. -#}
{% macro suppress_small_count(expression) -%}
    case when not {{ is_small_count(expression) }} then {{ expression }} end
{%- endmacro %}
