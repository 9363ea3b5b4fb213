"""The GX raw suites for the funding feeds (ledger, contract register, grants): each rule refuses by its own name.

Rules come from ../shared/feeds/funding.md. Cross-file rules (a ledger contract_id must exist in the
register, its provider must match the register's) belong to the mart gate, so a ledger line naming a
contract no register holds passes here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from feeds import write_feed_file
from simulated_defects import assert_refused, defects_of, failing_files, feed_files, variants_of, with_defect

from misuse_warehouse import gate
from misuse_warehouse.file_checks import read_file
from misuse_warehouse.simulate import write_feeds

FEEDS = ("funding", "contracts", "grants")
SUITES = {"funding": "raw_funding", "contracts": "raw_contracts", "grants": "raw_grants"}
AREA = "E06000035"
PERIODS = {"funding": "2025-03", "contracts": "2025-03", "grants": "2025-26"}
SIM_AREAS = ["E06000035", "E10000034"]
SIM_MONTHS = ["2025-03", "2025-04"]


# -- hand-made files -----------------------------------------------------------------------------


def ledger_rows() -> list[dict[str, Any]]:
    """A contract payment, an in-house line with a zero budget and a credit, a 20-char cost centre."""
    base = {"period_month": "2025-03", "area_code": AREA}
    return [
        {
            **base,
            "line_id": "GL202503-0001",
            "cost_centre": "PH-SM-ADULT",
            "contract_id": "E06000035-C01",
            "provider_code": "P0001",
            "funding_stream": "datrig",
            "service_line": "adult_community",
            "budget_gbp": "100000.00",
            "actual_gbp": "98000.5",
        },
        {
            **base,
            "line_id": "GL202503-0002",
            "cost_centre": "PH-SM-COMM",
            "contract_id": None,
            "provider_code": None,
            "funding_stream": "public_health_grant",
            "service_line": "other",
            "budget_gbp": "0",
            "actual_gbp": "-1250.00",
        },
        {
            **base,
            "line_id": "GL202503-0003",
            "cost_centre": "ABCDEFGHIJKLMNOPQRST",
            "contract_id": "E06000035-C02",
            "provider_code": "P9101",
            "funding_stream": "home_office",
            "service_line": "criminal_justice",
            "budget_gbp": "2500.00",
            "actual_gbp": "0.00",
        },
    ]


def register_rows() -> list[dict[str, Any]]:
    """An extended, an active, an ended and a mobilising contract."""
    base = {"area_code": AREA, "provider_name": "Tees Recovery Trust"}
    return [
        {
            **base,
            "contract_id": "E06000035-C01",
            "provider_code": "P0001",
            "service_line": "adult_community",
            "start_date": "2020-04-01",
            "end_date": "2025-03-31",
            "extension_end_date": "2026-03-31",
            "annual_value_gbp": "1000000.00",
            "status": "extended",
        },
        {
            **base,
            "contract_id": "E06000035-C02",
            "provider_code": "P0002",
            "provider_name": "Café Young People Service",
            "service_line": "young_people",
            "start_date": "2022-10-01",
            "end_date": "2027-09-30",
            "extension_end_date": None,
            "annual_value_gbp": "250000.50",
            "status": "active",
        },
        {
            **base,
            "contract_id": "E06000035-C03",
            "provider_code": "P9201",
            "service_line": "inpatient_detox",
            "start_date": "2015-04-01",
            "end_date": "2020-03-31",
            "extension_end_date": None,
            "annual_value_gbp": "0.01",
            "status": "ended",
        },
        {
            **base,
            "contract_id": "E06000035-C04",
            "provider_code": "P0001",
            "service_line": "residential_rehab",
            "start_date": "2025-04-01",
            "end_date": "2028-03-31",
            "extension_end_date": None,
            "annual_value_gbp": "400000",
            "status": "mobilising",
        },
    ]


def grant_rows() -> list[dict[str, Any]]:
    """Partly, wholly and not ring-fenced allocations, and a zero one."""
    base = {"financial_year": "2025-26", "area_code": AREA}
    return [
        {**base, "funding_stream": "public_health_grant", "allocation_gbp": "17911270", "ring_fenced_gbp": "4836043"},
        {**base, "funding_stream": "datrig", "allocation_gbp": "2066597.00", "ring_fenced_gbp": "2066597.00"},
        {**base, "funding_stream": "pcc", "allocation_gbp": "193743.00", "ring_fenced_gbp": None},
        {**base, "funding_stream": "home_office", "allocation_gbp": "0.00", "ring_fenced_gbp": "0.00"},
    ]


VALID_ROWS = {"funding": ledger_rows, "contracts": register_rows, "grants": grant_rows}


def _check(landing: Path, feed: str, rows: list[dict[str, Any]]) -> gate.GateResult:
    period = PERIODS[feed]
    folder = f"{period[:4]}-04" if feed == "grants" else None  # yearly files land in April of their year
    return gate.check_file(read_file(write_feed_file(landing, feed, AREA, period, rows, month_folder=folder)))


@pytest.mark.parametrize("feed", FEEDS)
def test_valid_file_passes_every_expectation(landing: Path, feed: str) -> None:
    result = _check(landing, feed, VALID_ROWS[feed]())
    assert result.success, result.failures
    assert result.evaluated == len(gate.suite_json(SUITES[feed])["expectations"])


@pytest.mark.parametrize("feed", FEEDS)
def test_empty_file_passes(landing: Path, feed: str) -> None:
    assert _check(landing, feed, []).success


def _refusals() -> list[Any]:
    """(feed, fields set on the second row, rule): each breaks exactly that rule."""
    cases: list[tuple[str, dict[str, Any], str]] = []
    for column in (
        "period_month",
        "line_id",
        "area_code",
        "cost_centre",
        "funding_stream",
        "service_line",
        "budget_gbp",
        "actual_gbp",
    ):
        cases.append(("funding", {column: None}, f"{column}_required"))
    cases += [
        ("funding", {"budget_gbp": "*"}, "budget_gbp_required"),  # a suppression marker is NULL, never zero
        ("funding", {"period_month": "2025-02"}, "period_month_matches_file_name"),
        ("funding", {"area_code": "E06000047"}, "area_code_matches_file_name"),
        ("funding", {"line_id": "GL202503-0001"}, "line_id_unique"),
        ("funding", {"cost_centre": "ABCDEFGHIJKLMNOPQRSTU"}, "cost_centre_1_to_20_chars"),
        ("funding", {"contract_id": "E06000035-C09"}, "provider_code_required_with_contract"),
        ("funding", {"provider_code": "P123"}, "provider_code_format"),
        ("funding", {"funding_stream": "Public_Health_Grant"}, "funding_stream_code"),
        ("funding", {"funding_stream": "ssmtrg_grant"}, "funding_stream_code"),
        ("funding", {"service_line": "adult"}, "service_line_code"),
        ("funding", {"budget_gbp": "-0.01"}, "budget_gbp_not_negative"),
    ]
    for column in (
        "contract_id",
        "provider_code",
        "provider_name",
        "area_code",
        "service_line",
        "start_date",
        "end_date",
        "annual_value_gbp",
        "status",
    ):
        cases.append(("contracts", {column: None}, f"{column}_required"))
    cases += [
        ("contracts", {"contract_id": "E06000035-C01"}, "contract_id_unique"),
        ("contracts", {"provider_code": "p0002"}, "provider_code_format"),
        ("contracts", {"provider_code": "P00021"}, "provider_code_format"),
        ("contracts", {"area_code": "E06000047"}, "area_code_matches_file_name"),
        ("contracts", {"service_line": "young_person"}, "service_line_code"),
        ("contracts", {"end_date": "2022-09-30"}, "end_date_after_start_date"),
        ("contracts", {"end_date": "2022-10-01"}, "end_date_after_start_date"),
        ("contracts", {"extension_end_date": "2027-09-30"}, "extension_end_date_after_end_date"),
        ("contracts", {"extension_end_date": "2027-03-31"}, "extension_end_date_after_end_date"),
        ("contracts", {"annual_value_gbp": "0.00"}, "annual_value_gbp_positive"),
        ("contracts", {"annual_value_gbp": "-100"}, "annual_value_gbp_positive"),
        ("contracts", {"status": "Active"}, "status_code"),
        ("contracts", {"status": "novated"}, "status_code"),
    ]
    for column in ("financial_year", "area_code", "funding_stream", "allocation_gbp"):
        cases.append(("grants", {column: None}, f"{column}_required"))
    cases += [
        ("grants", {"allocation_gbp": "c"}, "allocation_gbp_required"),
        ("grants", {"financial_year": "2024-25"}, "financial_year_matches_file_name"),
        ("grants", {"financial_year": "2025/26"}, "financial_year_format"),
        ("grants", {"area_code": "E06000047"}, "area_code_matches_file_name"),
        ("grants", {"funding_stream": "DATRIG"}, "funding_stream_code"),
        ("grants", {"funding_stream": "public_health_grant"}, "funding_stream_unique"),
        ("grants", {"allocation_gbp": "-1.00", "ring_fenced_gbp": None}, "allocation_gbp_not_negative"),
        ("grants", {"ring_fenced_gbp": "-0.01"}, "ring_fenced_gbp_not_negative"),
        ("grants", {"ring_fenced_gbp": "2066597.01"}, "ring_fenced_gbp_not_more_than_allocation"),
    ]
    return [pytest.param(feed, fields, rule, id=f"{feed}-{rule}-{n}") for n, (feed, fields, rule) in enumerate(cases)]


REFUSALS = _refusals()

# A value that is not YYYY-YY can never equal the file name's period either.
ALSO_BROKEN = {"financial_year_format": {"financial_year_matches_file_name"}}


@pytest.mark.parametrize(("feed", "fields", "rule"), REFUSALS)
def test_each_rule_refuses(landing: Path, feed: str, fields: dict[str, Any], rule: str) -> None:
    rows = VALID_ROWS[feed]()
    rows[1].update(fields)
    result = _check(landing, feed, rows)
    assert not result.success
    assert {f["rule"] for f in result.failures} == {rule} | ALSO_BROKEN.get(rule, set()), result.failures
    failure = next(f for f in result.failures if f["rule"] == rule)
    assert 3 in failure["rows"], "the refusal names the file line (header is line 1)"


@pytest.mark.parametrize("feed", FEEDS)
def test_every_rule_has_a_refusal_case(feed: str) -> None:
    rules = [e["meta"]["rule"] for e in gate.suite_json(SUITES[feed])["expectations"]]
    assert len(rules) == len(set(rules)), "rule names are unique in a suite"
    tested = {p.values[2] for p in REFUSALS if p.values[0] == feed}
    assert tested == set(rules)


def test_suites_keep_to_the_raw_gate_format() -> None:
    dimensions = {"completeness", "validity", "uniqueness", "consistency", "accuracy"}
    for feed, suite in SUITES.items():
        spec = gate.suite_json(suite)
        assert set(spec) == {"name", "meta", "expectations"} and spec["name"] == suite
        for expectation in spec["expectations"]:
            assert expectation["meta"]["dimension"] in dimensions, (feed, expectation)


# -- the simulator's files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simulated")
    write_feeds(out, SIM_AREAS, SIM_MONTHS, seed=42)
    return out


def test_every_simulated_funding_file_passes_its_suite(simulated: Path) -> None:
    files = feed_files(simulated, FEEDS)
    assert {p.parent.parent.name for p in files} == set(FEEDS)
    assert not failing_files(simulated, files)


def test_simulated_grant_files_land_in_april_of_their_year(simulated: Path) -> None:
    for path in sorted((simulated / "grants").glob("*/*.csv")):
        read_file(path)


# Every simulator defect on a funding feed, by where it must be refused: before the suite (file checks,
# with their refusal code) or by the suite (with the rule). A new defect must be classified here.
FILE_LEVEL_DEFECTS = {"windows_1252": "not_utf8", "money_with_pound_sign": "money_currency_sign"}
VALUE_RULE_DEFECTS: dict[str, str] = {}
FUNDING_DEFECTS = defects_of(FEEDS)
FUNDING_VARIANTS = variants_of(FEEDS)


def test_every_funding_defect_is_classified() -> None:
    assert set(FUNDING_DEFECTS) == set(FILE_LEVEL_DEFECTS) | set(VALUE_RULE_DEFECTS)


@pytest.mark.parametrize("name", FUNDING_DEFECTS)
def test_simulated_defect_is_refused(name: str, simulated: Path, tmp_path: Path) -> None:
    assert_refused(with_defect(name, simulated, tmp_path), name, FILE_LEVEL_DEFECTS, VALUE_RULE_DEFECTS)


@pytest.mark.parametrize("name", FUNDING_VARIANTS)
def test_simulated_accepted_variant_passes(name: str, simulated: Path, tmp_path: Path) -> None:
    result = gate.check_file(read_file(with_defect(name, simulated, tmp_path)))
    assert result.success, result.failures
