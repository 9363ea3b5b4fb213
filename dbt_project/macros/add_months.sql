{#- A date `months` calendar months after `date_expr` (negative: before); Postgres clips to the month's end. -#}
{% macro add_months(date_expr, months) -%}
    ({{ date_expr }} + make_interval(months => {{ months }}))::date
{%- endmacro %}

{#- First day of the month of a date. -#}
{% macro month_of(date_expr) -%}
    date_trunc('month', {{ date_expr }})::date
{%- endmacro %}
