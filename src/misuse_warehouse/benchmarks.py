"""What the benchmark DAG's tasks do: pull Fingertips, load through the shared path, announce.

Fingertips publishes irregularly, so benchmarks have a DAG of their own; the monthly pipeline's
dbt build reads whatever benchmarks were loaded last. Each indicator's contract-shaped file goes
through the same file checks, GX raw gate (`raw_fingertips`) and loader as any feed file
(`pipeline.ingest`); an indicator refused before a file could be written (metadata that names
another indicator, an unreadable answer) gets its audit row and quarantine reasons here.
Like the monthly pipeline, it writes raw as `loader` and records each pull in `ops.task_runs`.
"""

from __future__ import annotations

import logging
from typing import Any

from misuse_warehouse import fingertips, migrations, observe, roles, warehouse, writer_lease

log = logging.getLogger(__name__)


class BenchmarksRefused(RuntimeError):
    """Some indicators were refused; the rest were loaded, and the run says so loudly."""


def prepare() -> dict[str, Any]:
    """Warehouse up and migrated. No pseudonymisation secret needed: benchmarks are aggregates."""
    with warehouse.connect() as conn:
        migrations.migrate(conn)
    return {"warehouse": warehouse.url().rsplit("@", 1)[-1], "fingertips": fingertips.base_url()}


def pull(month: str, dag_run_id: str | None = None) -> list[str]:
    """Contract-shaped files of every indicator the API answered well; refusals audited now."""
    with (
        writer_lease.lease(f"fingertips {month} ({dag_run_id})"),
        warehouse.connect(autocommit=True, role=roles.LOADER) as conn,
        observe.task_run(conn, dag_run_id, "pull_fingertips", "raw", fingertips.base_url()) as run,
    ):
        result = fingertips.pull(month)
        for refused in result.refused:
            fingertips.record_refusal(conn, refused, month, dag_run_id)
        run.rows_out = sum(i["rows"] for i in result.indicators.values())
        run.detail = {"files": len(result.files), "refused": len(result.refused), "requests": result.requests}
    log.info(
        "fingertips %s from %s: %d files, %d refused, %d requests",
        month,
        result.base_url,
        len(result.files),
        len(result.refused),
        result.requests,
    )
    return result.files


def announce(outcomes: list[dict[str, Any]], month: str) -> dict[str, Any]:
    """What the Asset event says: which indicators are now current. Fails if none could be."""
    current = sorted(o["source"] for o in outcomes if o["status"] in ("loaded", "duplicate"))
    if not current:
        raise BenchmarksRefused(f"no Fingertips indicator could be loaded for {month}: nothing to announce")
    return {
        "month": month,
        "loaded": sorted(o["source"] for o in outcomes if o["status"] == "loaded"),
        "unchanged": sorted(o["source"] for o in outcomes if o["status"] == "duplicate"),
        "current": current,
    }


def report(dag_run_id: str | None) -> dict[str, int]:
    """Every benchmark refusal of this run (metadata, answer or raw gate), or a quiet success."""
    with warehouse.connect(role=roles.LOADER) as conn:
        refused = conn.execute(
            """select source_code, file_name, refusal_code, refusal_reason from raw.submissions
               where feed = %s and status = 'refused' and dag_run_id is not distinct from %s
               order by submission_id""",
            (fingertips.FEED, dag_run_id),
        ).fetchall()
        loaded = conn.execute(
            """select count(*) from raw.submissions
               where feed = %s and status = 'loaded' and dag_run_id is not distinct from %s""",
            (fingertips.FEED, dag_run_id),
        ).fetchone()[0]
    if refused:
        lines = "\n".join(f"  indicator {s}: {code} — {reason}" for s, _, code, reason in refused)
        raise BenchmarksRefused(f"{len(refused)} Fingertips indicator(s) refused (others loaded):\n{lines}")
    return {"loaded": loaded, "refused": 0}
