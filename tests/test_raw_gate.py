"""The GX raw suite for treatment: each contract rule refuses with its own rule name."""

from __future__ import annotations

from pathlib import Path

import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import gate
from misuse_warehouse.file_checks import read_file


def _check(landing: Path, rows: list[dict]) -> gate.GateResult:
    return gate.check_file(read_file(write_treatment_file(landing, "P0001", "2025-03", rows)))


def test_valid_file_passes_every_expectation(landing: Path) -> None:
    result = _check(
        landing,
        [
            treatment_row(),
            treatment_row(
                episode_id="E2",
                client_initials="XX",
                discharge_date="2025-03-31",
                discharge_reason="completed_drug_free",
                top_start_days_used=20,
                top_review_days_used=3,
            ),
            treatment_row(
                episode_id="E3",
                service_type="young_people",
                client_dob="2010-05-01",
                first_intervention_date=None,
                modality=None,
            ),
        ],
    )
    assert result.success, result.failures
    assert result.evaluated == len(gate.suite_json("raw_treatment")["expectations"])


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"episode_id": "E1"}, "episode_id_unique"),
        ({"client_sex": "M"}, "client_sex_code"),
        ({"substance_group": "opiates"}, "substance_group_code"),
        ({"discharge_date": "2025-01-01", "discharge_reason": "dropped_out"}, "discharge_date_on_or_after_referral"),
        ({"discharge_date": "2025-03-20"}, "discharge_reason_required_with_discharge"),
        ({"discharge_reason": "died"}, "discharge_reason_only_with_discharge"),
        ({"modality": None}, "modality_required_with_first_intervention"),
        (
            {"referral_date": "2025-04-02", "first_intervention_date": None, "modality": None},
            "referral_date_not_after_month",
        ),
        ({"service_type": "young_people"}, "young_people_under_18"),
        ({"client_dob": "2010-01-01"}, "adult_18_or_over"),
        ({"client_dob": "1900-01-01"}, "age_at_referral_10_to_100"),
        ({"area_code": "E10000009"}, "area_code_valid_on_referral_date"),
        ({"area_code": "E99999999"}, "area_code_valid_on_referral_date"),
        ({"top_review_days_used": 4}, "top_review_only_with_top_start"),
        ({"top_start_days_used": 29}, "top_start_0_to_28"),
        ({"submission_month": "2025-02"}, "submission_month_matches_file_name"),
    ],
)
def test_each_rule_refuses(landing: Path, fields: dict, rule: str) -> None:
    rows = (
        [treatment_row(), treatment_row(episode_id="E2", **fields)]
        if "episode_id" not in fields
        else [treatment_row(), treatment_row(**fields)]
    )
    if "submission_month" in fields:
        from feeds import write_feed_file

        row = treatment_row(**fields)
        result = gate.check_file(read_file(write_feed_file(landing, "treatment", "P0001", "2025-03", [row])))
    else:
        result = _check(landing, rows)
    assert not result.success
    assert rule in [f["rule"] for f in result.failures], result.failures
    failure = next(f for f in result.failures if f["rule"] == rule)
    assert failure["rows"], "the refusal names the file lines"


def test_refusal_never_shows_attributor_values(landing: Path) -> None:
    result = _check(landing, [treatment_row(client_initials="A1")])
    failure = next(f for f in result.failures if f["rule"] == "client_initials_two_letters")
    assert failure["rows"] == [2] and failure["values"] == []


def _judged(result: gate.GateResult) -> list[tuple[str, list[int], list]]:
    return [(f["rule"], f["rows"], f["values"]) for f in result.failures]


@pytest.mark.parametrize("batch_rows", [gate.BATCH_ROWS, 2], ids=["one_batch", "batches_of_two_rows"])
def test_files_checked_together_are_judged_as_if_alone(
    landing: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(gate, "BATCH_ROWS", batch_rows)
    first = write_treatment_file(landing, "P0001", "2025-03", [treatment_row(), treatment_row(episode_id="E2")])
    # the same episode ids from another provider are not duplicates; its own repeated E1 is, and its bad codes
    broken = write_treatment_file(
        landing,
        "P0002",
        "2025-03",
        [
            treatment_row(),
            treatment_row(substance_group="opiates"),
            treatment_row(episode_id="E2", substance_group="drink"),
        ],
    )
    last = write_treatment_file(landing, "P0003", "2025-03", [treatment_row(episode_id="E2")])
    files = [read_file(p) for p in (first, broken, last)]

    together = gate.check_files(files, "test-batch")

    alone = [gate.check_file(f) for f in files]
    assert [r.success for r in together] == [True, False, True]
    assert _judged(together[1]) == _judged(alone[1])
    assert sorted(_judged(together[1])) == [
        ("episode_id_unique", [2, 3], ["E1", "E1"]),
        ("substance_group_code", [3, 4], ["opiates", "drink"]),
    ]
    assert [(f.rule, f.row) for f in together[1].findings] == [(f.rule, f.row) for f in alone[1].findings]
    counts = {c["rule"]: (c["element_count"], c["unexpected_count"]) for c in together[1].checks}
    assert counts["episode_id_unique"] == (3, 2) and counts["substance_group_code"] == (3, 2)
    assert {c["unexpected_count"] for c in together[0].checks} == {0}
