{#-
  Post-hook: statistics for a table this build created, before the next models plan joins over it
  (a fresh table has none; see analyze_raw_sources). An incremental table keeps the statistics of
  its first build: the months a build rewrites look like those it replaces, and autovacuum
  refreshes them once enough rows changed. Analysing it again after every build sampled 30,000
  rows of the whole table each time (0.9 s of month 36's critical path at ten areas,
  bench/RESULTS.md §2) to learn what it already knew.
  `statistics_target` (for this analysis only): intermediate tables are read by a few joins on keys
  in the same build, for which 9,000 sampled rows (30) plan as well as 30,000 (the default 100):
  int_treatment__episodes' analysis 0.43 → 0.10 s at month 36. Published tables keep the default for
  the BI tools' queries.
-#}
{% macro analyze_new_table(statistics_target=none) -%}
    do $analyze$
    begin
        if not exists (
            select from pg_catalog.pg_stats
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
        ) then
            {%- if statistics_target %}
            perform set_config('default_statistics_target', '{{ statistics_target }}', true);
            {%- endif %}
            analyze {{ this }};
        end if;
    end
    $analyze$
{%- endmacro %}
