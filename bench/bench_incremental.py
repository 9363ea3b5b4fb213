# ruff: noqa: E501 (markdown tables of RESULTS.md written as f-strings)
"""Measure 2: the dbt build of month 36 vs month 1, same volume per month.

Databases in one throwaway Postgres, side by side: `warehouse_m1` holds month 1 only (its build
is a first build: every model from scratch); `warehouse` holds months 1 to 35, built once, and
each repetition copies it (`create database ... template`), loads month 36 into the copy and
builds that: the monthly build the pipeline runs, incremental models and all. A control, month 13,
is built the same way from `warehouse_m12` (months 1 to 12, built once): the first month whose
build recomputes a full twelve-month restatement window, as month 36's does, with a third of the
history. The same `dbt build` the Cosmos producer runs (every model and test, into marts_next)
alternates between month 1, month 13 and month 36, several repetitions, median. Before each build the next schemas are
dropped, as publication leaves them. Raw rows are loaded with the loader (checks + load; no GX:
the files are clean and the gate does not change what is loaded), much cheaper than DAG runs.

Volume is reduced (REDUCED_AREAS, ten areas, about a tenth of England): 36 national months would
take hours on this machine. The figures are for that volume; nothing is extrapolated.

With --keep the 36-month warehouse is left (published) for bench_bi_queries.py --home.

Run: .venv/bin/python bench/bench_incremental.py [--reps 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET = 1.3
FIRST, LAST = "2023-04", "2026-03"
MONTH_1_DB = "warehouse_m1"
CONTROL = 13  # the first month with twelve months before it: a full restatement window
CONTROL_BASE_DB = f"warehouse_m{CONTROL - 1}"


def database_url(base: str, name: str) -> str:
    """The same server and login, another database (libpq's parse: a socket or SSL setting stays as it was)."""
    from misuse_warehouse import connection_string

    return connection_string.replaced(base, dbname=name)


def load_months(url: str, landing: Path, months: list[str]) -> tuple[int, float]:
    """Every file of `months` through checks + loader, into the warehouse at `url`; (rows, seconds)."""
    os.environ["WAREHOUSE_URL"] = url
    from misuse_warehouse import file_checks, loader, migrations, reference_data, roles, warehouse

    with warehouse.connect() as conn:
        migrations.migrate(conn)
    reference_data.load("bench_incremental")  # as the DAG before its build: once, then when changed
    copies = Path(tempfile.mkdtemp(prefix="bench-landing-"))  # the loader moves what it loads: load copies
    landed = {month: harness.relanded(harness.feed_files(landing, month), copies / month) for month in months}
    rows, started = 0, time.perf_counter()
    with warehouse.connect(autocommit=True, role=roles.LOADER) as conn:
        for month in months:
            for path in landed[month]:
                outcome = loader.load(conn, file_checks.read_file(path), f"bench_incremental__{month}")
                if outcome.status != "loaded":
                    raise RuntimeError(f"{path.name}: {outcome.status} {outcome.message}")
                rows += outcome.rows
    seconds = time.perf_counter() - started
    shutil.rmtree(copies, ignore_errors=True)
    return rows, seconds


def dbt_build(url: str, target: Path) -> tuple[float, dict[str, float]]:
    """One `dbt build` against `url` after dropping the next schemas; (wall seconds, seconds per node)."""
    import psycopg

    from misuse_warehouse import orchestration, publish

    with psycopg.connect(url, autocommit=True) as conn:
        for publication in publish.PUBLICATIONS:
            conn.execute(f"drop schema if exists {publication.next} cascade")
        # the database copies write a warehouse's size of WAL: the checkpoint it triggers is the bench's, not the build's
        conn.execute("checkpoint")
    started = time.perf_counter()
    done = orchestration.run_dbt(["build", "--select", *orchestration.BUILD_SELECT], target, url=url)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dbt build failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    results = json.loads((target / "run_results.json").read_text())
    nodes = {r["unique_id"]: float(r["execution_time"]) for r in results["results"]}
    return seconds, nodes


def reset_to_first_build(url: str) -> None:
    """Month 1 as a first build each time: no intermediate tables yet."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists intermediate cascade")


def next_month_copy(base: str, template: str, name: str, landing: Path, month: str) -> str:
    """A copy of the built warehouse `template` with `month` loaded (not built)."""
    import psycopg

    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name} template {template}")
    url = database_url(base, name)
    load_months(url, landing, [month])
    return url


def drop_database(base: str, url: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f"drop database {url.rsplit('/', 1)[1]}")


def months_recomputed(url: str) -> tuple[str, str]:
    """The first and last month the latest build wrote in the person-months model."""
    import psycopg

    with psycopg.connect(url) as conn:
        first, last = conn.execute(
            """select min(month), max(month) from intermediate.int_treatment__person_months
               where built_through_submission_id = (select max(submission_id) from raw.submissions
                                                    where feed = 'treatment')"""
        ).fetchone()
    return first.strftime("%Y-%m"), last.strftime("%Y-%m")


def publish_marts(url: str) -> None:
    os.environ["WAREHOUSE_URL"] = url
    from misuse_warehouse import publish, roles, warehouse

    with warehouse.connect(role=roles.TRANSFORMER) as conn:
        publish.publish(conn, "bench_incremental", LAST)
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the 36-month warehouse for bench_bi_queries.py")
    args = parser.parse_args()
    if args.keep:
        os.environ["BENCH_KEEP_HOME"] = "1"

    months = harness.months_between(FIRST, LAST)
    landing = harness.simulated("areas10", harness.REDUCED_AREAS, months)
    load_before = harness.load_average()
    with harness.throwaway_home("incremental") as home, tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
        import psycopg

        from misuse_warehouse import warehouse
        from misuse_warehouse.embedded_pg import DATABASE_OPTIONS

        base = warehouse.url()
        with psycopg.connect(base, autocommit=True) as conn:
            for name in (MONTH_1_DB, CONTROL_BASE_DB):
                conn.execute(f"create database {name} {DATABASE_OPTIONS}")
        url_1 = database_url(base, MONTH_1_DB)
        rows_1, _ = load_months(url_1, landing, months[:1])
        rows_35, load_seconds = load_months(base, landing, months[:-1])
        history_seconds, _ = dbt_build(base, Path(tmp) / "history")
        load_months(database_url(base, CONTROL_BASE_DB), landing, months[: CONTROL - 1])
        dbt_build(database_url(base, CONTROL_BASE_DB), Path(tmp) / "control-history")
        print(f"loaded month 1: {rows_1:,} rows; months 1-35: {rows_35:,} rows in {load_seconds:.0f} s;")
        print(f"months 1-35 built in one first build: {history_seconds:.0f} s")
        control = str(CONTROL)
        builds: dict[str, list[float]] = {"1": [], control: [], "36": []}
        nodes: dict[str, list[dict[str, float]]] = {"1": [], control: [], "36": []}
        for rep in range(args.reps):
            reset_to_first_build(url_1)
            url_c = next_month_copy(base, CONTROL_BASE_DB, f"warehouse_m{CONTROL}_{rep}", landing, months[CONTROL - 1])
            url_36 = next_month_copy(base, "warehouse", f"warehouse_m36_{rep}", landing, LAST)
            for key, url in (("1", url_1), (control, url_c), ("36", url_36)):
                seconds, per_node = dbt_build(url, Path(tmp) / f"m{key}-{rep}")
                builds[key].append(seconds)
                nodes[key].append(per_node)
                print(f"rep {rep + 1}: month {key} dbt build {seconds:.1f} s")
            recomputed = months_recomputed(url_36)
            recomputed_c = months_recomputed(url_c)
            with psycopg.connect(url_36) as conn:
                raw_episode_rows = conn.execute("select count(*) from raw.treatment_episodes").fetchone()[0]
                rows_36 = conn.execute("select sum(row_count) from raw.submissions").fetchone()[0]
                env = harness.environment_lines(conn, load_before)
            drop_database(base, url_36)
            drop_database(base, url_c)
        if args.keep:
            load_months(base, landing, [LAST])
            dbt_build(base, Path(tmp) / "keep")
            publish_marts(base)
            (home / "bench-incremental.json").write_text(json.dumps({"url": base, "months": months}))

    m1, mc, m36 = (harness.median(builds[key]) for key in ("1", control, "36"))
    ratio = m36 / m1

    def node_median(key: str, node: str) -> float:
        return harness.median([run.get(node, 0.0) for run in nodes[key]])

    all_nodes = set(nodes["1"][0]) | set(nodes["36"][0])
    growth = sorted(all_nodes, key=lambda n: node_median("36", n) - node_median("1", n), reverse=True)[:8]
    node_rows = "\n".join(
        f"| `{n.split('.', 2)[-1]}` | {node_median('1', n):.2f} | {node_median(control, n):.2f} | {node_median('36', n):.2f} |"
        for n in growth
    )
    sum_1, sum_c, sum_36 = (harness.median([sum(run.values()) for run in nodes[key]]) for key in ("1", control, "36"))
    reps = ", ".join(
        f"{a:.1f}/{c:.1f}/{b:.1f}" for a, c, b in zip(builds["1"], builds[control], builds["36"], strict=True)
    )
    harness.write_section(
        "incremental",
        "2. dbt build of month 36 vs month 1",
        f"""
Volume (reduced, not national): {len(harness.REDUCED_AREAS)} areas ({", ".join(harness.REDUCED_AREAS)}),
about {rows_1:,} rows of every feed a month. Month 1 = the first build, {FIRST} alone; month 36 = the build after
{LAST} is loaded into a warehouse that holds and has built {FIRST}..{months[-2]} ({rows_36:,} rows in all,
{raw_episode_rows:,} treatment episode versions in raw). `dbt build` (all models and their tests, seeds loaded before as the DAG does, the Cosmos producer's
command, without Airflow), {args.reps} alternating repetitions. The month-keyed incremental models
(data dictionary decision 11) recomputed {recomputed[0]}..{recomputed[1]} at month 36 and
{recomputed_c[0]}..{recomputed_c[1]} at month {CONTROL} (the control: twelve months of history, built the same way);
every other model is rebuilt whole. The one-off first build of months 1-35 took {history_seconds:.0f} s.

| | median wall s | sum of node s |
| --- | --- | --- |
| month 1 | {m1:.1f} | {sum_1:.1f} |
| month {CONTROL} (control) | {mc:.1f} | {sum_c:.1f} |
| month 36 | {m36:.1f} | {sum_36:.1f} |

Month 36 / month 1: {ratio:.2f} × (target ≤ {TARGET} ×) — {harness.verdict(ratio <= TARGET)}.
Of that, month {CONTROL} / month 1: {mc / m1:.2f} × (a full restatement window instead of one month, little history);
month 36 / month {CONTROL}: {m36 / mc:.2f} × (the same window, three times the history).
Per repetition (month 1 / month {CONTROL} / month 36, s): {reps}.

Nodes whose time grew most (median s, month 1 → month 36):

| node | month 1 | month {CONTROL} | month 36 |
| --- | --- | --- | --- |
{node_rows}

{env}""",
    )


if __name__ == "__main__":
    main()
