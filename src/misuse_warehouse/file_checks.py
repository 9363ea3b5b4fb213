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
import errno
import hashlib
import io
import os
import re
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from misuse_warehouse import settings
from misuse_warehouse.contracts import Contract, all_contracts
from misuse_warehouse.refusal import Finding, Refusal

FILE_NAME = re.compile(r"^(?P<feed>[a-z][a-z-]*)_(?P<source>[A-Za-z0-9]+)_(?P<period>[0-9]{4}-[0-9]{2})\.csv$")
SUPPRESSION_MARKERS = frozenset({"*", "c", "x", ":"})
MAX_EXAMPLES = 20
# No contract row comes near this (a treatment row is under 600 characters); a longer line is a
# file that lost its line breaks or a field gone wild, and the CSV reader would choke on it.
MAX_LINE_CHARS = 10_000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A line of more bytes than this has more than MAX_LINE_CHARS characters whatever its text (UTF-8 takes at
# most 4 bytes a character), so it is refused while the file is scanned in pieces, before it is read whole.
LINE_BYTES_CERTAINLY_TOO_LONG = 4 * MAX_LINE_CHARS
SCAN_CHUNK_BYTES = 1 << 20
WITHHELD = "(withheld: personal data)"
TIMEZONE = ZoneInfo("Europe/London")

# ASCII digits only: Python's \d also matches other scripts' digits, which Postgres cannot read as numbers.
_VALUE_FORMS = {
    "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "month": r"[0-9]{4}-[0-9]{2}",
    "integer": r"-?[0-9]+",
    "money": r"-?[0-9]+(?:\.[0-9]{1,2})?",
    "decimal": r"-?[0-9]+(?:\.[0-9]+)?",
}
_VALUE_PATTERNS = {type_: re.compile(rf"^{form}$") for type_, form in _VALUE_FORMS.items()}
# A column's distinct values joined by NUL (never in a decoded file) match this when each is empty or reads
# as it stands: in its type's form, or for text and codes, without surrounding whitespace.
_CLEAN_VALUE = {**_VALUE_FORMS, "text": r"[^\s\x00](?:[^\x00]*[^\s\x00])?"}
_CLEAN_COLUMN = {
    type_: re.compile(rf"(?:{form})?(?:\x00(?:{form})?)*")
    for type_, form in {**_CLEAN_VALUE, "code": _CLEAN_VALUE["text"], "gss": _CLEAN_VALUE["text"]}.items()
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
    """A file that passed the shared checks: values as text (null for empty), a column each in contract order.

    Months are given as their first day (YYYY-MM-01) so that they load as dates. `table` (Arrow,
    one string column per contract column) is what the loader and the raw gate read; `columns` and
    `rows` are the same values as Python lists, made on first use.
    """

    path: Path
    name: FileName
    contract: Contract
    sha256: str
    size: int
    table: pa.Table
    line_numbers: list[int]
    notes: list[str]
    warnings: list[Finding] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.line_numbers)

    def column(self, name: str) -> list[str | None]:
        return self.table.column(name).to_pylist()

    @cached_property
    def columns(self) -> list[list[str | None]]:
        return [column.to_pylist() for column in self.table.columns]

    @cached_property
    def rows(self) -> list[tuple[str | None, ...]]:
        return list(zip(*self.columns, strict=True))


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


def open_landed(path: Path) -> BinaryIO:
    """The landed file opened for reading, or a Refusal when it is not a plain file within the size limit.

    A symbolic link (the file, or its month or feed folder) could point at anything the worker may
    read — another area's archive, a system file — so it is refused by what it is and never
    followed (O_NOFOLLOW closes the gap between looking and opening). A FIFO or device is refused
    unread too (opened non-blocking: a FIFO would otherwise hang the task). The size is taken from
    the open file before a byte is read: a file over `settings.max_file_bytes()` is refused whole.
    """
    for folder in (path.parent, path.parent.parent):
        if folder.is_symlink():
            raise _symlink_refusal(f"its folder {folder.name}/ is a symbolic link")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP or path.is_symlink():
            raise _symlink_refusal("the file is a symbolic link") from None
        raise
    handle = os.fdopen(fd, "rb")
    try:
        found = os.fstat(handle.fileno())
        if not stat.S_ISREG(found.st_mode):
            raise Refusal(
                "not_a_regular_file",
                "the name is not a plain file (a pipe, device or socket): put the CSV file itself in landing",
            )
        if found.st_size > settings.max_file_bytes():
            raise _too_large(found.st_size)
        os.set_blocking(handle.fileno(), True)
    except BaseException:
        handle.close()
        raise
    return handle


def _too_large(size: int, at_least: str = "") -> Refusal:
    limit = settings.max_file_bytes()
    return Refusal(
        "file_too_large",
        f"the file is {at_least}{size:,} bytes, over the limit of {limit:,} bytes ({settings.MAX_FILE_BYTES_ENV}); "
        "it was not read. Check the export (a whole history, or a query that ran away) and send the month's file only",
        [{"value": f"{at_least}{size} bytes"}],
    )


def _symlink_refusal(what: str) -> Refusal:
    return Refusal(
        "symlink",
        f"{what}: links in landing are never followed; copy the file itself into landing",
    )


def landed_digest(path: Path) -> tuple[str, int]:
    """(sha256, bytes) of a landed file, read in pieces: the audit's identity of any file, refused ones included.

    Never follows a link: a symbolic link is identified by the path it holds (its own bytes), a pipe
    or device by nothing (empty), so recording a refusal never reads what the refusal kept out.
    """
    found = path.lstat()
    if stat.S_ISLNK(found.st_mode):
        target = os.fsencode(os.readlink(path))
        return hashlib.sha256(target).hexdigest(), len(target)
    if not stat.S_ISREG(found.st_mode):
        return hashlib.sha256(b"").hexdigest(), 0
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest(), os.fstat(handle.fileno()).st_size


def _scan_lines(handle: BinaryIO) -> None:
    """Refuse, reading 1 MiB at a time, a file that would be costly to read whole for nothing.

    What the file really is (a workbook, an archive) is named from its first piece, as `decode`
    does; then a line too long for any contract row in any encoding (a file that lost its line
    breaks, one field run on for 100 MB) is refused with its row and length. Memory stays at one
    piece whatever the file. Shorter problems, and any file with a NUL byte (refused as binary by
    `decode`, which names the row), are left to the checks on the whole file.

    Lines are neither split nor counted: each step looks for the last line break within the longest
    line allowed from the start of the current row (`rfind`, in C), so a usual piece costs a few
    dozen steps whatever its number of rows; rows are counted only to name a row refused.
    """
    limit = LINE_BYTES_CERTAINLY_TOO_LONG
    open_bytes, pending_cr = 0, False  # bytes so far of the row open at the piece's start
    long_row: int | None = None  # a row found too long, measured to its end
    first = True
    while True:
        offset = handle.tell()
        chunk = handle.read(SCAN_CHUNK_BYTES)
        if not chunk:
            break
        if first:
            _refuse_other_formats(chunk)
            first = False
        if b"\x00" in chunk:
            return
        skip = 1 if pending_cr and chunk.startswith(b"\n") else 0  # a \r\n split over two pieces
        data = chunk[skip:]
        pending_cr = chunk.endswith(b"\r")
        start = 0
        while long_row is None:
            window = start + (limit - open_bytes) + 1
            last = max(data.rfind(b"\n", start, window), data.rfind(b"\r", start, window))
            if last >= 0:
                start, open_bytes = last + 1, 0
                if start >= len(data):
                    break
            elif window > len(data):  # the row runs on into the next piece, still short enough
                open_bytes += len(data) - start
                break
            else:  # no line break within the longest row allowed
                long_row = _row_at(handle, offset + skip + start)
        if long_row is None:
            continue
        end = _next_line_break(data, start)
        if end >= 0:
            raise _line_too_long(long_row, open_bytes + end - start)
        open_bytes += len(data) - start
        start = 0
    if long_row is not None:
        raise _line_too_long(long_row, open_bytes)


def _row_at(handle: BinaryIO, offset: int) -> int:
    """The row (from 1) of the byte at `offset`, counted from the file's start; the handle's position is kept.

    Only for a refusal: counting line breaks costs more than the scan itself.
    """
    here = handle.tell()
    handle.seek(0)
    row, left, pending_cr = 1, offset, False
    while left > 0 and (piece := handle.read(min(SCAN_CHUNK_BYTES, left))):
        left -= len(piece)
        row += _line_breaks(piece, len(piece)) - (pending_cr and piece.startswith(b"\n"))
        pending_cr = piece.endswith(b"\r")
    handle.seek(here)
    return row


def _line_breaks(data: bytes, end: int) -> int:
    """Line breaks in data[:end], a \\r\\n once, as the CSV readers count records."""
    return data.count(b"\n", 0, end) + data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)


def _next_line_break(data: bytes, start: int) -> int:
    """Where the first line break at or after `start` is, or -1."""
    found = [i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0]
    return min(found, default=-1)


def _line_too_long(row: int, length: int) -> Refusal:
    return Refusal(
        "line_too_long",
        f"row {row} is {length:,} bytes long (at most {MAX_LINE_CHARS:,} characters): "
        "the file has lost its line breaks or a field has run on",
        [{"row": row, "value": f"{length} bytes"}],
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


def _check_line_lengths(raw_lines: list[bytes], text: str) -> None:
    # a line's UTF-8 bytes are at least its characters: the bytes' lines, split in C, clear the usual file
    if max(map(len, raw_lines), default=0) <= MAX_LINE_CHARS:
        return
    lines = _LINE_BREAK.split(text)
    if max(map(len, lines), default=0) > MAX_LINE_CHARS:
        number, length = next((n, len(line)) for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_CHARS)
        raise Refusal(
            "line_too_long",
            f"row {number} is {length:,} characters long (at most {MAX_LINE_CHARS:,}): "
            "the file has lost its line breaks or a field has run on",
            [{"row": number, "value": f"{length} characters"}],
        )


def _records(text: str) -> list[list[str]]:
    """CSV records (RFC 4180 quoting); a broken quote is a refusal naming the row."""
    try:
        return list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        pass  # read again record by record, to name the row
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
    with open_landed(path) as handle:
        _scan_lines(handle)
        handle.seek(0)
        raw = handle.read(settings.max_file_bytes() + 1)  # a file still growing is not read past the limit
    if len(raw) > settings.max_file_bytes():
        raise _too_large(len(raw), "at least ")
    text = decode(raw)
    raw_lines = raw.splitlines()  # at \n, \r and \r\n, as the CSV readers split records
    _check_line_lengths(raw_lines, text)
    sha256 = hashlib.sha256(raw).hexdigest()
    table = _read_unquoted(raw, text, raw_lines, contract)
    if table is not None:
        lines = list(range(2, table.num_rows + 2))
        return ParsedFile(path, name, contract, sha256, len(raw), table, lines, [])
    records = _records(text)
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        raise Refusal("no_header", "the file is empty: it needs at least the header row")
    header = [cell.strip().lower() for cell in records[0]]
    positions = _check_header(header, contract)
    body = records[1:]
    columns = _typed_columns(body, len(header), positions, contract)
    notes: list[str] = []
    warnings: list[Finding] = []
    if columns is None:
        columns, lines = _typed_cells(body, len(header), positions, contract, notes, warnings)
    else:
        lines = list(range(2, len(body) + 2))
    table = pa.table([pa.array(column, pa.string()) for column in columns], names=contract.column_names)
    return ParsedFile(path, name, contract, sha256, len(raw), table, lines, notes, warnings)


def _read_unquoted(raw: bytes, text: str, raw_lines: list[bytes], contract: Contract) -> pa.Table | None:
    """The usual file read and typed in C (Arrow's CSV reader); None when it needs the exact path below.

    Only a file without a quote character, whose records are then its lines split at commas, so
    both readers see the same values. Anything else — a header the checks would refuse, a row of the
    wrong shape, blank rows at the end, a value that does not read cleanly — returns None, and the
    exact path reads the file again and names every row and cell. The outcome is the same either way.
    """
    header_line = text.partition("\n")[0].partition("\r")[0]
    if b'"' in raw or not header_line.strip() or b"" in raw_lines:  # quotes, or a blank line
        return None
    header = [cell.strip().lower() for cell in header_line.split(",")]
    try:
        positions = _check_header(header, contract)
    except Refusal:
        return None
    names = [f"f{i}" for i in range(len(header))]
    try:
        body = pa_csv.read_csv(
            pa.py_buffer(raw.removeprefix(b"\xef\xbb\xbf")),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
            parse_options=pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, check_utf8=False
            ),
        )
    except pa.ArrowInvalid:  # a row of another width
        return None
    if body.num_rows and not any(value.strip() for value in body.slice(body.num_rows - 1).to_pylist()[0].values()):
        return None  # blank records at the end: the exact path drops them
    typed = []
    for column in contract.columns:
        position = positions.get(column.name)
        if position is None:
            typed.append(pa.nulls(body.num_rows, pa.string()))
            continue
        column_typed = _typed_arrow_column(body.column(position), column.type)
        if column_typed is None:
            return None
        typed.append(column_typed)
    return pa.table(typed, names=contract.column_names)


def _typed_arrow_column(values: pa.ChunkedArray, type_: str) -> pa.ChunkedArray | None:
    """`_typed_column` for an Arrow column: each distinct value checked once, the column mapped in C."""
    distinct = pc.unique(values).to_pylist()
    if _is_clean(distinct, type_):
        if "" in distinct:
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        return pc.binary_join_element_wise(values, "-01", "") if type_ == "month" else values
    as_typed = _typed_distinct(distinct, type_)
    if as_typed is None:
        return None
    typed = pa.array(list(as_typed.values()), pa.string())
    return typed.take(pc.index_in(values, value_set=pa.array(list(as_typed), pa.string())))


def _typed_columns(
    body: list[list[str]], width: int, positions: dict[str, int], contract: Contract
) -> list[Sequence[str | None]] | None:
    """Every column typed by checking each of its distinct values once; None when a value needs a closer look.

    A file whose every value reads cleanly (the usual file) is typed at C speed. Any row of the
    wrong shape, value that cannot be read, or suppression marker sends the file to `_typed_cells`,
    which names each row and cell: the outcome is the same either way.
    """
    if any(length != width for length in set(map(len, body))):
        return None
    submitted = list(zip(*body, strict=True)) if body else [()] * width
    typed: list[Sequence[str | None]] = []
    for column in contract.columns:
        position = positions.get(column.name)
        if position is None:
            typed.append((None,) * len(body))
            continue
        values = submitted[position]
        column_typed = _typed_column(values, column.type)
        if column_typed is None:
            return None
        typed.append(column_typed)
    return typed


def _typed_column(values: Sequence[str], type_: str) -> Sequence[str | None] | None:
    """One column typed from its distinct values, or None when one of them breaks a rule."""
    distinct = set(values)
    if _is_clean(distinct, type_):
        if type_ == "month":
            return [f"{v}-01" if v else None for v in values]
        return [v or None for v in values] if "" in distinct else values
    as_typed = _typed_distinct(distinct, type_)
    if as_typed is None:
        return None
    return list(map(as_typed.__getitem__, values))


def _is_clean(distinct: Collection[str], type_: str) -> bool:
    """Every distinct value is empty or reads as it stands (in its type's form, no surrounding spaces)."""
    return bool(_CLEAN_COLUMN[type_].fullmatch("\x00".join(distinct))) and _calendar_days(distinct, type_)


def _typed_distinct(distinct: Collection[str], type_: str) -> dict[str, str | None] | None:
    """Each distinct value as typed, or None when one of them breaks a rule (or is a suppression marker)."""
    as_typed: dict[str, str | None] = {}
    for value in distinct:
        as_typed[value], rule = _typed_value(value, type_)
        if rule:
            return None
    return as_typed


def _calendar_days(distinct: Collection[str], type_: str) -> bool:
    """Dates and months in form are days and months of the calendar (no 30 February, no month 13)."""
    if type_ not in ("date", "month"):
        return True
    try:
        for value in filter(None, distinct):
            date.fromisoformat(value if type_ == "date" else f"{value}-01")
    except ValueError:
        return False
    return True


def _typed_cells(
    body: list[list[str]],
    width: int,
    positions: dict[str, int],
    contract: Contract,
    notes: list[str],
    warnings: list[Finding],
) -> tuple[list[Sequence[str | None]], list[int]]:
    """Cell by cell: every problem named by row and column (a refusal), every suppression marker noted."""
    rows, lines, problems = [], [], []
    for index, record in enumerate(body, start=2):
        if len(record) != width:
            shape = "blank line" if not record else f"{len(record)} fields, the header has {width}"
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
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in contract.columns]
    return columns, lines


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


def _typed_value(raw: str, type_: str) -> tuple[str | None, str | None]:
    """(the value as typed text, None) or (None, the rule it breaks); empty is (None, None).

    Suppression markers in a number column come back as the rule `suppression_marker`: the
    caller notes them (loaded as NULL), they refuse nothing.
    """
    value = raw.strip()
    if value == "":
        return None, None
    if value != raw and type_ in ("code", "gss"):
        return None, "whitespace_in_code"
    if type_ in ("integer", "money", "decimal") and value in SUPPRESSION_MARKERS:
        return None, "suppression_marker"
    pattern = _VALUE_PATTERNS.get(type_)
    if pattern is None:
        return value, None
    if pattern.match(value) is None:
        return None, _money_rule(value) if type_ == "money" else f"bad_{type_}"
    if type_ in ("date", "month"):
        try:
            date.fromisoformat(value if type_ == "date" else f"{value}-01")
        except ValueError:
            return None, f"impossible_{type_}"
    return (f"{value}-01" if type_ == "month" else value), None


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
    typed, rule = _typed_value(raw, type_)
    if rule == "suppression_marker":
        value = raw.strip()
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
    elif rule == "whitespace_in_code":
        quoted = WITHHELD if column in contract.hidden_columns else f'"{raw}"'
        problems.append({"row": line, "column": column, "rule": rule, "value": quoted})
    elif rule:
        problems.append({"row": line, "column": column, "rule": rule, "value": _shown(raw.strip(), column, contract)})
    return typed


def _shown(value: str, column: str, contract: Contract) -> str:
    """The value as a message may show it; computed only for a problem (per cell it was half the read time)."""
    return WITHHELD if column in contract.hidden_columns else value


def _money_rule(value: str) -> str:
    if any(sign in value for sign in "£$€"):
        return "money_currency_sign"
    if re.fullmatch(r"-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?", value):
        return "money_thousands_separator"
    if re.fullmatch(r"-?[0-9]+\.[0-9]{3,}", value):
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
