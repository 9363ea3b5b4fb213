"""`misuse-warehouse`: run months through Airflow, inspect what is published, simulate feeds."""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from misuse_warehouse import settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()


def _months(spec: str) -> list[str]:
    """`2024-04:2026-03` (inclusive) or a comma list."""
    from misuse_warehouse.months import months_between

    if ":" not in spec:
        return [m.strip() for m in spec.split(",") if m.strip()]
    first, last = spec.split(":")
    try:
        return months_between(first.strip(), last.strip())
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


@app.command()
def url() -> None:
    """Print the warehouse's connection URL without its password (starts the embedded Postgres if it is the one).

    A password is never printed: psql and BI tools ask for it, or read PGPASSWORD or ~/.pgpass.
    """
    from misuse_warehouse import warehouse

    print(warehouse.display(warehouse.url()))


@app.command()
def migrate(
    show: Annotated[bool, typer.Option("--show", help="print the current and head revisions; change nothing")] = False,
    new_revision: Annotated[
        str | None, typer.Option(help="developers: write the next revision file, to fill in, with this message")
    ] = None,
) -> None:
    """Upgrade the warehouse schema to the head revision, then roles and grants (a deployment's init runs it).

    Every DAG run does the same in its `prepare` task where it has the admin login; two at once wait
    for each other's lock. With the step logins only (a Docker worker) it refuses, naming the setting.
    """
    from misuse_warehouse import migrations, roles, settings, warehouse

    if new_revision:
        console.print(f"new revision: {migrations.new_revision(new_revision)}")
        return
    if not show and not warehouse.has_admin_login():
        console.print(
            f"[red]migrate needs the warehouse's admin login: set {settings.WAREHOUSE_URL_ENV} "
            "(Docker: `docker compose run --rm init`); this process has the step logins only[/]"
        )
        raise typer.Exit(2)
    with warehouse.connect() as conn:
        if show:
            state = migrations.revisions(conn)
            console.print(f"current revision: {state.current or 'none (not versioned yet)'}")
            console.print(f"head revision: {state.head}")
            console.print(f"pending: {', '.join(state.pending) or 'nothing, up to date'}")
            return
        try:
            ran = migrations.migrate(conn)
        except (migrations.SchemaError, roles.AnalystGroupsError) as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(2) from error
    done = f"ran {', '.join(ran)}" if ran else "already at head"
    console.print(f"warehouse migrated ({done}): {warehouse.display()}")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="landing folder to write")],
    months: Annotated[str, typer.Option(help="YYYY-MM:YYYY-MM or a comma list")],
    areas: Annotated[str, typer.Option(help="comma-separated GSS codes")] = ",".join(settings.SEED_AREAS),
    seed: int = 42,
    defect: Annotated[list[str] | None, typer.Option(help="inject a named defect")] = None,
) -> None:
    """Write synthetic feed files in the landing layout."""
    from misuse_warehouse.simulate import write_feeds

    with console.status("simulating feeds") as status:
        paths = write_feeds(
            out,
            [a.strip() for a in areas.split(",")],
            _months(months),
            seed=seed,
            defects=defect or [],
            progress=lambda msg: status.update(msg),
        )
    console.print(f"wrote {len(paths)} files under {out}")


@app.command()
def run(
    month: Annotated[str, typer.Option(help="reporting month YYYY-MM")],
    landing: Annotated[Path | None, typer.Option(help="landing folder (default .local/landing)")] = None,
    catch_up_from: Annotated[
        str | None, typer.Option(help="first month YYYY-MM of a catch-up run: every month from it to --month")
    ] = None,
) -> None:
    """Process one reporting month through the monthly DAG (dag.test), or a backlog in one catch-up run."""
    from misuse_warehouse import pseudonymise, runtime
    from misuse_warehouse.months import run_months

    try:
        run_months(month, catch_up_from)
    except ValueError as wrong:
        console.print(f"[red]{wrong}[/]")
        raise typer.Exit(2) from wrong

    runtime.configure()  # the secret may come from an Airflow secrets backend
    try:
        pseudonymise.secret()
    except pseudonymise.MissingSecretError as missing:
        console.print(f"[red]{missing}[/]")
        raise typer.Exit(2) from missing
    result = _run_months([(month, catch_up_from)], landing)[0]
    raise typer.Exit(0 if result.succeeded else 1)


def _run_months(runs: list[tuple[str, str | None]], landing: Path | None):  # noqa: ANN202
    """Each (month, catch_up_from) through the monthly DAG, one after the other, with progress."""
    from misuse_warehouse import runner

    results = []
    with Progress(*_progress_columns(), console=console) as progress:
        task = progress.add_task("monthly pipeline", total=len(runs))
        for month, catch_up_from in runs:
            label = f"{catch_up_from}..{month} (catch-up)" if catch_up_from else month
            progress.update(task, description=f"monthly pipeline {label}")
            started = time.monotonic()
            result = runner.run_month(month, landing, catch_up_from)
            seconds = time.monotonic() - started
            colour = "green" if result.succeeded else "red"
            progress.console.print(f"[{colour}]{label}: {result.state}[/] in {seconds:.0f}s ({result.run_id})")
            if not result.succeeded:
                failed = [t for t, s in result.task_states.items() if s not in ("success", "skipped")]
                progress.console.print(f"  tasks not successful: {', '.join(failed)}")
            results.append(result)
            progress.advance(task)
    return results


@app.command()
def benchmarks(
    month: Annotated[str, typer.Option(help="month YYYY-MM whose data interval the run takes")],
) -> None:
    """Pull Fingertips benchmarks through the benchmark DAG (dag.test); API from MISUSE_WAREHOUSE_FINGERTIPS_API."""
    from misuse_warehouse import runner

    result = runner.run_benchmarks(month)
    colour = "green" if result.succeeded else "red"
    console.print(f"[{colour}]benchmarks {month}: {result.state}[/] ({result.run_id})")
    if not result.succeeded:
        failed = [t for t, s in result.task_states.items() if s not in ("success", "skipped")]
        console.print(f"  tasks not successful: {', '.join(failed)}")
    raise typer.Exit(0 if result.succeeded else 1)


@app.command()
def report(
    area: Annotated[str, typer.Option(help="GSS code, e.g. E06000035")],
    month: Annotated[str, typer.Option(help="reporting month YYYY-MM")],
    out: Annotated[Path | None, typer.Option(help="folder for the HTML and PNGs (default .local/reports)")] = None,
) -> None:
    """Write the performance pack (HTML with embedded charts, and the PNGs) from the published marts."""
    from misuse_warehouse import report as pack

    try:
        with pack.connect() as conn:
            written = pack.write_pack(conn, area, month, out)
    except pack.PackError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    console.print(f"performance pack for {written.area_name} ({area}), {month}: {written.html}")
    for chart in written.charts:
        console.print(f"  chart: {chart}")


@app.command()
def backfill(
    from_: Annotated[str, typer.Option("--from", help="first reporting month YYYY-MM")],
    to: Annotated[str, typer.Option(help="last reporting month YYYY-MM")],
    landing: Annotated[Path | None, typer.Option(help="landing folder (default .local/landing)")] = None,
) -> None:
    """Months through Airflow's own backfill (scheduler-run); run again to resume an interrupted one."""
    from misuse_warehouse import backfill as backfills
    from misuse_warehouse import pseudonymise

    try:
        pseudonymise.secret()
    except pseudonymise.MissingSecretError as missing:
        console.print(f"[red]{missing}[/]")
        raise typer.Exit(2) from missing
    months = _months(f"{from_}:{to}")
    with Progress(*_progress_columns(), console=console) as progress:
        task = progress.add_task(f"backfill {from_} to {to}", total=len(months))

        def show(states: list) -> None:  # noqa: ANN001
            done = [s for s in states if s.state == "success" or s.state.startswith("skipped")]
            running = [s.month for s in states if s.state in ("queued", "running")]
            progress.update(task, completed=len(done), description=f"backfill: running {', '.join(running) or '-'}")

        result = backfills.run(from_, to, landing, progress=show)
    console.print(f"backfill {result.backfill_id}" + (" (resumed)" if result.resumed else ""))
    for state in result.months:
        colour = "green" if state.state == "success" else ("yellow" if state.state.startswith("skipped") else "red")
        console.print(f"  [{colour}]{state.month}: {state.state}[/]")
    raise typer.Exit(0 if result.succeeded else 1)


def _progress_columns() -> tuple:
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )


@app.command()
def rekey(
    yes: Annotated[bool, typer.Option("--yes", help="confirm: every raw person_key is recomputed")] = False,
) -> None:
    """After rotating the pseudonymisation secret: recompute every raw person_key with the new one.

    Reads the new secret as `run` does (environment or Airflow secrets backend). The next run of
    the monthly pipeline rebuilds and republishes the marts from the re-keyed rows.
    """
    from misuse_warehouse import migrations, pseudonymise, roles, runtime, warehouse
    from misuse_warehouse import rekey as rekeying

    runtime.configure()
    try:
        key = pseudonymise.secret()
    except pseudonymise.MissingSecretError as missing:
        console.print(f"[red]{missing}[/]")
        raise typer.Exit(2) from missing
    if not yes:
        console.print("[red]re-keying rewrites every raw person_key with the current secret: add --yes[/]")
        raise typer.Exit(2)
    migrations.ensure_current()  # on a worker with the step logins only (Docker), a check
    with warehouse.connect(role=roles.LOADER) as conn:
        summary = rekeying.rekey(conn, key)
    done = Table("raw table", "rows re-keyed", "purged rows mapped", "purged rows unmatched", title="Re-keyed")
    for row in summary:
        done.add_row(str(row["table"]), str(row["rekeyed"]), str(row["purged_mapped"]), str(row["purged_unmatched"]))
    console.print(done, "Run the monthly pipeline for the latest month to republish the marts.")


@app.command()
def status() -> None:
    """What is loaded (per feed and month) and what is published."""
    from misuse_warehouse import publish, warehouse
    from misuse_warehouse import status as status_queries

    with warehouse.connect() as conn:
        checksum = publish.published_checksum(conn)
        loaded = Table("feed", "month", "sources", "rows", "refused", title="Submissions (current)")
        for row in status_queries.submissions(conn):
            loaded.add_row(*(str(v) for v in row))
        published = Table("month", "areas", "kpi rows", title="Published marts.kpi_monthly")
        for row in status_queries.published_months(conn):
            published.add_row(*(str(v) for v in row))
        pubs = Table("id", "published at", "month", "run", title="Latest publications")
        for row in status_queries.publications(conn):
            pubs.add_row(*(str(v) for v in row))
        audit = Table(
            "role", "areas", "suppressed counts checked", "disclosed", "narrowest feasible range", "at",
            title="Disclosure audit (latest mart gate)",
        )  # fmt: skip
        for row in status_queries.disclosure_audits(conn):
            audit.add_row(*(str(v) for v in row))
    console.print(loaded, published, pubs, audit)
    console.print(f"published marts checksum: {checksum}")


@app.command("report-file")
def report_file(
    target: Annotated[str, typer.Argument(help="a quarantined file, or the submission id of a refused file")],
) -> None:
    """Write a refused file's validation report for the submitter again (CSV and HTML beside the file)."""
    from misuse_warehouse import pipeline, warehouse

    path = Path(target)
    if target.isdigit():
        with warehouse.connect() as conn:
            row = conn.execute(
                "select file_name from raw.submissions where submission_id = %s and status = 'refused'",
                (int(target),),
            ).fetchone()
        found = sorted(settings.quarantine_dir().glob(f"*/*/{glob.escape(row[0])}")) if row else []
        if not found:
            console.print(f"[red]no quarantined file for refused submission {target}[/]")
            raise typer.Exit(2)
        path = found[0]
    if not path.is_file():
        console.print(f"[red]{path} is not a file[/]")
        raise typer.Exit(2)
    report = pipeline.report_file(path.resolve())
    if report is None:
        console.print(f"{path.name} passes every check today: no report")
        return
    console.print(f"report: {report} (and {report.with_suffix('.csv').name})")


@app.command()
def demo(
    months: Annotated[str, typer.Option(help="reporting months")] = "2024-04:2026-03",
    areas: Annotated[str, typer.Option()] = ",".join(settings.SEED_AREAS),
    monthly_runs: Annotated[
        int, typer.Option(min=0, help="the last N months run one by one; the months before them in one catch-up run")
    ] = 3,
) -> None:
    """Simulate the seed areas' feeds and run them through Airflow, then summarise.

    The history arrives as a partnership joining would bring it: every month but the last
    `monthly_runs` in one catch-up run, then each of those months in its own monthly run, so the
    incremental monthly path is what the last runs show (`--monthly-runs 24` runs every month alone).

    Police crimes and Fingertips benchmarks come from local stand-ins for data.police.uk and the
    Fingertips API (simulated data in the APIs' shapes), so the demo is offline and the DAGs'
    connector code is the one used in production. The benchmark DAG runs once before the first
    month, so every month is compared with England; the demo ends by writing the performance pack
    of the first area for the last month.
    """
    from misuse_warehouse import fingertips, police, pseudonymise, runner, warehouse
    from misuse_warehouse import report as pack
    from misuse_warehouse.simulate import fingertips_api, police_api

    os.environ.setdefault(settings.PSEUDONYM_KEY_ENV, pseudonymise.demo_secret(settings.home()))
    landing = settings.landing_dir()
    month_list = _months(months)
    with console.status("starting the warehouse"):
        url_ = warehouse.display(warehouse.url())
    simulate(out=landing, months=months, areas=areas, seed=42, defect=None)
    _record_simulated_arrivals(landing)
    police_url, stop_police = police_api.start(seed=42, latest=month_list[-1])
    # as published before the first month: the calendar year before it, the financial year ending in it
    fingertips_url, stop_fingertips = fingertips_api.start(seed=42, latest_year=int(month_list[0][:4]) - 1)
    previous = {name: os.environ.get(name) for name in (police.BASE_URL_ENV, fingertips.BASE_URL_ENV)}
    os.environ[police.BASE_URL_ENV] = police_url
    os.environ[fingertips.BASE_URL_ENV] = fingertips_url
    console.print(f"police API stand-in at {police_url} (simulated crimes, approximate demo polygons)")
    console.print(f"Fingertips API stand-in at {fingertips_url} (simulated benchmarks near published levels)")
    try:
        started = time.monotonic()
        with console.status(f"benchmark DAG for {month_list[0]} (Fingertips)"):
            benchmark_run = runner.run_benchmarks(month_list[0])
        colour = "green" if benchmark_run.succeeded else "red"
        console.print(f"[{colour}]benchmarks {month_list[0]}: {benchmark_run.state}[/] ({benchmark_run.run_id})")
        results = _run_months(_demo_runs(month_list, monthly_runs), landing)
        elapsed = time.monotonic() - started
    finally:
        stop_police()
        stop_fingertips()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    _summary(results, url_, elapsed)
    area = [a.strip() for a in areas.split(",")][0]
    published = [r.month for r in results if r.succeeded]
    if published:
        with pack.connect() as conn:
            written = pack.write_pack(conn, area, published[-1], pack.default_out_dir())
        console.print(f"\nperformance pack for {written.area_name}, {published[-1]}: [bold]{written.html}[/]")
    if not (benchmark_run.succeeded and all(r.succeeded for r in results)):
        raise typer.Exit(1)


def _record_simulated_arrivals(landing: Path) -> None:
    """The simulated landing days as first sights (received_at), so the demo's deadline check has late files."""
    from misuse_warehouse import migrations, warehouse
    from misuse_warehouse.simulate import arrivals

    with warehouse.connect(autocommit=True) as conn:
        migrations.migrate(conn)
        arrivals.record_sightings(conn, landing)


def _demo_runs(months: list[str], monthly_runs: int) -> list[tuple[str, str | None]]:
    """(month, catch_up_from) of each run: one catch-up run for the history, then the last months alone."""
    split = max(len(months) - monthly_runs, 0)
    history, monthly = months[:split], months[split:]
    catch_up = [(history[-1], history[0])] if len(history) > 1 else [(m, None) for m in history]
    return catch_up + [(m, None) for m in monthly]


def _summary(results, url_: str, elapsed: float) -> None:  # noqa: ANN001
    from misuse_warehouse import gate, publish, warehouse
    from misuse_warehouse import status as status_queries

    ok = sum(r.succeeded for r in results)
    console.rule("Misuse Warehouse demo")
    console.print(f"runs: {len(results)}, succeeded: {ok}, in {elapsed / 60:.1f} min")
    with warehouse.connect() as conn:
        rows = Table("schema", "table", "rows", title="Rows per layer")
        for schema, table, count in status_queries.layer_rows(conn):
            rows.add_row(schema, table, f"{count:,}")
        console.print(rows)
        gates = conn.execute("select status, count(*) from raw.submissions group by 1 order by 1").fetchall()
        marts_gate = conn.execute(
            """select count(distinct dag_run_id), count(*) filter (where is_success), count(*)
               from ops.gate_results where gate = 'marts' and dag_run_id = any(%s)""",
            ([r.run_id for r in results],),
        ).fetchone()
        checksum = publish.published_checksum(conn)
        audit = status_queries.disclosure_audits(conn)
    console.print("raw gate: " + ", ".join(f"{s} {n}" for s, n in gates))
    console.print(f"mart gate: {marts_gate[1]:,} of {marts_gate[2]:,} expectations passed over {marts_gate[0]} runs")
    if audit:
        role, _, checked, disclosed, narrowest, _ = audit[0]
        console.print(
            f"disclosure audit (last run, {len(audit)} roles): {checked:,} suppressed counts checked as {role}, "
            f"{disclosed} disclosed; narrowest feasible range {narrowest}"
        )
    # a fresh home has its own pseudonymisation key and numbers submissions in the order Airflow ran the feeds
    console.print(f"published marts checksum: {checksum} (the same when the demo runs again in this home)")
    docs = gate.data_docs_index()
    console.print("\nWhere to look:")
    console.print(f"  published marts: schema [bold]marts[/] at {url_}")
    console.print("  person-level marts (role public_health): schema [bold]marts_person[/]")
    console.print(f"  psql: psql '{url_}' -c 'select * from marts.kpi_monthly limit 20' (asks for the password)")
    console.print(f"  GX Data Docs: file://{docs}")
    console.print(f"  dbt docs: make dbt-docs, then open {settings.DBT_PROJECT_DIR / 'target' / 'index.html'}")
    console.print("  Airflow UI: make airflow")


if __name__ == "__main__":
    app()
