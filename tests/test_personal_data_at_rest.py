"""Where plain initials and dates of birth rest outside raw, who can read them, and for how long (issue 36).

Raw holds the plain attributor until retention blanks it; the archive and quarantine hold the files
as received until retention deletes them. Nothing else the pipeline writes may hold one: not GX's
stored validation results or Data Docs (a failing row is named by its file and line), not the
submitter's reports, logs or task results, and not landing, which an accepted file leaves. A file
is received when the pipeline first saw it, not at the time its sender gave it. What the pipeline
writes is its user's alone (files 0600, folders 0700).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from bad_files import make_corpus
from conftest import Pipeline
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import gate, pipeline, retention, settings
from misuse_warehouse.contracts import all_contracts
from misuse_warehouse.file_checks import read_file

RUN_ID = "personal-data-at-rest"
# the two files of the issue: a date of birth in the future, initials with a digit
FUTURE_DOB, DIGIT_INITIALS = "2031-01-01", "A1"
ISSUE_ROWS = [
    treatment_row(episode_id="E1", client_dob=FUTURE_DOB),
    treatment_row(episode_id="E2", client_initials=DIGIT_INITIALS),
]
_INITIALS = re.compile(r"[A-Za-z][A-Za-z0-9]")
# initials withheld by the sender, not a person's: the suites' own descriptions name it
WITHHELD_INITIALS = "XX"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}")


def _token(value: str) -> re.Pattern[bytes]:
    """`value` standing alone: initials between non-alphanumerics, a date between non-digits (2031-01-01T00:00 too)."""
    edge = rb"[0-9]" if _DATE.fullmatch(value) else rb"[A-Za-z0-9]"
    return re.compile(rb"(?<!" + edge + rb")" + re.escape(value.encode()) + rb"(?!" + edge + rb")")


def _plain_values(contents: list[tuple[str, bytes]]) -> set[str]:
    """Every initials or date-of-birth value in the files (feed, bytes) that reads as one."""
    contracts = all_contracts()
    found: set[str] = set()
    for feed, content in contents:
        contract = contracts.get(feed)
        if contract is None or not contract.plain_attributor:
            continue
        try:
            rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error):
            continue
        for row in rows:
            for column in contract.plain_attributor:
                value = row.get(column) or ""
                pattern = _DATE if column == contract.attributor.get("dob") else _INITIALS
                if isinstance(value, str) and pattern.fullmatch(value):
                    found.add(value)
    return found - {WITHHELD_INITIALS}


def _found_in(root: Path, values: set[str], skip: set[Path]) -> dict[str, list[str]]:
    """value -> files under `root` (but not under `skip`) where it stands alone."""
    patterns = {value: _token(value) for value in values}
    hits: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or any(path.is_relative_to(s) for s in skip):
            continue
        content = path.read_bytes()
        for value, pattern in patterns.items():
            if pattern.search(content):
                hits.setdefault(value, []).append(str(path.relative_to(root)))
    return hits


def _private(root: Path) -> list[str]:
    """Files and folders under `root` that anyone but their owner may read, with their modes."""
    if not root.exists():
        return []
    paths = [root, *root.rglob("*")]
    return [f"{p} {oct(stat.S_IMODE(p.stat().st_mode))}" for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o077]


def _drop(landing: Path, relative: str, content: bytes) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _gx_results() -> tuple[Path, Path]:
    """GX's stored validation results and their Data Docs pages."""
    uncommitted = settings.gx_dir() / "gx" / "uncommitted"
    return uncommitted / "validations", uncommitted / "data_docs" / "local_site" / "validations"


def _gx_files_of(run_name: str) -> list[Path]:
    return [p for folder in _gx_results() for p in folder.rglob("*") if p.is_file() and run_name in str(p)]


def test_gx_names_failing_rows_by_line_and_keeps_no_personal_value(landing: Path) -> None:
    run_name = f"gx-{time.time_ns()}"
    parsed = read_file(write_treatment_file(landing, "P0001", "2025-03", ISSUE_ROWS))

    result = gate.check_file(parsed, run_name)
    gate.build_data_docs(run_name)

    rows = {f["rule"]: f["rows"] for f in result.failures}
    assert rows["client_dob_not_in_future"] == [2] and rows["client_initials_two_letters"] == [3]
    stored = [p for p in _gx_files_of(run_name) if p.suffix == ".json"]
    pages = [p for p in _gx_files_of(run_name) if p.suffix == ".html"]
    assert stored and pages, "GX stored the validation and Data Docs rendered it"
    results = json.loads(stored[0].read_text())["results"]
    initials = next(r for r in results if r["expectation_config"]["meta"].get("rule") == "client_initials_two_letters")
    assert initials["result"]["unexpected_index_list"] == [{"_file": [0], "_line": [3]}], "the row is named"
    assert "unexpected_list" not in initials["result"] and "partial_unexpected_counts" not in initials["result"]
    for path in stored + pages:
        content = path.read_bytes()
        for value in (FUTURE_DOB, DIGIT_INITIALS):
            assert not _token(value).search(content), f"{value} in {path}"


@pytest.fixture
def fresh_home(warehouse_url: str) -> Path:
    """An empty warehouse, and nothing the pipeline kept from earlier tests: the home as a deployment starts it."""
    import shutil

    Pipeline(warehouse_url).reset()
    for folder in (settings.reports_dir(), settings.landing_dir(), *_gx_results()):
        shutil.rmtree(folder, ignore_errors=True)
    pipeline.prepare()
    return settings.home()


def test_the_bad_file_corpus_leaves_no_plain_attributor_under_the_home(
    fresh_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    landing = settings.landing_dir()
    kinds = make_corpus.baseline_kinds() + make_corpus.refused_kinds() + make_corpus.accepted_kinds()
    sent = [(k.feed, k.file, k.content) for k in kinds]
    issue = io.StringIO()
    writer = csv.DictWriter(issue, fieldnames=list(ISSUE_ROWS[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "provider_code": "P9900"} for r in ISSUE_ROWS)
    sent.append(("treatment", "treatment/2025-03/treatment_P9900_2025-03.csv", issue.getvalue().encode()))
    values = _plain_values([(feed, content) for feed, _, content in sent])
    assert {FUTURE_DOB, DIGIT_INITIALS, "Q7", "2019-07-23"} <= values

    outcomes = [pipeline.ingest(str(_drop(landing, relative, content)), RUN_ID) for _, relative, content in sent]
    gate.build_data_docs(RUN_ID)

    assert {o["status"] for o in outcomes} >= {"loaded", "refused"}
    # kept as received, under retention: raw (the database), the archive, and each quarantined file itself
    received = {settings.home() / "pg", settings.archive_dir()}
    received |= {settings.quarantine_dir() / relative for _, relative, _ in sent}
    received |= {
        p for p in settings.quarantine_dir().rglob("earlier/*") if not p.name.endswith(retention.COMPANION_SUFFIXES)
    }
    received |= {settings.gx_dir() / "gx" / "uncommitted" / "data_docs" / "local_site" / "static"}  # GX's own
    # Airflow's database (its journal files too: XCom and logs are checked through the DAG run in
    # test_bad_files_dag), and dbt's parse of the project (code: "GH-11974" in one of dbt's own macros)
    received |= {
        settings.home() / "airflow" / name
        for name in ("airflow.db", "airflow.db-wal", "airflow.db-shm", "airflow.db-journal", "airflow.cfg")
    }
    received |= {p for p in settings.home().rglob("target/*") if p.name in ("manifest.json", "partial_parse.msgpack")}
    assert _found_in(settings.home(), values, received) == {}
    assert not [p for p in landing.rglob("*") if p.is_file()], "landing keeps no file the pipeline took"
    returned = json.dumps(outcomes)  # what the ingest task hands Airflow as its XCom
    for value in values:
        assert not _token(value).search(returned.encode()), value
        assert not _token(value).search(caplog.text.encode()), value


def _submission(conn: psycopg.Connection, name: str) -> tuple[datetime, str]:
    return conn.execute(
        "select received_at, status from raw.submissions where file_name = %s order by submission_id desc limit 1",
        (name,),
    ).fetchone()


def test_an_accepted_file_moves_into_the_archive_received_when_first_seen(
    db: psycopg.Connection, landing: Path
) -> None:
    pipeline.prepare()
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    sent = path.read_bytes()
    future = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    os.utime(path, (future, future))  # the sender's clock, or a file meant never to be purged
    before = datetime.now(UTC)

    assert pipeline.ingest(str(path), RUN_ID)["status"] == "loaded"

    assert not path.exists(), "moved, not copied"
    [archived] = (settings.archive_dir() / "treatment" / "2025-03").glob(f"*_{path.name}")
    assert archived.read_bytes() == sent
    received_at, _ = _submission(db, path.name)
    assert before <= received_at <= datetime.now(UTC), "received when the pipeline read it, not at its mtime"
    assert archived.stat().st_mtime == pytest.approx(received_at.timestamp(), abs=1), "retention reads this time"

    path.write_bytes(sent)  # the same bytes sent again
    assert pipeline.ingest(str(path), RUN_ID)["status"] == "duplicate"
    assert not path.exists(), "bytes already in force leave landing too"


def test_a_file_the_landing_watch_saw_first_is_received_then(db: psycopg.Connection, landing: Path) -> None:
    pipeline.prepare()
    refused = write_treatment_file(landing, "P0002", "2025-03", [treatment_row(client_initials=DIGIT_INITIALS)])
    seen = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    db.execute(
        """insert into ops.landing_files (landing_path, feed, reporting_month, file_bytes, modified_ns, file_sha256,
               first_seen_at) values (%s, 'treatment', '2025-03-01', 1, 1, %s, %s)""",
        ("treatment/2025-03/" + refused.name, hashlib.sha256(refused.read_bytes()).hexdigest(), seen),
    )
    db.commit()
    future = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    os.utime(refused, (future, future))

    assert pipeline.ingest(str(refused), RUN_ID)["status"] == "refused"

    received_at, status = _submission(db, refused.name)
    assert (received_at, status) == (seen, "refused")
    quarantined = settings.quarantine_dir() / "treatment" / "2025-03" / refused.name
    assert quarantined.stat().st_mtime == pytest.approx(seen.timestamp()), "the receipt time, not the sender's"


def test_what_the_pipeline_writes_is_its_users_alone(db: psycopg.Connection, landing: Path) -> None:
    pipeline.prepare()
    accepted = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    refused = write_treatment_file(landing, "P0002", "2025-03", [treatment_row(client_dob=FUTURE_DOB)])
    for path in (accepted, refused):
        path.chmod(0o644)  # as a sender's upload arrives
    outcomes = pipeline.ingest_files([str(accepted), str(refused)], RUN_ID)
    assert [o["status"] for o in outcomes] == ["loaded", "refused"]
    gate.build_data_docs(RUN_ID)

    for folder in (settings.archive_dir(), settings.quarantine_dir(), settings.gx_dir()):
        assert list(folder.rglob("*")), folder
        assert _private(folder) == [], "files 0600, folders 0700"
    assert os.umask(0o077) == 0o077, "every process that imports the package writes with umask 077"


def _aged(path: Path, text: str, when: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (when, when))
    return path


def test_retention_purges_gx_results_data_docs_and_reports_of_files_loaded_with_warnings(
    db: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a home of its own: the second purge below takes everything it holds
    monkeypatch.setenv("MISUSE_WAREHOUSE_HOME", str(tmp_path))
    long_ago, recently = datetime(2020, 1, 1, tzinfo=UTC).timestamp(), time.time()
    results, pages = _gx_results()
    reports = settings.reports_dir() / "treatment" / "2020-01"
    old: list[Path] = [
        _aged(results / "raw_treatment" / "old-run" / "20200101T000000Z" / "batch.json", "{}", long_ago),
        _aged(pages / "raw_treatment" / "old-run" / "20200101T000000Z" / "batch.html", "<p/>", long_ago),
        # the report of a file loaded with warnings: the file itself is in the archive, not beside it
        _aged(reports / "submission-1_treatment_P0001_2020-01.csv.report.html", "<p/>", long_ago),
        _aged(reports / "submission-1_treatment_P0001_2020-01.csv.report.csv", "rule", long_ago),
    ]
    kept = [
        _aged(results / "raw_treatment" / "new-run" / "now" / "batch.json", "{}", recently),
        _aged(pages / "raw_treatment" / "new-run" / "now" / "batch.html", "<p/>", recently),
    ]
    # a file never taken (no contract for its feed): its sender dated it long ago, but it arrived now
    waiting = _aged(tmp_path / "landing" / "new-feed" / "2020-01" / "new-feed_X_2020-01.csv", "a,b", long_ago)
    # a refused symbolic link, quarantined long ago: purged as itself; the file it points at (recent,
    # outside the home) keeps its mode and times
    target = _aged(tmp_path.parent / f"{tmp_path.name}-elsewhere.csv", "a,b", recently)
    target.chmod(0o644)
    link = settings.quarantine_dir() / "treatment" / "2020-01" / "treatment_P0009_2020-01.csv"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    os.utime(link, (long_ago, long_ago), follow_symlinks=False)
    old.append(_aged(link.with_name(link.name + ".reason.json"), "{}", long_ago))

    purged = retention.purge_files(db, datetime(2024, 1, 1, tzinfo=UTC), "retention-test")

    assert [p for p in old if p.exists()] == []
    assert not link.is_symlink(), "the quarantined link is purged"
    assert target.exists() and target.stat().st_mode & 0o777 == 0o644
    assert all(p.exists() for p in kept) and waiting.exists()
    counts = {r["target"]: r["files"] for r in purged}
    assert counts["gx_validations"] >= 1 and counts["gx_data_docs"] >= 1 and counts["reports"] >= 2
    assert counts["landing"] == 0
    # the landing file is judged by when it arrived (its inode's change time), which no sender sets
    purged = retention.purge_files(db, datetime.now(UTC) + timedelta(minutes=1), "retention-test")
    assert not waiting.exists() and {r["target"]: r["files"] for r in purged}["landing"] == 1


def test_the_retention_dag_covers_every_folder_that_can_hold_a_plain_attributor() -> None:
    targets: dict[str, Any] = {target: folder for target, folder, _ in retention.purge_targets()}
    assert set(targets) == {"archive", "quarantine", "reports", "gx_validations", "gx_data_docs", "landing"}
    assert targets["landing"] == settings.landing_dir()
    assert set(_gx_results()) <= set(targets.values())
    assert set(settings.gx_results_dirs()) == set(_gx_results())
