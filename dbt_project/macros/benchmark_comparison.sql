{#-
    B1 comparison of a published local figure with a benchmark (kpis.md):
    'similar' when the benchmark lies inside the local 95% interval - limits
    included, so a benchmark exactly on a published limit is similar - else
    'better' or 'worse' by the indicator's polarity. NULL without a benchmark, or
    without a published interval (suppressed rows, counts).
-#}
{% macro benchmark_comparison(ci_lower, ci_upper, benchmark, polarity) -%}
    case
        when {{ benchmark }} is null or {{ ci_lower }} is null or {{ ci_upper }} is null then null
        when {{ benchmark }} between {{ ci_lower }} and {{ ci_upper }} then 'similar'
        when ({{ ci_lower }} > {{ benchmark }}) = ({{ polarity }} = 'higher') then 'better'
        else 'worse'
    end
{%- endmacro %}
