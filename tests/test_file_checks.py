"""The shared file rules of ../shared/feeds/README.md: each refusal has its own code."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from feeds import treatment_row, write_feed_file, write_treatment_file

from misuse_warehouse import file_checks, settings
from misuse_warehouse.contracts import contract_for
from misuse_warehouse.file_checks import read_file
from misuse_warehouse.refusal import Refusal
from misuse_warehouse.simulate import write_feeds

HEADER = ",".join(contract_for("treatment").column_names)


def _valid_line() -> str:
    row = treatment_row()
    return ",".join(str(row.get(c, "")) for c in contract_for("treatment").column_names)


def _write(
    landing: Path, content: bytes, name: str = "treatment_P0001_2025-03.csv", folder: str = "treatment/2025-03"
) -> Path:
    path = landing / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _refusal(path: Path) -> Refusal:
    with pytest.raises(Refusal) as caught:
        read_file(path)
    return caught.value


def test_valid_file_is_read_with_months_as_dates(landing: Path) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row(), treatment_row(episode_id="E2")])
    parsed = read_file(path)
    assert parsed.name.feed == "treatment" and parsed.name.source == "P0001"
    assert len(parsed.rows) == 2 and parsed.line_numbers == [2, 3]
    assert parsed.rows[0][0] == "2025-03-01"
    assert parsed.rows[0][contract_for("treatment").column_names.index("ethnicity")] is None


@pytest.mark.parametrize(
    ("name", "folder", "code"),
    [
        ("treatment_P0001_2025-3.csv", "treatment/2025-03", "bad_file_name"),
        ("treatment_P01_2025-03.csv", "treatment/2025-03", "bad_file_name"),
        ("treatment_P0001_2025-13.csv", "treatment/2025-13", "bad_file_name"),
        ("treatment-P0001-2025-03.csv", "treatment/2025-03", "bad_file_name"),
        ("meals_P0001_2025-03.csv", "meals/2025-03", "unknown_feed"),
        ("treatment_P0001_2025-03.csv", "treatment/2025-04", "wrong_folder"),
        # Python's int() reads other scripts' digits: without ASCII-only names this file was accepted
        ("treatment_P0001_\u0662\u0660\u0662\u0665-\u0660\u0663.csv", "treatment/2025-03", "bad_file_name"),
    ],
)
def test_file_name_refusals(landing: Path, name: str, folder: str, code: str) -> None:
    path = _write(landing, f"{HEADER}\n".encode(), name, folder)
    assert _refusal(path).code == code


def test_source_codes_are_in_ascii_digits() -> None:
    treatment = contract_for("treatment")
    assert treatment.source_ok("P0001")
    assert not treatment.source_ok("P\u0660\u0660\u0660\u0661")  # Arabic-Indic digits match Python's \d


def test_windows_1252_is_refused_with_byte_offset_and_advice(landing: Path) -> None:
    content = f"{HEADER}\n".encode() + _valid_line().replace("E1", "Ré").encode("cp1252") + b"\n"
    refusal = _refusal(_write(landing, content))
    assert refusal.code == "not_utf8"
    assert refusal.details[0]["byte_offset"] == content.index(b"\xe9")
    assert "CSV UTF-8" in refusal.message


def test_bom_and_header_case_spaces_and_order_are_accepted(landing: Path) -> None:
    names = list(contract_for("treatment").column_names)
    row = treatment_row()
    header = ",".join(f" {n.upper()} " for n in reversed(names))
    line = ",".join(str(row.get(n, "")) for n in reversed(names))
    parsed = read_file(_write(landing, b"\xef\xbb\xbf" + f"{header}\n{line}\n\n\n".encode()))
    assert len(parsed.rows) == 1 and parsed.rows[0][1] == "P0001"


def test_header_only_file_is_valid(landing: Path) -> None:
    assert read_file(_write(landing, f"{HEADER}\n".encode())).rows == []


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "no_header"),
        (b"\n\n", "no_header"),
        (b"2025-03,P0001,E1\n", "no_header"),
        (b"\x00\x01\x02binary", "binary_file"),
    ],
)
def test_structure_refusals(landing: Path, content: bytes, code: str) -> None:
    assert _refusal(_write(landing, content)).code == code


def test_missing_unknown_and_duplicated_columns_are_named(landing: Path) -> None:
    missing = HEADER.replace("episode_id,", "")
    refusal = _refusal(_write(landing, f"{missing}\n".encode()))
    assert refusal.code == "missing_columns" and "episode_id" in refusal.message
    refusal = _refusal(_write(landing, f"{HEADER},favourite_colour\n".encode()))
    assert refusal.code == "unknown_columns" and "favourite_colour" in refusal.message
    refusal = _refusal(_write(landing, f"{HEADER},episode_id\n".encode()))
    assert refusal.code == "duplicate_columns" and "episode_id" in refusal.message


def test_optional_column_may_be_absent(landing: Path) -> None:
    header = HEADER.replace(",ethnicity", "")
    line = _valid_line()
    values = line.split(",")
    del values[contract_for("treatment").column_names.index("ethnicity")]
    parsed = read_file(_write(landing, f"{header}\n{','.join(values)}\n".encode()))
    assert parsed.rows[0][contract_for("treatment").column_names.index("ethnicity")] is None


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("referral_date", "10/01/2025", "bad_date"),
        ("referral_date", "2025-02-30", "impossible_date"),
        ("submission_month", "March 2025", "bad_month"),
        ("top_start_days_used", "12.5", "bad_integer"),
        ("top_start_days_used", "\u0661\u0662", "bad_integer"),  # Arabic-Indic digits: Postgres reads ASCII only
        ("referral_date", "\u0662\u0660\u0662\u0665-01-10", "bad_date"),
    ],
)
def test_value_type_refusals_give_line_and_column(landing: Path, field: str, value: str, code: str) -> None:
    rows = [treatment_row(), treatment_row(episode_id="E2", **{field: value})]
    path = write_feed_file(landing, "treatment", "P0001", "2025-03", rows)
    refusal = _refusal(path)
    assert refusal.code == code
    assert refusal.details[0]["row"] == 3 and refusal.details[0]["column"] == field


def test_personal_values_are_withheld_from_refusals(landing: Path) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row(client_dob="01/02/1980")])
    refusal = _refusal(path)
    assert refusal.code == "bad_date"
    assert "01/02/1980" not in str(refusal.as_dict())


def test_row_with_wrong_number_of_fields(landing: Path) -> None:
    refusal = _refusal(_write(landing, f"{HEADER}\n{_valid_line()},extra\n".encode()))
    assert refusal.code == "bad_row_shape" and refusal.details[0]["row"] == 2


def test_suppression_marker_in_a_number_is_null_with_a_note(landing: Path) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row(top_start_days_used="*")])
    parsed = read_file(path)
    assert parsed.rows[0][contract_for("treatment").column_names.index("top_start_days_used")] is None
    assert "suppression marker" in parsed.notes[0]


def _cell_by_cell(path: Path) -> tuple[list, list[int], list[str]]:
    """The exact path: every cell typed on its own (what a file with a problem goes through)."""
    parsed_name = file_checks.parse_file_name(path)
    contract = contract_for(parsed_name.feed)
    records = file_checks._records(file_checks.decode(path.read_bytes()))
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    header = [cell.strip().lower() for cell in records[0]]
    positions = file_checks._check_header(header, contract)
    notes: list[str] = []
    columns, lines = file_checks._typed_cells(records[1:], len(header), positions, contract, notes, [])
    return columns, lines, notes


def test_columns_typed_from_distinct_values_match_cell_by_cell(tmp_path: Path) -> None:
    """The fast path (each distinct value of a column checked once) reads every feed as the exact path does."""
    write_feeds(tmp_path, ["E06000035"], ["2025-03"], seed=7)
    padded = treatment_row(episode_id=" E9 ", client_initials="CD ")
    write_treatment_file(tmp_path, "P0002", "2025-03", [padded, treatment_row(episode_id="E10", triage_date="")])
    paths = sorted(tmp_path.glob("*/*/*.csv"))
    assert {p.parent.parent.name for p in paths} >= {"treatment", "funding", "contracts", "grants", "cj-return"}
    for path in paths:
        parsed = read_file(path)
        columns, lines, notes = _cell_by_cell(path)
        assert [list(c) for c in parsed.columns] == columns, path.name
        assert (parsed.line_numbers, parsed.notes) == (lines, notes), path.name
    stripped = read_file(tmp_path / "treatment/2025-03/treatment_P0002_2025-03.csv").rows[0]
    names = contract_for("treatment").column_names
    assert [stripped[names.index(c)] for c in ("episode_id", "client_initials")] == ["E9", "CD"]


def _read_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object, list[object]]:
    """read_file's outcome (the parsed values, or the refusal) through Arrow's reader and through the exact path."""

    def outcome() -> object:
        try:
            parsed = read_file(path)
        except Refusal as refusal:
            return ("refused", refusal.code, refusal.message, refusal.details)
        return (parsed.columns, parsed.line_numbers, parsed.notes, parsed.warnings)

    with monkeypatch.context() as patch:
        arrow_calls: list[object] = []  # what Arrow's reader returned: None when it stood aside
        original = file_checks._read_unquoted
        patch.setattr(file_checks, "_read_unquoted", lambda *a: arrow_calls.append(original(*a)) or arrow_calls[-1])
        through_arrow = outcome()
    with monkeypatch.context() as patch:
        patch.setattr(file_checks, "_read_unquoted", lambda *a: None)
        exact = outcome()
    return through_arrow, exact, arrow_calls


def _line(**fields: str) -> str:
    row = treatment_row(**fields)
    return ",".join(str(row.get(c, "")) for c in contract_for("treatment").column_names)


LINE, LINE_2 = _line(), _line(episode_id="E2")
ESCAPED = _line(episode_id="E\\1\tx")
COMMAS = "," * HEADER.count(",")
ODD_FILES = {
    "plain": f"{HEADER}\n{LINE}\n",
    "crlf": f"{HEADER}\r\n{LINE}\r\n{LINE_2}\r\n",
    "lone_cr": f"{HEADER}\r{LINE}\r{LINE_2}",
    "bom_no_final_newline": f"\ufeff{HEADER}\n{LINE}",
    "tab_and_backslash_in_text": f"{HEADER}\n{ESCAPED}\n{LINE_2}\n",
    "empty_values": f"{HEADER}\n{_line(triage_date='', ethnicity='')}\n",
    "blank_record_at_end": f"{HEADER}\n{LINE}\n{COMMAS}\n",
    "blank_record_inside": f"{HEADER}\n{LINE}\n{COMMAS}\n{LINE_2}\n",
    "spaces_record_at_end": f"{HEADER}\n{LINE}\n{COMMAS.replace(',', ' ,')}\n",
    "blank_lines_at_end": f"{HEADER}\n{LINE}\n\n\n",
    "blank_line_inside": f"{HEADER}\n{LINE}\n\n{LINE_2}\n",
    "short_row": f"{HEADER}\n{LINE}\n{LINE_2.rsplit(',', 1)[0]}\n",
    "long_row": f"{HEADER}\n{LINE},extra\n",
    "blank_first_line": f"\n{HEADER}\n{LINE}\n",
    "header_only": f"{HEADER}\n",
    "header_spaces_and_case": f"{HEADER.upper().replace(',', ' , ')}\n{LINE}\n",
    "unknown_column": f"{HEADER},shoe_size\n{LINE},9\n",
    "padded_code": f"{HEADER}\n{_line(modality=' pharmacological ')}\n",
    "padded_text": f"{HEADER}\n{_line(episode_id=' E9 ')}\n",
    "suppressed_number": f"{HEADER}\n{_line(top_start_days_used='*')}\n",
    "bad_date": f"{HEADER}\n{_line(referral_date='10/01/2025')}\n",
    "impossible_month": f"{HEADER}\n{_line(submission_month='2025-13')}\n",
    "non_ascii_text": f"{HEADER}\n{_line(episode_id='É1')}\n",
    "quoted": f"{HEADER}\n{_line(episode_id=chr(34) + 'E,1' + chr(34))}\n",
}


@pytest.mark.parametrize("content", ODD_FILES.values(), ids=ODD_FILES.keys())
def test_arrow_reader_reads_as_the_exact_path(landing: Path, content: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Line endings, blank and odd rows, escapes: Arrow's reader gives what the exact path gives, or stands aside."""
    through_arrow, exact, _ = _read_both(_write(landing, content.encode()), monkeypatch)
    assert through_arrow == exact


ARROW_READS = [
    "plain", "crlf", "lone_cr", "bom_no_final_newline", "tab_and_backslash_in_text", "empty_values",
    "blank_record_inside", "header_only", "header_spaces_and_case", "padded_text", "non_ascii_text",
]  # fmt: skip


@pytest.mark.parametrize("case", ARROW_READS)
def test_arrow_reader_takes_files_without_quotes_or_problems(
    landing: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, arrow_calls = _read_both(_write(landing, ODD_FILES[case].encode()), monkeypatch)
    assert arrow_calls[0] is not None


# Bad input at any size: refused before it is read whole ----------------------------------------

# Peak memory of one read_file (and of hashing the refused file, as loader.refuse does) in a fresh
# interpreter: the peak resident set after less before (VmHWM, which exec resets; ru_maxrss would carry
# the forking test process's), and tracemalloc's peak of Python allocations.
_MEASURE = """
import json, resource, sys, tracemalloc
from pathlib import Path
from misuse_warehouse.file_checks import landed_digest, read_file
from misuse_warehouse.refusal import Refusal

def peak_rss():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)

path = Path(sys.argv[1])
before = peak_rss()
tracemalloc.start()
try:
    read_file(path)
    code = message = None
except Refusal as refusal:
    code, message = refusal.code, refusal.message
sha256, size = landed_digest(path)
traced = tracemalloc.get_traced_memory()[1]
after = peak_rss()
measured = {"code": code, "message": message, "size": size, "traced_peak": traced}
print(json.dumps(measured | {"rss_before": before, "rss_peak": after, "rss_growth": after - before}))
"""
MEMORY_BOUND = 64 * 2**20  # today's 100 MB line: 419 MB traced, 198 MB of RSS


def _measured(path: Path) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True, timeout=300
    )
    measured = json.loads(done.stdout)
    print(f"{path.name}: {measured}")  # the figures, with -s
    return measured


def test_a_sparse_multi_gigabyte_file_is_refused_unread(landing: Path) -> None:
    path = _write(landing, b"")
    size = 5 * 2**30 + 1  # 5 GiB of holes: no disk used; read whole it would be 5 GiB of memory
    os.truncate(path, size)
    measured = _measured(path)
    assert measured["code"] == "file_too_large"
    assert f"{size:,} bytes" in measured["message"] and "MISUSE_WAREHOUSE_MAX_FILE_BYTES" in measured["message"]
    assert measured["size"] == size  # hashed (the audit's identity) in pieces
    assert measured["rss_growth"] < MEMORY_BOUND and measured["traced_peak"] < MEMORY_BOUND


def test_a_100_mb_single_line_is_refused_in_pieces(landing: Path) -> None:
    path = _write(landing, HEADER.encode() + b"\n" + b"x" * (100 * 2**20))  # under the size limit, one row
    measured = _measured(path)
    assert measured["code"] == "line_too_long"
    assert measured["message"].startswith(f"row 2 is {100 * 2**20:,} bytes long")
    assert measured["rss_growth"] < MEMORY_BOUND and measured["traced_peak"] < MEMORY_BOUND


def test_the_size_limit_is_configurable(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    monkeypatch.setenv(settings.MAX_FILE_BYTES_ENV, str(path.stat().st_size))
    assert read_file(path).row_count == 1  # the limit itself is allowed
    monkeypatch.setenv(settings.MAX_FILE_BYTES_ENV, str(path.stat().st_size - 1))
    refusal = _refusal(path)
    assert refusal.code == "file_too_large" and f"{path.stat().st_size - 1:,} bytes" in refusal.message
    for bad in ("0", "1GiB", "-5", "\u0661\u0660"):
        monkeypatch.setenv(settings.MAX_FILE_BYTES_ENV, bad)
        with pytest.raises(ValueError, match=settings.MAX_FILE_BYTES_ENV):
            settings.max_file_bytes()
    monkeypatch.delenv(settings.MAX_FILE_BYTES_ENV)
    assert settings.max_file_bytes() == 2**30


def test_a_long_line_is_found_across_pieces_with_its_row(landing: Path) -> None:
    """Rows counted as the CSV readers count them (\\r\\n, \\r, \\n), a \\r\\n split between two pieces once."""
    chunk = file_checks.SCAN_CHUNK_BYTES
    rows = (HEADER + "\r\n" + _valid_line() + "\r" + _valid_line() + "\n").encode()
    refusal = _refusal(_write(landing, rows + b"y" * (chunk + 5) + b"\r\n"))
    assert refusal.code == "line_too_long" and refusal.details == [{"row": 4, "value": f"{chunk + 5} bytes"}]
    # blank rows up to a \r that is the first piece's last byte, its \n the second's first: one row ends
    blank_rows = chunk - 1 - len(rows)
    straddling = rows + b"\n" * blank_rows + b"\r\n" + b"z" * (file_checks.LINE_BYTES_CERTAINLY_TOO_LONG + 1)
    assert straddling[chunk - 1 : chunk + 1] == b"\r\n"
    refusal = _refusal(_write(landing, straddling))
    assert refusal.code == "line_too_long" and refusal.details[0]["row"] == 4 + blank_rows + 1
    # shorter over-long lines are still measured in characters on the whole text
    refusal = _refusal(_write(landing, (HEADER + "\n" + "é" * (file_checks.MAX_LINE_CHARS + 1) + "\n").encode()))
    assert refusal.code == "line_too_long" and f"{file_checks.MAX_LINE_CHARS + 1:,} characters" in refusal.message


def test_what_a_file_is_is_named_before_its_lines_are_measured(landing: Path) -> None:
    """A workbook has no line breaks to speak of: it is refused as a workbook, not as one long line."""
    workbook = b"PK\x03\x04" + b"[Content_Types].xml" + b"w" * (file_checks.LINE_BYTES_CERTAINLY_TOO_LONG * 2)
    assert _refusal(_write(landing, workbook)).code == "wrong_file_type"
    binary = b"a" * (file_checks.LINE_BYTES_CERTAINLY_TOO_LONG * 2) + b"\x00"
    assert _refusal(_write(landing, binary)).code == "binary_file"


def test_a_symbolic_link_is_refused_never_followed(landing: Path, tmp_path: Path) -> None:
    outside = write_treatment_file(tmp_path / "elsewhere", "P0001", "2025-03", [treatment_row()])
    assert read_file(outside).row_count == 1  # a good file...
    link = landing / "treatment" / "2025-03" / outside.name
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    refusal = _refusal(link)  # ...linked into landing is refused
    assert refusal.code == "symlink" and "never followed" in refusal.message
    assert str(outside) not in refusal.message  # where it points is not the submitter's business
    sha256, size = file_checks.landed_digest(link)
    assert size == len(str(outside)) and sha256 == hashlib.sha256(str(outside).encode()).hexdigest()
    # a linked month folder is refused too
    month = landing / "treatment" / "2025-04"
    month.symlink_to(outside.parent, target_is_directory=True)
    linked = month / outside.name.replace("2025-03", "2025-04")
    outside.parent.joinpath(linked.name).write_bytes(outside.read_bytes())
    assert _refusal(month / linked.name).code == "symlink"


def test_a_pipe_is_refused_without_waiting_for_a_writer(landing: Path) -> None:
    path = landing / "treatment" / "2025-03" / "treatment_P0001_2025-03.csv"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    assert _refusal(path).code == "not_a_regular_file"
    assert file_checks.landed_digest(path) == (hashlib.sha256(b"").hexdigest(), 0)
