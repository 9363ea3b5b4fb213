"""What the monthly DAG's tasks do. The DAG file only wires these together.

Each function is plain Python so tests and the CLI can reason about it, but runs are
always started through Airflow (the CLI uses dag.test()).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misuse_warehouse import (
    faults,
    file_checks,
    gate,
    loader,
    migrations,
    observe,
    publish,
    roles,
    settings,
    warehouse,
    writer_lease,
)
from misuse_warehouse.months import month_text, months_between, parse_month, run_months
from misuse_warehouse.refusal import Refusal

if TYPE_CHECKING:
    from misuse_warehouse import police

log = logging.getLogger(__name__)


class GateFailed(RuntimeError):
    """The built marts broke a mart expectation: nothing is published."""


class FilesRefused(RuntimeError):
    """Some files were quarantined; the rest were published, and the run says so loudly."""


class AnalystViewsLost(RuntimeError):
    """Published, but some analysts' views on the marts no longer fit them; the run says so loudly."""


def prepare() -> dict[str, Any]:
    """The pseudonymisation secret present before anything else; then the warehouse up and migrated.

    Without a secret (environment or Airflow secrets backend) the run stops here, with the reason,
    before a file is read.
    """
    from misuse_warehouse import pseudonymise

    pseudonymise.secret()
    migrations.ensure_current()  # a worker with the steps' logins only checks the schema is at head
    return {"warehouse": warehouse.display()}


def discover(landing: str | None, month: str) -> list[str]:
    """Every file in `<landing>/<feed>/<month>/` of a feed we hold a contract for.

    Inside such a folder a misnamed file is taken (and refused), not skipped. Folders of feeds
    without a contract yet are left where they are and named in the log.
    """
    from misuse_warehouse.contracts import all_contracts

    root = Path(landing) if landing else settings.landing_dir()
    feeds = all_contracts()
    waiting = sorted({p.name for p in root.iterdir() if p.is_dir() and p.name not in feeds}) if root.exists() else []
    if waiting:
        log.warning("no contract loaded yet for %s: those files stay in the landing area", ", ".join(waiting))
    # a symbolic link is taken like a file, to be refused and quarantined (file_checks.open_landed), never followed
    files = sorted(
        str(p)
        for feed in feeds
        for p in (root / feed / month).glob("*")
        if (p.is_symlink() or p.is_file()) and not p.name.startswith(".")
    )
    log.info("%d files for %s in %s", len(files), month, root)
    return files


def discover_feeds(
    landing: str | None, month: str, catch_up_from: str | None = None, months: list[str] | None = None
) -> list[list[str]]:
    """The run's files (`discover`, each month of `run_months`, or of `months`) grouped by feed, oldest month first.

    The DAG ingests each feed's files in one task, in that order, so a file is always checked
    against the submissions of the months before it.
    """
    feeds: dict[str, list[str]] = {}
    for each in sorted(months) if months else run_months(month, catch_up_from):
        for path in discover(landing, each):
            feeds.setdefault(Path(path).parent.parent.name, []).append(path)
    return list(feeds.values())


def feed_of(paths: list[str]) -> str:
    """The feed folder of a group of files (an ingest task's label)."""
    return ", ".join(sorted({Path(p).parent.parent.name for p in paths}))


def ingest(path: str, dag_run_id: str | None = None) -> dict[str, Any]:
    """One file through checks, raw gate and load (see `ingest_files`)."""
    return ingest_files([path], dag_run_id)[0]


def ingest_files(paths: list[str], dag_run_id: str | None = None) -> list[dict[str, Any]]:
    """Checks, raw gate, restatement check, load — or quarantine with the reason and the submitter's report.

    The files are read and checked one by one, then the raw gate judges them together (one GX run
    per batch: its cost is per run, not per row), then each is loaded or refused on its own: one
    file's refusal never holds back another. A file loaded with warnings (suppression markers, a
    provider without a contract in the register) gets its validation report under `<home>/reports/`.
    Each file is a row of ops.task_runs (its gate's seconds shared by rows), its checks in ops.gate_results.
    """
    outcomes: list[dict[str, Any]] = []
    with (
        writer_lease.lease(f"ingest {feed_of(paths)} ({dag_run_id})"),
        warehouse.connect(autocommit=True, role=roles.LOADER) as conn,
    ):
        intakes: list[_Intake] = []
        rows = 0
        for path in paths:
            intake = _read(conn, Path(path), dag_run_id)
            intakes.append(intake)
            rows += intake.parsed.row_count if intake.parsed else 0  # duplicates are held until landed too
            if rows >= gate.BATCH_ROWS:  # memory stays bounded by a batch, not the month
                outcomes += _gate_and_load(conn, intakes, dag_run_id)
                intakes, rows = [], 0
        outcomes += _gate_and_load(conn, intakes, dag_run_id)
    return outcomes


@dataclass
class _Intake:
    """A file on its way in: what reading it found, and the seconds spent on it so far."""

    file: Path
    run: observe.TaskRun
    started: datetime
    seconds: float = 0.0
    parsed: file_checks.ParsedFile | None = None
    refusal: Refusal | None = None
    duplicate: loader.Outcome | None = None
    checked: gate.GateResult | None = None
    submission_id: int | None = None  # reserved in file order before the files load side by side

    @property
    def waits_for_gate(self) -> bool:
        return self.parsed is not None and self.refusal is None and self.duplicate is None


def _read(conn: Any, file: Path, dag_run_id: str | None) -> _Intake:
    intake = _Intake(file, observe.TaskRun("ingest", "raw", file.name), datetime.now(UTC))
    clock = time.monotonic()
    try:
        intake.parsed = file_checks.read_file(file)
        intake.run.rows_in = intake.parsed.row_count
        intake.duplicate = loader.duplicate_of(conn, intake.parsed)  # checked again under the load's lock
    except Refusal as refusal:
        intake.refusal = refusal
    except BaseException:
        intake.run.status = "failed"
        observe.record_task_runs(conn, dag_run_id, [(intake.run, intake.started, time.monotonic() - clock)])
        raise
    intake.seconds += time.monotonic() - clock
    return intake


def _gate_and_load(conn: Any, intakes: list[_Intake], dag_run_id: str | None) -> list[dict[str, Any]]:
    waiting = [i for i in intakes if i.waits_for_gate]
    clock = time.monotonic()
    results = gate.check_files([i.parsed for i in waiting], dag_run_id) if waiting else []
    gate_seconds = time.monotonic() - clock
    weights = [max(i.parsed.row_count, 1) for i in waiting]
    for intake, result, weight in zip(waiting, results, weights, strict=True):
        intake.checked = result
        intake.seconds += gate_seconds * weight / sum(weights)
        if not result.success:
            intake.refusal = result.refusal()
    recorded = [i for i in intakes if not i.duplicate]  # loaded or refused: each a raw.submissions row
    for intake, submission_id in zip(recorded, loader.reserve_submission_ids(conn, len(recorded)), strict=True):
        intake.submission_id = submission_id
    return loader.in_lanes(
        intakes,
        lambda intake: loader.lane(intake.parsed) if intake.parsed else intake.file.name,
        lambda lane_conn, intake: _land(lane_conn, intake, dag_run_id),
        lambda: warehouse.connect(autocommit=True, role=roles.LOADER),
    )


def _land(conn: Any, intake: _Intake, dag_run_id: str | None) -> dict[str, Any]:
    """Load the file or quarantine it, and record both in the ops tables."""
    from misuse_warehouse import register_check, validation_report

    file, run, parsed = intake.file, intake.run, intake.parsed
    clock = time.monotonic()
    warnings: list = []
    try:
        if intake.duplicate:
            log.info("DUPLICATE %s: %s", file.name, intake.duplicate.message)
            loader.archive(file, parsed.sha256, intake.started)  # its bytes are in force: out of landing
            run.status, run.rows_out = "duplicate", 0
            return intake.duplicate.as_dict()
        try:
            if intake.refusal:
                raise intake.refusal
            loader.check_restatement(conn, parsed)
            warnings = parsed.warnings + register_check.provider_contract_warnings(conn, parsed)
            outcome = loader.load(conn, parsed, dag_run_id, intake.submission_id, intake.started)
            if outcome.status == "duplicate":  # the same bytes loaded by another run meanwhile
                loader.archive(file, parsed.sha256, intake.started)
        except Refusal as refusal:
            outcome = loader.refuse(conn, file, refusal, dag_run_id, intake.submission_id, intake.started)
            log.error("REFUSED %s: %s", file.name, outcome.message)
        run.status, run.rows_out = outcome.status, outcome.rows
        run.detail = {"submission_id": outcome.submission_id, "refusal_code": outcome.refusal_code}
        if intake.checked:
            checked = intake.checked
            observe.record_gate_results(
                conn, dag_run_id, "raw", checked.suite, file.name, checked.checks, outcome.submission_id
            )
    except BaseException:
        run.status = "failed"
        raise
    finally:
        seconds = intake.seconds + time.monotonic() - clock
        observe.record_task_runs(conn, dag_run_id, [(run, intake.started, seconds)])
    if outcome.status == "refused":
        return outcome.as_dict()
    if warnings and outcome.status == "loaded" and outcome.submission_id is not None:
        report = validation_report.write_for_warnings(
            file.name, parsed.name.feed, parsed.name.month_folder, outcome.submission_id, warnings
        )
        outcome = replace(outcome, warnings=len(warnings), report=str(report.html_path))
        log.warning("WARNINGS %s: %d, report at %s", file.name, len(warnings), report.html_path)
    log.info("%s %s: %s", outcome.status.upper(), file.name, outcome.message)
    return outcome.as_dict()


def report_file(path: Path) -> Path | None:
    """Write again the validation report of a (quarantined) file: the checks run afresh, nothing is loaded.

    The restatement check compares with the submission in force now. Returns the HTML report,
    or None when the file passes every check today.
    """
    from misuse_warehouse import validation_report

    try:
        parsed = file_checks.read_file(path)
        result = gate.check_file(parsed)
        if not result.success:
            raise result.refusal()
        with warehouse.connect(role=roles.LOADER) as conn:
            loader.check_restatement(conn, parsed)
    except Refusal as refusal:
        return validation_report.write_for_refusal(path, refusal).html_path
    return None


def pull_police(
    month: str,
    dag_run_id: str | None = None,
    *,
    config: police.PoliceConfig | None = None,
    client: police.PoliceClient | None = None,
    published: list[str] | None = None,
    unreachable: police.PoliceApiError | None = None,
    areas: list[str] | None = None,
) -> dict[str, Any]:
    """Street crimes of every configured area (or of `areas`) for the month, from data.police.uk (or the
    demo's stand-in).

    A month the API has not published yet gives `status` `not_available` (the DAG task skips and the
    next run tries again); otherwise `status` is `pulled` and `areas` holds each area's result:
    loaded, duplicate, refused (the answer cannot be right: recorded, not loaded) or unavailable
    (the API could not give it). Refused and unavailable area-months keep their last good pull in
    force, are listed in `gaps`, and never fail the run: every other figure still publishes, and
    the build flags C2 of those area-months. Each area-month is a row of ops.task_runs (task
    `pull_police`), which is what the build and the run report read. `config`, `client` and
    `published` (the API's published months) are read here unless the caller has them;
    `unreachable` is the error that stopped the caller from reading the published months.
    """
    from misuse_warehouse import police

    config = config or police.load_config()
    client = client or police.PoliceClient(config.base_url)
    if published is None and unreachable is None:
        try:
            published = police.available_months(client)
        except police.PoliceApiError as error:
            unreachable = error
    codes = areas if areas is not None else list(config.areas)
    summary: dict[str, Any] = {"month": month, "base_url": config.base_url, "areas": {}}
    if unreachable is None and month not in (published or []):
        latest = max(published or [], default=None)
        summary["areas"] = {code: police.not_available(code, month, latest) for code in codes}
        log.info("police: %s not published yet (newest %s): nothing pulled", month, latest)
        with warehouse.connect(autocommit=True, role=roles.LOADER) as conn:  # a gap before it is no longer one
            for result in summary["areas"].values():  # ops.task_runs only: no writer lease needed
                _record_police_pull(conn, dag_run_id, result, datetime.now(UTC), 0.0)
        return summary | {"status": "not_available", "not_available": True, "latest_published": latest, "gaps": []}
    with (
        writer_lease.lease(f"police {month} ({dag_run_id})"),
        warehouse.connect(autocommit=True, role=roles.LOADER) as conn,
    ):
        for code in codes:
            started, clock = datetime.now(UTC), time.monotonic()
            try:
                if unreachable is not None:
                    raise unreachable
                result = police.pull(conn, code, month, dag_run_id, client=client, config=config, available=published)
            except police.PoliceApiError as error:
                result = police.unavailable(code, month, error, police.in_force(conn, code, month))
            summary["areas"][code] = result
            _record_police_pull(conn, dag_run_id, result, started, time.monotonic() - clock)
            level = logging.WARNING if result["status"] in police.GAPS else logging.INFO
            log.log(level, "police %s %s: %s %s", code, month, result["status"].upper(), result["message"])
    results = summary["areas"].values()
    unknown = sorted({text for r in results for texts in r["unknown_outcomes"].values() for text in texts})
    gaps = [
        {k: r.get(k) for k in ("area", "month", "status", "reason", "in_force")} | {"area": code, "month": month}
        for code, r in summary["areas"].items()
        if r["status"] in police.GAPS
    ]
    everything_unavailable = all(r["status"] == "unavailable" for r in results)
    return summary | {
        "status": "unavailable" if everything_unavailable else "pulled",
        "not_available": False,
        "loaded": sum(r["status"] == "loaded" for r in results),
        "duplicate": sum(r["status"] == "duplicate" for r in results),
        "refused": sum(r["status"] == "refused" for r in results),
        "unavailable": sum(r["status"] == "unavailable" for r in results),
        "unknown_outcome_texts": unknown,
        "gaps": gaps,
    }


def _record_police_pull(
    conn: Any, dag_run_id: str | None, result: dict[str, Any], started: datetime, seconds: float
) -> None:
    """One area-month's pull as a row of ops.task_runs: the build flags C2 from the latest of them."""
    run = observe.TaskRun("pull_police", "raw", f"police {result['area']} {result['month']}")
    run.status, run.rows_out = result["status"], result.get("rows")
    standing = result.get("in_force") or {}
    run.detail = {
        "area": result["area"],
        "month": result["month"],
        "submission_id": result.get("submission_id"),
        "in_force_submission_id": standing.get("submission_id"),
        "in_force_received_at": standing.get("received_at"),
        "refusal_code": result.get("refusal_code"),
        "reason": result.get("reason"),
    }
    observe.record_task_runs(conn, dag_run_id, [(run, started, seconds)])


POLICE_LOOKBACK_MONTHS = 2


def pull_police_recent(month: str, dag_run_id: str | None = None, catch_up_from: str | None = None) -> dict[str, Any]:
    """Police data for M and the two months before it (a catch-up run: before its first), each once
    published, and every earlier area-month whose last pull was refused or unavailable.

    data.police.uk publishes a month several weeks late, so the run for M usually finds M
    missing; the months before it are tried again (a month already loaded with the same bytes
    changes nothing). An area-month left with a gap is asked again at every run until it loads,
    as long as the API still lists its month. With the API unreachable (crimes-street-dates
    itself fails) every area-month of the window is recorded unavailable and the run goes on.
    The result says, per month, what was pulled, is not available yet or is a gap; with
    MISUSE_WAREHOUSE_POLICE_API=off (a warehouse that cannot reach the API) nothing is asked.
    """
    from misuse_warehouse import police

    config = police.load_config()
    if config.base_url == police.TURNED_OFF:
        log.warning(
            "police: the pull is turned off (%s=%s): no street crime this run", police.BASE_URL_ENV, police.TURNED_OFF
        )
        return {"months": {}, "pulled": [], "not_available": [], "gaps": [], "turned_off": True}
    first = run_months(month, catch_up_from)[0]
    months = months_between(month_text(parse_month(first) - POLICE_LOOKBACK_MONTHS), month)
    # one configuration, one client (its rate limit) and one look at the published months for the run
    client = police.PoliceClient(config.base_url)
    published: list[str] | None = None
    unreachable: police.PoliceApiError | None = None
    try:
        published = police.available_months(client)
    except police.PoliceApiError as error:
        unreachable = error
        log.warning("police: %s; every area-month of %s..%s keeps its last good pull", error, months[0], months[-1])
    retry: dict[str, list[str]] = {}
    if published is not None:
        with warehouse.connect(role=roles.LOADER) as conn:
            for area, gap_month in police_gaps(conn):
                if gap_month not in months and gap_month in published and area in config.areas:
                    retry.setdefault(gap_month, []).append(area)
    summaries = {
        m: pull_police(
            m, dag_run_id, config=config, client=client, published=published, unreachable=unreachable,
            areas=retry.get(m),
        )
        for m in sorted([*retry, *months])
    }  # fmt: skip
    gaps = [gap for s in summaries.values() for gap in s["gaps"]]
    if gaps:  # the line a data engineer finds at the end of the task's log (success, with this warning)
        log.warning(
            "police: %d area-month(s) keep their last good pull, C2 flagged: %s",
            len(gaps),
            "; ".join(f"{g['area']} {g['month']} {g['status']}" for g in gaps),
        )
    return {
        "months": summaries,
        "pulled": [m for m, s in summaries.items() if s["status"] == "pulled"],
        "not_available": [m for m, s in summaries.items() if s["status"] == "not_available"],
        "retried": {m: areas for m, areas in sorted(retry.items())},
        "gaps": gaps,
        "turned_off": False,
    }


def police_gaps(conn: Any) -> list[tuple[str, str]]:
    """(area, month) of every area-month whose latest pull was refused or unavailable (ops.task_runs)."""
    return [
        (area, gap_month)
        for area, gap_month, status in conn.execute(
            """select distinct on (detail->>'area', detail->>'month')
                      detail->>'area', detail->>'month', status
               from ops.task_runs
               where task_id = 'pull_police' and detail ? 'area'
               order by detail->>'area', detail->>'month', task_run_id desc"""
        ).fetchall()
        if status in ("refused", "unavailable")
    ]


def mart_gate(dag_run_id: str | None = None) -> list[dict[str, Any]]:
    """The mart suites (GX) and the disclosure audit on the next schema; raises when either fails.

    Under the writer lease, so no build rewrites the next schema while it is checked; the checksums of
    what it checked are recorded for publication to compare (`publish_marts`).
    """
    from misuse_warehouse import disclosure_audit

    with (
        writer_lease.lease(f"mart gate ({dag_run_id})"),
        warehouse.connect(role=roles.TRANSFORMER) as conn,
        observe.task_run(conn, dag_run_id, "mart_gate", "marts", publish.NEXT) as run,
    ):
        # first, on a connection of its own: it alters the next schema's tables (rolled back), which
        # would wait for ever behind this connection's reads
        audits = disclosure_audit.run(publish.NEXT)
        results = gate.check_marts(conn, publish.NEXT_SCHEMAS, dag_run_id)
        for result in results:
            observe.record_gate_results(conn, dag_run_id, "marts", result.suite, result.suite, result.checks)
        observe.record_gate_results(
            conn, dag_run_id, "marts", "disclosure_audit", f"{publish.NEXT}.kpi_monthly",
            disclosure_audit.gate_checks(audits),
        )  # fmt: skip
        observe.record_disclosure_audits(conn, dag_run_id, audits)
        audit = disclosure_audit.summary(audits)
        log.info("disclosure audit: %s", audit["text"])
        run.detail = {
            "checksums": publish.next_checksums(conn),
            "suites": len(results),
            "failed": [r.suite for r in results if not r.success] + (["disclosure_audit"] if audit["failed"] else []),
            "disclosure_audit": audit,
        }
        faults.hold("gate")
    summary = [
        {"suite": r.suite, "success": r.success, "evaluated": r.evaluated, "failures": r.failures} for r in results
    ]
    summary.append(
        {
            "suite": "disclosure_audit",
            "success": not audit["failed"],
            "evaluated": audit["cells_checked"],
            "failures": [{"rule": text} for text in audit["failed"]],
            "narrowest": audit["narrowest"],
        }
    )
    failed = [r for r in results if not r.success]
    problems = [f"{r.suite}: {', '.join(f['rule'] for f in r.failures)}" for r in failed]
    if audit["failed"]:
        problems.append("disclosure audit: " + "; ".join(audit["failed"][:20]))
    if problems:
        raise GateFailed(f"mart gate failed, marts left as they were — {'; '.join(problems)}")
    return summary


def publish_marts(dag_run_id: str | None, month: str) -> dict[str, Any]:
    """Publish what this run's mart gate passed, and nothing else (its checksums compared at the swap)."""
    with (
        writer_lease.lease(f"publish ({dag_run_id})"),
        warehouse.connect(role=roles.TRANSFORMER) as conn,
        observe.task_run(conn, dag_run_id, "publish", "marts", publish.PUBLISHED) as run,
    ):
        checked = conn.execute(
            """select detail->'checksums' from ops.task_runs
               where dag_run_id is not distinct from %s and task_id = 'mart_gate' and status = 'success'
                 and detail->'failed' = '[]'::jsonb
               order by task_run_id desc limit 1""",
            (dag_run_id,),
        ).fetchone()
        if not checked or checked[0] is None:
            raise GateFailed(f"no mart gate passed in run {dag_run_id}: nothing published")
        result = publish.publish(conn, dag_run_id, month, gate_checksums=checked[0])
        run.rows_out, run.detail = result["tables"], result
        return result


def check_deadlines(month: str, dag_run_id: str | None = None) -> dict[str, Any]:
    """Submission status of the month and the two before it, as of today; overdue files claimed for the
    alert (misuse_warehouse.deadlines). Runs whether or not the month published."""
    from misuse_warehouse import deadlines

    with (
        warehouse.connect(role=roles.TRANSFORMER) as conn,
        observe.task_run(conn, dag_run_id, "check_deadlines", "ops", month) as run,
    ):
        today = deadlines.today_in_london()
        result = deadlines.check_and_claim(conn, deadlines.run_window(month), today, dag_run_id) | {"month": month}
        run.rows_out, run.detail = result["rows"], result["counts"]
    return result


def report(outcomes: list[dict[str, Any]], dag_run_id: str | None = None) -> dict[str, Any]:
    """Data Docs for this run's validations, the run's disclosure audit and police pull gaps (area-months
    left on their last good pull, listed and logged as warnings), then a loud failure if any file was
    refused."""
    gate.build_data_docs(dag_run_id)
    counts: dict[str, Any] = {}
    views_lost: dict[str, str] = {}
    if dag_run_id:
        from misuse_warehouse import status

        with warehouse.connect() as conn:
            observe.record_layer_rows(conn, dag_run_id, status.layer_rows(conn))
            # the mart gate's own summary of this run's audit (disclosure_audit.summary), not a second one
            audit = conn.execute(
                """select detail->'disclosure_audit'->>'text' from ops.task_runs
                   where dag_run_id = %s and task_id = 'mart_gate' order by task_run_id desc limit 1""",
                (dag_run_id,),
            ).fetchone()
            police_gaps = conn.execute(
                """select target, status, detail->>'reason', detail->>'in_force_submission_id' from ops.task_runs
                   where dag_run_id = %s and task_id = 'pull_police' and status in ('refused', 'unavailable')
                   order by task_run_id""",
                (dag_run_id,),
            ).fetchall()
            lost = conn.execute(
                """select detail->'views_not_recreated' from ops.task_runs
                   where dag_run_id = %s and task_id = 'publish' order by task_run_id desc limit 1""",
                (dag_run_id,),
            ).fetchone()
            views_lost = (lost[0] or {}) if lost else {}
        if audit and audit[0]:
            counts["disclosure_audit"] = audit[0]
            log.info("disclosure audit: %s", audit[0])
        if police_gaps:  # not a failure: the month published, C2 of these area-months is flagged
            counts["police_gaps"] = [
                f"{target.removeprefix('police ')} {status}: {reason}; "
                + (f"submission {kept} stays in force" if kept else "no pull in force, C2 missing")
                for target, status, reason, kept in police_gaps
            ]
            log.warning("police pull gaps, C2 flagged in the marts:\n  %s", "\n  ".join(counts["police_gaps"]))
    for outcome in outcomes:
        counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        if outcome.get("warnings"):
            counts["with_warnings"] = counts.get("with_warnings", 0) + 1
    problems: list[str] = []
    if views_lost:
        counts["views_not_recreated"] = len(views_lost)
        lines = "\n".join(f"  {view}: {reason}" for view, reason in sorted(views_lost.items()))
        problems.append(
            f"{len(views_lost)} analysts' view(s) no longer fit the new marts and were dropped "
            f"(definitions kept in ops.analyst_views):\n{lines}"
        )
    refused = [o for o in outcomes if o["status"] == "refused"]
    if refused:
        lines = "\n".join(
            f"  {o['file']}: {o['refusal_code']} — {o['message']}"
            + (f"\n    report for the submitter: {o['report']}" if o.get("report") else "")
            for o in refused
        )
        raise FilesRefused("\n".join([f"{len(refused)} file(s) refused and quarantined:\n{lines}", *problems]))
    if problems:
        raise AnalystViewsLost("published; " + "\n".join(problems))
    return counts
