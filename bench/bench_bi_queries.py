# ruff: noqa: E501 (markdown tables of RESULTS.md written as f-strings)
"""Measure 5: p95 latency of typical BI queries on the published marts after 36 months.

A set of queries a scorecard or dashboard sends (one area's latest KPIs, a KPI's 36-month trend, a
league table of areas, KPIs against targets, a regional roll-up, completeness, money by financial
year, contracts in force, and the partnership scorecard mart: one area's scorecard, targets missed,
KPIs worse than England), each on one open connection as a BI tool pools them, round robin, after
a warm-up pass. Run as `bi_reader` (every area) and as `analyst_medway` (row-level security to one
area), as those roles see `marts`.

The warehouse is the 36-month one of bench_incremental.py (reduced volume: ten areas), or with
--national every area the simulator has (142) over the same 36 months, loaded and built once (19.5 min
here the first time, 7.5 of them simulating; BENCH_KEEP_HOME=1 keeps it for --home). --home reuses a warehouse kept by either,
else this script builds its own the same way.

Run: .venv/bin/python bench/bench_bi_queries.py [--national] [--home DIR] [--rounds 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET_MS = 50.0
AREA = "E06000035"  # Medway: analyst_medway's area

QUERIES: dict[str, str] = {
    "area scorecard, latest month (kpi_monthly)": """
        select kpi_code, breakdown, numerator, denominator, value, ci_lower, ci_upper, is_suppressed, is_provisional
        from marts.kpi_monthly
        where area_code = %(area)s and month = (select max(month) from marts.kpi_monthly)
        order by kpi_code, breakdown""",
    "KPI trend, 36 months (kpi_monthly)": """
        select month, value, ci_lower, ci_upper from marts.kpi_monthly
        where area_code = %(area)s and kpi_code = 'T4' and breakdown = 'kpi_group=opiate' order by month""",
    "league table of areas, latest month (kpi_monthly)": """
        select k.area_code, a.area_name, k.value, rank() over (order by k.value desc nulls last) as position
        from marts.kpi_monthly as k join marts.dim_area as a on a.area_id = k.area_code
        where k.kpi_code = 'T4' and k.breakdown = 'kpi_group=opiate'
          and k.month = (select max(month) from marts.kpi_monthly)
        order by position""",
    "KPIs against targets, last 12 months (kpi_monthly + dim_kpi_target)": """
        select k.month, k.kpi_code, k.breakdown, k.value, t.target_value, t.polarity,
               case when t.polarity = 'higher' then k.value >= t.target_value
                    else k.value <= t.target_value end as is_on_target
        from marts.kpi_monthly as k
        join marts.dim_kpi_target as t
          on t.kpi_code = k.kpi_code and t.breakdown = k.breakdown and (t.area_id = k.area_code or t.area_id is null)
        where k.area_code = %(area)s and k.month > (select max(month) from marts.kpi_monthly) - interval '12 months'
        order by k.month, k.kpi_code""",
    "regional roll-up of counts, by month (kpi_monthly + dim_area)": """
        select a.region_name, k.month, sum(k.value) as people_in_treatment
        from marts.kpi_monthly as k join marts.dim_area as a on a.area_id = k.area_code
        where k.kpi_code = 'T1' and k.breakdown = 'all'
        group by a.region_name, k.month order by a.region_name, k.month""",
    "completeness, latest 3 months (fct_area_month_completeness)": """
        select area_id, month, expected_file_count, received_file_count, is_complete
        from marts.fct_area_month_completeness
        where month > (select max(month) from marts.fct_area_month_completeness) - interval '3 months'
        order by month, area_id""",
    "spend by financial year and stream (fct_funding_ledger_lines)": """
        select m.financial_year, f.funding_stream_id, sum(f.budget_gbp) as budget, sum(f.actual_gbp) as actual
        from marts.fct_funding_ledger_lines as f join marts.dim_month as m on m.month_id = f.month_id
        where f.area_id = %(area)s group by 1, 2 order by 1, 2""",
    "contracts in force (dim_contract)": """
        select contract_id, provider_name, service_line_id, annual_value_gbp, effective_end_date
        from marts.dim_contract where area_id = %(area)s and is_current order by contract_id""",
    "partnership scorecard, one area's latest month (partnership_scorecard)": """
        select kpi_code, breakdown, kpi_label, value, target_value, is_target_met, england_value, comparison,
               change_on_12_months_ago, trend_direction
        from marts.partnership_scorecard
        where area_id = %(area)s and month_id = (select max(month_id) from marts.partnership_scorecard)
        order by sort_order, breakdown""",
    "scorecard: targets missed, every area, latest month (partnership_scorecard)": """
        select area_name, kpi_label, breakdown, value, target_value
        from marts.partnership_scorecard
        where is_target_met = false and month_id = (select max(month_id) from marts.partnership_scorecard)
        order by area_name, sort_order, breakdown""",
    "scorecard: KPIs worse than England by area, 12 months (partnership_scorecard)": """
        select area_id, month_id, count(*) filter (where comparison = 'worse') as worse_than_england,
               count(*) filter (where trend_direction = 'worsening') as worsening
        from marts.partnership_scorecard
        where month_id > (select max(month_id) from marts.partnership_scorecard) - interval '12 months'
        group by area_id, month_id order by area_id, month_id""",
}
ROLES = ("bi_reader", "analyst_medway")


def measure(url: str, role: str, rounds: int) -> dict[str, list[float]]:
    import psycopg

    timings: dict[str, list[float]] = {name: [] for name in QUERIES}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"set role {role}")
        for query in QUERIES.values():  # warm-up: plans, caches
            conn.execute(query, {"area": AREA}).fetchall()
        for _ in range(rounds):
            for name, query in QUERIES.items():
                started = time.perf_counter()
                conn.execute(query, {"area": AREA}).fetchall()
                timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def row_counts(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        counts = [
            (table, conn.execute(f"select count(*) from marts.{table}").fetchone()[0])
            for table in ("kpi_monthly", "dim_area", "fct_area_month_completeness", "fct_funding_ledger_lines")
        ]
    return ", ".join(f"`{t}` {n:,}" for t, n in counts)


def build_own(landing: Path, home: Path) -> str:
    """Load every month, one first build, publish; the URL kept beside the home as bench_incremental keeps it."""
    import bench_incremental

    from misuse_warehouse import warehouse

    base = warehouse.url()
    months = harness.months_between(bench_incremental.FIRST, bench_incremental.LAST)
    started = time.perf_counter()
    rows, _ = bench_incremental.load_months(base, landing, months)
    loaded = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
        bench_incremental.dbt_build(base, Path(tmp))
    bench_incremental.publish_marts(base)
    print(
        f"loaded {rows:,} rows in {loaded - started:.0f} s, built and published in {time.perf_counter() - loaded:.0f} s"
    )
    (home / "bench-incremental.json").write_text(json.dumps({"url": base, "months": months}))
    return base


def volume(url: str) -> tuple[int, int]:
    """(areas, treatment episode versions) of the warehouse measured."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "select count(distinct area_code), (select count(*) from raw.treatment_episodes) from marts.kpi_monthly"
        ).fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a home kept by bench_incremental.py --keep")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--national", action="store_true", help="every simulated area, not ten")
    args = parser.parse_args()
    load_before = harness.load_average()

    if args.home:
        from misuse_warehouse.embedded_pg import EmbeddedPostgres

        os.environ["MISUSE_WAREHOUSE_HOME"] = str(args.home)
        pg = EmbeddedPostgres(args.home / "pg")
        pg.start()
        url = json.loads((args.home / "bench-incremental.json").read_text())["url"]
        try:
            results = {role: measure(url, role, args.rounds) for role in ROLES}
            counts, (areas, versions) = row_counts(url), volume(url)
            import psycopg

            with psycopg.connect(url) as conn:
                env = harness.environment_lines(conn, load_before)
        finally:
            pg.stop()
        source = f"the warehouse kept at {args.home}"
    else:
        import bench_incremental

        label, chosen = ("national", harness.all_areas()) if args.national else ("areas10", harness.REDUCED_AREAS)
        months = harness.months_between(bench_incremental.FIRST, bench_incremental.LAST)
        landing = harness.simulated(label, chosen, months)
        with harness.throwaway_home("bi") as home:
            url = build_own(landing, home)
            results = {role: measure(url, role, args.rounds) for role in ROLES}
            counts, (areas, versions) = row_counts(url), volume(url)
            import psycopg

            with psycopg.connect(url) as conn:
                env = harness.environment_lines(conn, load_before)
        source = "a warehouse built by this script"

    lines = []
    worst = 0.0
    for name in QUERIES:
        cells = []
        for role in ROLES:
            values = results[role][name]
            p95 = harness.percentile(values, 95)
            worst = max(worst, p95)
            cells.append(f"{harness.median(values):.1f} | {p95:.1f}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    every = [v for role in ROLES for values in results[role].values() for v in values]
    overall = harness.percentile(every, 95)
    table = "\n".join(lines)
    harness.write_section(
        "bi",
        "5. BI query latency on the published marts after 36 months",
        f"""
Warehouse: {source} — {areas} areas × 36 months, {versions:,} treatment episode versions
({"national volume" if areas > len(harness.REDUCED_AREAS) else "reduced volume, not national"}): {counts}. {args.rounds} rounds of {len(QUERIES)} queries per role after a warm-up,
one connection per role, latency measured in the client (query + fetch).

| query | bi_reader median ms | bi_reader p95 ms | analyst_medway (RLS) median ms | analyst_medway p95 ms |
| --- | --- | --- | --- | --- |
{table}

p95 over every query and role: {overall:.1f} ms; worst single query's p95: {worst:.1f} ms (target ≤ {TARGET_MS:.0f} ms) —
{harness.verdict(worst <= TARGET_MS)} at this volume.
The scorecard mart's queries are the last three rows.

{env}""",
    )


if __name__ == "__main__":
    main()
