"""The contract-driven loader against the embedded Postgres: COPY, audit, idempotency, quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import loader, pseudonymise, settings
from misuse_warehouse.file_checks import read_file
from misuse_warehouse.refusal import Refusal


def _load(db: psycopg.Connection, path: Path) -> loader.Outcome:
    return loader.load(db, read_file(path), "test-run")


def test_load_copies_rows_with_pseudonym_and_audit(db: psycopg.Connection, landing: Path) -> None:
    path = write_treatment_file(
        landing, "P0001", "2025-03", [treatment_row(), treatment_row(episode_id="E2", client_initials="xx")]
    )
    outcome = _load(db, path)
    assert outcome.status == "loaded" and outcome.rows == 2
    audit = db.execute(
        "select feed, source_code, period_start::text, file_name, row_count, status, length(file_sha256)"
        " from raw.submissions"
    ).fetchall()
    assert audit == [("treatment", "P0001", "2025-03-01", path.name, 2, "loaded", 64)]
    rows = db.execute(
        "select source_row, submission_month::text, referral_date::text, person_key"
        " from raw.treatment_episodes order by source_row"
    ).fetchall()
    key = pseudonymise.secret()
    assert rows == [
        (2, "2025-03-01", "2025-01-10", pseudonymise.person_key(key, "AB", "1980-01-01", "m")),
        (3, "2025-03-01", "2025-01-10", None),
    ]
    archived = list(settings.archive_dir().rglob("*.csv"))
    assert len(archived) == 1 and archived[0].read_bytes() == path.read_bytes()


def test_same_bytes_twice_change_nothing(db: psycopg.Connection, landing: Path) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    first = _load(db, path)
    second = _load(db, path)
    assert second.status == "duplicate" and second.submission_id == first.submission_id
    assert db.execute("select count(*) from raw.submissions").fetchone() == (1,)
    assert db.execute("select count(*) from raw.treatment_episodes").fetchone() == (1,)


def test_resubmission_is_a_new_submission_that_supersedes(db: psycopg.Connection, landing: Path) -> None:
    first = _load(
        db, write_treatment_file(landing, "P0001", "2025-03", [treatment_row(), treatment_row(episode_id="E2")])
    )
    second = _load(db, write_treatment_file(landing, "P0001", "2025-03", [treatment_row(referral_source="gp")]))
    assert second.status == "loaded" and second.submission_id > first.submission_id
    assert f"supersedes {first.submission_id}" in second.message
    # raw keeps both; the latest per feed, source and month is the current one
    counts = db.execute("select submission_id, count(*) from raw.treatment_episodes group by 1 order by 1").fetchall()
    assert counts == [(first.submission_id, 2), (second.submission_id, 1)]


def test_refused_file_is_quarantined_with_reasons_and_audited(db: psycopg.Connection, landing: Path) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    outcome = loader.refuse(db, path, Refusal("rule_broken:x", "a readable reason", [{"row": 2}]), "run-1")
    assert outcome.status == "refused" and not path.exists()
    folder = settings.quarantine_dir() / "treatment" / "2025-03"
    assert (folder / path.name).exists()
    reason = json.loads((folder / f"{path.name}.reason.json").read_text())
    assert reason["code"] == "rule_broken:x" and reason["details"] == [{"row": 2}]
    assert "a readable reason" in (folder / f"{path.name}.reason.txt").read_text()
    audit = db.execute("select status, refusal_code, row_count from raw.submissions").fetchall()
    assert audit == [("refused", "rule_broken:x", None)]
    assert db.execute("select count(*) from raw.treatment_episodes").fetchone() == (0,)


def test_hostile_values_are_stored_as_text(db: psycopg.Connection, landing: Path) -> None:
    hostile = "E1'); drop table raw.submissions; --"
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row(episode_id=hostile)])
    parsed = read_file(path)
    loader.load(db, parsed)
    assert db.execute("select episode_id from raw.treatment_episodes").fetchone() == (hostile,)
