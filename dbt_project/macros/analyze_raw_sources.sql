{#
  Fresh statistics on the raw tables before the build reads them. A table loaded moments ago has
  none until autovacuum gets to it; the planner then takes the episode CTEs for one row each and
  joins them with nested loops (int_treatment__episodes: over 4 minutes for one month of ten areas
  instead of under a second; bench/RESULTS.md). A table is analysed when more than a tenth of its
  rows changed since its last analysis (any change while it has no statistics), so a month's files
  added to three years of them do not pay for sampling the whole table again (0.5 s at month 36 of
  ten areas, bench/RESULTS.md §2): the new rows look like the old, and queries on the newest
  submission ids find them by raw's key, where the planner reads the key's actual maximum.
  The transformer holds MAINTAIN on raw (PostgreSQL 17+, granted by the migration); without it
  Postgres skips each table with a warning.
#}
{% macro analyze_raw_sources() %}
    {%- if execute -%}
        {%- set tables = [] -%}
        {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
            {%- do tables.append(source.schema ~ '.' ~ source.identifier) -%}
        {%- endfor -%}
        {%- if tables -%}
    do $analyze$
    declare
        changed regclass;
    begin
        for changed in
            select tables.relid::regclass
            from pg_catalog.pg_stat_user_tables as tables
            inner join pg_catalog.pg_class as classes on classes.oid = tables.relid
            where tables.relid = any (array[{{ "'" ~ (tables | sort | join("', '")) ~ "'" }}]::regclass[])
                and tables.n_mod_since_analyze > 0.1 * greatest(classes.reltuples, 0)
            order by 1
        loop
            execute format('analyze %s', changed);
        end loop;
    end
    $analyze$
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
