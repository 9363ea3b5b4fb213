{#-
  The empty query dbt compares an enforced contract with, without dbt's warning on a bare `numeric`.

  dbt warns on every build that a contract column typed `numeric` without precision "can lead to
  unintended rounding": true of warehouses whose `numeric` defaults to scale 0, not of Postgres, where
  an unconstrained numeric keeps every digit it is given. The KPI values, intervals and rates are
  declared so on purpose (docs/data_dictionary.md), and eight such warnings a month buried the ones
  that matter in the DAG's log. Otherwise dbt-core 1.11's default__get_empty_schema_sql: a column
  without a type still fails the build.
-#}
{% macro postgres__get_empty_schema_sql(columns) %}
    {%- set col_err = [] -%}
    select
    {% for i in columns %}
      {%- set col = columns[i] -%}
      {%- if col['data_type'] is not defined -%}
        {%- do col_err.append(col['name']) -%}
      {%- endif -%}
      {% set col_name = adapter.quote(col['name']) if col.get('quote') else col['name'] %}
      {{ cast('null', col['data_type']) }} as {{ col_name }}{{ ", " if not loop.last }}
    {%- endfor -%}
    {%- if (col_err | length) > 0 -%}
      {{ exceptions.column_type_missing(column_names=col_err) }}
    {%- endif -%}
{% endmacro %}
