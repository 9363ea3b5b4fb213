"""Alerts that reach people: e-mail through Airflow's SMTP notifier, a chat webhook through its HTTP notifier.

Two notifiers (Airflow's notifier API, `BaseNotifier`) cover what must reach a person:

- `RunFailureAlert`, the DAG-level `on_failure_callback` of every DAG: which DAG, run and month,
  the task that failed and a link to it. When the run recorded refused files or a failed mart gate
  in the warehouse (`raw.submissions`, `ops.gate_results`), the alert names them: a refused file or
  a failed gate (the disclosure audit's included) is one message about the run, not one per task.
- `LateFeedAlert`, the `on_success_callback` of the deadline checks (the monthly run's and the daily
  `feed_deadlines` DAG's): the overdue files the check claimed (misuse_warehouse.deadlines).

Each alert goes by every channel configured, in one place: the Airflow connections
`misuse_warehouse_smtp` (SMTP) and `misuse_warehouse_webhook` (HTTP: the webhook URL as its host),
recipients in `MISUSE_WAREHOUSE_ALERT_TO`. A channel not configured is skipped; with none the alert
is only logged. A channel that fails is logged and never fails the run (Airflow logs a callback's
error and carries on; we do not even raise).

What an alert may say: codes, file names, feeds, months, area and provider codes, rule names and
counts of rows. Never a row's values: exception messages (which may quote a value) are not copied
in; the task log behind the link has them, for those allowed to read it.
"""

from __future__ import annotations

import html
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

SMTP_CONN_ID = "misuse_warehouse_smtp"
WEBHOOK_CONN_ID = "misuse_warehouse_webhook"
RECIPIENTS_ENV = "MISUSE_WAREHOUSE_ALERT_TO"
WEBHOOK_TIMEOUT_SECONDS = 30
PREFIX = "[Misuse Warehouse]"
LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class Alert:
    """One message, the same on every channel: a subject, what happened, the particulars, where to look."""

    subject: str
    summary: str
    facts: tuple[str, ...] = ()  # which DAG, run, month, task
    details: tuple[str, ...] = ()  # one line per file, rule or feed
    where: tuple[str, ...] = ()  # links and paths
    note: str = ""

    def text(self) -> str:
        """Plain text for chat tools (Slack, Google Chat and Teams all show it as written)."""
        lines = [self.subject, "", self.summary, *self.facts]
        if self.details:
            lines += ["", *(f"- {d}" for d in self.details)]
        if self.where:
            lines += ["", "Where to look:", *(f"- {w}" for w in self.where)]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def html(self) -> str:
        """The e-mail body; every value escaped, links clickable."""
        e = html.escape
        parts = [f"<p>{e(self.summary)}</p>"]
        if self.facts:
            parts.append("<p>" + "<br>".join(e(f) for f in self.facts) + "</p>")
        if self.details:
            parts.append("<ul>" + "".join(f"<li>{e(d)}</li>" for d in self.details) + "</ul>")
        if self.where:
            items = "".join(f"<li>{_linked(w)}</li>" for w in self.where)
            parts.append(f"<p>Where to look:</p><ul>{items}</ul>")
        if self.note:
            parts.append(f"<p><small>{e(self.note)}</small></p>")
        return "\n".join(parts)


def _linked(text: str) -> str:
    url = re.search(r"https?://\S+", text)
    if not url:
        return html.escape(text)
    link = url.group(0)
    before, after = text[: url.start()], text[url.end() :]
    return f'{html.escape(before)}<a href="{html.escape(link)}">{html.escape(link)}</a>{html.escape(after)}'


@dataclass
class Delivery:
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def recipients() -> list[str]:
    """`MISUSE_WAREHOUSE_ALERT_TO`: addresses separated by commas, semicolons or spaces."""
    return [a for a in re.split(r"[,;\s]+", os.environ.get(RECIPIENTS_ENV, "")) if a]


def _connection(conn_id: str) -> Any | None:
    """The Airflow connection, or None when it is not defined (or has no host): that channel is off."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    return conn if conn.host else None


def _email(alert: Alert) -> BaseNotifier | None:
    conn = _connection(SMTP_CONN_ID)
    if conn is None:
        return None
    to = recipients()
    if not to:
        raise ValueError(f"the connection {SMTP_CONN_ID} is set but {RECIPIENTS_ENV} names no recipient")
    sender = conn.extra_dejson.get("from_email")
    if not sender:
        raise ValueError(f"the connection {SMTP_CONN_ID} has no from_email in its extra")
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    # every field given, so the notifier renders no template of its own (see WarehouseNotifier)
    return SmtpNotifier(
        to=to, from_email=sender, subject=alert.subject, html_content=alert.html(), smtp_conn_id=SMTP_CONN_ID
    )


def _webhook(alert: Alert) -> BaseNotifier | None:
    conn = _connection(WEBHOOK_CONN_ID)
    if conn is None:
        return None
    from airflow.providers.http.notifications.http import HttpNotifier

    # {"text": ...} is the one body Slack, Google Chat, Mattermost and Teams' connectors all accept
    timeout = conn.extra_dejson.get("timeout", WEBHOOK_TIMEOUT_SECONDS)
    return HttpNotifier(http_conn_id=WEBHOOK_CONN_ID, json={"text": alert.text()}, extra_options={"timeout": timeout})


CHANNELS = {"e-mail": _email, "webhook": _webhook}


def send(alert: Alert, context: Any) -> Delivery:
    """Log the alert, then hand it to each configured channel's notifier; a failure is logged, not raised.

    The notifiers get the alert's own subject and body and are called directly (`notify`), so
    nothing in a file name is ever read as a Jinja template.
    """
    log.warning("ALERT %s\n%s", alert.subject, alert.text())
    delivery = Delivery()
    for name, make in CHANNELS.items():
        try:
            notifier = make(alert)
            if notifier is None:
                continue
            notifier.notify(context)
        except Exception as error:  # noqa: BLE001 - one channel down must not stop the other
            log.error("alert %r not delivered by %s: %s: %s", alert.subject, name, type(error).__name__, error)
            delivery.failed.append(name)
        else:
            delivery.delivered.append(name)
    if delivery.delivered:
        log.info("alert %r delivered by %s", alert.subject, ", ".join(delivery.delivered))
    elif not delivery.failed:
        log.warning(
            "no alert channel is configured (connections %s, %s): the alert above is in this log only",
            SMTP_CONN_ID,
            WEBHOOK_CONN_ID,
        )
    return delivery


# --- what a run was ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFacts:
    """Which run an alert is about, from the callback's context (full from a task, minimal from a DAG)."""

    dag_id: str
    run_id: str
    period: str  # "reporting month 2025-03", "2025-04-16", or "" when the context does not say
    task: str | None
    task_url: str | None

    @classmethod
    def of(cls, context: Any) -> RunFacts:
        dag_run = context.get("dag_run")
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", "?")
        run_id = context.get("run_id") or getattr(dag_run, "run_id", "?")
        ti = context.get("ti")
        task = None
        if ti is not None:
            index = getattr(ti, "map_index", None)
            label = getattr(ti, "rendered_map_index", None) or (index if index is not None and index >= 0 else None)
            task = ti.task_id + (f"[{label}]" if label is not None else "")
        return cls(dag_id, run_id, _period(dag_run), task, getattr(ti, "log_url", None))

    @property
    def run_url(self) -> str:
        return f"{base_url()}/dags/{quote(self.dag_id)}/runs/{quote(self.run_id, safe='')}"

    def lines(self) -> tuple[str, ...]:
        facts = [f"DAG: {self.dag_id}", f"Run: {self.run_id}"]
        if self.period:
            facts.append(f"Covers: {self.period}")
        if self.task:  # the failed task that ended last (Airflow's choice): the run's grid shows any other
            facts.append(f"Last failed task: {self.task}")
        return tuple(facts)

    def title(self) -> str:
        return f"{self.dag_id} {self.period}".strip()


def base_url() -> str:
    """Airflow's own setting for links to its UI ([api] base_url, AIRFLOW__API__BASE_URL)."""
    from airflow.sdk.configuration import conf

    return (conf.get("api", "base_url", fallback=None) or "http://localhost:8080").rstrip("/")


def _period(dag_run: Any) -> str:
    """A data interval of a month or more is a reporting month (or months); otherwise the run's date."""
    if dag_run is None:
        return ""
    start, end = getattr(dag_run, "data_interval_start", None), getattr(dag_run, "data_interval_end", None)
    if start and end and end - start >= timedelta(days=28):
        month = _london(start).strftime("%Y-%m")
        first = ((getattr(dag_run, "conf", None) or {}).get("catch_up_from")) or month
        return f"reporting month {month}" if first == month else f"reporting months {first} to {month}"
    moment = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
    return _london(moment).date().isoformat() if moment else ""


def _london(moment: datetime) -> datetime:
    return moment.astimezone(LONDON) if moment.tzinfo else moment


# --- a failed run --------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What the run wrote in the warehouse that the alert names: refused files, failed mart checks."""

    refused: list[tuple[str, str, str, str]] = field(default_factory=list)  # file, feed, month, code
    gate: list[tuple[str, str, int | None, int | None]] = field(default_factory=list)  # suite, rule, bad, of
    unreadable: str | None = None  # why the warehouse could not be read


def run_record(run_id: str) -> RunRecord:
    """The run's refused files and failed mart checks; an unreachable warehouse leaves the alert without them."""
    import psycopg

    from misuse_warehouse import warehouse

    record = RunRecord()
    try:
        with psycopg.connect(warehouse.url(start=False), autocommit=True, connect_timeout=10) as conn:
            record.refused = conn.execute(
                """select file_name, feed, to_char(period_start, 'YYYY-MM'), refusal_code from raw.submissions
                   where dag_run_id = %s and status = 'refused' order by submission_id""",
                (run_id,),
            ).fetchall()
            record.gate = conn.execute(
                """select suite, rule, unexpected_count, element_count from ops.gate_results
                   where dag_run_id = %s and gate = 'marts' and not is_success order by suite, rule""",
                (run_id,),
            ).fetchall()
    except Exception as error:  # noqa: BLE001 - the alert goes out with what the context says
        record.unreadable = type(error).__name__
        log.warning("the run's refused files and gate results could not be read: %s", error)
    return record


def _submitter_report(file_name: str) -> str | None:
    from misuse_warehouse import settings

    found = sorted(settings.quarantine_dir().glob(f"*/*/{file_name}.report.html"))
    return str(found[0]) if found else None


def failed_run_alert(context: Any, record: RunRecord | None = None) -> Alert:
    """The alert for a failed run: the most specific of refused files, a failed gate, or the failed task."""
    from misuse_warehouse import settings

    run = RunFacts.of(context)
    record = record if record is not None else run_record(run.run_id)
    headline, sentences, details = [], [], []
    where = [f"the run in Airflow: {run.run_url}"]
    if record.gate:
        headline.append("mart gate failed, nothing published")
        sentences.append("The mart gate failed: the published marts are left exactly as they were.")
        for suite, rule, bad, total in record.gate:
            if suite == "disclosure_audit":
                details.append(f"disclosure audit: {rule}: {bad} suppressed count(s) could be worked out")
            else:
                count = f": {bad} of {total} rows" if bad is not None and total is not None else ""
                details.append(f"{suite}: {rule}{count}")
        where.append(f"ops.gate_results and ops.disclosure_audits where dag_run_id = '{run.run_id}'")
    if record.refused:
        n = len(record.refused)
        headline.append(f"{n} file{'s' if n > 1 else ''} refused")
        sentences.append(
            f"{n} file{'s were' if n > 1 else ' was'} refused and quarantined; the run went on without "
            f"{'them' if n > 1 else 'it'}. Each has a validation report to send its submitter."
        )
        for file_name, feed, month, code in record.refused:
            details.append(f"{file_name} ({feed}, {month}): {code}")
            report = _submitter_report(file_name)
            where.append(f"report for {file_name}: {report or settings.quarantine_dir()}")
    if not headline:
        failed = f"at {run.task}" if run.task else ""
        headline.append(f"run failed {failed}".strip())
        reason = str(context.get("reason") or "task_failure").replace("_", " ")
        sentences.append(
            f"The run ended failed ({reason}){f'; the last task to fail was {run.task}' if run.task else ''}."
        )
    if run.task_url:
        where.append(f"the failed task's log: {run.task_url}")
    if record.unreadable:
        sentences.append(f"The run's refused files and gate results could not be read ({record.unreadable}).")
    return Alert(
        subject=f"{PREFIX} {run.title()}: {'; '.join(headline)}",
        summary=" ".join(sentences),
        facts=run.lines(),
        details=tuple(details),
        where=tuple(where),
    )


class WarehouseNotifier(BaseNotifier):
    """Our notifiers compose their message from the run; they have no template to render.

    Skipping Airflow's rendering also keeps them working under `dag.test()` (our CLI and tests),
    whose DAG callbacks get the scheduler's serialized DAG, which has no Jinja environment
    (`'SerializedDAG' object has no attribute 'get_template_env'`, Airflow 3.3.2).
    """

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        return None


class RunFailureAlert(WarehouseNotifier):
    """`on_failure_callback` of every DAG: one alert per failed run, by every configured channel."""

    def notify(self, context: Any) -> None:
        send(failed_run_alert(context), context)


# --- late feeds ----------------------------------------------------------------------------------


def late_feed_alert(result: dict[str, Any], context: Any) -> Alert:
    """The alert for the overdue files a deadline check claimed (its XCom, deadlines.check_and_claim)."""
    from misuse_warehouse import deadlines, settings

    run = RunFacts.of(context)
    files = result.get("alert") or []
    reminders = sum(1 for f in files if f["alert_number"] > 1)
    n = len(files)
    subject = f"{PREFIX} {n} feed file{'s' if n > 1 else ''} overdue"
    if reminders:
        subject += f" ({reminders} reminder{'s' if reminders > 1 else ''})"
    months = result.get("months") or []
    span = f"{months[0]} to {months[-1]}" if months else "?"
    details = tuple(
        f["message"] + (f" (reminder {f['alert_number'] - 1})" if f["alert_number"] > 1 else "") for f in files
    )
    return Alert(
        subject=subject,
        summary=(
            f"The deadline check of {result.get('today', '?')} (reporting months {span}) finds "
            f"{'these files' if n > 1 else 'this file'} past due and not received."
        ),
        facts=(f"DAG: {run.dag_id}", f"Run: {run.run_id}"),
        details=details,
        where=(
            f"the run in Airflow: {run.run_url}",
            "every expected file's status: ops.submission_status; completeness: marts.fct_area_month_completeness",
            f"files land in {settings.landing_dir()}/<feed>/<month>/",
        ),
        note=(f"Each overdue file is alerted once, then every {deadlines.REMIND_AFTER_DAYS} days while it is missing."),
    )


class LateFeedAlert(WarehouseNotifier):
    """`on_success_callback` of a deadline check task: its claimed overdue files, by every configured channel.

    A claim no channel delivered, or that a configured channel failed to deliver, is given back
    (deadlines.release_alerts) so the next check sends it again: a repeat rather than a loss.
    """

    def notify(self, context: Any) -> None:
        ti = context["ti"]
        result = ti.xcom_pull(task_ids=ti.task_id) or {}
        files = result.get("alert") or []
        if not files:
            return
        delivery = send(late_feed_alert(result, context), context)
        if delivery.failed:
            from misuse_warehouse import deadlines, roles, warehouse

            ids = [f["id"] for f in files]
            try:
                with warehouse.connect(role=roles.TRANSFORMER) as conn:
                    released = deadlines.release_alerts(conn, ids, context.get("run_id"))
                log.warning("%d late-feed alert(s) given back: the next deadline check sends them again", released)
            except Exception as error:  # noqa: BLE001 - logged; the alert itself is in the log above
                log.error("late-feed alerts not given back (%s): they will not be sent again", error)
