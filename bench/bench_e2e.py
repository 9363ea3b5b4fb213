# ruff: noqa: E501 (markdown tables of RESULTS.md written as f-strings)
"""Measures 3 and 4: one national month end to end through the real DAG, and GX's share of it.

`runner.run_month` (Airflow's `dag.test()`, as `misuse-warehouse run` does) on a fresh warehouse
with every feed of one simulated national month (all simulated areas; the police API stand-in of
the demo for the police pull). Wall time of the whole run, and per task from Airflow's task
instances and `ops.task_runs`.

GX's share: dag.test() runs tasks in this process, so the gate's entry points are wrapped with a
timer: `gate.check_files` (the raw suite on each feed's files, inside `ingest`), `gate.check_marts`
(the mart suites, inside `mart_gate`) and `gate.build_data_docs` (inside `report`). Their sum over
the run's wall time is the share.

Run: .venv/bin/python bench/bench_e2e.py [--month 2025-04] [--areas all|N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET_MINUTES = 10.0
TARGET_GX_SHARE = 0.20


def timed(module: object, name: str, totals: dict[str, float], counts: dict[str, int]) -> None:
    original = getattr(module, name)

    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - started
            counts[name] += 1

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", default="2025-04")
    args = parser.parse_args()

    cached = harness.simulated("national", harness.all_areas(), [args.month])
    load_before = harness.load_average()
    with harness.throwaway_home("e2e") as home:
        landing = home / "landing-copy"
        shutil.copytree(cached, landing, ignore=shutil.ignore_patterns(".complete"))
        files = harness.feed_files(landing, args.month)
        from misuse_warehouse import gate, police, runtime
        from misuse_warehouse.simulate import police_api

        runtime.configure()
        runtime.ensure_airflow_db()
        runtime.ensure_manifest()
        police_url, stop_police = police_api.start(seed=42, latest=args.month)
        os.environ[police.BASE_URL_ENV] = police_url
        totals: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for name in ("check_files", "check_marts", "build_data_docs"):
            timed(gate, name, totals, counts)
        from misuse_warehouse import runner

        runner.load_dag()  # DAG parse outside the timed run, as a scheduler has it parsed
        try:
            started = time.perf_counter()
            result = runner.run_month(args.month, landing)
            wall = time.perf_counter() - started
        finally:
            stop_police()
        from airflow.models import DagRun
        from airflow.utils.session import create_session

        per_task: dict[str, list[float]] = defaultdict(list)
        with create_session() as session:
            run = session.query(DagRun).filter(DagRun.run_id == result.run_id).one()
            for ti in run.get_task_instances(session=session):
                if ti.start_date and ti.end_date:
                    per_task[ti.task_id].append((ti.end_date - ti.start_date).total_seconds())
        from misuse_warehouse import warehouse

        with warehouse.connect() as conn:
            ops = conn.execute(
                """select task_id, layer, count(*), sum(seconds), sum(rows_out)
                   from ops.task_runs where dag_run_id = %s group by 1, 2 order by 4 desc""",
                (result.run_id,),
            ).fetchall()
            loaded = conn.execute(
                "select status, count(*), sum(row_count) from raw.submissions group by 1 order by 1"
            ).fetchall()
            env = harness.environment_lines(conn, load_before)

    gx = sum(totals.values())
    share = gx / wall
    minutes = wall / 60
    task_rows = "\n".join(
        f"| `{task}` | {len(values)} | {sum(values):.1f} |"
        for task, values in sorted(per_task.items(), key=lambda kv: -sum(kv[1]))[:12]
    )
    ops_rows = "\n".join(
        f"| {task} | {layer} | {n} | {float(seconds):.1f} | {rows or 0:,} |"
        for task, layer, n, seconds, rows in ops[:10]
    )
    gx_rows = "\n".join(f"| `gate.{name}` | {counts[name]} | {totals[name]:.1f} |" for name in totals)
    submitted = ", ".join(f"{status} {n} files ({rows or 0:,} rows)" for status, n, rows in loaded)
    harness.write_section(
        "e2e",
        "3–4. One national month end to end through the DAG, and GX's share",
        f"""
Volume: {args.month}, all {len(harness.all_areas())} simulated areas, {len(files)} files of every feed
(treatment, funding ledger, contract register, grants, CJ return, prison releases) plus the police pull
from the demo's stand-in. Raw: {submitted}. Fresh warehouse; `runner.run_month` = `dag.test()`.
Run state: **{result.state}**.

| figure | measured | target | |
| --- | --- | --- | --- |
| wall time of the run | {minutes:.1f} min ({wall:.0f} s) | ≤ {TARGET_MINUTES:.0f} min | {harness.verdict(minutes <= TARGET_MINUTES)} |
| GX share (raw gate + mart gate + Data Docs) | {share:.0%} ({gx:.0f} s) | ≤ {TARGET_GX_SHARE:.0%} | {harness.verdict(share <= TARGET_GX_SHARE)} |

GX time by entry point:

| entry point | calls | seconds |
| --- | --- | --- |
{gx_rows}

Airflow task instances (sum of durations; mapped tasks summed):

| task | instances | seconds |
| --- | --- | --- |
{task_rows}

`ops.task_runs` of the run:

| task | layer | rows | seconds | rows out |
| --- | --- | --- | --- | --- |
{ops_rows}

{env}""",
    )
    if not result.succeeded:
        failed = {t: s for t, s in result.task_states.items() if s not in ("success", "skipped")}
        print(f"run ended {result.state}: {failed}")


if __name__ == "__main__":
    main()
