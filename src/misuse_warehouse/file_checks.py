"""File-level checks every feed shares (../shared/feeds/README.md): name, encoding, header, types.

They run before anything is loaded and refuse a file with a specific code. Rules between
values (codes, date orders, conditional requirements) are the GX raw suite's job; these
checks only make sure every value can be typed, so the suite and the loader see clean data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from misuse_warehouse.contracts import Contract, all_contracts
from misuse_warehouse.refusal import Refusal

FILE_NAME = re.compile(r"^(?P<feed>[a-z][a-z-]*)_(?P<source>[A-Za-z0-9]+)_(?P<period>\d{4}-\d{2})\.csv$")
SUPPRESSION_MARKERS = frozenset({"*", "c", "x", ":"})
MAX_EXAMPLES = 20

_VALUE_PATTERNS = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "month": re.compile(r"^\d{4}-\d{2}$"),
    "integer": re.compile(r"^-?\d+$"),
    "money": re.compile(r"^-?\d+(\.\d{1,2})?$"),
    "decimal": re.compile(r"^-?\d+(\.\d+)?$"),
}
_TYPE_HINTS = {
    "date": "a date YYYY-MM-DD",
    "month": "a month YYYY-MM",
    "integer": "a whole number",
    "money": "pounds with at most two decimals, no £ sign or thousands separator",
    "decimal": "a plain decimal number such as 12.3456",
}


@dataclass(frozen=True)
class FileName:
    feed: str
    source: str
    period: str  # YYYY-MM, or YYYY-YY for yearly files
    period_start: date

    @property
    def month_folder(self) -> str:
        return f"{self.period_start:%Y-%m}"


@dataclass
class ParsedFile:
    """A file that passed the shared checks: values as text (None for empty), in contract order.

    Months are given as their first day (YYYY-MM-01) so that they load as dates.
    """

    path: Path
    name: FileName
    contract: Contract
    sha256: str
    size: int
    rows: list[list[str | None]]
    line_numbers: list[int]
    notes: list[str]


def parse_file_name(path: Path) -> FileName:
    match = FILE_NAME.match(path.name)
    if not match:
        raise Refusal(
            "bad_file_name",
            f"'{path.name}' does not parse as <feed>_<source>_<YYYY-MM>.csv",
        )
    feed, source, period = match["feed"], match["source"], match["period"]
    contracts = all_contracts()
    if feed not in contracts:
        raise Refusal("unknown_feed", f"'{feed}' is not a feed we hold a contract for: {sorted(contracts)}")
    contract = contracts[feed]
    if not contract.source_ok(source):
        raise Refusal("bad_file_name", f"source '{source}' in '{path.name}' does not match {contract.source_pattern}")
    year, part = int(period[:4]), int(period[5:])
    if contract.period == "financial_year":
        if part != (year + 1) % 100:
            raise Refusal("bad_file_name", f"'{period}' is not a financial year label such as 2025-26")
        start = date(year, 4, 1)
    else:
        if not 1 <= part <= 12:
            raise Refusal("bad_file_name", f"'{period}' is not a month")
        start = date(year, part, 1)
    name = FileName(feed, source, period, start)
    folder_feed, folder_month = path.parent.parent.name, path.parent.name
    if (folder_feed, folder_month) != (feed, name.month_folder):
        raise Refusal(
            "wrong_folder",
            f"'{path.name}' belongs in {feed}/{name.month_folder}/, not {folder_feed}/{folder_month}/",
        )
    return name


def decode(raw: bytes) -> str:
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise Refusal("binary_file", f"NUL byte at offset {nul}: this is not a CSV text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise Refusal(
            "not_utf8",
            f"not valid UTF-8 at byte offset {err.start}; if it came from Excel, "
            "save it again as 'CSV UTF-8 (comma delimited)'",
            [{"byte_offset": err.start}],
        ) from None


def read_file(path: Path) -> ParsedFile:
    """Run the shared checks; raise Refusal, or return the file's values ready to type."""
    name = parse_file_name(path)
    contract = all_contracts()[name.feed]
    raw = path.read_bytes()
    text = decode(raw)
    records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        raise Refusal("no_header", "the file is empty: it needs at least the header row")
    header = [cell.strip().lower() for cell in records[0]]
    positions = _check_header(header, contract)
    rows, lines, notes, problems = [], [], [], []
    for index, record in enumerate(records[1:], start=2):
        if len(record) != len(header):
            problems.append({"row": index, "rule": "row_shape", "value": f"{len(record)} fields"})
            continue
        values: list[str | None] = []
        for column in contract.columns:
            pos = positions.get(column.name)
            value = record[pos].strip() if pos is not None else ""
            values.append(_typed_text(value, column.type, column.name, index, contract, notes, problems))
        rows.append(values)
        lines.append(index)
    if problems:
        raise _value_refusal(problems)
    return ParsedFile(path, name, contract, hashlib.sha256(raw).hexdigest(), len(raw), rows, lines, notes)


def _check_header(header: list[str], contract: Contract) -> dict[str, int]:
    known = set(contract.column_names)
    if not known.intersection(header):
        raise Refusal("no_header", f"the first line has none of the {contract.feed} columns: it is not a header")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise Refusal("duplicate_columns", f"columns named more than once: {', '.join(duplicated)}")
    unknown = [h for h in header if h not in known]
    if unknown:
        raise Refusal("unknown_columns", f"columns not in the {contract.feed} contract: {', '.join(unknown)}")
    missing = [c.name for c in contract.columns if c.required and c.name not in header]
    if missing:
        raise Refusal("missing_columns", f"required columns missing: {', '.join(missing)}")
    return {h: i for i, h in enumerate(header)}


def _typed_text(
    value: str,
    type_: str,
    column: str,
    line: int,
    contract: Contract,
    notes: list[str],
    problems: list[dict],
) -> str | None:
    if value == "":
        return None
    if type_ in ("integer", "money", "decimal") and value in SUPPRESSION_MARKERS:
        notes.append(f"line {line}: {column} '{value}' is a suppression marker, loaded as NULL")
        return None
    pattern = _VALUE_PATTERNS.get(type_)
    if pattern is None:
        return value
    ok = pattern.match(value) is not None
    if ok and type_ in ("date", "month"):
        try:
            date.fromisoformat(value if type_ == "date" else f"{value}-01")
        except ValueError:
            ok = False
    if ok:
        return f"{value}-01" if type_ == "month" else value
    shown = "(withheld: personal data)" if column in contract.attributor.values() else value
    problems.append({"row": line, "column": column, "rule": f"bad_{type_}", "value": shown})
    return None


def _value_refusal(problems: list[dict]) -> Refusal:
    first = problems[0]
    rule = first["rule"]
    if rule == "row_shape":
        return Refusal(
            "bad_row_shape",
            f"{len(problems)} rows do not have as many fields as the header (first: line {first['row']})",
            problems[:MAX_EXAMPLES],
        )
    type_ = rule.removeprefix("bad_")
    columns = sorted({p["column"] for p in problems})
    return Refusal(
        rule,
        f"{len(problems)} values are not {_TYPE_HINTS[type_]} (columns {', '.join(columns)}; "
        f"first: line {first['row']} {first['column']}='{first['value']}')",
        problems[:MAX_EXAMPLES],
    )
