"""The landing watch: files are taken when they land, once, and start a run for the months they belong to.

- What is new: settled files whose bytes no submission holds; a file still being written waits for
  the next look; resubmitted bytes under another name are not new; a run still queued or running
  keeps its files; a finished run that did not take a file offers it again, a bounded number of times.
- The DAG: a real `landing_watch` run (dag.test()) starts a `monthly_pipeline` run whose id, conf and
  note say which months and files; the next look, with that run still queued, starts nothing.
- That run, with the months the watch found (an earlier month restated and the new month), lands both
  and publishes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import landing_watch, loader
from misuse_warehouse.contracts import all_contracts
from misuse_warehouse.file_checks import read_file


def _settle(*paths: Path, age: float = 120) -> None:
    for path in paths:
        then = time.time() - age
        os.utime(path, (then, then))


def _look(db: psycopg.Connection, landing: Path, state: str | None = None) -> list[str]:
    files, _ = landing_watch.landed(landing, all_contracts())
    return sorted(f.path.name for f in landing_watch.new_files(db, landing, files, lambda _run: state))


def test_what_counts_as_new(db: psycopg.Connection, landing: Path) -> None:
    db.autocommit = True
    march = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    april = write_treatment_file(landing, "P0001", "2025-04", [treatment_row(submission_month="2025-04")])
    _settle(march)
    files, settling = landing_watch.landed(landing, all_contracts())
    assert [f.path for f in files] == [march] and settling == [april]  # april is still being written

    _settle(april)
    assert _look(db, landing) == [march.name, april.name]
    files, _ = landing_watch.landed(landing, all_contracts())
    landing_watch.record_trigger(db, landing, files, "landed__test")
    assert _look(db, landing, "queued") == []  # its run is waiting: it takes them
    assert _look(db, landing, "running") == []
    assert _look(db, landing, "failed") == [march.name, april.name]  # it ended without taking them

    sent = march.read_bytes()
    loader.load(db, read_file(march), "test-run")
    assert not march.exists(), "a loaded file leaves landing"
    assert _look(db, landing, "success") == [april.name]
    copy = march.with_name("treatment_P0001_2025-03_again.csv")
    copy.write_bytes(sent)
    _settle(copy)
    assert _look(db, landing, "success") == [april.name]  # the same bytes again are not new

    for _ in range(landing_watch.MAX_TRIGGERS):
        landing_watch.record_trigger(db, landing, files, "landed__again")
    assert _look(db, landing, "failed") == []  # offered to every run it may be: an engineer looks
    april.write_text(april.read_text().replace("pharmacological", "psychosocial"))
    _settle(april)
    assert _look(db, landing, "failed") == [april.name]  # changed bytes: a new file


def test_run_request_names_months_and_files(tmp_path: Path) -> None:
    files = [
        landing_watch.LandedFile(tmp_path / "a", "treatment", "2025-04", 1, 1),
        landing_watch.LandedFile(tmp_path / "b", "treatment", "2025-03", 1, 1),
        landing_watch.LandedFile(tmp_path / "c", "funding-ledger", "2025-04", 1, 1),
    ]
    request = landing_watch.run_request(files)
    assert request["conf"] == {"months": ["2025-03", "2025-04"]}
    assert request["run_id"].startswith("landed__2025-03_2025-04__")
    assert "funding-ledger 2025-04 (1), treatment 2025-03 (1), treatment 2025-04 (1)" in request["note"]


@pytest.fixture
def watched_landing(landing: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MISUSE_WAREHOUSE_LANDING", str(landing))
    return landing


def _pipeline_runs() -> dict[str, tuple[dict, str | None]]:
    """The monthly_pipeline runs the watch started: run id -> (conf, note)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == landing_watch.PIPELINE_DAG_ID).all()
        return {r.run_id: (r.conf, r.note) for r in runs if r.run_id.startswith("landed__")}


def test_a_landing_watch_run_starts_the_monthly_run_for_the_new_months(pipeline, watched_landing: Path) -> None:  # noqa: ANN001
    from misuse_warehouse import runner

    pipeline.reset()
    two = [treatment_row(), treatment_row(episode_id="E2")]
    march = write_treatment_file(watched_landing, "P0001", "2025-03", two)
    pipeline.load_month(watched_landing, "2025-03")  # loaded earlier (the build is not what this test is about)
    # the provider restates March (one episode more, same file name) and sends April
    write_treatment_file(watched_landing, "P0001", "2025-03", [*two, treatment_row(episode_id="E3")])
    april = write_treatment_file(watched_landing, "P0001", "2025-04", [treatment_row(submission_month="2025-04")])
    _settle(march, april)

    before = _pipeline_runs()
    watch = runner.load_dag(landing_watch.DAG_ID)
    run = watch.test()
    assert str(run.state) == "success"
    started = {run_id: found for run_id, found in _pipeline_runs().items() if run_id not in before}
    assert len(started) == 1
    [(run_id, (conf, note))] = started.items()
    assert conf == {"months": ["2025-03", "2025-04"]}
    assert run_id.startswith("landed__2025-03_2025-04__")
    assert "treatment 2025-03 (1), treatment 2025-04 (1)" in note

    again = watch.test()  # that run is still queued: nothing new
    states = {ti.task_id: str(ti.state) for ti in again.get_task_instances()}
    assert states == {"find_new_files": "skipped", "start_monthly_pipeline": "skipped"}
    assert len(_pipeline_runs()) == len(before) + 1

    result = runner.run_month("2025-04", watched_landing, months=conf["months"])
    assert result.succeeded, result.task_states
    assert pipeline.query(
        """select reporting_month::text from ops.publications order by publication_id desc limit 1"""
    ) == [("2025-04-01",)]
    assert pipeline.query(
        """select period_start::text, count(*) from raw.submissions where status = 'loaded'
           group by 1 order by 1"""
    ) == [("2025-03-01", 2), ("2025-04-01", 1)]


def test_a_symbolic_link_is_seen_but_never_followed(db: psycopg.Connection, landing: Path, tmp_path: Path) -> None:
    """A link in landing starts a run, which refuses it (file_checks); the watch reads the link, not its target."""
    import hashlib

    db.autocommit = True
    outside = write_treatment_file(tmp_path / "elsewhere", "P0001", "2025-03", [treatment_row()])
    link = landing / "treatment" / "2025-03" / outside.name
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    then = time.time() - 120
    os.utime(link, (then, then), follow_symlinks=False)
    files, settling = landing_watch.landed(landing, all_contracts())
    assert [f.path for f in files] == [link] and settling == []
    assert _look(db, landing) == [link.name]
    target = str(outside).encode()
    stored = db.execute("select file_bytes, file_sha256 from ops.landing_files").fetchall()
    assert stored == [(len(target), hashlib.sha256(target).hexdigest())]
