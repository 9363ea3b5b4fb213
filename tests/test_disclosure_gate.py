"""The disclosure audit in the real mart gate (dag.test): a clean month publishes with its audit
recorded; the same month with one leak planted in marts_next is refused, naming the pinned cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import disclosure_audit, warehouse

MONTH = "2025-03"


def _rows() -> list[dict]:
    # twelve people in treatment since January, one of whom died in March; three start in March
    people = [treatment_row(episode_id=f"E{i}", client_initials=f"A{chr(65 + i)}") for i in range(12)]
    people[0] |= {"discharge_date": "2025-03-15", "discharge_reason": "died"}
    starters = [
        treatment_row(
            episode_id=f"S{i}",
            client_initials=f"S{chr(65 + i)}",
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
    gate_rows = pipeline.query(
        "select is_success, element_count from ops.gate_results where dag_run_id = %s and suite = 'disclosure_audit'",
        (result.run_id,),
    )
    assert gate_rows and all(ok for ok, _ in gate_rows)

    # plant a leak after the build: the hidden year total shown; with the other months' zeros it is the death
    publications = pipeline.query("select count(*) from ops.publications")
    before = pipeline.checksums()
    audit = disclosure_audit.run

    def leaky_run(schema: str) -> list:
        with warehouse.connect() as conn:
            conn.execute(
                f"update {schema}.kpi_monthly set numerator = 1, value = 1, is_suppressed = false"
                " where kpi_code = 'T7_12m' and breakdown = 'all' and month = %s",
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
    assert f"E06000035 {MONTH} T7_month all is 1..1" in findings
    assert "T7_12m is the sum of the twelve T7_month cells of its window" in findings
