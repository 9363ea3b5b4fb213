"""Alerts reach a local SMTP server (aiosmtpd) and a local webhook (pytest-httpserver) from real DAG runs.

One story through the real DAGs (dag.test): a month that publishes (no alert), a month whose mart
gate fails (the gate alert, and the late-feed alert of the deadline check that still ran), the same
month with a refused file (the refused-file alert; the overdue file is not alerted again), then the
daily `feed_deadlines` DAG morning after morning (overdue the day after its due date, not again the
next day, a reminder a week on, a month no file has reached, a webhook outage that makes the next
check send again), and a run that fails for want of its warehouse. Then the alerts' own rules
without a DAG: no channel configured, one channel down, the message's HTML.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from aiosmtpd.controller import Controller
from feeds import treatment_row, write_feed_file, write_treatment_file

from misuse_warehouse import alerts, deadlines, runner, settings
from misuse_warehouse.ports import free_port

MEDWAY = "E06000035"
# personal values of the files: none may reach an alert
INITIALS, BORN = "QZ", "1977-07-17"
WEBHOOK_PATH = "/chat/alerts"


class Inbox:
    """aiosmtpd's handler: every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@dataclass
class Received:
    """What both channels got during one step: (subject, body) per e-mail, the text of each webhook post."""

    emails: list[tuple[str, str]] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)
    result: Any = None
    seconds: float = 0.0

    def everything(self) -> str:
        return "\n".join([s + "\n" + b for s, b in self.emails] + self.posts)


class Channels:
    def __init__(self, inbox: Inbox, server: Any) -> None:
        self.inbox, self.server = inbox, server

    def webhook_answers(self, status: int) -> None:
        self.server.clear_all_handlers()
        self.server.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok", status=status)

    @contextmanager
    def step(self) -> Iterator[Received]:
        """Collects what arrives while the block runs."""
        mails, posts = len(self.inbox.messages), len(self.server.log)
        received = Received()
        clock = time.monotonic()
        yield received
        received.seconds = time.monotonic() - clock
        for message in self.inbox.messages[mails:]:
            received.emails.append((str(message["subject"]), message.get_body(("html",)).get_content()))
        for request, _ in self.server.log[posts:]:
            if request.path == WEBHOOK_PATH:
                received.posts.append(json.loads(request.get_data())["text"])


@pytest.fixture(scope="module")
def channels(make_httpserver: Any) -> Iterator[Channels]:
    """Both channels configured the way an operator does it: two Airflow connections and the recipients."""
    inbox = Inbox()
    port = free_port(2525)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    make_httpserver.clear()
    found = Channels(inbox, make_httpserver)
    found.webhook_answers(200)
    smtp = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"from_email": "warehouse@partnership.example", "disable_ssl": True, "disable_tls": True},
    }
    webhook = {"conn_type": "http", "host": make_httpserver.url_for(WEBHOOK_PATH)}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_MISUSE_WAREHOUSE_SMTP", json.dumps(smtp))
        env.setenv("AIRFLOW_CONN_MISUSE_WAREHOUSE_WEBHOOK", json.dumps(webhook))
        env.setenv(alerts.RECIPIENTS_ENV, "data-team@partnership.example, commissioner@partnership.example")
        yield found
    controller.stop()
    make_httpserver.clear()


def _release(release_id: str, day: str) -> dict[str, Any]:
    return {
        "release_id": release_id,
        "release_date": day,
        "prison_code": "BWI",
        "area_code": MEDWAY,
        "client_initials": INITIALS,
        "client_dob": BORN,
        "client_sex": "m",
        "treatment_need": "yes",
        "treated_in_custody": "yes",
        "referred_to_community": "yes",
    }


def _episodes(n: int) -> list[dict[str, Any]]:
    return [treatment_row(episode_id=f"EPX{i}", client_initials=INITIALS, client_dob=BORN) for i in range(n)]


@contextmanager
def _failing_mart_suite(folder: Path) -> Iterator[None]:
    """A copy of the expectations in which kpi_monthly must have an impossible row count."""
    shutil.copytree(settings.EXPECTATIONS_DIR, folder)
    path = folder / "marts_kpi_monthly.json"
    suite = json.loads(path.read_text()) if path.exists() else {"name": "marts_kpi_monthly", "expectations": []}
    suite["expectations"].append(
        {"type": "expect_table_row_count_to_equal", "kwargs": {"value": -1}, "meta": {"rule": "impossible"}}
    )
    path.write_text(json.dumps(suite))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "EXPECTATIONS_DIR", folder)
        yield


MORNINGS = {
    "due_day": date(2025, 4, 10),
    "day_after": date(2025, 4, 11),
    "next_day": date(2025, 4, 12),
    "week_on": date(2025, 4, 18),
    "webhook_down": date(2025, 5, 11),
    "webhook_back": date(2025, 5, 12),
    "quiet": date(2025, 5, 13),
}


@pytest.fixture(scope="module")
def story(pipeline: Any, channels: Channels, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Received]:
    landing = tmp_path_factory.mktemp("alerts")
    pipeline.reset()
    steps: dict[str, Received] = {}
    # February: treatment and Medway's prison releases. March: treatment only; its releases never come.
    write_treatment_file(landing, "P0001", "2025-02", _episodes(3))
    write_feed_file(landing, "prison-releases", MEDWAY, "2025-02", [_release("R1", "2025-02-14")])
    with channels.step() as steps["published"]:
        steps["published"].result = pipeline.run_month(landing, "2025-02")

    write_treatment_file(landing, "P0001", "2025-03", _episodes(4))
    with _failing_mart_suite(tmp_path_factory.mktemp("suite") / "expectations"), channels.step() as steps["gate"]:
        steps["gate"].result = pipeline.run_month(landing, "2025-03", expect_success=False)

    bad = treatment_row(episode_id="EPX9", client_initials=INITIALS, client_dob=BORN, discharge_date="2024-12-01")
    write_treatment_file(landing, "P0002", "2025-03", [{**bad, "discharge_reason": "dropped_out"}])
    with channels.step() as steps["refused"]:
        steps["refused"].result = pipeline.run_month(landing, "2025-03", expect_success=False)

    # the daily check from a clean slate: as if no monthly run had alerted anything yet
    with psycopg.connect(pipeline.url, autocommit=True) as conn:
        conn.execute("delete from ops.late_feed_alerts")
    for name, day in MORNINGS.items():
        if name == "webhook_down":
            channels.webhook_answers(500)
        with channels.step() as steps[name]:
            steps[name].result = runner.run_feed_deadlines(day)
        channels.webhook_answers(200)

    with pytest.MonkeyPatch.context() as env, channels.step() as steps["no_warehouse"]:
        env.setenv(settings.WAREHOUSE_URL_ENV, f"postgresql://nobody@127.0.0.1:{free_port(6543)}/nowhere")
        steps["no_warehouse"].result = runner.run_feed_deadlines(date(2025, 5, 14))
    return steps


def _one_each(received: Received) -> tuple[str, str, str]:
    """The single alert of a step, as it arrived by e-mail (subject, body) and by webhook (text)."""
    assert len(received.emails) == 1 and len(received.posts) == 1, (received.emails, received.posts)
    (subject, body), (post,) = received.emails[0], received.posts
    assert post.splitlines()[0] == subject, "one message, the same subject on both channels"
    return subject, body, post


def _no_personal_values(received: Received) -> None:
    text = received.everything()
    for value in (INITIALS, BORN, "EPX", "dropped_out", "2024-12-01"):
        assert value not in text, value


def test_a_run_that_publishes_alerts_nobody(story: dict[str, Received]) -> None:
    assert story["published"].result.succeeded
    assert story["published"].emails == [] and story["published"].posts == []


def test_a_failed_gate_reaches_both_channels_and_the_deadline_check_still_runs(story: dict[str, Received]) -> None:
    step = story["gate"]
    run = step.result
    assert run.task_states["mart_gate"] == "failed" and run.task_states["publish"] == "upstream_failed"
    assert run.task_states["check_deadlines"] == "success", "late feeds are checked when the month failed"
    assert len(step.emails) == 2 and len(step.posts) == 2, "the gate's alert and the late feed's"
    gate = [(s, b) for s, b in step.emails if "mart gate failed" in s]
    assert [s for s, _ in gate] == [
        "[Misuse Warehouse] monthly_pipeline reporting month 2025-03: mart gate failed, nothing published"
    ]
    body = gate[0][1]
    post = next(p for p in step.posts if "mart gate failed" in p)
    for text in (body, post):
        assert "marts_kpi_monthly: impossible" in text
        assert "left exactly as they were" in text
        assert f"Run: {run.run_id}" in text
        assert f"/dags/monthly_pipeline/runs/{quote(run.run_id, safe='')}" in text
        assert "Last failed task: mart_gate" in text
    assert f'<a href="http://localhost:8080/dags/monthly_pipeline/runs/{quote(run.run_id, safe="")}' in body
    # the month's prison releases are overdue: the published February expected them, March never sent them
    late_subject, late_body = next((s, b) for s, b in step.emails if "overdue" in s)
    assert late_subject == "[Misuse Warehouse] 1 feed file overdue"
    days = (deadlines.today_in_london() - date(2025, 4, 10)).days
    line = f"prison-releases file from {MEDWAY} for 2025-03 (area {MEDWAY}) is {days} days late: due 2025-04-10"
    assert line in late_body and line in next(p for p in step.posts if "overdue" in p)
    _no_personal_values(step)


def test_a_refused_file_reaches_both_channels_and_a_late_feed_is_not_sent_twice(
    story: dict[str, Received],
) -> None:
    step = story["refused"]
    run = step.result
    assert run.task_states["report"] == "failed" and run.task_states["publish"] == "success"
    subject, body, post = _one_each(step)  # the overdue releases were alerted by the run before: not again
    assert subject == "[Misuse Warehouse] monthly_pipeline reporting month 2025-03: 1 file refused"
    report = settings.quarantine_dir() / "treatment" / "2025-03" / "treatment_P0002_2025-03.csv.report.html"
    assert report.exists()
    for text in (body, post):
        assert (
            "treatment_P0002_2025-03.csv (treatment, 2025-03): rule_broken:discharge_date_on_or_after_referral" in text
        )
        assert f"report for treatment_P0002_2025-03.csv: {report}" in text
        assert f"Run: {run.run_id}" in text and "Last failed task: report" in text
        assert "treatment_P0001" not in text, "the file that loaded is not named"
    _no_personal_values(step)


def test_the_daily_check_alerts_a_file_the_day_after_its_due_date_once(story: dict[str, Received]) -> None:
    assert all(story[name].result.succeeded for name in MORNINGS)
    due_day = story["due_day"]
    assert due_day.emails == [] and due_day.posts == [], "the due day is the submitter's until it ends"
    subject, body, post = _one_each(story["day_after"])
    assert subject == "[Misuse Warehouse] 1 feed file overdue"
    line = f"prison-releases file from {MEDWAY} for 2025-03 (area {MEDWAY}) is 1 day late: due 2025-04-10, not received"
    for text in (body, post):
        assert line in text
        assert "The deadline check of 2025-04-11 (reporting months 2025-01 to 2025-03)" in text
        assert "DAG: feed_deadlines" in text and "/dags/feed_deadlines/runs/" in text
        assert "alerted once, then every 7 days" in text
    assert story["next_day"].emails == [] and story["next_day"].posts == [], "not again the next morning"
    subject, body, post = _one_each(story["week_on"])
    assert subject == "[Misuse Warehouse] 1 feed file overdue (1 reminder)"
    assert "is 8 days late: due 2025-04-10, not received (reminder 1)" in post


def test_a_month_no_file_has_reached_is_checked_and_an_undelivered_alert_is_sent_again(
    story: dict[str, Received],
) -> None:
    down = story["webhook_down"]
    assert len(down.emails) == 1 and len(down.posts) == 1  # the webhook got it, and answered 500
    subject, body = down.emails[0]
    assert subject == "[Misuse Warehouse] 2 feed files overdue (1 reminder)"
    # April: nothing of it has arrived or been published; it expects what March expected, a month on
    assert f"prison-releases file from {MEDWAY} for 2025-04 (area {MEDWAY}) is 1 day late: due 2025-05-10" in body
    assert "for 2025-03 (area E06000035) is 31 days late: due 2025-04-10, not received (reminder 2)" in body
    # the webhook failed, so the claim was given back: the next morning sends both again, on both channels
    subject, body, post = _one_each(story["webhook_back"])
    assert subject == "[Misuse Warehouse] 2 feed files overdue (1 reminder)"
    assert "for 2025-04 (area E06000035) is 2 days late" in post
    assert story["quiet"].emails == [] and story["quiet"].posts == []


def test_a_run_that_fails_without_its_warehouse_still_alerts(story: dict[str, Received]) -> None:
    step = story["no_warehouse"]
    run = step.result
    assert run.state == "failed" and run.task_states["check_open_months"] == "failed"
    subject, body, post = _one_each(step)
    assert subject == "[Misuse Warehouse] feed_deadlines 2025-05-14: run failed at check_open_months"
    for text in (body, post):
        assert "The run ended failed (task failure); the last task to fail was check_open_months." in text
        assert "could not be read (OperationalError)" in text
        assert f"/dags/feed_deadlines/runs/{quote(run.run_id, safe='')}/tasks/check_open_months" in text
        assert "nobody" not in text, "the warehouse URL (a credential) is not repeated"


def test_the_alert_claims_are_recorded(pipeline: Any, story: dict[str, Received]) -> None:
    rows = pipeline.query(
        "select expected_submission_id, first_alerted_on::text, last_alerted_on::text, alerts "
        "from ops.late_feed_alerts order by 1"
    )
    assert rows == [
        (f"prison-releases|{MEDWAY}|{MEDWAY}|2025-03", "2025-04-11", "2025-05-12", 3),
        (f"prison-releases|{MEDWAY}|{MEDWAY}|2025-04", "2025-05-12", "2025-05-12", 1),
    ]


# --- the alerts' own rules, without a DAG run -----------------------------------------------------


ALERT = alerts.Alert(
    subject="[Misuse Warehouse] test: 1 file refused",
    summary="A <file> was refused & quarantined.",
    facts=("DAG: monthly_pipeline",),
    details=("funding_E06000035_2025-03.csv (funding, 2025-03): bad_header",),
    where=("the run in Airflow: http://airflow.example/dags/x/runs/y",),
)


def test_no_channel_configured_logs_the_alert_and_fails_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AIRFLOW_CONN_MISUSE_WAREHOUSE_SMTP", "AIRFLOW_CONN_MISUSE_WAREHOUSE_WEBHOOK", alerts.RECIPIENTS_ENV):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level("INFO", logger="misuse_warehouse.alerts"):
        delivery = alerts.send(ALERT, {})
    assert delivery.delivered == [] and delivery.failed == []
    assert "funding_E06000035_2025-03.csv" in caplog.text, "the alert is in the log"
    assert "no alert channel is configured" in caplog.text


def test_one_channel_down_does_not_stop_the_other(
    monkeypatch: pytest.MonkeyPatch, make_httpserver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    make_httpserver.clear()
    make_httpserver.expect_request("/down-test", method="POST").respond_with_data("ok")
    closed = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": free_port(2600),
        "extra": {"from_email": "warehouse@partnership.example", "disable_ssl": True},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MISUSE_WAREHOUSE_SMTP", json.dumps(closed))
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISUSE_WAREHOUSE_WEBHOOK",
        json.dumps({"conn_type": "http", "host": make_httpserver.url_for("/down-test")}),
    )
    monkeypatch.setenv(alerts.RECIPIENTS_ENV, "data-team@partnership.example")
    with caplog.at_level("INFO", logger="misuse_warehouse.alerts"):
        delivery = alerts.send(ALERT, {})
    assert delivery.delivered == ["webhook"] and delivery.failed == ["e-mail"]
    assert "not delivered by e-mail: ConnectionRefusedError" in caplog.text
    (request, _), *_ = make_httpserver.log
    assert json.loads(request.get_data()) == {"text": ALERT.text()}
    make_httpserver.clear()


def test_smtp_without_recipients_is_a_logged_misconfiguration(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MISUSE_WAREHOUSE_SMTP", json.dumps({"conn_type": "smtp", "host": "127.0.0.1"}))
    monkeypatch.delenv("AIRFLOW_CONN_MISUSE_WAREHOUSE_WEBHOOK", raising=False)
    monkeypatch.setenv(alerts.RECIPIENTS_ENV, " , ")
    with caplog.at_level("ERROR", logger="misuse_warehouse.alerts"):
        delivery = alerts.send(ALERT, {})
    assert delivery.failed == ["e-mail"]
    assert f"{alerts.RECIPIENTS_ENV} names no recipient" in caplog.text


def test_the_message_escapes_what_it_quotes_and_links_what_it_points_to() -> None:
    page = ALERT.html()
    assert "<p>A &lt;file&gt; was refused &amp; quarantined.</p>" in page
    assert '<a href="http://airflow.example/dags/x/runs/y">http://airflow.example/dags/x/runs/y</a>' in page
    assert ALERT.text().splitlines() == [
        "[Misuse Warehouse] test: 1 file refused",
        "",
        "A <file> was refused & quarantined.",
        "DAG: monthly_pipeline",
        "",
        "- funding_E06000035_2025-03.csv (funding, 2025-03): bad_header",
        "",
        "Where to look:",
        "- the run in Airflow: http://airflow.example/dags/x/runs/y",
    ]


def test_open_months_and_a_monthly_runs_window() -> None:
    assert deadlines.open_months(date(2025, 4, 16)) == ["2025-01", "2025-02", "2025-03"]
    assert deadlines.open_months(date(2026, 1, 1)) == ["2025-10", "2025-11", "2025-12"]
    assert deadlines.run_window("2025-02") == ["2024-12", "2025-01", "2025-02"]
