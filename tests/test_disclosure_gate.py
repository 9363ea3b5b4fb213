"""The disclosure audit in the real mart gate (dag.test): a clean month publishes with its audit
recorded; the same month with one leak planted in marts_next is refused, naming the pinned cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import disclosure_audit, warehouse
from misuse_warehouse import pipeline as monthly

MONTH = "2025-03"


def _rows() -> list[dict]:
    # twelve opiate clients in treatment since January, one of whom died in March; three alcohol-only
    # clients start in March
    people = [treatment_row(episode_id=f"E{i}", client_initials=f"A{chr(65 + i)}") for i in range(12)]
    people[0] |= {"discharge_date": "2025-03-15", "discharge_reason": "died"}
    starters = [
        treatment_row(
            episode_id=f"S{i}",
            client_initials=f"S{chr(65 + i)}",
            substance_group="alcohol_only",
            primary_substance="alcohol",
            referral_date="2025-02-20",
            first_intervention_date=f"2025-03-0{i + 1}",
        )
        for i in range(3)
    ]
    return people + starters


def _figure(pipeline, kpi: str, month: str = MONTH) -> tuple:  # noqa: ANN001
    return pipeline.query(
        "select value, is_suppressed from marts.kpi_monthly where kpi_code = %s and breakdown = 'all' and month = %s",
        (kpi, f"{month}-01"),
    )[0]


def test_the_gate_audits_a_month_and_refuses_a_planted_leak_naming_the_cell(
    pipeline,  # noqa: ANN001
    landing: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline.reset()
    write_treatment_file(landing, "P0001", MONTH, _rows())
    result = pipeline.run_month(landing, MONTH)
    assert result.task_states["publish"] == "success"

    # one death: hidden, and the financial year's total, which would give it away, hidden with it
    assert _figure(pipeline, "T7_month") == (None, True)
    assert _figure(pipeline, "T7_12m") == (None, True)
    # the median wait of three episodes is close to a person's wait: hidden
    assert _figure(pipeline, "T3_median_days") == (None, True)
    # alcohol 3 is hidden, and opiate 12 with it: T1 all (15) less opiate would give it away
    assert pipeline.query(
        "select breakdown, value from marts.kpi_monthly where kpi_code = 'T1' and month = %s order by 1",
        (f"{MONTH}-01",),
    ) == [("all", 15), ("kpi_group=alcohol", None), ("kpi_group=non_opiate", 0), ("kpi_group=opiate", None),
          ("service_type=adult", 15), ("service_type=young_people", 0)]  # fmt: skip

    audits = pipeline.query(
        "select role_name, cells_checked, cells_disclosed, narrowest_cell from ops.disclosure_audits"
        " where dag_run_id = %s order by role_name",
        (result.run_id,),
    )
    roles = {role for role, *_ in audits}
    assert "bi_reader" in roles and "analyst_medway" in roles
    assert all(disclosed == 0 for _, _, disclosed, _ in audits)
    bi_reader = next(a for a in audits if a[0] == "bi_reader")
    assert bi_reader[1] >= 2 and bi_reader[3], "the suppressed counts checked and the narrowest range are recorded"
    report = pipeline.query(
        "select detail->'disclosure_audit'->>'text' from ops.task_runs where dag_run_id = %s and task_id = 'mart_gate'",
        (result.run_id,),
    )[0][0]
    assert "narrowest feasible range" in report and report.endswith("none disclosed")
    assert monthly.report([], result.run_id)["disclosure_audit"] == report, "the run report says the same"
    gate_rows = pipeline.query(
        "select is_success, element_count from ops.gate_results where dag_run_id = %s and suite = 'disclosure_audit'",
        (result.run_id,),
    )
    assert gate_rows and all(ok for ok, _ in gate_rows)

    # plant a leak after the build that no GX expectation sees (no count of 1-4 shown): the opiate
    # group shown again, so T1 all less it is the alcohol group
    publications = pipeline.query("select count(*) from ops.publications")
    before = pipeline.checksums()
    audit = disclosure_audit.run

    def leaky_run(schema: str) -> list:
        with warehouse.connect() as conn:
            conn.execute(
                f"update {schema}.kpi_monthly set numerator = 12, value = 12, is_suppressed = false"
                " where kpi_code = 'T1' and breakdown = 'kpi_group=opiate' and month = %s",
                (f"{MONTH}-01",),
            )
            conn.commit()
        return audit(schema)

    monkeypatch.setattr(disclosure_audit, "run", leaky_run)
    refused = pipeline.run_month(landing, MONTH, expect_success=False)
    assert refused.task_states["mart_gate"] == "failed"
    assert refused.task_states["publish"] in ("upstream_failed", "None")
    assert pipeline.checksums() == before
    assert pipeline.query("select count(*) from ops.publications") == publications
    findings = pipeline.query(
        "select findings::text from ops.disclosure_audits where dag_run_id = %s and role_name = 'bi_reader'",
        (refused.run_id,),
    )[0][0]
    assert f"E06000035 {MONTH} T1 kpi_group=alcohol is 3..3" in findings
    assert "T1 by kpi_group adds up to T1 all" in findings
    # the roles that read Medway's rows fail the gate; the other analyst groups read nothing of it
    gate = pipeline.query(
        "select rule from ops.gate_results where dag_run_id = %s and suite = 'disclosure_audit' and not is_success",
        (refused.run_id,),
    )
    assert sorted(rule for (rule,) in gate) == [
        "no suppressed count can be worked out (analyst_medway)",
        "no suppressed count can be worked out (bi_reader)",
    ]
