{#
  Fresh statistics on every raw table before the build reads it. A table loaded moments ago has
  none until autovacuum gets to it; the planner then takes the episode CTEs for one row each and
  joins them with nested loops (int_treatment__episodes: over 4 minutes for one month of ten areas
  instead of under a second; bench/RESULTS.md). The transformer holds MAINTAIN on raw (PostgreSQL
  17+, granted by the migration); without it Postgres skips each table with a warning.
#}
{% macro analyze_raw_sources() %}
    {%- if execute -%}
        {%- set tables = [] -%}
        {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
            {%- do tables.append(source.schema ~ '.' ~ source.identifier) -%}
        {%- endfor -%}
        {%- if tables -%}analyze {{ tables | sort | join(', ') }}{%- endif -%}
    {%- endif -%}
{% endmacro %}
