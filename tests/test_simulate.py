"""The feed simulator: deterministic, contract-exact, England-like, and breakable on purpose.

The rule checker below is written from shared/feeds/*.md independently of the
simulator (it does not import its schema), so a misreading on either side shows.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from misuse_warehouse.simulate import (  # noqa: E402
    ACCEPTED_VARIANTS,
    DEFECTS,
    SEED_AREAS,
    apply_defects,
    write_feeds,
)

MONTHS = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)][3:27]
SUBSET = ["2025-04", "2025-05", "2025-06", "2025-07"]
SMALL_AREAS = ["E06000035", "E06000022"]  # no provider shared with another area

# -- the contracts, restated from shared/feeds/*.md ---------------------------------------

HEADERS = {
    "treatment": "submission_month provider_code episode_id area_code client_initials client_dob "
    "client_sex ethnicity service_type substance_group primary_substance injecting_status "
    "referral_source referral_date triage_date first_intervention_date modality discharge_date "
    "discharge_reason top_start_days_used top_review_days_used housing_problem",
    "funding": "period_month line_id area_code cost_centre contract_id provider_code "
    "funding_stream service_line budget_gbp actual_gbp",
    "contracts": "contract_id provider_code provider_name area_code service_line start_date "
    "end_date extension_end_date annual_value_gbp status",
    "grants": "financial_year area_code funding_stream allocation_gbp ring_fenced_gbp",
    "cj-return": "period_month area_code agency measure value",
    "prison-releases": "release_id release_date prison_code area_code client_initials client_dob "
    "client_sex treatment_need treated_in_custody referred_to_community",
}
HEADERS = {feed: text.split() for feed, text in HEADERS.items()}
_OPTIONAL = (
    "ethnicity injecting_status triage_date first_intervention_date modality discharge_date "
    "discharge_reason top_start_days_used top_review_days_used housing_problem contract_id "
    "provider_code extension_end_date ring_fenced_gbp value"
)
OPTIONAL = set(_OPTIONAL.split())
CODES = {
    "client_sex": "m f x u",
    "ethnicity": "a b c d e f g h j k l m n p r s z",
    "service_type": "adult young_people",
    "substance_group": "opiate non_opiate_only non_opiate_and_alcohol alcohol_only",
    "primary_substance": "heroin methadone_illicit crack cocaine cannabis alcohol benzodiazepines "
    "amphetamines ketamine synthetic_cannabinoids other",
    "injecting_status": "current previous never declined",
    "referral_source": "self gp hospital mental_health social_care children_and_family_services "
    "education housing cj_prison cj_probation cj_police_custody cj_liaison_diversion cj_court "
    "other",
    "modality": "pharmacological psychosocial recovery_support inpatient_detox residential_rehab",
    "discharge_reason": "completed_drug_free completed_alcohol_free completed_occasional_user "
    "transferred_not_in_custody transferred_in_custody dropped_out withdrawn_by_provider "
    "retained_in_custody declined_treatment died",
    "housing_problem": "nfa urgent none unknown",
    "funding_stream": "public_health_grant ssmtrg datrig rsdatg inpatient_detox_grant pcc "
    "home_office nhs_icb council_general other",
    "service_line": "adult_community young_people inpatient_detox residential_rehab gp_shared_care "
    "pharmacy_needle_exchange supervised_consumption recovery_support criminal_justice "
    "prevention other",
    "status": "mobilising active extended ended",
    "treatment_need": "yes no",
    "treated_in_custody": "yes no",
    "referred_to_community": "yes no",
}
CODES = {name: set(text.split()) for name, text in CODES.items()}
MEASURES = {
    "police": {
        "arrests_drug_offences",
        "dtoa_tests",
        "dtoa_positive",
        "required_assessments",
        "required_assessments_attended",
    },
    "probation": {"drr_starts", "drr_completions", "atr_starts", "atr_completions"},
    "courts": {"community_orders_with_treatment"},
    "prison": {"releases_total"},
}
VALID_AREAS = set(SEED_AREAS)
SUCCESS = ("completed_drug_free", "completed_alcohol_free", "completed_occasional_user")
NAME = re.compile(
    r"^(treatment|funding|contracts|grants|cj-return|prison-releases)_([A-Za-z0-9]+)_"
    r"(\d{4})-(\d{2})\.csv$"
)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MONEY = re.compile(r"^-?\d+(\.\d{1,2})?$")


def _date(text: str) -> date | None:
    if not DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _age(dob: date, on: date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    following = date(year + number // 12, number % 12 + 1, 1)
    return following - timedelta(days=1)


def parse_name(path: Path) -> tuple[str, str, str] | None:
    """(feed, source, period) if the name follows the contract, else None."""
    match = NAME.match(path.name)
    if not match:
        return None
    feed, source, year, tail = match.groups()
    if feed == "grants":
        if int(tail) != (int(year) + 1) % 100:
            return None
    elif not 1 <= int(tail) <= 12:
        return None
    if feed == "treatment" and not re.fullmatch(r"P\d{4}", source):
        return None
    if feed != "treatment" and not re.fullmatch(r"E\d{8}", source):
        return None
    return feed, source, f"{year}-{tail}"


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows keyed by normalised header names (BOM, case and spaces forgiven)."""
    text = path.read_bytes().decode("utf-8-sig")
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    header = [name.strip().lower() for name in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def violations(path: Path) -> set[str]:
    """The contract rules a file breaks, as short codes; empty means acceptable."""
    parsed = parse_name(path)
    if parsed is None:
        return {"file_name"}
    feed, source, period = parsed
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return {"encoding"}
    text = text.removeprefix("\ufeff")
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    if not rows:
        return {"no_header"}
    header = [name.strip().lower() for name in rows[0]]
    expected = HEADERS[feed]
    if not set(header) & set(expected):
        return {"no_header"}
    found: set[str] = set()
    if len(set(header)) != len(header):
        found.add("duplicate_column")
    if {c for c in expected if c not in OPTIONAL} - set(header):
        found.add("missing_column")
    if set(header) - set(expected):
        found.add("extra_column")
    if found:
        return found
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    check = {
        "treatment": _check_treatment,
        "prison-releases": _check_releases,
        "cj-return": _check_cj,
        "funding": _check_ledger,
        "contracts": _check_contracts,
        "grants": _check_grants,
    }[feed]
    for row in records:
        for column, value in row.items():
            if column not in OPTIONAL and value == "":
                found.add("missing_value")
            if column in CODES and value and value not in CODES[column]:
                found.add("unknown_code")
            is_date = column.endswith("_date") or column == "client_dob"
            if is_date and value and _date(value) is None:
                found.add("bad_date")
            if column.endswith("_gbp") and value and not MONEY.match(value):
                found.add("bad_money")
        area_code = row.get("area_code")
        if area_code is not None and area_code not in VALID_AREAS:
            found.add("area")
        if feed != "treatment" and area_code is not None and area_code != source:
            found.add("area")
    check(records, source, period, found)
    return found


def _unique(records: list[dict[str, str]], key: str, found: set[str]) -> None:
    values = [r[key] for r in records]
    if len(set(values)) != len(values):
        found.add("duplicate_key")


def _check_treatment(records: list[dict[str, str]], source: str, period: str, found: set[str]):
    end = _month_end(period)
    _unique(records, "episode_id", found)
    for r in records:
        if r["submission_month"] != period:
            found.add("month_mismatch")
        if r["provider_code"] != source:
            found.add("provider_mismatch")
        if not re.fullmatch(r"[A-Za-z0-9-]{1,36}", r["episode_id"]):
            found.add("bad_id")
        if not re.fullmatch(r"[A-Z]{2}", r["client_initials"]):
            found.add("initials")
        dates = {
            k: _date(r[k])
            for k in ("client_dob", "referral_date", "triage_date", "first_intervention_date", "discharge_date")
        }
        referral, dob = dates["referral_date"], dates["client_dob"]
        if referral and dob:
            age = _age(dob, referral)
            if not 10 <= age <= 100 or dob > end:
                found.add("age")
            if (r["service_type"] == "young_people") != (age < 18):
                found.add("age")
        if referral and referral > end:
            found.add("future_date")
        for later in ("triage_date", "first_intervention_date", "discharge_date"):
            if referral and dates[later] and dates[later] < referral:
                found.add("date_order")
        if dates["discharge_date"] and dates["discharge_date"] > end:
            found.add("future_date")
        if bool(r["first_intervention_date"]) and not r["modality"]:
            found.add("conditional")
        if bool(r["discharge_date"]) != bool(r["discharge_reason"]):
            found.add("conditional")
        if r["top_review_days_used"] and not r["top_start_days_used"]:
            found.add("conditional")
        for top in ("top_start_days_used", "top_review_days_used"):
            if r[top] and not (r[top].isdigit() and 0 <= int(r[top]) <= 28):
                found.add("bad_integer")


def _check_releases(records: list[dict[str, str]], source: str, period: str, found: set[str]):
    _unique(records, "release_id", found)
    for r in records:
        released, dob = _date(r["release_date"]), _date(r["client_dob"])
        if released and released.isoformat()[:7] != period:
            found.add("release_outside_month")
        if released and dob and _age(dob, released) < 18:
            found.add("age")
        if not re.fullmatch(r"[A-Z]{3}", r["prison_code"]):
            found.add("prison_code")
        if not re.fullmatch(r"[A-Z]{2}", r["client_initials"]):
            found.add("initials")
        if r["referred_to_community"] == "yes" and r["treatment_need"] != "yes":
            found.add("conditional")


def _check_cj(records: list[dict[str, str]], source: str, period: str, found: set[str]):
    values: dict[str, int] = {}
    seen = Counter((r["agency"], r["measure"]) for r in records)
    if any(count > 1 for count in seen.values()):
        found.add("duplicate_key")
    for r in records:
        if r["period_month"] != period:
            found.add("month_mismatch")
        if r["measure"] not in MEASURES.get(r["agency"], set()):
            found.add("unknown_code")
        if r["value"].isdigit():
            values[r["measure"]] = int(r["value"])
        elif r["value"] not in ("", "*", "c", "x", ":"):
            found.add("bad_integer")
    for part, whole in (("dtoa_positive", "dtoa_tests"), ("required_assessments_attended", "required_assessments")):
        if part in values and whole in values and values[part] > values[whole]:
            found.add("measure_bound")


def _check_ledger(records: list[dict[str, str]], source: str, period: str, found: set[str]):
    _unique(records, "line_id", found)
    for r in records:
        if r["period_month"] != period:
            found.add("month_mismatch")
        if not 1 <= len(r["cost_centre"]) <= 20:
            found.add("cost_centre")
        if r["contract_id"] and not r["provider_code"]:
            found.add("conditional")
        if MONEY.match(r["budget_gbp"]) and float(r["budget_gbp"]) < 0:
            found.add("negative_budget")


def _check_contracts(records: list[dict[str, str]], source: str, period: str, found: set[str]):
    _unique(records, "contract_id", found)
    for r in records:
        if not re.fullmatch(r"P\d{4}", r["provider_code"]):
            found.add("provider_code")
        start, end, extended = (_date(r[k]) for k in ("start_date", "end_date", "extension_end_date"))
        if start and end and end <= start:
            found.add("date_order")
        if extended and end and extended <= end:
            found.add("date_order")
        if MONEY.match(r["annual_value_gbp"]) and float(r["annual_value_gbp"]) <= 0:
            found.add("non_positive_value")


def _check_grants(records: list[dict[str, str]], source: str, period: str, found: set[str]):
    for r in records:
        if r["financial_year"] != period:
            found.add("month_mismatch")
        allocation, ring = r["allocation_gbp"], r["ring_fenced_gbp"]
        if MONEY.match(allocation) and float(allocation) < 0:
            found.add("negative_money")
        if ring and MONEY.match(ring) and MONEY.match(allocation) and float(ring) > float(allocation):
            found.add("ring_fence")


# -- runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("landing")
    return out, write_feeds(out, SEED_AREAS, MONTHS)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("small")
    return out, write_feeds(out, SMALL_AREAS, SUBSET)


def _by_name(paths: list[Path], root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def _files(root: Path, feed: str, month: str | None = None) -> list[Path]:
    return sorted((root / feed).glob(f"{month or '*'}/*.csv"))


def test_same_arguments_give_identical_bytes_in_another_process(small, tmp_path):
    """A fresh interpreter (new hash salt) writes exactly the same bytes."""
    root, paths = small
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
        "from misuse_warehouse.simulate import write_feeds;"
        f"write_feeds(Path(sys.argv[1]), {SMALL_AREAS!r}, {SUBSET!r})"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(SRC)],
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    again = sorted(p for p in tmp_path.rglob("*.csv"))
    assert [p.relative_to(tmp_path) for p in again] == sorted(p.relative_to(root) for p in paths)
    assert _by_name(again, tmp_path) == _by_name(paths, root)


def test_a_shorter_run_gives_the_same_months(run, small):
    """Four months of two areas equal the same files of 24 months of five areas."""
    full_root, _ = run
    root, paths = small
    assert len(paths) > 30
    for path in paths:
        assert path.read_bytes() == (full_root / path.relative_to(root)).read_bytes(), path


def test_grants_for_a_run_not_starting_in_april(run, tmp_path):
    root, _ = run
    paths = write_feeds(tmp_path, ["E06000035"], ["2025-06", "2025-07"])
    grants = [p.relative_to(tmp_path).as_posix() for p in paths if p.parts[-3] == "grants"]
    # funding.md §3: a yearly file lands in April of its year, before the run's first month
    assert grants == ["grants/2025-04/grants_E06000035_2025-26.csv"]
    same = root / "grants/2025-04/grants_E06000035_2025-26.csv"
    assert (tmp_path / grants[0]).read_bytes() == same.read_bytes()


def test_layout_names_and_headers(run):
    root, paths = run
    feeds = Counter()
    for path in paths:
        parsed = parse_name(path)
        assert parsed is not None, path
        feed, _source, period = parsed
        feeds[feed] += 1
        folder = path.parent.name
        assert path.parts[-3] == feed
        if feed == "grants":
            assert folder in (MONTHS[0], f"{period[:4]}-04"), path
        else:
            assert folder == period, path
        first_line = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
        assert first_line.split(",") == HEADERS[feed], path
        assert b"\r" not in path.read_bytes()
    assert feeds["grants"] == 10  # 2024-25 and 2025-26 for five areas
    for feed in ("funding", "contracts", "cj-return", "prison-releases"):
        assert feeds[feed] == 5 * 24
    assert 10 * 24 <= feeds["treatment"] <= 11 * 24


@pytest.mark.parametrize("month", ["2024-04", "2024-12", "2025-01", "2025-04", "2026-03"])
def test_sampled_files_follow_every_rule(run, month):
    root, _ = run
    sample = [p for feed in HEADERS for p in _files(root, feed, month)]
    assert len(sample) >= 30
    for path in sample:
        assert violations(path) == set(), path


def test_files_agree_with_the_contract_register(run):
    root, _ = run
    for month in ("2024-12", "2025-01", "2025-06"):
        registers = {
            p.name.split("_")[1]: {r["contract_id"]: r for r in read_rows(p)} for p in _files(root, "contracts", month)
        }
        for path in _files(root, "funding", month):
            register = registers[path.name.split("_")[1]]
            rows = read_rows(path)
            assert 30 <= len(rows) <= 300
            for row in rows:
                if row["contract_id"]:
                    assert register[row["contract_id"]]["provider_code"] == row["provider_code"]
        for path in _files(root, "treatment", month):
            areas = {r["area_code"] for r in read_rows(path)}
            code = path.name.split("_")[1]
            for area_code in areas:
                assert any(
                    c["provider_code"] == code and c["status"] in ("active", "extended")
                    for c in registers[area_code].values()
                ), (code, area_code)


def _history(root: Path) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """(provider, episode) -> month -> row."""
    seen: dict[tuple[str, str], dict[str, dict[str, str]]] = defaultdict(dict)
    for path in _files(root, "treatment"):
        for row in read_rows(path):
            seen[(row["provider_code"], row["episode_id"])][row["submission_month"]] = row
    return seen


@pytest.fixture(scope="module")
def history(run):
    return _history(run[0])


def test_restatement_fills_discharges_and_keeps_identity(history):
    on_time = late = corrected = 0
    for months in history.values():
        ordered = sorted(months)
        first = months[ordered[0]]
        for month in ordered:
            row = months[month]
            for stable in ("referral_date", "client_dob", "area_code", "service_type"):
                assert row[stable] == first[stable]
        discharged = [m for m in ordered if months[m]["discharge_date"]]
        if not discharged:
            continue
        day = months[discharged[0]]["discharge_date"]
        assert all(months[m]["discharge_date"] == day for m in discharged)
        month_of_discharge = day[:7]
        before = [m for m in ordered if m < month_of_discharge]
        assert all(not months[m]["discharge_date"] for m in before)
        if before and before[-1] == _previous(month_of_discharge):
            if discharged[0] == month_of_discharge:
                on_time += 1
            elif discharged[0] == _next(month_of_discharge):
                late += 1
            else:
                raise AssertionError(f"discharge {day} first shown in {discharged[0]}")
        if len({months[m]["referral_source"] for m in ordered}) > 1:
            corrected += 1
    assert on_time > 1000
    assert 0.03 < late / (on_time + late) < 0.15
    assert corrected > 10


def _previous(month: str) -> str:
    return (date.fromisoformat(month + "-01") - timedelta(days=1)).isoformat()[:7]


def _next(month: str) -> str:
    return (_month_end(month) + timedelta(days=1)).isoformat()[:7]


def _person(row: dict[str, str]) -> tuple[str, ...]:
    if row["client_initials"] == "XX":
        return ("XX", row["provider_code"], row["episode_id"])
    return (row["client_initials"], row["client_dob"], row["client_sex"])


def _group(row: dict[str, str]) -> str:
    return {"opiate": "opiate", "alcohol_only": "alcohol"}.get(row["substance_group"], "non_opiate")


def test_rates_look_like_england(history):
    latest = [months[max(months)] for months in history.values()]
    start, end = date(2024, 10, 1), date(2025, 9, 30)  # the 12 months ending M-6, M = 2026-03
    by_person: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for row in latest:
        by_person[_person(row)].append(row)

    def treated(row: dict[str, str]) -> bool:
        first, left = _date(row["first_intervention_date"]), _date(row["discharge_date"])
        return bool(first and first <= end and (left is None or left >= start))

    denominator, numerator, deaths = Counter(), Counter(), Counter()
    for rows in by_person.values():
        in_window = [r for r in rows if treated(r)]
        if not in_window:
            continue
        group = _group(max(in_window, key=lambda r: (r["referral_date"], r["first_intervention_date"])))
        denominator[group] += 1
        for success in (r for r in in_window if r["discharge_reason"] in SUCCESS):
            left = date.fromisoformat(success["discharge_date"])
            limit = left + timedelta(days=183)
            if start <= left <= end and not any(left < date.fromisoformat(o["referral_date"]) <= limit for o in rows):
                numerator[group] += 1
                break
        if any(
            r["discharge_reason"] == "died" and start <= date.fromisoformat(r["discharge_date"]) <= end
            for r in in_window
        ):
            deaths[group] += 1
    rate = {g: 100 * numerator[g] / denominator[g] for g in denominator}
    share = {g: 100 * denominator[g] / sum(denominator.values()) for g in denominator}
    assert 2 <= rate["opiate"] <= 10, rate
    assert 20 <= rate["non_opiate"] <= 45, rate
    assert 25 <= rate["alcohol"] <= 45, rate
    assert 38 <= share["opiate"] <= 52 and 20 <= share["non_opiate"] <= 32, share
    assert 0.3 <= 100 * deaths["opiate"] / denominator["opiate"] <= 2.5

    starts = [r for r in latest if r["first_intervention_date"].startswith("2025")]
    waits = [
        (date.fromisoformat(r["first_intervention_date"]) - date.fromisoformat(r["referral_date"])).days for r in starts
    ]
    assert 5 <= statistics.median(waits) <= 10
    assert 1 <= 100 * sum(w > 21 for w in waits) / len(waits) <= 6

    referred = [r for r in latest if r["referral_date"].startswith("2025")]
    young = sum(r["service_type"] == "young_people" for r in referred) / len(referred)
    criminal_justice = sum(r["referral_source"].startswith("cj_") for r in referred)
    assert 0.02 <= young <= 0.07
    assert 0.15 <= criminal_justice / len(referred) <= 0.25
    assert 0.01 <= sum(r["client_initials"] == "XX" for r in referred) / len(referred) <= 0.04
    never_started = [
        r
        for r in referred
        if r["discharge_reason"] in ("declined_treatment", "dropped_out") and not r["first_intervention_date"]
    ]
    assert len(never_started) > 0.04 * len(referred)

    early = [
        r
        for r in latest
        if r["first_intervention_date"][:4] == "2025"
        and r["discharge_date"]
        and r["discharge_reason"] not in SUCCESS
        and not r["discharge_reason"].startswith("transferred")
        and (date.fromisoformat(r["discharge_date"]) - date.fromisoformat(r["first_intervention_date"])).days <= 84
    ]
    assert 0.05 <= len(early) / len(starts) <= 0.25

    known = [r for r in latest if r["client_initials"] != "XX"]
    successes = [
        r for r in known if r["discharge_reason"] in SUCCESS and "2024-06" <= r["discharge_date"][:7] <= "2025-06"
    ]
    again = sum(
        any(
            date.fromisoformat(s["discharge_date"])
            < date.fromisoformat(o["referral_date"])
            <= date.fromisoformat(s["discharge_date"]) + timedelta(days=183)
            for o in by_person[_person(s)]
        )
        for s in successes
    )
    assert 0.08 <= again / len(successes) <= 0.25
    providers_per_person = [
        len({r["provider_code"] for r in rows}) for key, rows in by_person.items() if key[0] != "XX"
    ]
    assert max(providers_per_person) >= 2


def test_prison_releases_and_continuity_of_care(run, history):
    root, _ = run
    episodes: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for months in history.values():
        row = months[max(months)]
        episodes[_person(row)].append(row)
    with_need = linked = late = 0
    for path in _files(root, "prison-releases"):
        rows = read_rows(path)
        assert 15 <= len(rows) <= 40
        if path.parent.name > "2026-01":
            continue
        for release in rows:
            if release["treatment_need"] != "yes":
                continue
            with_need += 1
            day = date.fromisoformat(release["release_date"])
            key = (release["client_initials"], release["client_dob"], release["client_sex"])
            starts = [
                date.fromisoformat(e["first_intervention_date"])
                for e in episodes.get(key, [])
                if e["first_intervention_date"]
            ]
            if any(day <= s <= day + timedelta(days=21) for s in starts):
                linked += 1
                assert any(e["referral_source"] == "cj_prison" for e in episodes[key])
            elif any(day + timedelta(days=21) < s <= day + timedelta(days=90) for s in starts):
                late += 1
    assert 0.38 <= linked / with_need <= 0.56
    assert late > 0


def test_stories(run):
    root, _ = run

    def register(area: str, month: str) -> dict[str, dict[str, str]]:
        path = root / f"contracts/{month}/contracts_{area}_{month}.csv"
        return {r["contract_id"]: r for r in read_rows(path)}

    # Novation in Bath and North East Somerset: same contract, new provider, new files.
    assert register("E06000022", "2024-12")["E06000022-C05"]["provider_code"] == "P5320"
    assert register("E06000022", "2025-01")["E06000022-C05"]["provider_code"] == "P5399"
    assert (root / "treatment/2024-12/treatment_P5320_2024-12.csv").exists()
    assert not (root / "treatment/2025-01/treatment_P5320_2025-01.csv").exists()
    last_old = read_rows(root / "treatment/2024-12/treatment_P5320_2024-12.csv")
    assert all(r["discharge_date"] for r in last_old)
    # Extension in Medway: agreed October 2024.
    before, after = register("E06000035", "2024-09"), register("E06000035", "2024-10")
    assert before["E06000035-C02"]["extension_end_date"] == ""
    assert after["E06000035-C02"]["extension_end_date"] == "2026-03-31"
    assert after["E06000035-C02"]["status"] == "extended"
    # A 12.5% cut in Nottingham from April 2025.
    old = float(register("E06000018", "2025-03")["E06000018-C02"]["annual_value_gbp"])
    new = float(register("E06000018", "2025-04")["E06000018-C02"]["annual_value_gbp"])
    assert abs(new / old - 0.875) < 0.001
    # SSMTRG becomes DATRIG in 2025-26, in the ledger and in the grants.
    streams = {
        m: {r["funding_stream"] for p in _files(root, "funding", m) for r in read_rows(p)}
        for m in ("2025-03", "2025-04")
    }
    assert "ssmtrg" in streams["2025-03"] and "datrig" not in streams["2025-03"]
    assert "datrig" in streams["2025-04"] and "ssmtrg" not in streams["2025-04"]
    grants = {r["funding_stream"] for r in read_rows(root / "grants/2025-04/grants_E06000035_2025-26.csv")}
    assert "datrig" in grants and "ssmtrg" not in grants
    # One provider serves Herefordshire and Worcestershire.
    shared = read_rows(root / "treatment/2025-01/treatment_P3107_2025-01.csv")
    assert {r["area_code"] for r in shared} == {"E06000019", "E10000034"}
    # Negative accruals exist; suppression markers and blanks appear in the CJ return.
    actuals = [r["actual_gbp"] for p in _files(root, "funding") for r in read_rows(p)]
    assert any(a.startswith("-") for a in actuals)
    values = {r["value"] for p in _files(root, "cj-return") for r in read_rows(p)}
    assert "*" in values and "" in values


# -- defects ------------------------------------------------------------------------------

EXPECTED = {
    "windows_1252": "encoding",
    "missing_column": "missing_column",
    "extra_column": "extra_column",
    "duplicate_column": "duplicate_column",
    "no_header": "no_header",
    "bad_date": "bad_date",
    "unknown_code": "unknown_code",
    "duplicate_episode_id": "duplicate_key",
    "discharge_before_referral": "date_order",
    "month_mismatch": "month_mismatch",
    "discharge_reason_without_date": "conditional",
    "young_person_too_old": "age",
    "future_referral": "future_date",
    "money_with_pound_sign": "bad_money",
    "dtoa_positive_exceeds_tests": "measure_bound",
    "release_outside_month": "release_outside_month",
    "referred_without_need": "conditional",
    "bad_file_name": "file_name",
}


def test_every_defect_is_documented_and_checked():
    assert set(DEFECTS) == set(EXPECTED)
    assert "bom" in ACCEPTED_VARIANTS and "bom" not in DEFECTS
    assert all(" -> refused: " in text for text in DEFECTS.values())


def _copy(small: tuple[Path, list[Path]], target: Path) -> list[Path]:
    root, paths = small
    shutil.copytree(root, target)
    return [target / p.relative_to(root) for p in paths]


def test_each_defect_breaks_exactly_its_rule(small, tmp_path):
    clean_root, clean = small
    paths, targets = apply_defects(_copy(small, tmp_path / "bad"), list(EXPECTED))
    assert set(targets) == set(EXPECTED)
    assert len(set(targets.values())) == len(targets)
    for name, path in targets.items():
        assert path in paths
        assert violations(path) == {EXPECTED[name]}, name
    untouched = set(paths) - set(targets.values())
    for path in untouched:
        assert violations(path) == set(), path
        assert path.read_bytes() == (clean_root / path.relative_to(tmp_path / "bad")).read_bytes()


def test_accepted_variants_stay_acceptable(small, tmp_path):
    clean_root, _ = small
    _, targets = apply_defects(_copy(small, tmp_path / "odd"), list(ACCEPTED_VARIANTS))
    assert set(targets) == set(ACCEPTED_VARIANTS)
    for name, path in targets.items():
        assert violations(path) == set(), name
        original = clean_root / path.relative_to(tmp_path / "odd")
        assert path.read_bytes() != original.read_bytes(), name
        if name != "header_only":
            assert sorted(map(sorted, (r.items() for r in read_rows(path)))) == sorted(
                map(sorted, (r.items() for r in read_rows(original)))
            ), name
    assert targets["bom"].read_bytes().startswith(b"\xef\xbb\xbf")


def test_write_feeds_applies_defects_and_refuses_unknown_names(tmp_path):
    paths = write_feeds(tmp_path, ["E06000035"], ["2025-03"], defects=["bad_file_name", "bom"])
    assert sum(parse_name(p) is None for p in paths) == 1
    assert all(p.exists() for p in paths)
    with pytest.raises(ValueError):
        write_feeds(tmp_path / "x", ["E06000035"], ["2025-03"], defects=["no_such_defect"])
    with pytest.raises(ValueError):
        write_feeds(tmp_path / "y", ["E06000035"], ["2025-03", "2025-05"])
    with pytest.raises(ValueError):
        write_feeds(tmp_path / "z", ["E10000002"], ["2025-03"])  # abolished Buckinghamshire


def test_young_people_episodes_are_under_18_on_referral_also_after_a_novation():
    """A young person's episode reopened at the new provider on the novation day may be an adult's by then."""
    from misuse_warehouse.months import age_on, parse_month
    from misuse_warehouse.simulate.areas import AREAS, area
    from misuse_warehouse.simulate.providers import NOVATION_DAY, plan_for
    from misuse_warehouse.simulate.world import AreaWorld

    plans = [plan_for(area(code)) for code in list(AREAS)[:40]]
    plans = [p for p in plans if any(s.novated_to for s in p.services)]
    assert plans, "some of these areas have a novated service"
    reopened_as_adult = 0
    for plan in plans:
        world = AreaWorld(plan, 42)
        world.run_to(parse_month("2025-03"))
        for episode in world.episodes:
            age = age_on(episode.person.dob, episode.referral)
            assert (episode.service_type == "young_people") == (age < 18), (plan.area.code, episode.episode_id, age)
            reopened_as_adult += episode.referral == NOVATION_DAY and age == 18
    assert reopened_as_adult, "seed 42 has the case: a client who turned 18 on the novation day"
