"""Deliberately broken files, and awkward-but-valid ones, for testing the gate.

Each defect rewrites one file of a finished run so that it breaks exactly one
rule of the contracts, and each must be refused for that reason. Each accepted
variant rewrites one file in a way the common rules explicitly allow, and must
be accepted unchanged in meaning. Targets are chosen deterministically: the
first file of the defect's feed (in the order they were written: month, feed,
source) that can carry it and that no other requested defect has taken, so
several defects in one run never pile onto the same file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from misuse_warehouse.months import age_on, last_day, month_text, parse_month


@dataclass
class Table:
    """A CSV file opened for editing: header and rows as lists of strings."""

    header: list[str]
    rows: list[list[str]]

    def col(self, name: str) -> int:
        return self.header.index(name)

    def text(self, with_header: bool = True, quoting: int = csv.QUOTE_MINIMAL, line_end: str = "\n") -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=line_end, quoting=quoting)
        if with_header:
            writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()


Edit = Callable[[Table, str], bool]
"""Change the table in place for the file's month (``YYYY-MM``); False if it cannot."""


@dataclass(frozen=True)
class Kind:
    name: str
    feed: str
    description: str
    refusal: str
    edit: Edit
    render: Callable[[Table], bytes] = lambda table: table.text().encode("utf-8")
    rename: Callable[[Path], Path] | None = None


def _find(table: Table, test: Callable[[dict[str, str]], bool]) -> int | None:
    for number, row in enumerate(table.rows):
        if test(dict(zip(table.header, row, strict=True))):
            return number
    return None


def _set(table: Table, index: int, **values: str) -> None:
    for name, value in values.items():
        table.rows[index][table.col(name)] = value


def _always(_table: Table, _month: str) -> bool:
    return True


def _has_rows(table: Table, _month: str) -> bool:
    return bool(table.rows)


# -- edits ---------------------------------------------------------------------------------


def _cp1252_name(table: Table, _month: str) -> bool:
    if not table.rows:
        return False
    if not any(not cell.isascii() for row in table.rows for cell in row):
        _set(table, 0, provider_name=table.rows[0][table.col("provider_name")] + " Café")
    return True


def _drop_column(table: Table, _month: str) -> bool:
    index = table.col("client_sex")
    del table.header[index]
    for row in table.rows:
        del row[index]
    return True


def _extra_column(table: Table, _month: str) -> bool:
    table.header.append("keyworker")
    for number, row in enumerate(table.rows):
        row.append(f"KW{number % 37 + 1:02d}")
    return True


def _duplicate_column(table: Table, _month: str) -> bool:
    index = table.col("referral_date")
    table.header.append("referral_date")
    for row in table.rows:
        row.append(row[index])
    return True


def _bad_date(table: Table, _month: str) -> bool:
    if not table.rows:
        return False
    day = date.fromisoformat(table.rows[0][table.col("referral_date")])
    _set(table, 0, referral_date=f"{day:%d/%m/%Y}")
    return True


def _unknown_code(table: Table, _month: str) -> bool:
    index = _find(table, lambda r: r["referral_source"] == "self")
    if index is None:
        return False
    _set(table, index, referral_source="self_referral")
    return True


def _duplicate_id(table: Table, _month: str) -> bool:
    if len(table.rows) < 2:
        return False
    _set(table, 1, episode_id=table.rows[0][table.col("episode_id")])
    return True


def _discharge_before_referral(table: Table, _month: str) -> bool:
    index = _find(table, lambda r: bool(r["discharge_date"]))
    if index is None:
        return False
    referral = date.fromisoformat(table.rows[index][table.col("referral_date")])
    _set(table, index, discharge_date=(referral - timedelta(days=3)).isoformat())
    return True


def _month_mismatch(table: Table, month: str) -> bool:
    if not table.rows:
        return False
    following = month_text(parse_month(month) + 1)
    for number in range(len(table.rows)):
        _set(table, number, submission_month=following)
    return True


def _reason_without_date(table: Table, _month: str) -> bool:
    index = _find(table, lambda r: bool(r["discharge_date"]))
    if index is None:
        return False
    _set(table, index, discharge_date="")
    return True


def _young_person_too_old(table: Table, _month: str) -> bool:
    index = _find(table, lambda r: r["service_type"] == "young_people")
    if index is None:
        return False
    referral = date.fromisoformat(table.rows[index][table.col("referral_date")])
    dob = referral.replace(year=referral.year - 19, day=1) - timedelta(days=10)
    _set(table, index, client_dob=dob.isoformat())
    return True


def _future_referral(table: Table, month: str) -> bool:
    later = last_day(parse_month(month)) + timedelta(days=10)

    def fits(row: dict[str, str]) -> bool:
        age = age_on(date.fromisoformat(row["client_dob"]), later)
        return row["service_type"] == "adult" and not row["discharge_date"] and 19 <= age <= 99

    index = _find(table, fits)
    if index is None:
        return False
    _set(
        table,
        index,
        referral_date=later.isoformat(),
        triage_date="",
        first_intervention_date="",
        modality="",
        top_start_days_used="",
        top_review_days_used="",
    )
    return True


def _pound_sign(table: Table, _month: str) -> bool:
    index = _find(table, lambda r: not r["actual_gbp"].startswith("-"))
    if index is None:
        return False
    _set(table, index, actual_gbp="£" + table.rows[index][table.col("actual_gbp")])
    return True


def _positive_exceeds_tests(table: Table, _month: str) -> bool:
    values = {r[table.col("measure")]: r[table.col("value")] for r in table.rows}
    if not values.get("dtoa_tests", "").isdigit() or not values.get("dtoa_positive", "").isdigit():
        return False
    index = _find(table, lambda r: r["measure"] == "dtoa_positive")
    assert index is not None
    _set(table, index, value=str(int(values["dtoa_tests"]) + 3))
    return True


def _release_outside_month(table: Table, month: str) -> bool:
    day = last_day(parse_month(month) - 1)
    index = _find(table, lambda r: age_on(date.fromisoformat(r["client_dob"]), day) >= 19)
    if index is None:
        return False
    _set(table, index, release_date=day.isoformat())
    return True


def _referred_without_need(table: Table, _month: str) -> bool:
    index = _find(table, lambda r: r["treatment_need"] == "no")
    if index is None:
        return False
    _set(table, index, referred_to_community="yes")
    return True


def _header_only(table: Table, _month: str) -> bool:
    table.rows.clear()
    return True


def _shout_header(table: Table, _month: str) -> bool:
    table.header = [f" {name.upper()} " if n % 2 else name.title() for n, name in enumerate(table.header)]
    return True


def _reverse_columns(table: Table, _month: str) -> bool:
    table.header.reverse()
    for row in table.rows:
        row.reverse()
    return True


def _bad_name(path: Path) -> Path:
    feed, source, period = path.stem.split("_")
    year, month = period.split("-")
    return path.with_name(f"{feed}_{source}_{date(int(year), int(month), 1):%B-%Y}.csv")


_KINDS: tuple[Kind, ...] = (
    Kind(
        "windows_1252",
        "contracts",
        "contract register saved from Excel as Windows-1252: the é of a provider name is byte 0xE9",
        "not valid UTF-8 (byte offset given); re-export as 'CSV UTF-8'",
        _cp1252_name,
        render=lambda t: t.text().encode("cp1252"),
    ),
    Kind(
        "missing_column",
        "treatment",
        "treatment file without the required client_sex column",
        "missing required column client_sex",
        _drop_column,
    ),
    Kind(
        "extra_column",
        "treatment",
        "treatment file with an extra 'keyworker' column",
        "unknown extra column keyworker",
        _extra_column,
    ),
    Kind(
        "duplicate_column",
        "treatment",
        "treatment file with referral_date twice in the header",
        "duplicated column referral_date",
        _duplicate_column,
    ),
    Kind(
        "no_header",
        "treatment",
        "treatment file whose first line is already data",
        "no header row",
        _has_rows,
        render=lambda t: t.text(with_header=False).encode("utf-8"),
    ),
    Kind(
        "bad_date",
        "treatment",
        "one referral_date written 03/02/2025 instead of 2025-02-03",
        "referral_date is not a YYYY-MM-DD date",
        _bad_date,
    ),
    Kind(
        "unknown_code",
        "treatment",
        "one referral_source 'self_referral' (the code is 'self')",
        "referral_source not one of the contract's codes",
        _unknown_code,
    ),
    Kind(
        "duplicate_episode_id",
        "treatment",
        "the second row repeats the first row's episode_id",
        "episode_id not unique within the file",
        _duplicate_id,
    ),
    Kind(
        "discharge_before_referral",
        "treatment",
        "one discharge_date three days before its referral_date",
        "discharge_date before referral_date",
        _discharge_before_referral,
    ),
    Kind(
        "month_mismatch",
        "treatment",
        "every submission_month is the month after the one in the file name",
        "submission_month differs from the file name's month",
        _month_mismatch,
    ),
    Kind(
        "discharge_reason_without_date",
        "treatment",
        "one discharged row loses its discharge_date but keeps its discharge_reason",
        "discharge_reason set without discharge_date",
        _reason_without_date,
    ),
    Kind(
        "young_person_too_old",
        "treatment",
        "one young_people episode whose client was 19 on the referral date",
        "young_people needs age under 18 on referral_date",
        _young_person_too_old,
    ),
    Kind(
        "future_referral",
        "treatment",
        "one open adult episode referred ten days after the submission month ends",
        "referral_date after the last day of submission_month",
        _future_referral,
    ),
    Kind(
        "money_with_pound_sign",
        "funding",
        "one ledger actual written '£1234.56'",
        "actual_gbp is not money (no currency sign allowed)",
        _pound_sign,
    ),
    Kind(
        "dtoa_positive_exceeds_tests",
        "cj-return",
        "dtoa_positive set to dtoa_tests + 3",
        "dtoa_positive more than dtoa_tests",
        _positive_exceeds_tests,
    ),
    Kind(
        "release_outside_month",
        "prison-releases",
        "one release dated the last day of the previous month",
        "release_date outside the file's month",
        _release_outside_month,
    ),
    Kind(
        "referred_without_need",
        "prison-releases",
        "one release referred_to_community yes with treatment_need no",
        "referred_to_community yes needs treatment_need yes",
        _referred_without_need,
    ),
    Kind(
        "bad_file_name",
        "treatment",
        "a treatment file renamed with the month spelt out, e.g. treatment_P4211_April-2025.csv",
        "file name does not parse as <feed>_<source>_<YYYY-MM>.csv",
        _always,
        rename=_bad_name,
    ),
)

_VARIANTS: tuple[Kind, ...] = (
    Kind(
        "bom",
        "treatment",
        "treatment file starting with a UTF-8 byte-order mark",
        "",
        _always,
        render=lambda t: b"\xef\xbb\xbf" + t.text().encode("utf-8"),
    ),
    Kind(
        "crlf",
        "funding",
        "ledger with CRLF line endings (RFC 4180's own)",
        "",
        _always,
        render=lambda t: t.text(line_end="\r\n").encode("utf-8"),
    ),
    Kind(
        "header_case_and_spaces",
        "treatment",
        "treatment header in mixed case with spaces around some names",
        "",
        _shout_header,
    ),
    Kind("column_order", "contracts", "contract register with its columns in reverse order", "", _reverse_columns),
    Kind(
        "quote_all",
        "grants",
        "grant file with every field quoted",
        "",
        _always,
        render=lambda t: t.text(quoting=csv.QUOTE_ALL).encode("utf-8"),
    ),
    Kind(
        "trailing_blank_lines",
        "cj-return",
        "cj-return ending with two blank lines",
        "",
        _always,
        render=lambda t: (t.text() + "\n\n").encode("utf-8"),
    ),
    Kind(
        "header_only",
        "prison-releases",
        "prison-releases file with a header and no rows (nothing to report that month)",
        "",
        _header_only,
    ),
)

KINDS: dict[str, Kind] = {kind.name: kind for kind in _KINDS + _VARIANTS}

DEFECTS: dict[str, str] = {k.name: f"{k.description} -> refused: {k.refusal}" for k in _KINDS}
"""Every defect the simulator can inject: what it does and the refusal it must cause."""

ACCEPTED_VARIANTS: dict[str, str] = {k.name: f"{k.description} -> accepted" for k in _VARIANTS}
"""Allowed oddities (the common rules accept them); requested through ``defects`` too."""


def _feed_of(path: Path) -> str:
    return path.parent.parent.name


def _load(path: Path) -> Table:
    reader = csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline=""))
    rows = [row for row in reader if row]
    return Table(rows[0], rows[1:])


def check_names(names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in KINDS]
    if unknown:
        raise ValueError(f"unknown defect or variant {unknown}; known: {sorted(KINDS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"defect listed twice: {list(names)}")


def apply_defects(paths: list[Path], names: Sequence[str]) -> tuple[list[Path], dict[str, Path]]:
    """Rewrite one distinct file per name; returns the new path list and name -> file."""
    check_names(names)
    result = list(paths)
    taken: set[Path] = set()
    targets: dict[str, Path] = {}
    for name in names:
        kind = KINDS[name]
        for path in result:
            if path in taken or _feed_of(path) != kind.feed:
                continue
            table = _load(path)
            if not kind.edit(table, path.parent.name):
                continue
            path.write_bytes(kind.render(table))
            final = path
            if kind.rename is not None:
                final = kind.rename(path)
                path.rename(final)
                result[result.index(path)] = final
            taken.add(final)
            targets[name] = final
            break
        else:
            raise ValueError(f"no {kind.feed} file in this run can carry {name!r}")
    return result, targets
