"""Writes the bad-file corpus: every kind of bad file the warehouse must refuse, and the accepted controls.

Run `python tests/bad_files/make_corpus.py` to regenerate the committed files and README.md;
tests/test_bad_files.py checks that the committed bytes are what this script writes.
Deterministic: no clock, no randomness beyond a fixed hash chain. Every value is invented.

Layout (each kind is a landing root of its own, so a test can drop it into any landing folder):
  refused/<kind>/<feed>/<YYYY-MM>/<file>   must be refused with the kind's code
  accepted/<kind>/<feed>/<YYYY-MM>/<file>  odd but within the contract: loaded
  baseline/<feed>/<YYYY-MM>/<file>         loaded first: what the restatement kinds restate
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
MONTH = "2025-03"

COLUMNS = {
    "treatment": [
        "submission_month", "provider_code", "episode_id", "area_code", "client_initials", "client_dob",
        "client_sex", "ethnicity", "service_type", "substance_group", "primary_substance", "injecting_status",
        "referral_source", "referral_date", "triage_date", "first_intervention_date", "modality",
        "discharge_date", "discharge_reason", "top_start_days_used", "top_review_days_used", "housing_problem",
    ],
    "funding": [
        "period_month", "line_id", "area_code", "cost_centre", "contract_id", "provider_code", "funding_stream",
        "service_line", "budget_gbp", "actual_gbp",
    ],
    "contracts": [
        "contract_id", "provider_code", "provider_name", "area_code", "service_line", "start_date", "end_date",
        "extension_end_date", "annual_value_gbp", "status",
    ],
    "grants": ["financial_year", "area_code", "funding_stream", "allocation_gbp", "ring_fenced_gbp"],
    "cj-return": ["period_month", "area_code", "agency", "measure", "value"],
    "prison-releases": [
        "release_id", "release_date", "prison_code", "area_code", "client_initials", "client_dob", "client_sex",
        "treatment_need", "treated_in_custody", "referred_to_community",
    ],
}  # fmt: skip

# Sources: invented provider codes for treatment; real area codes (unitary authorities valid
# throughout) for the area feeds, one per file so that every file of a month can share a folder.
AREAS = tuple(f"E06{n:06d}" for n in range(1, 48) if n not in (10, 18, 19, 22, 23, 28, 29, 35))
BASELINE_PROVIDER = "P9000"
BASELINE_AREA = "E06000035"


# -- valid rows -------------------------------------------------------------------------------


def treatment_rows(provider: str, area: str = BASELINE_AREA) -> list[dict[str, str]]:
    base = {"submission_month": MONTH, "provider_code": provider, "area_code": area}
    return [
        {
            **base, "episode_id": f"{provider}-E1", "client_initials": "AB", "client_dob": "1980-01-01",
            "client_sex": "m", "ethnicity": "a", "service_type": "adult", "substance_group": "opiate",
            "primary_substance": "heroin", "injecting_status": "previous", "referral_source": "self",
            "referral_date": "2025-01-10", "triage_date": "2025-01-12", "first_intervention_date": "2025-01-20",
            "modality": "pharmacological", "top_start_days_used": "20", "housing_problem": "none",
        },
        {
            **base, "episode_id": f"{provider}-E2", "client_initials": "CD", "client_dob": "1975-06-30",
            "client_sex": "f", "service_type": "adult", "substance_group": "alcohol_only",
            "primary_substance": "alcohol", "referral_source": "gp", "referral_date": "2024-09-02",
            "first_intervention_date": "2024-09-16", "modality": "psychosocial", "discharge_date": "2025-02-14",
            "discharge_reason": "completed_alcohol_free", "top_start_days_used": "24", "top_review_days_used": "2",
        },
        {
            **base, "episode_id": f"{provider}-E3", "client_initials": "XX", "client_dob": "2010-05-01",
            "client_sex": "u", "service_type": "young_people", "substance_group": "non_opiate_only",
            "primary_substance": "cannabis", "referral_source": "education", "referral_date": "2025-03-03",
        },
    ]  # fmt: skip


def funding_rows(area: str) -> list[dict[str, str]]:
    base = {"period_month": MONTH, "area_code": area}
    return [
        {**base, "line_id": "GL-0001", "cost_centre": "PH-SM-ADULT", "contract_id": f"{area}-C01",
         "provider_code": "P0001", "funding_stream": "datrig", "service_line": "adult_community",
         "budget_gbp": "100000.00", "actual_gbp": "98000.50"},
        {**base, "line_id": "GL-0002", "cost_centre": "PH-SM-COMM", "funding_stream": "public_health_grant",
         "service_line": "other", "budget_gbp": "0", "actual_gbp": "-1250.00"},
    ]  # fmt: skip


def contract_rows(area: str, provider: str = "P0001") -> list[dict[str, str]]:
    base = {"area_code": area}
    return [
        {**base, "contract_id": f"{area}-C01", "provider_code": provider, "provider_name": "Hill Recovery Trust",
         "service_line": "adult_community", "start_date": "2020-04-01", "end_date": "2025-03-31",
         "extension_end_date": "2026-03-31", "annual_value_gbp": "1000000.00", "status": "extended"},
        {**base, "contract_id": f"{area}-C02", "provider_code": "P0002", "provider_name": "Young Minds Service",
         "service_line": "young_people", "start_date": "2022-10-01", "end_date": "2027-09-30",
         "annual_value_gbp": "250000.50", "status": "active"},
    ]  # fmt: skip


def grant_rows(area: str) -> list[dict[str, str]]:
    base = {"financial_year": "2025-26", "area_code": area}
    return [
        {**base, "funding_stream": "public_health_grant", "allocation_gbp": "17911270", "ring_fenced_gbp": "4836043"},
        {**base, "funding_stream": "datrig", "allocation_gbp": "2066597.00", "ring_fenced_gbp": "2066597.00"},
        {**base, "funding_stream": "pcc", "allocation_gbp": "193743.00"},
    ]


def return_rows(area: str) -> list[dict[str, str]]:
    values = [
        ("police", "arrests_drug_offences", "12"), ("police", "dtoa_tests", "10"), ("police", "dtoa_positive", "7"),
        ("police", "required_assessments", "4"), ("police", "required_assessments_attended", "3"),
        ("probation", "drr_starts", "2"), ("probation", "drr_completions", "1"), ("courts",
        "community_orders_with_treatment", "5"), ("prison", "releases_total", "3"),
    ]  # fmt: skip
    return [
        {"period_month": MONTH, "area_code": area, "agency": agency, "measure": measure, "value": value}
        for agency, measure, value in values
    ]


def release_rows(area: str) -> list[dict[str, str]]:
    base = {"area_code": area}
    return [
        {**base, "release_id": f"R-{area}-001", "release_date": "2025-03-03", "prison_code": "BWI",
         "client_initials": "EF", "client_dob": "1990-02-02", "client_sex": "m", "treatment_need": "yes",
         "treated_in_custody": "yes", "referred_to_community": "yes"},
        {**base, "release_id": f"R-{area}-002", "release_date": "2025-03-28", "prison_code": "LEI",
         "client_initials": "GH", "client_dob": "1985-06-15", "client_sex": "f", "treatment_need": "no",
         "treated_in_custody": "no", "referred_to_community": "no"},
    ]  # fmt: skip


def csv_text(feed: str, rows: list[dict[str, Any]], columns: list[str] | None = None, end: str = "\n") -> str:
    columns = columns or COLUMNS[feed]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=end)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return buffer.getvalue()


def changed(rows: list[dict[str, str]], index: int, **values: str | None) -> list[dict[str, str]]:
    rows = [dict(r) for r in rows]
    rows[index].update(values)
    return rows


# -- kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    feed: str
    code: str  # the refusal code it must get; "" for accepted controls
    why: str
    file: str  # path below the kind's landing root
    content: bytes
    warnings: tuple[str, ...] = field(default=())  # accepted controls: the warnings its report lists

    @property
    def month_folder(self) -> str:
        return self.file.split("/")[1]


def _name(feed: str, source: str, period: str = MONTH, folder: str | None = None, file_name: str | None = None) -> str:
    """`<feed>/<month folder>/<file name>`; `file_name` may hold `{}` for the source."""
    name = file_name.format(source) if file_name else f"{feed}_{source}_{period}.csv"
    return f"{feed}/{folder or period}/{name}"


def _lines(text: str, edit: Callable[[list[str]], None]) -> str:
    lines = text.split("\n")
    edit(lines)
    return "\n".join(lines)


def _drop_fields(lines: list[str]) -> None:
    lines[2] = lines[2].rsplit(",", 3)[0]


def _blank_line(lines: list[str]) -> None:
    lines.insert(2, "")


def _minimal_xlsx() -> bytes:
    """A real (tiny) .xlsx workbook: what a provider sends when they forget 'Save as CSV'."""
    buffer = io.BytesIO()
    stamp = (2025, 4, 1, 0, 0, 0)
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
        '.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats'
        '.org/spreadsheetml/2006/main"><sheets><sheet name="treatment" sheetId="1"/></sheets></workbook>',
    }
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, text in parts.items():
            archive.writestr(zipfile.ZipInfo(part, stamp), text)
    return buffer.getvalue()


def _zip_of(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(name, (2025, 4, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def _junk(size: int) -> bytes:
    """Deterministic bytes that look random (a SHA-256 chain): a corrupted upload."""
    out, block = b"", b"misuse-warehouse bad file corpus"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return b"\x00\x17" + out[: size - 2]


def refused_kinds() -> list[Kind]:  # noqa: PLR0915 - one list, read top to bottom
    kinds: list[Kind] = []
    areas, providers = iter(AREAS), (f"P9{n:03d}" for n in range(1, 1000))

    def add(name: str, feed: str, code: str, why: str, content: bytes | str, source: str, **where: str) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        kinds.append(Kind(name, feed, code, why, _name(feed, source, **where), data))

    def treatment(name: str, code: str, why: str, build: Callable[[str], bytes | str], **where: str) -> None:
        provider = next(providers)
        add(name, "treatment", code, why, build(provider), provider, **where)

    def area_feed(name: str, feed: str, code: str, why: str, build: Callable[[str], bytes | str], **where: str):  # noqa: ANN202
        area = next(areas)
        add(name, feed, code, why, build(area), area, **where)

    t = treatment_rows

    # Encoding and bytes
    area_feed(
        "latin1_text",
        "contracts",
        "not_utf8",
        "provider name 'Señora Recovery' saved as Latin-1: byte 0xF1",
        lambda a: csv_text("contracts", changed(contract_rows(a), 0, provider_name="Señora Recovery")).encode(
            "latin-1"
        ),
    )
    area_feed(
        "cp1252_smart_quote",
        "contracts",
        "not_utf8",
        "Excel 'CSV' export (Windows-1252): the ’ of \"St Mary’s\" is byte 0x92",
        lambda a: csv_text("contracts", changed(contract_rows(a), 1, provider_name="St Mary’s")).encode("cp1252"),
    )
    treatment(
        "utf16_le_bom",
        "utf16",
        "saved as Excel 'Unicode Text': UTF-16 little-endian with BOM FF FE",
        lambda p: csv_text("treatment", t(p)).encode("utf-16"),
    )
    area_feed(
        "utf16_be_bom",
        "cj-return",
        "utf16",
        "UTF-16 big-endian with BOM FE FF",
        lambda a: b"\xfe\xff" + csv_text("cj-return", return_rows(a)).encode("utf-16-be"),
    )
    area_feed(
        "utf16_no_bom",
        "prison-releases",
        "utf16",
        "UTF-16 little-endian without a byte-order mark",
        lambda a: csv_text("prison-releases", release_rows(a)).encode("utf-16-le"),
    )
    treatment(
        "nul_bytes",
        "binary_file",
        "a NUL byte inside a row (a corrupted transfer)",
        lambda p: csv_text("treatment", t(p)).encode().replace(b"self", b"se\x00lf"),
    )
    treatment("binary_junk", "binary_file", "2 KB of random-looking bytes named .csv", lambda p: _junk(2048))
    treatment("xlsx_named_csv", "wrong_file_type", "an Excel .xlsx workbook renamed .csv", lambda p: _minimal_xlsx())
    area_feed(
        "zip_named_csv",
        "funding",
        "wrong_file_type",
        "a zip archive of the CSV, named .csv",
        lambda a: _zip_of(f"funding_{a}_{MONTH}.csv", csv_text("funding", funding_rows(a)).encode()),
    )
    treatment(
        "xls_named_csv",
        "wrong_file_type",
        "an Excel 97-2003 .xls workbook (OLE2 header) renamed .csv",
        lambda p: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
    )
    area_feed(
        "html_error_page",
        "grants",
        "wrong_file_type",
        "a web download error page saved as the CSV",
        lambda a: (
            "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
            "<body><h1>502 Bad Gateway</h1></body></html>\n"
        ),
        period="2025-26",
        folder="2025-04",
    )

    # Structure
    treatment("empty_file", "no_header", "0 bytes: no header, no rows", lambda p: b"")
    treatment("blank_lines_only", "no_header", "three empty lines", lambda p: "\n\r\n\n")
    treatment(
        "no_header_row",
        "no_header",
        "the first line is already data",
        lambda p: csv_text("treatment", t(p)).split("\n", 1)[1],
    )
    treatment(
        "missing_column",
        "missing_columns",
        "required column client_sex left out",
        lambda p: csv_text("treatment", t(p), [c for c in COLUMNS["treatment"] if c != "client_sex"]),
    )
    treatment(
        "extra_column",
        "unknown_columns",
        "an extra 'keyworker' column not in the contract",
        lambda p: csv_text("treatment", [r | {"keyworker": "Sam"} for r in t(p)], [*COLUMNS["treatment"], "keyworker"]),
    )
    treatment(
        "misspelt_column",
        "unknown_columns",
        "header 'refferal_date' (the report suggests referral_date)",
        lambda p: csv_text("treatment", t(p)).replace("referral_date", "refferal_date", 1),
    )
    treatment(
        "duplicated_column",
        "duplicate_columns",
        "referral_date twice in the header",
        lambda p: csv_text("treatment", t(p), [*COLUMNS["treatment"], "referral_date"]),
    )
    area_feed(
        "trailing_comma_header",
        "cj-return",
        "blank_column_name",
        "every line ends with a comma: an unnamed last column",
        lambda a: csv_text("cj-return", return_rows(a)).replace("\n", ",\n"),
    )
    area_feed(
        "swapped_column_names",
        "contracts",
        "rule_broken:end_date_after_start_date",
        "header names start_date and end_date swapped over the data: every contract ends before it starts",
        lambda a: csv_text("contracts", contract_rows(a)).replace("start_date,end_date", "end_date,start_date", 1),
    )
    treatment(
        "ragged_row_too_few",
        "bad_row_shape",
        "the second row lost its last three fields",
        lambda p: _lines(csv_text("treatment", t(p)), _drop_fields),
    )
    area_feed(
        "ragged_row_too_many",
        "prison-releases",
        "bad_row_shape",
        "an unquoted comma in a row: one field too many",
        lambda a: csv_text("prison-releases", release_rows(a)).replace(",BWI,", ",BWI,extra,", 1),
    )
    area_feed(
        "blank_line_inside",
        "funding",
        "bad_row_shape",
        "an empty line between two rows (only trailing ones are allowed)",
        lambda a: _lines(csv_text("funding", funding_rows(a)), _blank_line),
    )
    area_feed(
        "semicolon_delimiter",
        "funding",
        "wrong_delimiter",
        "European Excel export: fields separated by ';'",
        lambda a: csv_text("funding", funding_rows(a)).replace(",", ";"),
    )
    treatment(
        "tab_delimiter",
        "wrong_delimiter",
        "tab-separated values named .csv",
        lambda p: csv_text("treatment", t(p)).replace(",", "\t"),
    )
    area_feed(
        "unterminated_quote",
        "contracts",
        "unterminated_quote",
        "the last row opens a quote it never closes",
        lambda a: csv_text("contracts", contract_rows(a)).replace(",Young Minds Service,", ',"Young Minds Service,', 1),
    )
    area_feed(
        "text_after_quote",
        "contracts",
        "bad_quoting",
        'a quoted field followed by more text: "Hill" Recovery Trust',
        lambda a: csv_text("contracts", contract_rows(a)).replace(
            ",Hill Recovery Trust,", ',"Hill" Recovery Trust,', 1
        ),
    )
    treatment(
        "huge_line",
        "line_too_long",
        "one row of 12,000 characters (an episode_id gone wild)",
        lambda p: csv_text("treatment", changed(t(p), 1, episode_id="E" * 12_000)),
    )

    # Values that cannot be typed
    treatment(
        "bad_date_format",
        "bad_date",
        "referral_date written 10/01/2025",
        lambda p: csv_text("treatment", changed(t(p), 0, referral_date="10/01/2025")),
    )
    treatment(
        "impossible_date",
        "impossible_date",
        "triage_date 2025-02-30: no such day",
        lambda p: csv_text("treatment", changed(t(p), 0, triage_date="2025-02-30")),
    )
    treatment(
        "datetime_not_date",
        "bad_date",
        "Excel date-time '2025-01-10 00:00:00' for a date",
        lambda p: csv_text("treatment", changed(t(p), 0, referral_date="2025-01-10 00:00:00")),
    )
    area_feed(
        "bad_month",
        "cj-return",
        "bad_month",
        "period_month written 'Mar-25'",
        lambda a: csv_text("cj-return", [r | {"period_month": "Mar-25"} for r in return_rows(a)]),
    )
    area_feed(
        "impossible_month",
        "funding",
        "impossible_month",
        "period_month 2025-13",
        lambda a: csv_text("funding", changed(funding_rows(a), 1, period_month="2025-13")),
    )
    treatment(
        "integer_with_decimals",
        "bad_integer",
        "top_start_days_used 12.5 (days are whole)",
        lambda p: csv_text("treatment", changed(t(p), 0, top_start_days_used="12.5")),
    )
    area_feed(
        "money_pound_sign",
        "funding",
        "money_currency_sign",
        "actual_gbp written £98000.50",
        lambda a: csv_text("funding", changed(funding_rows(a), 0, actual_gbp="£98000.50")),
    )
    area_feed(
        "money_thousands_comma",
        "funding",
        "money_thousands_separator",
        'budget_gbp written "100,000.00"',
        lambda a: csv_text("funding", changed(funding_rows(a), 0, budget_gbp="100,000.00")),
    )
    area_feed(
        "money_three_decimals",
        "grants",
        "money_too_many_decimals",
        "allocation_gbp 193743.125: fractions of a penny",
        lambda a: csv_text("grants", changed(grant_rows(a), 2, allocation_gbp="193743.125")),
        period="2025-26",
        folder="2025-04",
    )
    area_feed(
        "money_not_a_number",
        "contracts",
        "bad_money",
        "annual_value_gbp 'TBC'",
        lambda a: csv_text("contracts", changed(contract_rows(a), 1, annual_value_gbp="TBC")),
    )
    treatment(
        "whitespace_in_code",
        "whitespace_in_code",
        "service_type 'adult ' with a trailing space",
        lambda p: csv_text("treatment", changed(t(p), 0, service_type="adult ")),
    )

    # Codes, required values, keys, signs: the GX raw suites
    treatment(
        "code_out_of_list",
        "rule_broken:referral_source_code",
        "referral_source 'self_referral' (the code is 'self')",
        lambda p: csv_text("treatment", changed(t(p), 0, referral_source="self_referral")),
    )
    area_feed(
        "code_wrong_case",
        "funding",
        "rule_broken:funding_stream_code",
        "funding_stream 'DATRIG': codes are lower case",
        lambda a: csv_text("funding", changed(funding_rows(a), 0, funding_stream="DATRIG")),
    )
    area_feed(
        "yes_no_as_letter",
        "prison-releases",
        "rule_broken:treated_in_custody_code",
        "treated_in_custody 'Y' for yes",
        lambda a: csv_text("prison-releases", changed(release_rows(a), 0, treated_in_custody="Y")),
    )
    area_feed(
        "measure_under_wrong_agency",
        "cj-return",
        "rule_broken:measure_under_its_agency",
        "measure drr_starts reported under agency police",
        lambda a: csv_text("cj-return", changed(return_rows(a), 5, agency="police")),
    )
    treatment(
        "required_value_empty",
        "rule_broken:referral_date_required",
        "referral_date left empty",
        lambda p: csv_text("treatment", changed(t(p), 2, referral_date=None)),
    )
    treatment(
        "duplicate_episode_id",
        "rule_broken:episode_id_unique",
        "two rows with the same episode_id",
        lambda p: csv_text("treatment", changed(t(p), 1, episode_id=f"{p}-E1")),
    )
    area_feed(
        "duplicate_line_id",
        "funding",
        "rule_broken:line_id_unique",
        "two ledger lines GL-0001",
        lambda a: csv_text("funding", changed(funding_rows(a), 1, line_id="GL-0001")),
    )
    area_feed(
        "duplicate_measure",
        "cj-return",
        "rule_broken:agency_measure_unique",
        "arrests_drug_offences reported twice",
        lambda a: csv_text("cj-return", [*return_rows(a), return_rows(a)[0] | {"value": "13"}]),
    )
    area_feed(
        "duplicate_release_id",
        "prison-releases",
        "rule_broken:release_id_unique",
        "two releases with one release_id",
        lambda a: csv_text("prison-releases", changed(release_rows(a), 1, release_id=f"R-{a}-001")),
    )
    area_feed(
        "duplicate_contract_id",
        "contracts",
        "rule_broken:contract_id_unique",
        "two register rows for one contract",
        lambda a: csv_text("contracts", changed(contract_rows(a), 1, contract_id=f"{a}-C01")),
    )
    area_feed(
        "negative_count",
        "cj-return",
        "rule_broken:value_not_negative",
        "drr_completions -1",
        lambda a: csv_text("cj-return", changed(return_rows(a), 6, value="-1")),
    )
    area_feed(
        "negative_budget",
        "funding",
        "rule_broken:budget_gbp_not_negative",
        "budget_gbp -100.00 (actuals may be negative, budgets not)",
        lambda a: csv_text("funding", changed(funding_rows(a), 1, budget_gbp="-100.00")),
    )
    area_feed(
        "negative_allocation",
        "grants",
        "rule_broken:allocation_gbp_not_negative",
        "allocation_gbp -193743.00",
        lambda a: csv_text("grants", changed(grant_rows(a), 2, allocation_gbp="-193743.00")),
        period="2025-26",
        folder="2025-04",
    )
    treatment(
        "negative_days",
        "rule_broken:top_start_0_to_28",
        "top_start_days_used -3",
        lambda p: csv_text("treatment", changed(t(p), 0, top_start_days_used="-3")),
    )
    area_feed(
        "part_more_than_whole",
        "cj-return",
        "rule_broken:dtoa_positive_not_more_than_dtoa_tests",
        "12 positive drug tests out of 10 tests",
        lambda a: csv_text("cj-return", changed(return_rows(a), 2, value="12")),
    )
    area_feed(
        "ring_fenced_more_than_allocation",
        "grants",
        "rule_broken:ring_fenced_gbp_not_more_than_allocation",
        "ring_fenced_gbp larger than allocation_gbp",
        lambda a: csv_text("grants", changed(grant_rows(a), 0, ring_fenced_gbp="20000000")),
        period="2025-26",
        folder="2025-04",
    )

    # Dates in the future or outside the month
    treatment(
        "future_month_file",
        "future_period",
        "a file for 2099-01, a month that has not begun",
        lambda p: csv_text("treatment", [r | {"submission_month": "2099-01"} for r in t(p)]),
        period="2099-01",
    )
    treatment(
        "referral_after_month",
        "rule_broken:referral_date_not_after_month",
        "a referral dated 2025-04-10 in the March file",
        lambda p: csv_text("treatment", changed(t(p), 2, referral_date="2025-04-10")),
    )
    treatment(
        "discharge_after_month",
        "rule_broken:discharge_date_not_after_month",
        "a discharge dated 2025-05-01 in the March file",
        lambda p: csv_text("treatment", changed(t(p), 1, discharge_date="2025-05-01")),
    )
    treatment(
        "discharge_before_referral",
        "rule_broken:discharge_date_on_or_after_referral",
        "discharged before referred",
        lambda p: csv_text("treatment", changed(t(p), 1, discharge_date="2024-08-30")),
    )
    area_feed(
        "release_outside_month",
        "prison-releases",
        "rule_broken:release_date_not_before_month",
        "a February release in the March file",
        lambda a: csv_text("prison-releases", changed(release_rows(a), 0, release_date="2025-02-28")),
    )

    # The file's name against its contents, and names that do not parse
    area_feed(
        "period_mismatch",
        "funding",
        "rule_broken:period_month_matches_file_name",
        "rows for 2025-04 in the file named 2025-03",
        lambda a: csv_text("funding", [r | {"period_month": "2025-04"} for r in funding_rows(a)]),
    )
    treatment(
        "provider_mismatch",
        "rule_broken:provider_code_matches_file_name",
        "provider_code of another provider inside this provider's file",
        lambda p: csv_text("treatment", [r | {"provider_code": "P0002"} for r in t(p)]),
    )
    area_feed(
        "file_for_another_area",
        "prison-releases",
        "rule_broken:area_code_matches_file_name",
        "releases to Medway (E06000035) in a file named for another area",
        lambda a: csv_text("prison-releases", release_rows(BASELINE_AREA)),
    )
    area_feed(
        "financial_year_mismatch",
        "grants",
        "rule_broken:financial_year_matches_file_name",
        "2024-25 allocations in the 2025-26 file",
        lambda a: csv_text("grants", [r | {"financial_year": "2024-25"} for r in grant_rows(a)]),
        period="2025-26",
        folder="2025-04",
    )
    treatment(
        "unknown_area_code",
        "rule_broken:area_code_valid_on_referral_date",
        "area_code E99999999: no such authority",
        lambda p: csv_text("treatment", changed(t(p), 0, area_code="E99999999")),
    )
    treatment(
        "abolished_area_code",
        "rule_broken:area_code_valid_on_referral_date",
        "area_code E06000028 (Bournemouth, abolished 2019) on a 2025 referral",
        lambda p: csv_text("treatment", changed(t(p), 0, area_code="E06000028")),
    )
    treatment(
        "name_month_in_words",
        "bad_file_name",
        "named treatment_<code>_March-2025.csv",
        lambda p: csv_text("treatment", t(p)),
        file_name="treatment_{}_March-2025.csv",
    )
    treatment(
        "name_capitalised",
        "bad_file_name",
        "named Treatment_<code>_2025-03.csv",
        lambda p: csv_text("treatment", t(p)),
        file_name="Treatment_{}_2025-03.csv",
    )
    treatment(
        "name_xlsx_extension",
        "bad_file_name",
        "CSV content named .xlsx",
        lambda p: csv_text("treatment", t(p)),
        file_name="treatment_{}_2025-03.xlsx",
    )
    treatment(
        "name_bad_source_code",
        "bad_file_name",
        "provider code P12 (the contract needs P + 4 digits)",
        lambda p: csv_text("treatment", t(p)),
        file_name="treatment_P12_2025-03.csv",
    )
    treatment(
        "unknown_feed",
        "unknown_feed",
        "a feed without a contract ('referrals')",
        lambda p: csv_text("treatment", t(p)),
        folder=MONTH,
        file_name="referrals_{}_2025-03.csv",
    )
    area_feed(
        "name_not_financial_year",
        "grants",
        "bad_file_name",
        "grants named 2025-27 (not a financial year)",
        lambda a: csv_text("grants", grant_rows(a)),
        period="2025-27",
        folder="2025-04",
    )
    treatment(
        "wrong_month_folder",
        "wrong_folder",
        "the February file dropped in the March folder",
        lambda p: csv_text("treatment", [r | {"submission_month": "2025-02"} for r in t(p)]),
        period="2025-02",
        folder=MONTH,
    )

    # Restatements that lose records (baseline/ holds the submissions they would replace)
    kinds.append(
        Kind(
            "restated_month_fewer_rows",
            "treatment",
            "restatement_drops_records",
            f"restates {BASELINE_PROVIDER}'s March file without episode {BASELINE_PROVIDER}-E2",
            _name("treatment", BASELINE_PROVIDER),
            csv_text(
                "treatment", [r for r in t(BASELINE_PROVIDER) if r["episode_id"] != f"{BASELINE_PROVIDER}-E2"]
            ).encode(),
        )
    )
    kinds.append(
        Kind(
            "restated_register_fewer_contracts",
            "contracts",
            "restatement_drops_records",
            "restates the March register without contract C02 (the register holds every contract, past and present)",
            _name("contracts", BASELINE_AREA),
            csv_text("contracts", contract_rows(BASELINE_AREA, BASELINE_PROVIDER)[:1]).encode(),
        )
    )

    # Personal data: the report must withhold it (initials, date of birth, sex) and escape markup
    treatment(
        "hostile_personal_data", "rules_broken",
        "initials 'Q7', date of birth 2019-07-23 (age 5), sex 'Q'; '<script>' and a spreadsheet formula as codes",
        lambda p: csv_text(
            "treatment",
            changed(t(p), 0, client_initials="Q7", client_dob="2019-07-23", client_sex="Q",
                    housing_problem="<script>alert(1)</script>", injecting_status="=1+2"),
        ),
    )  # fmt: skip
    treatment(
        "personal_date_unreadable",
        "bad_date",
        "client_dob written 31/12/1980: refused, the value withheld",
        lambda p: csv_text("treatment", changed(t(p), 0, client_dob="31/12/1980")),
    )
    treatment(
        "integer_in_other_digits",
        "bad_integer",
        "top_start_days_used written in Arabic-Indic digits (\u0661\u0662): Postgres reads ASCII digits only",
        lambda p: csv_text("treatment", changed(t(p), 0, top_start_days_used="\u0661\u0662")),
    )
    area_feed(
        "code_in_other_digits",
        "funding",
        "rule_broken:provider_code_format",
        "provider_code 'P\u0660\u0660\u0660\u0661' in Arabic-Indic digits: a provider code is P and four ASCII digits",
        lambda a: csv_text("funding", changed(funding_rows(a), 0, provider_code="P\u0660\u0660\u0660\u0661")),
    )
    treatment(
        "name_month_in_other_digits",
        "bad_file_name",
        "named treatment_<code>_\u0662\u0660\u0662\u0665-\u0660\u0663.csv: the month in Arabic-Indic digits",
        lambda p: csv_text("treatment", t(p)),
        file_name="treatment_{}_\u0662\u0660\u0662\u0665-\u0660\u0663.csv",
    )
    return kinds


def baseline_kinds() -> list[Kind]:
    """Good files loaded before the corpus: what the restatement kinds would replace."""
    return [
        Kind("baseline_register", "contracts", "", "the March register of Medway, with a contract of P9000",
             _name("contracts", BASELINE_AREA),
             csv_text("contracts", contract_rows(BASELINE_AREA, BASELINE_PROVIDER)).encode()),
        Kind("baseline_treatment", "treatment", "", "P9000's March file: three episodes in Medway",
             _name("treatment", BASELINE_PROVIDER), csv_text("treatment", treatment_rows(BASELINE_PROVIDER)).encode()),
    ]  # fmt: skip


def accepted_kinds() -> list[Kind]:
    """Odd but within the contract (../shared/feeds/README.md): loaded, some with a warning report."""
    providers = iter(f"P98{n:02d}" for n in range(100))
    areas = iter(["E06000048", "E06000049", "E06000050", "E06000051", "E06000052", "E06000053"])
    kinds = []

    def add(
        name: str,
        feed: str,
        why: str,
        build: Callable[[str], bytes | str],
        warnings: tuple[str, ...] = (),
        **where: str,
    ) -> None:
        source = next(providers) if feed == "treatment" else next(areas)
        content = build(source)
        data = content.encode() if isinstance(content, str) else content
        kinds.append(Kind(name, feed, "", why, _name(feed, source, **where), data, warnings))

    nottingham = "E06000018"  # no register loaded for it: no provider warning
    add(
        "utf8_bom",
        "treatment",
        "UTF-8 with a byte-order mark: allowed and ignored",
        lambda p: b"\xef\xbb\xbf" + csv_text("treatment", treatment_rows(p, nottingham)).encode(),
    )
    add(
        "crlf_line_endings",
        "funding",
        "CRLF line endings (RFC 4180's own)",
        lambda a: csv_text("funding", funding_rows(a), end="\r\n"),
    )
    add(
        "mixed_line_endings",
        "cj-return",
        "CRLF and LF mixed: every line still ends; read as written",
        lambda a: csv_text("cj-return", return_rows(a), end="\r\n").replace("\r\n", "\n", 4),
    )
    add(
        "header_only",
        "prison-releases",
        "a header and no rows: nothing to report that month",
        lambda a: csv_text("prison-releases", []),
    )
    add(
        "reordered_columns",
        "treatment",
        "columns in another order: order is free",
        lambda p: csv_text("treatment", treatment_rows(p, nottingham), list(reversed(COLUMNS["treatment"]))),
    )
    add(
        "header_case_and_spaces",
        "contracts",
        "header names in capitals with spaces: matched case-insensitively",
        lambda a: csv_text("contracts", contract_rows(a)).replace(
            "contract_id,provider_code", " CONTRACT_ID , Provider_Code", 1
        ),
    )
    add(
        "trailing_blank_lines",
        "grants",
        "blank lines at the end: ignored",
        lambda a: csv_text("grants", grant_rows(a)) + "\n\n",
        period="2025-26",
        folder="2025-04",
    )
    add(
        "suppression_marker",
        "cj-return",
        "value '*' (suppressed): loaded as NULL, listed in a warning report",
        lambda a: csv_text("cj-return", changed(return_rows(a), 0, value="*")),
        ("suppression_marker",),
    )
    add(
        "provider_without_contract",
        "treatment",
        "a provider the Medway register (baseline) has no contract with: loaded, with a warning report",
        lambda p: csv_text("treatment", treatment_rows(p)),
        ("provider_without_contract",),
    )
    return kinds  # fmt: skip


# -- writing ----------------------------------------------------------------------------------


def files() -> dict[str, bytes]:
    """Every corpus file by its path below tests/bad_files/."""
    out = {}
    for kind in refused_kinds():
        out[f"refused/{kind.name}/{kind.file}"] = kind.content
    for kind in accepted_kinds():
        out[f"accepted/{kind.name}/{kind.file}"] = kind.content
    for kind in baseline_kinds():
        out[f"baseline/{kind.file}"] = kind.content
    out["README.md"] = readme().encode()
    return out


def readme() -> str:
    lines = [
        "# Bad-file corpus",
        "",
        "Every kind of bad file the warehouse must refuse, each with the refusal code it must get, and",
        "the odd-but-valid files it must accept. Written by `make_corpus.py` (deterministic; run it after a",
        "change, then commit); `tests/test_bad_files.py` drives each file through the DAG's own ingest",
        "function and checks the code, the quarantine (`.reason.json`, `.reason.txt`, the validation",
        "report) and that no table beyond `raw.submissions` changed. All data is invented.",
        "",
        "Each kind is a landing root of its own: `refused/<kind>/<feed>/<YYYY-MM>/<file>`.",
        "`baseline/` is loaded first: the two restatement kinds would replace it.",
        "",
        f"## Refused ({len(refused_kinds())} kinds)",
        "",
        "| kind | feed | file | expected refusal code | why it is bad |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k in refused_kinds():
        lines.append(f"| {k.name} | {k.feed} | `refused/{k.name}/{k.file}` | `{k.code}` | {k.why} |")
    lines += [
        "",
        "`rules_broken` means several contract rules at once (the validation report lists each);",
        "`rule_broken:<rule>` is one rule of the feed's GX suite (`expectations/raw_<feed>.json`).",
        "",
        f"## Accepted ({len(accepted_kinds())} kinds)",
        "",
        "| kind | feed | file | warnings in its report | why it is accepted |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k in accepted_kinds():
        warned = ", ".join(f"`{w}`" for w in k.warnings) or "none (no report)"
        lines.append(f"| {k.name} | {k.feed} | `accepted/{k.name}/{k.file}` | {warned} | {k.why} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    for relative, content in files().items():
        path = ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    print(f"wrote {len(files())} files under {ROOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
