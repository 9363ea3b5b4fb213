"""One month end to end through the real DAG (dag.test): publish, refuse, restate, fail the gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import settings


def _rows(n: int, **fields) -> list[dict]:  # noqa: ANN003
    return [treatment_row(episode_id=f"E{i}", client_initials=f"A{chr(65 + i)}", **fields) for i in range(n)]


def test_month_end_to_end_publishes_and_a_resubmission_replaces(
    pipeline,  # noqa: ANN001
    landing: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline.reset()
    sent = write_treatment_file(landing, "P0001", "2025-03", _rows(6))
    sent_bytes = sent.read_bytes()
    result = pipeline.run_month(landing, "2025-03")
    assert result.task_states["publish"] == "success"
    assert not sent.exists(), "the loaded file moved from landing into the archive"
    assert result.task_states["ingest[treatment]"] == "success", "one ingest task per feed, labelled with it"
    model_runs = {t: s for t, s in result.task_states.items() if t.startswith("transform.") and "producer" not in t}
    assert "transform.kpi_monthly" in model_runs
    assert set(model_runs.values()) == {"success"}, "one successful task per dbt model, tests included"

    t1 = pipeline.query(
        "select value, is_suppressed from marts.kpi_monthly where area_code = 'E06000035' "
        "and month = '2025-03-01' and kpi_code = 'T1' and breakdown = 'all'"
    )
    assert t1 == [(6, False)]
    published = pipeline.query("select count(*) from ops.publications")[0][0]
    assert published == 1
    # the build's on-run-start hook analyzed raw (it is no task of its own)
    assert pipeline.query(
        "select last_analyze is not null from pg_stat_user_tables where relid = 'raw.treatment_episodes'::regclass"
    ) == [(True,)]
    # BI reads marts only; nothing of the build lingers
    assert pipeline.query("select count(*) from pg_namespace where nspname = 'marts_next'") == [(0,)]
    # every published table keeps its primary key through the swap (BI tools read keys from the catalogue)
    without_key = pipeline.query(
        "select table_schema || '.' || table_name from information_schema.tables t "
        "where table_schema in ('marts', 'marts_person') and table_type = 'BASE TABLE' and not exists ("
        "select 1 from information_schema.table_constraints c where c.table_schema = t.table_schema "
        "and c.table_name = t.table_name and c.constraint_type = 'PRIMARY KEY')"
    )
    assert without_key == []
    assert pipeline.query(
        "select string_agg(a.attname, ',' order by k.ord) from pg_constraint c "
        "cross join unnest(c.conkey) with ordinality k(attnum, ord) "
        "join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum "
        "where c.conrelid = 'marts.kpi_monthly'::regclass and c.contype = 'p'"
    ) == [("area_code,month,kpi_code,breakdown",)]
    # keys to the dimensions are foreign keys between published tables; closed code lists are checks
    foreign_keys = pipeline.query(
        "select c.conrelid::regclass::text, c.confrelid::regclass::text from pg_constraint c "
        "join pg_namespace n on n.oid = c.connamespace where c.contype = 'f' and n.nspname in ('marts', 'marts_person')"
    )
    assert len(foreign_keys) == 35
    assert ("marts.fct_provider_area_episodes", "marts.dim_provider") in foreign_keys
    assert ("marts_person.fct_treatment_person_months", "marts.dim_area") in foreign_keys
    assert ("marts.kpi_monthly", "marts.dim_month") in foreign_keys
    assert {target.split(".")[0] for _, target in foreign_keys} == {"marts"}
    assert pipeline.query(
        "select position('kpi_code = ANY' in pg_get_constraintdef(oid)) > 0 from pg_constraint "
        "where conrelid = 'marts.kpi_monthly'::regclass and conname = 'kpi_code_is_known'"
    ) == [(True,)]
    with psycopg.connect(pipeline.url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("create temporary table orphan as select * from marts.kpi_monthly limit 1")
        conn.execute("update orphan set area_code = 'E99999999'")
        conn.execute("insert into marts.kpi_monthly select * from orphan")
    _assert_run_observed(pipeline, result.run_id)

    # the same bytes sent again: nothing changes (and a warehouse that cannot reach data.police.uk runs without it)
    sent.write_bytes(sent_bytes)
    before = pipeline.checksums()
    with monkeypatch.context() as offline:
        offline.setenv("MISUSE_WAREHOUSE_POLICE_API", "off")
        again = pipeline.run_month(landing, "2025-03")
    assert again.task_states["pull_police"] == "skipped" and again.task_states["publish"] == "success"
    assert pipeline.checksums() == before
    assert pipeline.query(
        "select status, rows_in, rows_out from ops.task_runs where dag_run_id = %s and task_id = 'ingest'",
        (again.run_id,),
    ) == [("duplicate", 6, 0)]
    assert pipeline.query("select count(*) from raw.submissions") == [(1,)]
    assert not sent.exists(), "bytes already in force leave landing too"

    # a restatement with two more people replaces the earlier file whole
    write_treatment_file(landing, "P0001", "2025-03", _rows(8))
    pipeline.run_month(landing, "2025-03")
    t1 = pipeline.query(
        "select value, source_submissions from marts.kpi_monthly where area_code = 'E06000035' "
        "and month = '2025-03-01' and kpi_code = 'T1' and breakdown = 'all'"
    )
    assert t1[0][0] == 8
    latest = pipeline.query("select max(submission_id)::text from raw.submissions")[0][0]
    assert t1[0][1] == [latest]


def _assert_run_observed(pipeline, run_id: str) -> None:  # noqa: ANN001
    """ops.task_runs, ops.gate_results and ops.layer_rows describe the run that just published."""
    ingested = pipeline.query(
        "select target, status, rows_in, rows_out from ops.task_runs where dag_run_id = %s and task_id = 'ingest'",
        (run_id,),
    )
    assert ingested == [("treatment_P0001_2025-03.csv", "loaded", 6, 6)]
    kpi_rows = pipeline.query("select count(*) from marts.kpi_monthly")[0][0]
    built = pipeline.query(
        "select layer, status, rows_out, seconds > 0 from ops.task_runs "
        "where dag_run_id = %s and task_id like 'model.%%.kpi_monthly'",
        (run_id,),
    )
    assert built == [("marts", "success", kpi_rows, True)]
    assert (
        pipeline.query(
            "select count(*) from ops.task_runs where dag_run_id = %s and layer = 'dbt_test' and status = 'pass'",
            (run_id,),
        )[0][0]
        > 50
    )
    raw_suite = json.loads((settings.EXPECTATIONS_DIR / "raw_treatment.json").read_text())
    raw_checks = pipeline.query(
        "select count(*), bool_and(is_success), count(distinct dimension), bool_and(submission_id is not null) "
        "from ops.gate_results where dag_run_id = %s and gate = 'raw'",
        (run_id,),
    )
    assert raw_checks == [(len(raw_suite["expectations"]), True, 4, True)]
    mart_checks = pipeline.query(
        "select count(*) > 0, bool_and(is_success) from ops.gate_results where dag_run_id = %s and gate = 'marts'",
        (run_id,),
    )
    assert mart_checks == [(True, True)]
    assert pipeline.query(
        "select row_count from ops.layer_rows where dag_run_id = %s and layer = 'marts' and table_name = 'kpi_monthly'",
        (run_id,),
    ) == [(kpi_rows,)]
    assert {t for (t,) in pipeline.query("select task_id from ops.task_runs where dag_run_id = %s", (run_id,))} >= {
        "ingest",
        "mart_gate",
        "publish",
    }


def test_refused_file_is_quarantined_and_the_run_fails_loudly(pipeline, landing: Path) -> None:  # noqa: ANN001
    pipeline.reset()
    write_treatment_file(landing, "P0001", "2025-03", _rows(5))
    bad = write_treatment_file(
        landing, "P0002", "2025-03", [treatment_row(discharge_date="2024-12-01", discharge_reason="dropped_out")]
    )
    result = pipeline.run_month(landing, "2025-03", expect_success=False)
    assert result.state == "failed"
    assert result.task_states["report"] == "failed"
    assert result.task_states["publish"] == "success", "the good file still publishes"
    assert not bad.exists()
    reason = settings.quarantine_dir() / "treatment" / "2025-03" / f"{bad.name}.reason.json"
    assert json.loads(reason.read_text())["code"] == "rule_broken:discharge_date_on_or_after_referral"
    # the broken rule, with its dimension, against the refused submission
    failed_checks = pipeline.query(
        """select g.rule, g.dimension, g.unexpected_count, s.status from ops.gate_results g
           join raw.submissions s using (submission_id) where g.dag_run_id = %s and not g.is_success""",
        (result.run_id,),
    )
    assert failed_checks == [("discharge_date_on_or_after_referral", "consistency", 1, "refused")]
    sources = pipeline.query("select distinct unnest(source_submissions) from marts.kpi_monthly")
    loaded = pipeline.query("select submission_id::text from raw.submissions where status = 'loaded'")
    assert sources == loaded


@pytest.fixture
def failing_mart_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the expectations in which kpi_monthly must have an impossible row count."""
    folder = tmp_path / "expectations"
    shutil.copytree(settings.EXPECTATIONS_DIR, folder)
    suite_path = folder / "marts_kpi_monthly.json"
    suite = (
        json.loads(suite_path.read_text()) if suite_path.exists() else {"name": "marts_kpi_monthly", "expectations": []}
    )
    suite["expectations"].append(
        {"type": "expect_table_row_count_to_equal", "kwargs": {"value": -1}, "meta": {"rule": "impossible"}}
    )
    suite_path.write_text(json.dumps(suite))
    monkeypatch.setattr(settings, "EXPECTATIONS_DIR", folder)


def test_failed_mart_gate_leaves_publication_untouched(pipeline, landing: Path, request) -> None:  # noqa: ANN001
    pipeline.reset()
    write_treatment_file(landing, "P0001", "2025-03", _rows(6))
    pipeline.run_month(landing, "2025-03")
    before = pipeline.checksums()
    publications = pipeline.query("select count(*) from ops.publications")

    request.getfixturevalue("failing_mart_suite")
    write_treatment_file(landing, "P0001", "2025-03", _rows(9))
    result = pipeline.run_month(landing, "2025-03", expect_success=False)
    assert result.task_states["mart_gate"] == "failed"
    assert result.task_states["publish"] in ("upstream_failed", "None")
    assert pipeline.checksums() == before
    assert pipeline.query("select count(*) from ops.publications") == publications
    assert pipeline.query(
        "select value from marts.kpi_monthly where kpi_code = 'T1' and breakdown = 'all' and month = '2025-03-01'"
    ) == [(6,)]
