{#-
  Post-hook: statistics for a table this build created, before the next models plan joins over it
  (a fresh table has none; see analyze_raw_sources). An incremental table keeps the statistics of
  its first build: the months a build rewrites look like those it replaces, and autovacuum
  refreshes them once enough rows changed. Analysing it again after every build sampled 30,000
  rows of the whole table each time (0.9 s of month 36's critical path at ten areas,
  bench/RESULTS.md §2) to learn what it already knew.
-#}
{% macro analyze_new_table() -%}
    do $analyze$
    begin
        if not exists (
            select from pg_catalog.pg_stats
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
        ) then
            analyze {{ this }};
        end if;
    end
    $analyze$
{%- endmacro %}
