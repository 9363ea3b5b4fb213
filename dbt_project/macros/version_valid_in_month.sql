{#- A type-2 version (valid_from_month, valid_to_month NULL while current) holds in month `month_expr`. -#}
{% macro version_valid_in_month(version_alias, month_expr) -%}
    ({{ month_expr }} >= {{ version_alias }}.valid_from_month
        and ({{ version_alias }}.valid_to_month is null or {{ month_expr }} <= {{ version_alias }}.valid_to_month))
{%- endmacro %}
