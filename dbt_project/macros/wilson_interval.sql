{#-
    Wilson score 95% interval of numerator / denominator, as percentages 0-100
    rounded to one decimal place. NULL when the denominator is 0 or NULL.
    The one place the z value lives (kpis.md: "Intervals").
-#}
{% macro wilson_z() -%}
    1.959964
{%- endmacro %}

{% macro wilson_lower(numerator, denominator) -%}
    {{ _wilson_bound(numerator, denominator, '-') }}
{%- endmacro %}

{% macro wilson_upper(numerator, denominator) -%}
    {{ _wilson_bound(numerator, denominator, '+') }}
{%- endmacro %}

{% macro _wilson_bound(numerator, denominator, sign) -%}
    {%- set z = wilson_z() -%}
    {%- set n = '(' ~ denominator ~ ')::numeric' -%}
    {%- set p = '((' ~ numerator ~ ')::numeric / nullif(' ~ n ~ ', 0))' -%}
    round(100 * (
        ({{ p }} + {{ z }} ^ 2 / (2 * {{ n }}))
        {{ sign }} {{ z }} * sqrt(greatest({{ p }} * (1 - {{ p }}) / {{ n }} + {{ z }} ^ 2 / (4 * {{ n }} ^ 2), 0))
    ) / (1 + {{ z }} ^ 2 / {{ n }}), 1)
{%- endmacro %}

{#- A percentage 0-100 rounded to one decimal place; NULL when the denominator is 0. -#}
{% macro percentage(numerator, denominator) -%}
    round(100 * ({{ numerator }})::numeric / nullif(({{ denominator }})::numeric, 0), 1)
{%- endmacro %}
