# ruff: noqa: E501 (markdown tables of RESULTS.md written as f-strings)
"""Measure 8: the mart gate's disclosure audit at national volume against that month's build.

Every simulated area (142) over the 36 months of bench_incremental.py: months 1 to 35 loaded
(loader: checks and load), built and published once; then month 36 loaded and built (the same
`dbt build` the Cosmos producer runs, incremental models and all: that month's build), and the
disclosure audit run on the marts_next it leaves, as the mart gate runs it (every reader role, the
grants applied in a transaction it rolls back). Target: the audit within 10% of the build. The
audit's verdict is printed too: at national volume it must find nothing disclosed.

Run: .venv/bin/python bench/bench_disclosure_audit.py [--areas all|N]
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", default="all", help="'all' simulated areas, or the first N")
    parser.add_argument("--profile", type=Path, help="write cProfile statistics of the audit to this file")
    args = parser.parse_args()
    import bench_incremental

    areas = harness.all_areas() if args.areas == "all" else harness.all_areas()[: int(args.areas)]
    label = "national" if args.areas == "all" else f"areas{len(areas)}"
    months = harness.months_between(bench_incremental.FIRST, bench_incremental.LAST)
    landing = harness.simulated(label, areas, months)
    load_before = harness.load_average()
    with harness.throwaway_home("audit"):
        from misuse_warehouse import disclosure_audit, publish, warehouse

        url = warehouse.url()
        bench_incremental.load_months(url, landing, months[:-1])
        with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
            bench_incremental.dbt_build(url, Path(tmp))
        bench_incremental.publish_marts(url)
        rows, _ = bench_incremental.load_months(url, landing, months[-1:])
        with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
            build_seconds, _ = bench_incremental.dbt_build(url, Path(tmp))
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        results = disclosure_audit.run(publish.NEXT)
        audit_seconds = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        summary = disclosure_audit.summary(results)
        import psycopg

        with psycopg.connect(url) as conn:
            kpi_rows, hidden = conn.execute(
                f"select count(*), count(*) filter (where is_suppressed) from {publish.NEXT}.kpi_monthly"
            ).fetchone()
            env = harness.environment_lines(conn, load_before)

    ratio = audit_seconds / build_seconds
    body = f"""
Volume: {len(areas)} areas x {len(months)} months ({months[0]} to {months[-1]}); month 36 loaded {rows:,} rows.
`marts_next.kpi_monthly` after month 36's build: {kpi_rows:,} rows, {hidden:,} suppressed.

| figure | measured | target | |
| --- | --- | --- | --- |
| month 36's `dbt build` | {build_seconds:.1f} s | | |
| disclosure audit of that build ({summary["roles"]} roles) | {audit_seconds:.1f} s | | |
| audit / build | {ratio:.2f} | ≤ {TARGET:.2f} | {harness.verdict(ratio <= TARGET)} |

Audit: {summary["text"]}.
{_disclosed(summary["failed"])}
{env}"""
    harness.write_section("audit", "8. Disclosure audit at national volume vs that month's build", body)


def _disclosed(failed: list[str], shown: int = 20) -> str:
    """The cells the audit found disclosed, as the gate names them: the bench is thrown away after its run."""
    if not failed:
        return ""
    lines = "\n".join(f"- {cell}" for cell in failed[:shown])
    more = f"\n- … and {len(failed) - shown} more" if len(failed) > shown else ""
    return f"\nDisclosed cells (cell, feasible range, relations, role):\n\n{lines}{more}\n"


if __name__ == "__main__":
    main()
