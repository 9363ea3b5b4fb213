"""A handful of the bad-file corpus beside good files, through the real monthly DAG (two runs).

The first run publishes the good files (which leave landing for the archive); the second finds
the same good files sent again (unchanged bytes) and bad ones of several feeds beside them: the bad
ones are refused and quarantined with their reports, the run ends failed naming them, and the
published marts are exactly as before. Neither the run's XComs nor its log hold the personal data
of the hostile file. Beside
the corpus (which holds files, not these): a sparse multi-GB file and a symbolic link to a good
file outside landing, each refused unread.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from bad_files import make_corpus
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import settings

MONTH = "2025-03"
# One of each way to fail: encoding, file type, delimiter, quoting, a value, a GX rule, personal data.
HANDFUL = (
    "utf16_le_bom",
    "xlsx_named_csv",
    "semicolon_delimiter",
    "unterminated_quote",
    "money_pound_sign",
    "duplicate_measure",
    "hostile_personal_data",
)


def _drop(landing: Path, kind: make_corpus.Kind) -> Path:
    path = landing / kind.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(kind.content)
    return path


def test_bad_files_are_refused_by_the_dag_and_the_marts_stay_as_they_were(
    pipeline: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline.reset()
    shutil.rmtree(settings.reports_dir(), ignore_errors=True)
    landing = tmp_path / "landing"
    for kind in make_corpus.baseline_kinds():
        _drop(landing, kind)
    pipeline.run_month(landing, MONTH)
    assert not [p for p in landing.rglob("*") if p.is_file()], "loaded files moved into the archive"
    for kind in make_corpus.baseline_kinds():  # sent again
        _drop(landing, kind)
    before = pipeline.checksums()
    assert before.get("kpi_monthly"), "the good files published"
    loaded = pipeline.query("select submission_id from raw.submissions where status = 'loaded' order by 1")

    kinds = {k.name: k for k in make_corpus.refused_kinds()}
    bad = {_drop(landing, kinds[name]).name: kinds[name].code for name in HANDFUL}
    caplog.set_level(logging.DEBUG)
    # the first DAG run in a process configures Airflow's logging, which replaces the root logger's
    # handlers, caplog's among them: capture again from here (in a process that ran a DAG before, as
    # under `make test`, the handler is still there)
    if caplog.handler not in logging.getLogger().handlers:
        logging.getLogger().addHandler(caplog.handler)
    huge = landing / "treatment" / MONTH / f"treatment_P9100_{MONTH}.csv"
    huge.touch()
    os.truncate(huge, 2 * 2**30 + 1)  # over the 1 GiB default; sparse, so no disk is used
    bad[huge.name] = "file_too_large"
    good_elsewhere = write_treatment_file(tmp_path / "elsewhere", "P9101", MONTH, [treatment_row(episode_id="L1")])
    (landing / "treatment" / MONTH / good_elsewhere.name).symlink_to(good_elsewhere)  # would load if followed
    bad[good_elsewhere.name] = "symlink"
    result = pipeline.run_month(landing, MONTH, expect_success=False)

    assert result.state == "failed" and result.task_states["report"] == "failed"
    assert result.task_states["publish"] == "success", "the good files still publish"
    assert pipeline.checksums() == before, "the published marts are exactly as they were"
    assert pipeline.query("select submission_id from raw.submissions where status = 'loaded' order by 1") == loaded
    refused = pipeline.query(
        "select file_name, refusal_code from raw.submissions where dag_run_id = %s and status = 'refused'",
        (result.run_id,),
    )
    assert dict(refused) == bad
    for name in bad:
        folder = settings.quarantine_dir() / name.split("_")[0] / MONTH
        assert not list(landing.rglob(name)), "refused files leave the landing folder"
        for suffix in ("", ".reason.json", ".reason.txt", ".report.csv", ".report.html"):
            assert (folder / f"{name}{suffix}").is_file(), f"{name}{suffix}"
    hostile = next(n for n in bad if bad[n] == "rules_broken")
    report = (settings.quarantine_dir() / "treatment" / MONTH / f"{hostile}.report.csv").read_text()
    assert "client_initials_two_letters" in report and "Q7" not in report and "2019-07-23" not in report
    assert not [p for p in landing.rglob("*") if p.is_file()], "landing keeps no file the run took"

    # what Airflow keeps of the run: its XComs and its tasks' log lines
    xcoms = _xcom_text(result.run_id)
    assert "client_initials_two_letters" in xcoms or "rules_broken" in xcoms, "the ingest outcomes are there"
    logged = caplog.text
    assert "REFUSED" in logged
    for personal in ("Q7", "2019-07-23"):
        assert personal not in xcoms and personal not in logged


def _xcom_text(run_id: str) -> str:
    """Every XCom value of one run, as stored."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        values = session.query(XComModel.value).filter(XComModel.run_id == run_id).all()
    return "\n".join(json.dumps(value, default=str) for (value,) in values)
