"""`misuse-warehouse`: run months through Airflow, inspect what is published, simulate feeds."""

from __future__ import annotations

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
    if ":" not in spec:
        return [m.strip() for m in spec.split(",") if m.strip()]
    first, last = spec.split(":")
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@app.command()
def url() -> None:
    """Print the warehouse connection URL (starts the embedded Postgres if it is the one)."""
    from misuse_warehouse import warehouse

    print(warehouse.url())


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
) -> None:
    """Process one reporting month through the monthly DAG (dag.test)."""
    from misuse_warehouse import pseudonymise

    try:
        pseudonymise.secret()
    except pseudonymise.MissingSecretError as missing:
        console.print(f"[red]{missing}[/]")
        raise typer.Exit(2) from missing
    result = _run_months([month], landing)[0]
    raise typer.Exit(0 if result.succeeded else 1)


def _run_months(months: list[str], landing: Path | None):  # noqa: ANN202
    from misuse_warehouse import runner

    results = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("monthly pipeline", total=len(months))
        for month in months:
            progress.update(task, description=f"monthly pipeline {month}")
            started = time.monotonic()
            result = runner.run_month(month, landing)
            seconds = time.monotonic() - started
            colour = "green" if result.succeeded else "red"
            progress.console.print(f"[{colour}]{month}: {result.state}[/] in {seconds:.0f}s ({result.run_id})")
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
    from misuse_warehouse import warehouse

    try:
        with warehouse.connect() as conn:
            written = pack.write_pack(conn, area, month, out)
    except pack.PackError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    console.print(f"performance pack for {written.area_name} ({area}), {month}: {written.html}")
    for chart in written.charts:
        console.print(f"  chart: {chart}")


@app.command()
def status() -> None:
    """What is loaded (per feed and month) and what is published."""
    from misuse_warehouse import status as status_queries
    from misuse_warehouse import warehouse

    with warehouse.connect() as conn:
        loaded = Table("feed", "month", "sources", "rows", "refused", title="Submissions (current)")
        for row in status_queries.submissions(conn):
            loaded.add_row(*(str(v) for v in row))
        published = Table("month", "areas", "kpi rows", title="Published marts.kpi_monthly")
        for row in status_queries.published_months(conn):
            published.add_row(*(str(v) for v in row))
        pubs = Table("id", "published at", "month", "run", title="Latest publications")
        for row in status_queries.publications(conn):
            pubs.add_row(*(str(v) for v in row))
    console.print(loaded, published, pubs)


@app.command()
def demo(
    months: Annotated[str, typer.Option(help="reporting months")] = "2024-04:2026-03",
    areas: Annotated[str, typer.Option()] = ",".join(settings.SEED_AREAS),
) -> None:
    """Simulate the seed areas' feeds and run every month through Airflow, then summarise.

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
        url_ = warehouse.url()
    simulate(out=landing, months=months, areas=areas, seed=42, defect=None)
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
        results = _run_months(month_list, landing)
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
        with warehouse.connect() as conn:
            written = pack.write_pack(conn, area, published[-1], pack.default_out_dir())
        console.print(f"\nperformance pack for {written.area_name}, {published[-1]}: [bold]{written.html}[/]")
    if not (benchmark_run.succeeded and all(r.succeeded for r in results)):
        raise typer.Exit(1)


def _summary(results, url_: str, elapsed: float) -> None:  # noqa: ANN001
    from misuse_warehouse import gate, warehouse
    from misuse_warehouse import status as status_queries

    ok = sum(r.succeeded for r in results)
    console.rule("Misuse Warehouse demo")
    console.print(f"months run: {len(results)}, succeeded: {ok}, in {elapsed / 60:.1f} min")
    with warehouse.connect() as conn:
        rows = Table("schema", "table", "rows", title="Rows per layer")
        for schema, table, count in status_queries.layer_rows(conn):
            rows.add_row(schema, table, f"{count:,}")
        console.print(rows)
        gates = conn.execute("select status, count(*) from raw.submissions group by 1 order by 1").fetchall()
    console.print("raw gate: " + ", ".join(f"{s} {n}" for s, n in gates))
    docs = gate.data_docs_index()
    console.print("\nWhere to look:")
    console.print(f"  published marts: schema [bold]marts[/] at {url_}")
    console.print(f"  psql: psql '{url_}' -c 'select * from marts.kpi_monthly limit 20'")
    console.print(f"  GX Data Docs: file://{docs}")
    console.print(f"  dbt docs: make dbt-docs, then open {settings.DBT_PROJECT_DIR / 'target' / 'index.html'}")
    console.print("  Airflow UI: make airflow")


if __name__ == "__main__":
    app()
