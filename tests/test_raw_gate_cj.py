"""The GX raw suites for the criminal-justice file feeds (partnership return, prison releases).

Rules come from ../shared/feeds/criminal_justice.md sections 2 and 3; the attributor (initials, date
of birth, sex) keeps treatment's rules and rule names (treatment.md). The return is long format, so its
rules between measures (positives not more than tests, attendances not more than required assessments)
read derived columns that give every row the file's value of the bounding measure (gate `measure_value`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from feeds import write_feed_file
from simulated_defects import assert_refused, defects_of, failing_files, feed_files, variants_of, with_defect

from misuse_warehouse import gate, migrations
from misuse_warehouse.contracts import contract_for
from misuse_warehouse.file_checks import read_file
from misuse_warehouse.simulate import write_feeds

FEEDS = ("cj-return", "prison-releases")
SUITES = {"cj-return": "raw_cj_return", "prison-releases": "raw_prison_releases"}
AREA = "E06000035"
MONTH = "2025-03"
SIM_AREAS = ["E06000035", "E10000034"]
SIM_MONTHS = ["2025-03", "2025-04"]


# -- hand-made files -----------------------------------------------------------------------------


def return_rows() -> list[dict[str, Any]]:
    """Every measure once; positives equal to tests and attendances to assessments (the bounds are inclusive);
    a zero, a suppression marker and an empty value (both NULL)."""
    values = [
        ("police", "arrests_drug_offences", "12"),
        ("police", "dtoa_tests", "10"),
        ("police", "dtoa_positive", "10"),
        ("police", "required_assessments", "4"),
        ("police", "required_assessments_attended", "4"),
        ("probation", "drr_starts", "*"),
        ("probation", "drr_completions", "0"),
        ("probation", "atr_starts", "3"),
        ("probation", "atr_completions", None),
        ("courts", "community_orders_with_treatment", "5"),
        ("prison", "releases_total", "3"),
    ]
    return [
        {"period_month": MONTH, "area_code": AREA, "agency": agency, "measure": measure, "value": value}
        for agency, measure, value in values
    ]


def release_rows() -> list[dict[str, Any]]:
    """Releases on the first and last days of the month, one on the 18th birthday, initials withheld (XX)."""
    base = {"area_code": AREA}
    return [
        {
            **base,
            "release_id": "R0035-2503-001",
            "release_date": "2025-03-01",
            "prison_code": "BWI",
            "client_initials": "AB",
            "client_dob": "2007-03-01",
            "client_sex": "m",
            "treatment_need": "yes",
            "treated_in_custody": "yes",
            "referred_to_community": "yes",
        },
        {
            **base,
            "release_id": "R0035-2503-002",
            "release_date": "2025-03-31",
            "prison_code": "LEI",
            "client_initials": "XX",
            "client_dob": "1985-06-15",
            "client_sex": "f",
            "treatment_need": "yes",
            "treated_in_custody": "no",
            "referred_to_community": "no",
        },
        {
            **base,
            "release_id": "R0035-2503-003",
            "release_date": "2025-03-15",
            "prison_code": "PVI",
            "client_initials": "CD",
            "client_dob": "1960-01-01",
            "client_sex": "x",
            "treatment_need": "no",
            "treated_in_custody": "no",
            "referred_to_community": "no",
        },
    ]


VALID_ROWS = {"cj-return": return_rows, "prison-releases": release_rows}


def _check(landing: Path, feed: str, rows: list[dict[str, Any]]) -> gate.GateResult:
    return gate.check_file(read_file(write_feed_file(landing, feed, AREA, MONTH, rows)))


@pytest.mark.parametrize("feed", FEEDS)
def test_valid_file_passes_every_expectation(landing: Path, feed: str) -> None:
    result = _check(landing, feed, VALID_ROWS[feed]())
    assert result.success, result.failures
    assert result.evaluated == len(gate.suite_json(SUITES[feed])["expectations"])


@pytest.mark.parametrize("feed", FEEDS)
def test_empty_file_passes(landing: Path, feed: str) -> None:
    assert _check(landing, feed, []).success


@pytest.mark.parametrize(
    "values",
    [
        {"dtoa_positive": "3", "drr_starts": "6"},  # no tests reported: unknown, not zero
        {"dtoa_tests": None, "dtoa_positive": "5", "required_assessments": "*", "required_assessments_attended": "2"},
        {"dtoa_tests": "4", "dtoa_positive": None},
    ],
    ids=["bound_missing", "bound_null", "part_null"],
)
def test_a_missing_measure_bounds_nothing(landing: Path, values: dict[str, str | None]) -> None:
    agencies = {r["measure"]: r["agency"] for r in return_rows()}
    rows = [
        {"period_month": MONTH, "area_code": AREA, "agency": agencies[m], "measure": m, "value": v}
        for m, v in values.items()
    ]
    result = _check(landing, "cj-return", rows)
    assert result.success, result.failures


def _refusals() -> list[Any]:
    """(feed, row, fields set on that row, rule): each breaks exactly that rule."""
    cases: list[tuple[str, int, dict[str, Any], str]] = []
    for column in ("period_month", "area_code", "agency", "measure"):
        cases.append(("cj-return", 1, {column: None}, f"{column}_required"))
    cases += [
        ("cj-return", 1, {"period_month": "2025-02"}, "period_month_matches_file_name"),
        ("cj-return", 1, {"area_code": "E06000047"}, "area_code_matches_file_name"),
        ("cj-return", 1, {"agency": "Police"}, "agency_code"),
        ("cj-return", 1, {"agency": "police_force"}, "agency_code"),
        ("cj-return", 1, {"measure": "dtoa_test"}, "measure_code"),
        ("cj-return", 1, {"measure": "DTOA_TESTS"}, "measure_code"),
        ("cj-return", 1, {"agency": "probation"}, "measure_under_its_agency"),
        ("cj-return", 10, {"agency": "police"}, "measure_under_its_agency"),
        ("cj-return", 5, {"agency": "courts"}, "measure_under_its_agency"),
        ("cj-return", 1, {"measure": "arrests_drug_offences"}, "agency_measure_unique"),
        ("cj-return", 1, {"agency": "probation", "measure": "drr_starts"}, "agency_measure_unique"),
        ("cj-return", 0, {"value": "-1"}, "value_not_negative"),
        ("cj-return", 2, {"value": "11"}, "dtoa_positive_not_more_than_dtoa_tests"),
        ("cj-return", 4, {"value": "5"}, "required_assessments_attended_not_more_than_required"),
    ]
    for column in (
        "release_id",
        "release_date",
        "prison_code",
        "area_code",
        "client_initials",
        "client_dob",
        "client_sex",
        "treatment_need",
        "treated_in_custody",
        "referred_to_community",
    ):
        cases.append(("prison-releases", 1, {column: None}, f"{column}_required"))
    cases += [
        ("prison-releases", 1, {"release_id": "R0035-2503-001"}, "release_id_unique"),
        ("prison-releases", 1, {"release_date": "2025-02-28"}, "release_date_not_before_month"),
        ("prison-releases", 1, {"release_date": "2025-04-01"}, "release_date_not_after_month"),
        ("prison-releases", 1, {"prison_code": "bwi"}, "prison_code_three_letters"),
        ("prison-releases", 1, {"prison_code": "BW1"}, "prison_code_three_letters"),
        ("prison-releases", 1, {"prison_code": "HMPB"}, "prison_code_three_letters"),
        ("prison-releases", 1, {"area_code": "E06000047"}, "area_code_matches_file_name"),
        ("prison-releases", 1, {"client_initials": "A1"}, "client_initials_two_letters"),
        ("prison-releases", 1, {"client_initials": "ABC"}, "client_initials_two_letters"),
        ("prison-releases", 1, {"client_dob": "2007-04-01"}, "age_at_release_18_or_over"),  # 17 on release
        ("prison-releases", 1, {"client_dob": "2025-04-02"}, "age_at_release_18_or_over"),  # not born yet
        ("prison-releases", 1, {"client_sex": "M"}, "client_sex_code"),
        ("prison-releases", 1, {"client_sex": "n"}, "client_sex_code"),
        ("prison-releases", 1, {"treatment_need": "Yes"}, "treatment_need_code"),
        ("prison-releases", 1, {"treated_in_custody": "y"}, "treated_in_custody_code"),
        ("prison-releases", 1, {"referred_to_community": "true"}, "referred_to_community_code"),
        (
            "prison-releases",
            1,
            {"treatment_need": "no", "referred_to_community": "yes"},
            "referred_to_community_needs_treatment_need",
        ),
    ]
    return [
        pytest.param(feed, row, fields, rule, id=f"{feed}-{rule}-{n}")
        for n, (feed, row, fields, rule) in enumerate(cases)
    ]


REFUSALS = _refusals()

# An agency or measure that is not a contract code cannot be a listed (agency, measure) pair either. (GX 1.24
# drops row_condition from expect_column_pair_values_to_be_in_set, so the pair rule cannot skip unknown codes.)
ALSO_BROKEN = {"agency_code": {"measure_under_its_agency"}, "measure_code": {"measure_under_its_agency"}}


@pytest.mark.parametrize(("feed", "row", "fields", "rule"), REFUSALS)
def test_each_rule_refuses(landing: Path, feed: str, row: int, fields: dict[str, Any], rule: str) -> None:
    rows = VALID_ROWS[feed]()
    rows[row].update(fields)
    result = _check(landing, feed, rows)
    assert not result.success
    assert {f["rule"] for f in result.failures} == {rule} | ALSO_BROKEN.get(rule, set()), result.failures
    assert all(f["exception"] is None for f in result.failures), "a rule broken, not an expectation that crashed"
    failure = next(f for f in result.failures if f["rule"] == rule)
    assert row + 2 in failure["rows"], "the refusal names the file line (header is line 1)"


@pytest.mark.parametrize("feed", FEEDS)
def test_every_rule_has_a_refusal_case(feed: str) -> None:
    rules = [e["meta"]["rule"] for e in gate.suite_json(SUITES[feed])["expectations"]]
    assert len(rules) == len(set(rules)), "rule names are unique in a suite"
    tested = {p.values[3] for p in REFUSALS if p.values[0] == feed}
    assert tested == set(rules)


def test_attributor_rules_keep_the_treatment_rule_names() -> None:
    treatment = {e["meta"]["rule"]: e for e in gate.suite_json("raw_treatment")["expectations"]}
    releases = {e["meta"]["rule"]: e for e in gate.suite_json("raw_prison_releases")["expectations"]}
    for rule in ("client_initials_required", "client_dob_required", "client_sex_required"):
        assert releases[rule] == treatment[rule]
    for rule in ("client_initials_two_letters", "client_sex_code"):
        assert releases[rule] == treatment[rule]


def test_suites_keep_to_the_raw_gate_format() -> None:
    dimensions = {"completeness", "validity", "uniqueness", "consistency", "accuracy"}
    for feed, suite in SUITES.items():
        spec = gate.suite_json(suite)
        assert set(spec) == {"name", "meta", "expectations"} and spec["name"] == suite
        assert contract_for(feed).suite == suite
        for expectation in spec["expectations"]:
            assert expectation["meta"]["dimension"] in dimensions, (feed, expectation)


def test_refusal_never_shows_attributor_values(landing: Path) -> None:
    rows = release_rows()
    rows[1]["client_initials"] = "A1"
    result = _check(landing, "prison-releases", rows)
    failure = next(f for f in result.failures if f["rule"] == "client_initials_two_letters")
    assert failure["rows"] == [3] and failure["values"] == []


def test_derived_columns_stay_out_of_the_raw_tables() -> None:
    """Derived columns exist for the suite only, except ages from a date of birth: raw keeps those so the
    date of birth can be purged after retention. The raw tables hold the contract columns (and person_key)."""
    for feed in FEEDS:
        contract = contract_for(feed)
        ddl = migrations.raw_table_ddl(contract).as_string(None)
        assert contract.derived
        for derived in contract.derived:
            assert derived.name not in contract.column_names
            stored = derived.kind == "age_years" and bool(contract.attributor)
            assert (f'"{derived.name}"' in ddl) == stored, derived.name
        assert ("person_key" in ddl) == bool(contract.attributor)
    assert contract_for("cj-return").table == "cj_returns"
    assert contract_for("prison-releases").table == "prison_releases"


# -- the simulator's files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simulated")
    write_feeds(out, SIM_AREAS, SIM_MONTHS, seed=42)
    return out


def test_every_simulated_cj_file_passes_its_suite(simulated: Path) -> None:
    files = feed_files(simulated, FEEDS)
    assert len(files) == len(FEEDS) * len(SIM_AREAS) * len(SIM_MONTHS)
    assert not failing_files(simulated, files)


# Every simulator defect on a criminal-justice feed, by where it must be refused: before the suite (file
# checks, with their refusal code) or by the suite (with the rule). A new defect must be classified here.
FILE_LEVEL_DEFECTS: dict[str, str] = {}
VALUE_RULE_DEFECTS = {
    "dtoa_positive_exceeds_tests": "dtoa_positive_not_more_than_dtoa_tests",
    "release_outside_month": "release_date_not_before_month",
    "referred_without_need": "referred_to_community_needs_treatment_need",
}
CJ_DEFECTS = defects_of(FEEDS)
CJ_VARIANTS = variants_of(FEEDS)


def test_every_cj_defect_is_classified() -> None:
    assert set(CJ_DEFECTS) == set(FILE_LEVEL_DEFECTS) | set(VALUE_RULE_DEFECTS)


@pytest.mark.parametrize("name", CJ_DEFECTS)
def test_simulated_defect_is_refused(name: str, simulated: Path, tmp_path: Path) -> None:
    assert_refused(with_defect(name, simulated, tmp_path), name, FILE_LEVEL_DEFECTS, VALUE_RULE_DEFECTS)


@pytest.mark.parametrize("name", CJ_VARIANTS)
def test_simulated_accepted_variant_passes(name: str, simulated: Path, tmp_path: Path) -> None:
    result = gate.check_file(read_file(with_defect(name, simulated, tmp_path)))
    assert result.success, result.failures
