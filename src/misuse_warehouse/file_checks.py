"""File-level checks every feed shares (../shared/feeds/README.md): name, encoding, header, types.

They run before anything is loaded and refuse a file with a specific code. Rules between
values (codes, date orders, conditional requirements) are the GX raw suite's job; these
checks only make sure every value can be typed, so the suite and the loader see clean data.
Every refusal carries its findings (rule, row, value) for the submitter's validation report;
values of the person identifiers are never among them.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from misuse_warehouse.contracts import Contract, all_contracts
from misuse_warehouse.refusal import Finding, Refusal

FILE_NAME = re.compile(r"^(?P<feed>[a-z][a-z-]*)_(?P<source>[A-Za-z0-9]+)_(?P<period>\d{4}-\d{2})\.csv$")
SUPPRESSION_MARKERS = frozenset({"*", "c", "x", ":"})
MAX_EXAMPLES = 20
# No contract row comes near this (a treatment row is under 600 characters); a longer line is a
# file that lost its line breaks or a field gone wild, and the CSV reader would choke on it.
MAX_LINE_CHARS = 10_000
WITHHELD = "(withheld: personal data)"
TIMEZONE = ZoneInfo("Europe/London")

_VALUE_PATTERNS = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "month": re.compile(r"^\d{4}-\d{2}$"),
    "integer": re.compile(r"^-?\d+$"),
    "money": re.compile(r"^-?\d+(\.\d{1,2})?$"),
    "decimal": re.compile(r"^-?\d+(\.\d+)?$"),
}
# What each value rule of these checks means, for refusal messages and validation reports.
RULE_TEXT = {
    "bad_date": "is not a date written YYYY-MM-DD",
    "impossible_date": "is written YYYY-MM-DD but is no day of the calendar (such as 30 February)",
    "bad_month": "is not a month written YYYY-MM",
    "impossible_month": "is written YYYY-MM but the month is not 01 to 12",
    "bad_integer": "is not a whole number",
    "bad_money": "is not an amount in pounds (digits, at most two decimals)",
    "bad_decimal": "is not a plain decimal number such as 12.3456",
    "money_currency_sign": "has a currency sign: write pounds as digits only, e.g. 1234.56",
    "money_thousands_separator": "has a thousands separator: write 1234.56, not 1,234.56",
    "money_too_many_decimals": "has more than two decimals: pounds and pence only",
    "whitespace_in_code": "has spaces around the code: codes must be exactly as listed in the contract",
    "bad_row_shape": "does not have as many fields as the header",
}
# Codes of the other file formats that arrive named .csv: (leading bytes, what the file is).
_SIGNATURES = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
)


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
    warnings: list[Finding] = field(default_factory=list)


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


def check_period_started(name: FileName, contract: Contract, today: date | None = None) -> None:
    """A monthly file for a month that has not begun describes nothing yet (grants are announced ahead)."""
    today = today or datetime.now(TIMEZONE).date()
    if contract.period == "month" and name.period_start > today:
        raise Refusal(
            "future_period",
            f"the file is for {name.period}, a month that has not started yet (today is {today:%Y-%m-%d})",
            [{"period": name.period}],
        )


def _refuse_other_formats(raw: bytes) -> None:
    """Name what the file really is when it is not CSV text: the submitter can then fix it at once."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        order = "little-endian (starts FF FE)" if raw[:2] == b"\xff\xfe" else "big-endian (starts FE FF)"
        raise Refusal(
            "utf16",
            f"the file is UTF-16 {order}, not UTF-8; save it as 'CSV UTF-8 (comma delimited)', not 'Unicode Text'",
            [{"byte_offset": 0, "value": raw[:2].hex(" ").upper()}],
        )
    head = raw[:64]
    if len(head) >= 8 and head[1::2].count(0) >= len(head[1::2]) // 2 and head[0::2].count(0) == 0:
        raise Refusal(
            "utf16",
            "the file looks like UTF-16 without a byte-order mark (every other byte is 0), not UTF-8; "
            "save it as 'CSV UTF-8 (comma delimited)'",
            [{"byte_offset": 1}],
        )
    kind = None
    if raw.startswith(b"PK\x03\x04"):
        is_xlsx = b"[Content_Types].xml" in raw[:4096] or b"xl/" in raw[:4096]
        kind = "an Excel workbook (.xlsx)" if is_xlsx else "a ZIP archive"
    for magic, what in _SIGNATURES:
        if raw.startswith(magic):
            kind = what
    text_head = raw[:512].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text_head.startswith((b"<!doctype html", b"<html")):
        kind = "an HTML page (a web page or a download error saved as .csv)"
    if kind:
        raise Refusal(
            "wrong_file_type",
            f"the file is {kind}, not CSV text; open it and save it as 'CSV UTF-8 (comma delimited)'",
            [{"byte_offset": 0, "value": kind}],
        )


def decode(raw: bytes) -> str:
    _refuse_other_formats(raw)
    nul = raw.find(b"\x00")
    if nul >= 0:
        row = raw[:nul].count(b"\n") + 1
        raise Refusal(
            "binary_file",
            f"NUL byte at offset {nul} (row {row}): this is not a CSV text file",
            [{"byte_offset": nul, "row": row}],
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        row = raw[: err.start].count(b"\n") + 1
        raise Refusal(
            "not_utf8",
            f"not valid UTF-8 at byte offset {err.start} (row {row}, byte {raw[err.start]:#04x}); "
            "if it came from Excel, save it again as 'CSV UTF-8 (comma delimited)'",
            [{"byte_offset": err.start, "row": row, "value": f"{raw[err.start]:#04x}"}],
        ) from None


def _check_line_lengths(text: str) -> None:
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if len(line) > MAX_LINE_CHARS:
            raise Refusal(
                "line_too_long",
                f"row {number} is {len(line):,} characters long (at most {MAX_LINE_CHARS:,}): "
                "the file has lost its line breaks or a field has run on",
                [{"row": number, "value": f"{len(line)} characters"}],
            )


def _records(text: str) -> list[list[str]]:
    """CSV records (RFC 4180 quoting); a broken quote is a refusal naming the row."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[list[str]] = []
    try:
        for record in reader:
            records.append(record)
    except csv.Error as err:
        row = len(records) + 1
        if "unexpected end of data" in str(err) or "field larger than field limit" in str(err):
            raise Refusal(
                "unterminated_quote",
                f'a quoted field opened on row {row} is never closed: a " is missing',
                [{"row": row}],
            ) from None
        raise Refusal(
            "bad_quoting",
            f'row {row} breaks the CSV quoting rules ({err}): a " inside a field must be doubled ("") '
            "and the field itself quoted",
            [{"row": row, "value": str(err)}],
        ) from None
    return records


def read_file(path: Path) -> ParsedFile:
    """Run the shared checks; raise Refusal, or return the file's values ready to type."""
    name = parse_file_name(path)
    contract = all_contracts()[name.feed]
    check_period_started(name, contract)
    raw = path.read_bytes()
    text = decode(raw)
    _check_line_lengths(text)
    records = _records(text)
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        raise Refusal("no_header", "the file is empty: it needs at least the header row")
    header = [cell.strip().lower() for cell in records[0]]
    positions = _check_header(header, contract)
    rows, lines, notes, problems, warnings = [], [], [], [], []
    for index, record in enumerate(records[1:], start=2):
        if len(record) != len(header):
            shape = "blank line" if not record else f"{len(record)} fields, the header has {len(header)}"
            problems.append({"row": index, "rule": "row_shape", "value": shape})
            continue
        values: list[str | None] = []
        for column in contract.columns:
            pos = positions.get(column.name)
            value = record[pos] if pos is not None else ""
            values.append(_typed_text(value, column.type, column.name, index, contract, notes, problems, warnings))
        rows.append(values)
        lines.append(index)
    if problems:
        raise _value_refusal(problems)
    return ParsedFile(path, name, contract, hashlib.sha256(raw).hexdigest(), len(raw), rows, lines, notes, warnings)


def _check_header(header: list[str], contract: Contract) -> dict[str, int]:
    known = set(contract.column_names)
    if not known.intersection(header):
        for delimiter, called in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            cells = {c.strip().lower() for c in ",".join(header).split(delimiter)}
            if len(cells) > 1 and known.intersection(cells):
                raise Refusal(
                    "wrong_delimiter",
                    f"the fields are separated by {called}; the contract needs commas "
                    "(save as 'CSV UTF-8 (comma delimited)')",
                    [{"row": 1, "value": delimiter}],
                )
        raise Refusal("no_header", f"the first line has none of the {contract.feed} columns: it is not a header")
    blank = [i + 1 for i, h in enumerate(header) if h == ""]
    if blank:
        raise Refusal(
            "blank_column_name",
            f"header field(s) {', '.join(map(str, blank))} have no name (a comma at the end of the header?)",
            [{"row": 1, "value": f"field {i}"} for i in blank],
        )
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise Refusal("duplicate_columns", f"columns named more than once: {', '.join(duplicated)}")
    unknown = [h for h in header if h not in known]
    if unknown:
        named = []
        for column in unknown:
            close = difflib.get_close_matches(column, sorted(known - set(header)), n=1, cutoff=0.75)
            named.append(f"{column} (did you mean {close[0]}?)" if close else column)
        raise Refusal("unknown_columns", f"columns not in the {contract.feed} contract: {', '.join(named)}")
    missing = [c.name for c in contract.columns if c.required and c.name not in header]
    if missing:
        raise Refusal("missing_columns", f"required columns missing: {', '.join(missing)}")
    return {h: i for i, h in enumerate(header)}


def _typed_text(
    raw: str,
    type_: str,
    column: str,
    line: int,
    contract: Contract,
    notes: list[str],
    problems: list[dict],
    warnings: list[Finding],
) -> str | None:
    value = raw.strip()
    if value == "":
        return None
    if value != raw and type_ in ("code", "gss"):
        quoted = WITHHELD if column in contract.hidden_columns else f'"{raw}"'
        problems.append({"row": line, "column": column, "rule": "whitespace_in_code", "value": quoted})
        return None
    if type_ in ("integer", "money", "decimal") and value in SUPPRESSION_MARKERS:
        notes.append(f"line {line}: {column} '{value}' is a suppression marker, loaded as NULL")
        warnings.append(
            Finding(
                "suppression_marker",
                f"{column} '{value}' is a suppression marker: loaded as unknown (NULL), never zero",
                "warning",
                "completeness",
                (column,),
                line,
                _shown(value, column, contract),
            )
        )
        return None
    pattern = _VALUE_PATTERNS.get(type_)
    if pattern is None:
        return value
    if pattern.match(value) is None:
        rule = _money_rule(value) if type_ == "money" else f"bad_{type_}"
        problems.append({"row": line, "column": column, "rule": rule, "value": _shown(value, column, contract)})
        return None
    if type_ in ("date", "month"):
        try:
            date.fromisoformat(value if type_ == "date" else f"{value}-01")
        except ValueError:
            problems.append(
                {"row": line, "column": column, "rule": f"impossible_{type_}", "value": _shown(value, column, contract)}
            )
            return None
    return f"{value}-01" if type_ == "month" else value


def _shown(value: str, column: str, contract: Contract) -> str:
    """The value as a message may show it; computed only for a problem (per cell it was half the read time)."""
    return WITHHELD if column in contract.hidden_columns else value


def _money_rule(value: str) -> str:
    if any(sign in value for sign in "£$€"):
        return "money_currency_sign"
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", value):
        return "money_thousands_separator"
    if re.fullmatch(r"-?\d+\.\d{3,}", value):
        return "money_too_many_decimals"
    return "bad_money"


def _value_refusal(problems: list[dict]) -> Refusal:
    for problem in problems:
        if problem["rule"] == "row_shape":
            problem["rule"] = "bad_row_shape"
    findings = [
        Finding(
            p["rule"],
            f"{p.get('column', 'the row')} {RULE_TEXT[p['rule']]}",
            "error",
            "validity",
            (p["column"],) if "column" in p else (),
            p["row"],
            p["value"],
        )
        for p in problems
    ]
    first = problems[0]
    rule = first["rule"]
    if rule == "bad_row_shape":
        return Refusal(
            rule,
            f"{len(problems)} row(s) do not have as many fields as the header (first: row {first['row']}, "
            f"{first['value']})",
            problems[:MAX_EXAMPLES],
            findings,
        )
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem["rule"]] = counts.get(problem["rule"], 0) + 1
    broken = ", ".join(f"{n} {r}" for r, n in counts.items())
    return Refusal(
        rule,
        f"{len(problems)} value(s) cannot be read ({broken}); first: row {first['row']} "
        f"{first.get('column', '')} '{first['value']}' {RULE_TEXT[rule]}",
        problems[:MAX_EXAMPLES],
        findings,
    )
