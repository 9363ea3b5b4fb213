{#- Custom schemas are used as named; `marts` and `marts_person` mean the schemas being built for publication. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif custom_schema_name | trim == 'marts' -%}
        {{ var('marts_schema') }}
    {%- elif custom_schema_name | trim == 'marts_person' -%}
        {{ var('marts_person_schema') }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
