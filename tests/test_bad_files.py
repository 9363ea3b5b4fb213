"""The bad-file corpus (tests/bad_files/) through the DAG's own ingest function, file by file.

`pipeline.ingest` is what the DAG's mapped `ingest` task calls (checks, raw gate, restatement
check, load or quarantine), so driving it directly against the test warehouse is the same code
path without a DAG run per file; tests/test_bad_files_dag.py proves a handful through the DAG.
Each kind must get its own refusal code, land in quarantine byte for byte with its reasons and
the submitter's validation report, and change no table beyond the audit (`raw.submissions` and the
run log `ops.task_runs` / `ops.gate_results`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from bad_files import make_corpus
from bad_files.make_corpus import Kind
from conftest import Pipeline

from misuse_warehouse import pipeline, publish, settings

CORPUS = Path(__file__).parent / "bad_files"
REFUSED = make_corpus.refused_kinds()
ACCEPTED = make_corpus.accepted_kinds()
RUN_ID = "bad-files-test"

# What some reports must say, row by row: kind -> findings (rule, columns, row, value) it must hold;
# {source} is the source code of the kind's file name.
REPORT_ROWS = {
    "latin1_text": [("not_utf8", "", "2", "0xf1")],
    "code_out_of_list": [("referral_source_code", "referral_source", "2", "self_referral")],
    "money_pound_sign": [("money_currency_sign", "actual_gbp", "2", "£98000.50")],
    "duplicate_episode_id": [
        ("episode_id_unique", "episode_id", "2", "{source}-E1"),
        ("episode_id_unique", "episode_id", "3", "{source}-E1"),
    ],
    "impossible_date": [("impossible_date", "triage_date", "2", "2025-02-30")],
    "ragged_row_too_few": [("bad_row_shape", "", "3", "19 fields, the header has 22")],
    "restated_month_fewer_rows": [("restatement_drops_records", "episode_id", "", "P9000-E2")],
    "part_more_than_whole": [
        (
            "dtoa_positive_not_more_than_dtoa_tests",
            "measure value dtoa_tests_in_file",
            "4",
            "measure=dtoa_positive; value=12.0; the file's dtoa_tests=10.0",
        )
    ],
    "unknown_area_code": [
        (
            "area_code_valid_on_referral_date",
            "area_code referral_date",
            "2",
            "area_code=E99999999; referral_date=2025-01-10",
        )
    ],
}


def snapshot(url: str) -> dict[str, str]:
    """Content checksum of every table in every schema, except the audit: raw.submissions and the run log.

    ops.task_runs and ops.gate_results record that a file was checked and refused (which rule, when),
    like raw.submissions, and ops.writer_leases that the ingest held the writer lease; they hold no
    data from the file.
    """
    with psycopg.connect(url) as conn:
        schemas = [
            r[0]
            for r in conn.execute(
                "select nspname from pg_namespace where nspname !~ '^pg_' and nspname <> 'information_schema'"
            )
        ]
        sums = {f"{s}.{t}": digest for s in schemas for t, digest in publish.table_checksums(conn, s).items()}
    for audit in ("raw.submissions", "ops.task_runs", "ops.gate_results", "ops.writer_leases"):
        sums.pop(audit)
    return sums


def audit_rows(url: str, after_id: int) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select file_name, status, refusal_code, row_count from raw.submissions where submission_id > %s",
            (after_id,),
        ).fetchall()


def last_submission_id(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select coalesce(max(submission_id), 0) from raw.submissions").fetchone()[0]


def drop(kind_root: Path, kind: Kind, landing: Path) -> Path:
    path = landing / kind.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(kind.content)
    return path


def report_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def warehouse(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty warehouse with the baseline files loaded: the submissions the restatement kinds would replace."""
    Pipeline(warehouse_url).reset()
    shutil.rmtree(settings.reports_dir(), ignore_errors=True)
    pipeline.prepare()
    landing = tmp_path_factory.mktemp("baseline")
    for kind in make_corpus.baseline_kinds():
        outcome = pipeline.ingest(str(drop(landing, kind, landing)), RUN_ID)
        assert outcome["status"] == "loaded" and not outcome["warnings"], outcome
    yield warehouse_url


def test_committed_corpus_is_what_the_script_writes() -> None:
    expected = make_corpus.files()
    committed = {
        p.relative_to(CORPUS).as_posix(): p.read_bytes()
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    }
    assert sorted(committed) == sorted(expected), "run python tests/bad_files/make_corpus.py and commit"
    changed = [name for name, content in expected.items() if committed[name] != content]
    assert not changed, f"stale corpus files: {changed}"


def test_corpus_covers_thirty_kinds_across_every_file_feed() -> None:
    assert len(REFUSED) >= 30
    assert len({k.name for k in REFUSED + ACCEPTED}) == len(REFUSED + ACCEPTED)
    assert {k.feed for k in REFUSED} >= {"treatment", "funding", "contracts", "grants", "cj-return", "prison-releases"}
    assert all(k.code for k in REFUSED) and not any(k.code for k in ACCEPTED)
    assert len({k.code for k in REFUSED}) >= 30, "kinds are told apart by their codes"


@pytest.mark.parametrize("kind", REFUSED, ids=[k.name for k in REFUSED])
def test_bad_file_is_refused_quarantined_and_changes_nothing(kind: Kind, warehouse: str, tmp_path: Path) -> None:
    path = drop(tmp_path, kind, tmp_path / "landing")
    before, last = snapshot(warehouse), last_submission_id(warehouse)

    outcome = pipeline.ingest(str(path), RUN_ID)

    assert (outcome["status"], outcome["refusal_code"]) == ("refused", kind.code), outcome["message"]
    assert snapshot(warehouse) == before, "no table beyond raw.submissions may change"
    assert audit_rows(warehouse, last) == [(path.name, "refused", kind.code, None)]

    folder = settings.quarantine_dir() / path.parent.parent.name / path.parent.name
    quarantined = folder / path.name
    assert not path.exists() and quarantined.read_bytes() == kind.content, "the file is kept byte for byte"
    reason = json.loads((folder / f"{path.name}.reason.json").read_text())
    assert reason["code"] == kind.code and reason["message"]
    assert kind.code in (folder / f"{path.name}.reason.txt").read_text()

    report_csv, report_html = folder / f"{path.name}.report.csv", folder / f"{path.name}.report.html"
    assert outcome["report"] == str(report_html)
    rows = report_rows(report_csv)
    assert rows and all(r["file"] == path.name and r["outcome"] == "refused" and r["severity"] == "error" for r in rows)
    rules = {r["rule"] for r in rows}
    assert kind.code.removeprefix("rule_broken:") in rules or kind.code == "rules_broken"
    page = report_html.read_text(encoding="utf-8")
    assert (
        page.startswith("<!DOCTYPE html>") and path.name in page and "<link" not in page and "<script src" not in page
    )
    source = path.name.split("_")[1]
    for rule, columns, row, value in REPORT_ROWS.get(kind.name, []):
        expected = {"rule": rule, "columns": columns, "row": row, "value": value.format(source=source)}
        assert expected in [{k: r[k] for k in ("rule", "columns", "row", "value")} for r in rows], rows


def _sidecars(folder: Path, name: str) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in folder.glob(f"{name}.*")}


def test_report_withholds_personal_data_of_a_hostile_row(warehouse: str, tmp_path: Path) -> None:
    kind = next(k for k in REFUSED if k.name == "hostile_personal_data")
    path = drop(tmp_path, kind, tmp_path / "landing")
    outcome = pipeline.ingest(str(path), RUN_ID)
    assert outcome["refusal_code"] == "rules_broken"

    folder = settings.quarantine_dir() / "treatment" / "2025-03"
    rows = report_rows(folder / f"{path.name}.report.csv")
    by_rule = {r["rule"]: r for r in rows}
    assert set(by_rule) == {
        "client_initials_two_letters",
        "client_sex_code",
        "age_at_referral_10_to_100",
        "adult_18_or_over",
        "housing_problem_code",
        "injecting_status_code",
    }
    assert all(r["row"] == "2" for r in rows), "every finding names the row"
    for rule in ("client_initials_two_letters", "client_sex_code", "age_at_referral_10_to_100", "adult_18_or_over"):
        assert by_rule[rule]["value"] == "(withheld: personal data)"
    assert by_rule["housing_problem_code"]["value"] == "<script>alert(1)</script>"
    assert by_rule["injecting_status_code"]["value"] == "'=1+2", "a formula is written as text"

    written = _sidecars(folder, path.name)
    assert set(written) == {f"{path.name}.{s}" for s in ("reason.json", "reason.txt", "report.csv", "report.html")}
    for text in written.values():
        for personal in ("Q7", "2019-07-23", ",Q,", "'Q'", ">Q<", "age=5"):
            assert personal not in text
        # the age as GX prints it, not the digits of a timestamp such as 04:04:25.009226
        assert not re.search(r"(?<![\d.])5\.0(?!\d)", text)
    page = written[f"{path.name}.report.html"]
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    with psycopg.connect(warehouse) as conn:
        reason = conn.execute(
            "select refusal_reason from raw.submissions where file_name = %s order by submission_id desc limit 1",
            (path.name,),
        ).fetchone()[0]
    assert "Q7" not in reason and "2019-07-23" not in reason


def test_unreadable_date_of_birth_is_withheld_too(warehouse: str, tmp_path: Path) -> None:
    kind = next(k for k in REFUSED if k.name == "personal_date_unreadable")
    path = drop(tmp_path, kind, tmp_path / "landing")
    assert pipeline.ingest(str(path), RUN_ID)["refusal_code"] == "bad_date"
    written = _sidecars(settings.quarantine_dir() / "treatment" / "2025-03", path.name)
    assert len(written) == 4 and not any("31/12/1980" in text for text in written.values())
    assert "client_dob" in written[f"{path.name}.report.csv"]


def test_a_second_refused_file_of_the_same_name_keeps_the_first(warehouse: str, tmp_path: Path) -> None:
    first = next(k for k in REFUSED if k.name == "bad_date_format")
    path = drop(tmp_path, first, tmp_path / "one")
    pipeline.ingest(str(path), RUN_ID)
    again = tmp_path / "two" / first.file
    again.parent.mkdir(parents=True)
    second = first.content.replace(b"10/01/2025", b"11/01/2025")
    again.write_bytes(second)
    assert pipeline.ingest(str(again), RUN_ID)["refusal_code"] == "bad_date"
    folder = settings.quarantine_dir() / "treatment" / "2025-03"
    assert (folder / path.name).read_bytes() == second
    kept = [p for p in (folder / "earlier").glob(f"*_{path.name}") if p.read_bytes() == first.content]
    assert kept, "the earlier refused file is not overwritten"
    assert (folder / "earlier" / f"{kept[0].name}.report.html").exists()


@pytest.mark.parametrize("kind", ACCEPTED, ids=[k.name for k in ACCEPTED])
def test_odd_but_valid_file_is_loaded(kind: Kind, warehouse: str, tmp_path: Path) -> None:
    path = drop(tmp_path, kind, tmp_path / "landing")
    outcome: dict[str, Any] = pipeline.ingest(str(path), RUN_ID)
    assert outcome["status"] == "loaded", outcome["message"]
    if not kind.warnings:
        assert outcome["report"] is None and outcome["warnings"] == 0
        return
    report = Path(outcome["report"])
    assert report.parent == settings.reports_dir() / kind.feed / kind.month_folder
    assert report.name == f"submission-{outcome['submission_id']}_{path.name}.report.html"
    rows = report_rows(report.with_suffix(".csv"))
    assert {r["rule"] for r in rows} == set(kind.warnings)
    assert all(r["severity"] == "warning" and r["outcome"] == "loaded with warnings" and r["row"] for r in rows)
    assert "loaded with warnings" in report.read_text(encoding="utf-8")


def test_report_file_command_writes_the_report_again(warehouse: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from misuse_warehouse.cli import app

    kind = next(k for k in REFUSED if k.name == "code_out_of_list")
    path = drop(tmp_path, kind, tmp_path / "landing")
    pipeline.ingest(str(path), RUN_ID)
    folder = settings.quarantine_dir() / "treatment" / "2025-03"
    expected = (folder / f"{path.name}.report.csv").read_text()
    for suffix in (".report.csv", ".report.html"):
        (folder / f"{path.name}{suffix}").unlink()
    with psycopg.connect(warehouse) as conn:
        submission = conn.execute("select max(submission_id) from raw.submissions").fetchone()[0]

    result = CliRunner().invoke(app, ["report-file", str(submission)])
    assert result.exit_code == 0, result.output
    assert (folder / f"{path.name}.report.csv").read_text() == expected
    assert (folder / f"{path.name}.report.html").is_file()
    result = CliRunner().invoke(app, ["report-file", str(folder / path.name)])
    assert result.exit_code == 0 and "report:" in result.output


# Formula injection: no cell of a report runs in a spreadsheet -------------------------------------

FORMULAS = (
    "=1+2",
    "-2+3+cmd|' /C calc'!A0",  # starts with a minus and a digit: passed the old guard
    "+41+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+2",
    "\r=1+2",
    '   =HYPERLINK("http://example.invalid","open")',  # after leading spaces
    "\u00a0=1+2",
    "\uff1d1+2",  # full-width equals sign
    "-",
)


def test_every_cell_of_a_report_is_safe_to_open_in_a_spreadsheet() -> None:
    from misuse_warehouse import validation_report
    from misuse_warehouse.refusal import Finding

    findings = [Finding(formula, formula, "error", formula, (formula,), 2, formula) for formula in FORMULAS] + [
        Finding("bad_integer", "a number", "error", "validity", ("value",), 3, value) for value in ("-12", "3.5", "0")
    ]
    file_name = '=HYPERLINK("http://example.invalid")_P0001_2025-03.csv'
    written = validation_report.render_csv(file_name, "refused", findings)
    rows = list(csv.reader(io.StringIO(written, newline="")))
    assert rows[0] == list(validation_report.CSV_COLUMNS)
    for row in rows[1 : len(FORMULAS) + 1]:
        for cell in row:
            if cell.lstrip(" \u00a0")[:1] in validation_report._FORMULA_START:
                raise AssertionError(f"a cell a spreadsheet would run: {cell!r} in {row}")
        assert row[0] == f"'{file_name}", "the file column is guarded too"
    dangerous = [row[7] for row in rows[1 : len(FORMULAS) + 1]]
    assert dangerous == [f"'{formula}" for formula in FORMULAS], "shown as sent, behind a quote"
    assert [row[7] for row in rows[len(FORMULAS) + 1 :]] == ["-12", "3.5", "0"], "plain numbers stay numbers"
    assert [row[6] for row in rows[1:]] == ["2"] * len(FORMULAS) + ["3"] * 3
