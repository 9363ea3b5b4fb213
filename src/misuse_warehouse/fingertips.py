"""Benchmarks from OHID's Fingertips API: metadata check, CSV pulls, one contract-shaped file per indicator.

Fingertips (shared/feeds/benchmarks.md) is pulled, not delivered, and its CSV changes shape over
time, so the connector does what a person preparing the file by hand would do, and nothing more:

- each configured indicator (seed `ref_benchmark_indicators`, shared with dbt) is first checked
  against `indicator_metadata`: the name must carry the expected words and the unit must match.
  The ids come from public sources and are not all confirmed; one that the API names otherwise is
  refused with both names, never loaded as if it were the KPI's benchmark;
- its CSV is fetched for England (area type 15), regions (6) and upper-tier areas (502), each
  answer archived byte for byte before it is read;
- columns are read by name, with both header variants (`Target data` in older files is
  `Compared to goal` in newer ones; `Time period range` is new; the `Compared to <parent> value
  or percentiles` name depends on the parent);
- an area listed twice (once without a parent, once with its region; England is in every answer)
  is kept once, the row naming its parent; two listings that disagree on a figure refuse the
  indicator rather than pick one;
- rows with a `Category Type` (deprivation deciles and other breakdowns) are kept but marked by
  that column, so the models keep them out of headline values;
- an empty `Value` is NULL, its `Value note` kept (suppressed or missing);
- rows are written in `Time period Sortable` order; the text (`2022/23`, `2021 - 23`) never orders.

The result is `<home>/pulled/fingertips/<YYYY-MM>/fingertips_<indicator>_<YYYY-MM>.csv` in the
fixed shape of `contracts/fingertips.yaml`, which the shared path (file checks, GX raw gate
`raw_fingertips`, contract-driven loader) loads like any feed file. A problem with one indicator
refuses that indicator (audit row in raw.submissions, reasons in quarantine); the others load.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from misuse_warehouse import settings
from misuse_warehouse.contracts import contract_for
from misuse_warehouse.http_limits import AnswerTooLarge, read_capped
from misuse_warehouse.months import parse_month

log = logging.getLogger(__name__)

FEED = "fingertips"
BASE_URL = "https://fingertips.phe.org.uk/api"
BASE_URL_ENV = "MISUSE_WAREHOUSE_FINGERTIPS_API"
ENGLAND = "E92000001"
AREA_TYPES = (15, 6, 502)
"""England, regions, counties and unitary authorities from April 2023 (older vintages 402, 302, 202, 102)."""
PARENT_AREA_TYPE = 15
INDICATORS_SEED = settings.DBT_PROJECT_DIR / "seeds" / "ref_benchmark_indicators.csv"

# CSV header (lower case, single spaces) -> contract column. Two names for one column are the
# old and new header variants.
_HEADER = {
    "indicator id": "indicator_id",
    "indicator name": "indicator_name",
    "parent code": "parent_code",
    "parent name": "parent_name",
    "area code": "area_code",
    "area name": "area_name",
    "area type": "area_type",
    "sex": "sex",
    "age": "age",
    "category type": "category_type",
    "category": "category",
    "time period": "time_period",
    "value": "value",
    "lower ci 95.0 limit": "lower_ci_95",
    "upper ci 95.0 limit": "upper_ci_95",
    "lower ci 99.8 limit": "lower_ci_99_8",
    "upper ci 99.8 limit": "upper_ci_99_8",
    "count": "count",
    "denominator": "denominator",
    "value note": "value_note",
    "recent trend": "recent_trend",
    "compared to england value or percentiles": "compared_to_england",
    "time period sortable": "time_period_sortable",
    "new data": "new_data",
    "compared to goal": "compared_to_goal",
    "target data": "compared_to_goal",
    "time period range": "time_period_range",
}
_PARENT_COMPARISON = re.compile(r"^compared to (?P<parent>.*?) ?(?:value or )?percentiles$")
REQUIRED = (
    "indicator_id",
    "area_code",
    "area_name",
    "area_type",
    "sex",
    "age",
    "category_type",
    "category",
    "time_period",
    "value",
    "time_period_sortable",
)
_DECIMALS = ("value", "lower_ci_95", "upper_ci_95", "lower_ci_99_8", "upper_ci_99_8", "count", "denominator")
_FIGURES = ("value", "lower_ci_95", "upper_ci_95", "count", "denominator", "value_note")
"""What two listings of one area and period must agree on before one is dropped."""


class FingertipsApiError(RuntimeError):
    """The API gave no usable answer after retries; the message names the URL."""


class IndicatorRefused(Exception):
    """One indicator cannot be loaded: a code, a message, and the archived answers behind it."""

    def __init__(self, code: str, message: str, archived: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.archived = code, message, list(archived)


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Indicator:
    indicator_id: int
    name: str
    name_must_contain: tuple[str, ...]
    name_must_not_contain: tuple[str, ...]
    unit_label: str
    headline_sex: str
    kpi_code: str | None
    breakdown: str | None
    is_confirmed: bool


def load_indicators(path: Path | None = None) -> tuple[Indicator, ...]:
    """The indicators to pull, from the dbt seed the models join on (one list for both)."""
    with (path or INDICATORS_SEED).open(newline="", encoding="utf-8") as handle:
        return tuple(
            Indicator(
                indicator_id=int(row["indicator_id"]),
                name=row["indicator_name"],
                name_must_contain=_words(row["name_must_contain"]),
                name_must_not_contain=_words(row["name_must_not_contain"]),
                unit_label=row["unit_label"],
                headline_sex=row["headline_sex"],
                kpi_code=row["kpi_code"] or None,
                breakdown=row["breakdown"] or None,
                is_confirmed=row["is_confirmed"].strip().lower() == "true",
            )
            for row in csv.DictReader(handle)
        )


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in (text or "").split("|") if w.strip())


def base_url() -> str:
    return os.environ.get(BASE_URL_ENV, BASE_URL).rstrip("/")


def pulled_dir() -> Path:
    """Where the connector writes the contract-shaped files before the shared path loads them."""
    return settings.home() / "pulled"


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Tries per request (the first one included) for connection errors, timeouts, 429 and 5xx."""
    backoff: float = 1.0
    """urllib3 backoff factor: waits of backoff x 2^n seconds, honouring Retry-After."""
    timeout: float | tuple[float, float] = (10.0, 120.0)


class FingertipsClient:
    """GETs against the API (or anything at `base_url` answering like it), retried by urllib3."""

    def __init__(self, base: str | None = None, policy: RetryPolicy | None = None) -> None:
        self.base_url = (base or base_url()).rstrip("/")
        self.policy = policy or RetryPolicy()
        retry = Retry(
            total=self.policy.attempts - 1,
            backoff_factor=self.policy.backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.session.headers["User-Agent"] = "misuse-warehouse (Fingertips connector)"
        self.requests_made = 0

    def get(self, path: str, params: dict[str, Any]) -> tuple[str, bytes]:
        """(url, body) of a 200 answer; FingertipsApiError naming the URL otherwise.

        The body is read as a stream up to `settings.max_answer_bytes()`; a larger answer raises
        AnswerTooLarge (http_limits) before it is held whole: `pull` refuses the indicator.
        """
        url = requests.Request("GET", f"{self.base_url}/{path}", params=params).prepare().url or path
        self.requests_made += 1
        try:
            response = read_capped(self.session.get(url, timeout=self.policy.timeout, stream=True))
        except requests.RequestException as error:
            raise FingertipsApiError(
                f"Fingertips API: no answer after {self.policy.attempts} tries ({error}) — {url}"
            ) from error
        if response.status_code != 200:
            raise FingertipsApiError(f"Fingertips API: HTTP {response.status_code} {response.reason} — {url}")
        return url, response.content

    def metadata(self, ids: Iterable[int]) -> tuple[str, bytes]:
        return self.get("indicator_metadata/by_indicator_id", {"indicator_ids": ",".join(map(str, ids))})

    def data_csv(self, indicator_id: int, child_area_type: int) -> tuple[str, bytes]:
        params = {
            "indicator_ids": indicator_id,
            "child_area_type_id": child_area_type,
            "parent_area_type_id": PARENT_AREA_TYPE,
        }
        return self.get("all_data/csv/by_indicator_id", params)


# --- archive ---------------------------------------------------------------------------------


def archive_folder(month: str) -> Path:
    return settings.archive_dir() / FEED / month / "api"


def _archive(folder: Path, stem: str, suffix: str, body: bytes) -> Path:
    """The answer as received, named by its checksum: the same bytes again add nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}_{hashlib.sha256(body).hexdigest()[:16]}{suffix}"
    if not target.exists():
        partial = target.with_suffix(".partial")
        partial.write_bytes(body)
        partial.replace(target)
    return target


# --- metadata --------------------------------------------------------------------------------


def metadata_entries(body: bytes) -> dict[int, dict[str, Any]]:
    """The API keys its answer by indicator id (as text); a list of entries with `IID` is read too."""
    data = json.loads(body)
    entries = data.values() if isinstance(data, dict) else data
    found = {}
    for entry in entries:
        if isinstance(entry, dict) and "IID" in entry:
            found[int(entry["IID"])] = entry
    if isinstance(data, dict):
        for key, entry in data.items():
            if str(key).isdigit() and isinstance(entry, dict):
                found.setdefault(int(key), entry)
    return found


def metadata_problem(indicator: Indicator, entry: dict[str, Any] | None) -> str | None:
    """Why the API's metadata says this id is not the indicator we expect, or None when it is."""
    if entry is None:
        return f"indicator {indicator.indicator_id} is not in the API's indicator_metadata answer"
    name = str((entry.get("Descriptive") or {}).get("Name") or "")
    unit = str((entry.get("Unit") or {}).get("Label") or "")
    folded = " ".join(name.lower().split())
    missing = [w for w in indicator.name_must_contain if w not in folded]
    unwanted = [w for w in indicator.name_must_not_contain if w in folded]
    problems = []
    if missing or unwanted:
        expected = ", ".join(f"'{w}'" for w in indicator.name_must_contain)
        unexpected = "".join(f", not '{w}'" for w in indicator.name_must_not_contain)
        problems.append(f"the API names it '{name}', expected a name with {expected}{unexpected}")
    if unit.strip().lower() != indicator.unit_label.strip().lower():
        problems.append(f"its unit is '{unit}', expected '{indicator.unit_label}'")
    if not problems:
        return None
    confirmed = "" if indicator.is_confirmed else " (the id is marked unconfirmed in ref_benchmark_indicators)"
    return (
        f"indicator {indicator.indicator_id} ({indicator.name}): {'; '.join(problems)}{confirmed}. "
        "Correct the id in dbt_project/seeds/ref_benchmark_indicators.csv"
    )


# --- CSV -------------------------------------------------------------------------------------


@dataclass
class ReadCsv:
    """One answer read by column name: contract-named rows, and what the header looked like."""

    rows: list[dict[str, Any]]
    header_variant: str
    parent_comparison_label: str | None
    ignored_columns: list[str] = field(default_factory=list)


def read_csv(body: bytes, indicator_id: int, child_area_type: int, where: str) -> ReadCsv:
    """Rows of one Fingertips CSV answer, columns by name; IndicatorRefused naming `where` if unreadable."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise IndicatorRefused("unreadable_answer", f"{where}: not UTF-8 at byte {error.start}") from None
    records = list(csv.reader(io.StringIO(text, newline="")))
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        raise IndicatorRefused("unreadable_answer", f"{where}: empty answer, not even a header")
    positions: dict[str, int] = {}
    parent_label, ignored = None, []
    for position, cell in enumerate(records[0]):
        name = " ".join(cell.lower().split())
        column = _HEADER.get(name)
        match = _PARENT_COMPARISON.match(name) if column is None else None
        if match:
            column = "compared_to_parent"
            parent_label = _parent_label(cell)
        if column is None:
            ignored.append(cell)
            continue
        if column in positions:
            other = records[0][positions[column]]
            raise IndicatorRefused("unreadable_answer", f"{where}: columns '{other}' and '{cell}' both give {column}")
        positions[column] = position
    missing = [c for c in REQUIRED if c not in positions]
    if missing:
        raise IndicatorRefused(
            "missing_columns", f"{where}: the answer has no column for {', '.join(missing)} (header: {records[0]})"
        )
    header = {" ".join(c.lower().split()) for c in records[0]}
    variant = "old" if "target data" in header else "current" if "compared to goal" in header else "unknown"
    rows = []
    for line, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(records[0]):
            raise IndicatorRefused(
                "unreadable_answer", f"{where}: line {line} has {len(record)} fields, the header {len(records[0])}"
            )
        row: dict[str, Any] = {c: (record[p].strip() or None) for c, p in positions.items()}
        row["parent_comparison_label"] = parent_label if "compared_to_parent" in positions else None
        row["child_area_type_id"] = child_area_type
        for column in _DECIMALS:
            row[column] = _decimal(row.get(column), column, line, where)
        sortable = row["time_period_sortable"]
        if sortable is None or not re.fullmatch(r"[0-9]{8}", _plain_integer(sortable)):
            raise IndicatorRefused(
                "unreadable_answer", f"{where}: line {line} Time period Sortable '{sortable}' is not 8 digits"
            )
        row["time_period_sortable"] = int(_plain_integer(sortable))
        if row["indicator_id"] != str(indicator_id) and _plain_integer(row["indicator_id"] or "") != str(indicator_id):
            raise IndicatorRefused(
                "wrong_indicator", f"{where}: line {line} is indicator {row['indicator_id']}, not {indicator_id}"
            )
        row["indicator_id"] = str(indicator_id)
        rows.append(row)
    return ReadCsv(rows, variant, parent_label, ignored)


def _parent_label(cell: str) -> str | None:
    """`Compared to Region value or percentiles` -> `Region`, as the API spells it."""
    match = re.match(r"(?i)^compared to (?P<parent>.*?) ?(?:value or )?percentiles$", " ".join(cell.split()))
    return (match["parent"] or None) if match else None


def _plain_integer(text: str) -> str:
    """`20220000` or `20220000.0` (a spreadsheet's re-save) as digits."""
    return text[:-2] if text.endswith(".0") else text


def _decimal(text: str | None, column: str, line: int, where: str) -> Decimal | None:
    if text is None:
        return None
    try:
        number = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise IndicatorRefused("unreadable_answer", f"{where}: line {line} {column} '{text}' is not a number") from None
    if not number.is_finite():
        raise IndicatorRefused("unreadable_answer", f"{where}: line {line} {column} '{text}' is not a number")
    return number


# --- normalising -----------------------------------------------------------------------------


@dataclass
class Normalised:
    rows: list[dict[str, Any]]
    duplicates_removed: int
    breakdown_rows: int
    suppressed_rows: int


def _key(row: dict[str, Any]) -> tuple:
    return (
        row["area_code"],
        row["sex"],
        row["age"],
        row["category_type"] or "",
        row["category"] or "",
        row["time_period_sortable"],
        row["time_period"],
    )


def normalise(answers: Sequence[ReadCsv], indicator: Indicator, unit_label: str) -> Normalised:
    """One row per area, sex, age, category and period, in Time period Sortable order.

    A repeated listing keeps the row that names a parent (the region) - England, which every
    answer lists, keeps its first. Listings that disagree on a figure refuse the indicator.
    """
    kept: dict[tuple, dict[str, Any]] = {}
    duplicates = 0
    for answer in answers:
        for row in answer.rows:
            key = _key(row)
            first = kept.get(key)
            if first is None:
                kept[key] = row
                continue
            duplicates += 1
            differs = [c for c in _FIGURES if first.get(c) != row.get(c)]
            if differs:
                shown = ", ".join(f"{c} {first.get(c)} vs {row.get(c)}" for c in differs)
                raise IndicatorRefused(
                    "conflicting_duplicates",
                    f"indicator {indicator.indicator_id}: {row['area_code']} {row['time_period']} "
                    f"({row['sex']}, {row['age']}, {row['category'] or 'headline'}) is listed twice with "
                    f"different figures: {shown}",
                )
            if not first.get("parent_code") and row.get("parent_code"):
                kept[key] = row
    order = {area_type: i for i, area_type in enumerate(AREA_TYPES)}
    rows = sorted(
        kept.values(),
        key=lambda r: (
            order.get(r["child_area_type_id"], len(order)),
            r["area_code"],
            r["sex"],
            r["age"],
            r["category_type"] or "",
            r["category"] or "",
            r["time_period_sortable"],
        ),
    )
    for row in rows:
        row["indicator_name"] = row.get("indicator_name") or indicator.name
        row["unit_label"] = unit_label
    return Normalised(
        rows,
        duplicates,
        breakdown_rows=sum(1 for r in rows if r["category_type"]),
        suppressed_rows=sum(1 for r in rows if r["value"] is None and r.get("value_note")),
    )


def write_file(folder: Path, indicator_id: int, month: str, rows: Sequence[dict[str, Any]]) -> Path:
    """The rows in the contract's shape, as `fingertips/<month>/fingertips_<id>_<month>.csv`."""
    columns = contract_for(FEED).column_names
    target = folder / FEED / month / f"{FEED}_{indicator_id}_{month}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in columns])
    partial = target.with_suffix(".partial")
    partial.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    partial.replace(target)
    return target


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


# --- a pull ----------------------------------------------------------------------------------


@dataclass
class Pull:
    """What one pull produced: files for the shared load path, and indicators refused with reasons."""

    month: str
    base_url: str
    files: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    indicators: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "base_url": self.base_url,
            "files": self.files,
            "refused": self.refused,
            "indicators": {str(k): v for k, v in self.indicators.items()},
            "requests": self.requests,
        }


def pull(
    month: str,
    *,
    client: FingertipsClient | None = None,
    indicators: Sequence[Indicator] | None = None,
    out_dir: Path | None = None,
) -> Pull:
    """Check metadata, fetch and archive each indicator's CSVs, write contract-shaped files.

    Raises FingertipsApiError when the API cannot be reached at all (nothing is written); an
    indicator whose answer is wrong is refused on its own and listed in `refused`.
    """
    parse_month(month)  # a ValueError names anything but YYYY-MM
    client = client or FingertipsClient()
    indicators = tuple(indicators if indicators is not None else load_indicators())
    out_dir = out_dir or pulled_dir()
    archive = archive_folder(month)
    result = Pull(month, client.base_url)

    try:
        url, body = client.metadata(i.indicator_id for i in indicators)
    except AnswerTooLarge as error:
        raise FingertipsApiError(f"Fingertips API: indicator_metadata: {error} — {error.url}") from None
    metadata_file = _archive(archive, "indicator_metadata", ".json", body)
    try:
        entries = metadata_entries(body)
    except (ValueError, TypeError, AttributeError) as error:
        raise FingertipsApiError(
            f"Fingertips API: metadata is not JSON ({error}); kept at {metadata_file} — {url}"
        ) from error

    for indicator in indicators:
        iid = indicator.indicator_id
        entry = entries.get(iid)
        try:
            problem = metadata_problem(indicator, entry)
            if problem:
                raise IndicatorRefused("indicator_metadata_mismatch", problem, [metadata_file])
            unit = str(entry["Unit"]["Label"])  # checked above
            answers, archived = [], [metadata_file]
            for area_type in AREA_TYPES:
                try:
                    csv_url, csv_body = client.data_csv(iid, area_type)
                except AnswerTooLarge as error:
                    message = f"indicator {iid}, area type {area_type}: {error} — {error.url}"
                    raise IndicatorRefused("answer_too_large", message, archived) from None
                path = _archive(archive, f"indicator_{iid}_area_type_{area_type}", ".csv", csv_body)
                archived.append(path)
                try:
                    answers.append(read_csv(csv_body, iid, area_type, f"{csv_url} (kept at {path})"))
                except IndicatorRefused as refused:
                    raise IndicatorRefused(refused.code, refused.message, archived) from None
            try:
                normalised = normalise(answers, indicator, unit)
            except IndicatorRefused as refused:
                raise IndicatorRefused(refused.code, refused.message, archived) from None
            if not any(r["area_code"] == ENGLAND for r in normalised.rows):
                raise IndicatorRefused("no_england_value", f"indicator {iid}: no England row in any answer", archived)
        except IndicatorRefused as refused:
            log.error("fingertips %s %s: REFUSED %s: %s", iid, month, refused.code, refused.message)
            result.refused.append(
                {
                    "indicator_id": iid,
                    "code": refused.code,
                    "message": refused.message,
                    "archived": [str(p) for p in refused.archived],
                }
            )
            continue
        path = write_file(out_dir, iid, month, normalised.rows)
        result.files.append(str(path))
        result.indicators[iid] = {
            "file": str(path),
            "rows": len(normalised.rows),
            "duplicates_removed": normalised.duplicates_removed,
            "breakdown_rows": normalised.breakdown_rows,
            "suppressed_rows": normalised.suppressed_rows,
            "header_variants": sorted({a.header_variant for a in answers}),
            "parent_comparison_labels": sorted({a.parent_comparison_label or "" for a in answers} - {""}),
            "ignored_columns": sorted({c for a in answers for c in a.ignored_columns}),
            "archived": [str(p) for p in archived],
        }
        log.info("fingertips %s %s: %s", iid, month, result.indicators[iid])
    result.requests = client.requests_made
    return result


def record_refusal(
    conn: psycopg.Connection, refused: dict[str, Any], month: str, dag_run_id: str | None = None
) -> Path:
    """Audit a refused indicator in raw.submissions and write its reasons to quarantine.

    The API's answers stay in the archive (named in the reasons); nothing else is written.
    """
    archived = [Path(p) for p in refused["archived"]]
    manifest = "".join(f"{p.name}\n" for p in archived).encode()
    period_start = date(int(month[:4]), int(month[5:7]), 1)
    name = f"{FEED}_{refused['indicator_id']}_{month}.csv"
    with conn.transaction():
        conn.execute(
            """insert into raw.submissions (feed, source_code, period_start, file_name, file_sha256,
                   file_bytes, received_at, status, refusal_code, refusal_reason, dag_run_id)
               values (%s, %s, %s, %s, %s, %s, %s, 'refused', %s, %s, %s)""",
            (
                FEED,
                str(refused["indicator_id"]),
                period_start,
                f"{name} (not written: API answer refused)",
                hashlib.sha256(manifest).hexdigest(),
                sum(p.stat().st_size for p in archived if p.exists()),
                datetime.now(UTC),
                refused["code"],
                refused["message"],
                dag_run_id,
            ),
        )
    folder = settings.quarantine_dir() / FEED / month
    folder.mkdir(parents=True, exist_ok=True)
    reason = {**refused, "file": name, "quarantined_at": datetime.now(UTC).isoformat()}
    (folder / f"{name}.reason.json").write_text(json.dumps(reason, indent=2, default=str))
    lines = [f"Fingertips indicator {refused['indicator_id']} was refused ({refused['code']}).", "", refused["message"]]
    lines += ["", "The API's answers, as received:", *(f"- {p}" for p in archived)]
    (folder / f"{name}.reason.txt").write_text("\n".join(lines) + "\n")
    return folder
