"""One loader for every feed, driven by its contract: audit row, then COPY, in one transaction.

A resubmission for the same feed, source and period is a new submission that supersedes the
earlier one (models read the latest); the same bytes as the current submission change nothing.
The plain attributor is written to raw only, beside its keyed pseudonym.
An accepted file is moved from landing into the archive; a refused one to quarantine with its
reasons and the submitter's validation report: nothing a submitter sent stays in landing, whose
folder no retention could tell apart from files still to come.
A file is received when the pipeline first saw it (`received_at`), never at its modification time,
which the sender sets: retention counts from receipt.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from misuse_warehouse import copy_text, faults, pseudonymise, settings, validation_report
from misuse_warehouse.file_checks import MAX_EXAMPLES, ParsedFile, landed_digest, parse_file_name
from misuse_warehouse.refusal import Finding, Refusal

# Rows per COPY write (a national month loaded in 3.7-4.1 s in batches of 16,384 rows, 3.5 s of 1,024,
# 3.2-3.5 s of 512, 3.5 s of 256, when each batch's pseudonyms were computed just before it).
COPY_BATCH_ROWS = 512
# Connections loading at once (in_lanes): a national treatment month against psql's one \copy session,
# 0.50x on one connection, 0.62-0.66x on two, 0.70-0.71x on three (bench/RESULTS.md §1).
LOAD_CONNECTIONS = 3
# Values of these types may hold any character; the others passed a pattern of digits and dashes.
_FREE_TEXT_TYPES = ("text", "code", "gss")

Field = pa.Array | pa.ChunkedArray
Item = TypeVar("Item")
Result = TypeVar("Result")
# a reserved id, else the next of the identity's sequence
_SUBMISSION_ID = "coalesce(%s::bigint, nextval('raw.submissions_submission_id_seq'))"


@dataclass(frozen=True)
class Outcome:
    file: str
    feed: str
    source: str
    period: str
    status: str  # loaded, duplicate, refused
    submission_id: int | None = None
    rows: int = 0
    refusal_code: str | None = None
    message: str = ""
    warnings: int = 0
    report: str | None = None  # the validation report (HTML) for the submitter, when there is one

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _current(conn: psycopg.Connection, parsed: ParsedFile) -> tuple[int, str] | None:
    """(submission_id, sha256) of the submission in force for the file's feed, source and period."""
    name = parsed.name
    return conn.execute(
        """select submission_id, file_sha256 from raw.submissions
           where feed = %s and source_code = %s and period_start = %s and status = 'loaded'
           order by submission_id desc limit 1""",
        (name.feed, name.source, name.period_start),
    ).fetchone()


def duplicate_of(conn: psycopg.Connection, parsed: ParsedFile) -> Outcome | None:
    """The outcome for a file whose bytes are already the current submission, else None."""
    name = parsed.name
    current = _current(conn, parsed)
    if not current or current[1] != parsed.sha256:
        return None
    return Outcome(
        parsed.path.name,
        name.feed,
        name.source,
        name.period,
        "duplicate",
        current[0],
        message=f"same bytes as submission {current[0]}: nothing changed",
    )


def check_restatement(conn: psycopg.Connection, parsed: ParsedFile) -> None:
    """Refuse a restatement that leaves out records of the submission it would replace.

    Only for feeds whose contract makes every file whole (`restatement_keeps_records`): a treatment
    file restates every episode of its twelve-month window, a register every contract past and
    present, so a record that vanishes from a restatement of the same month is a truncated or
    filtered export, not a correction. Other feeds may drop lines (a withdrawn ledger line).
    """
    contract = parsed.contract
    if not contract.restatement_keeps_records:
        return
    current = _current(conn, parsed)
    if not current or current[1] == parsed.sha256:
        return
    keys = sql.SQL(", ").join(map(sql.Identifier, contract.record_key))
    earlier = conn.execute(
        sql.SQL("select distinct {} from raw.{} where submission_id = %s").format(keys, sql.Identifier(contract.table)),
        (current[0],),
    ).fetchall()
    now = {tuple(map(str, key)) for key in zip(*map(parsed.column, contract.record_key), strict=True)}
    missing = sorted({tuple(str(v) for v in key) for key in earlier} - now)
    if not missing:
        return
    key_name = ", ".join(contract.record_key)
    shown = ", ".join("/".join(k) for k in missing[:5]) + (" …" if len(missing) > 5 else "")
    text = (
        f"{key_name} of submission {current[0]} left out of this restatement: a restatement replaces the "
        "month whole, so every record must be sent again"
    )
    raise Refusal(
        "restatement_drops_records",
        f"this file restates {parsed.name.period} but leaves out {len(missing)} of the {len(earlier)} records "
        f"of submission {current[0]} ({key_name} {shown}); send every record again",
        [{key_name: "/".join(k)} for k in missing[:MAX_EXAMPLES]],
        [
            Finding("restatement_drops_records", text, "error", "completeness", contract.record_key, None, "/".join(k))
            for k in missing
        ],
    )


def load(
    conn: psycopg.Connection,
    parsed: ParsedFile,
    dag_run_id: str | None = None,
    submission_id: int | None = None,
    seen_at: datetime | None = None,
) -> Outcome:
    """Load the file as a new submission in one transaction (its COPY fields made before it opens),
    then move it from landing into the archive.

    `submission_id`, when reserved beforehand (reserve_submission_ids), is the id the submission gets;
    `seen_at` is when this run first read the file (`received_at`).
    """
    contract, name = parsed.contract, parsed.name
    fields = copy_fields(parsed, pseudonymise.secret() if contract.attributor else b"")
    with conn.transaction():
        conn.execute(
            "select pg_advisory_xact_lock(hashtext(%s))",
            (f"{name.feed}|{name.source}|{name.period_start}",),
        )
        current = _current(conn, parsed)
        if current and current[1] == parsed.sha256:
            return duplicate_of(conn, parsed)
        received_at = first_seen(conn, parsed.sha256, seen_at)
        submission_id = conn.execute(
            f"""insert into raw.submissions (submission_id, feed, source_code, period_start, file_name,
                   file_sha256, file_bytes, received_at, status, dag_run_id)
               overriding system value
               values ({_SUBMISSION_ID}, %s, %s, %s, %s, %s, %s, %s, 'loaded', %s) returning submission_id""",
            (
                submission_id,
                name.feed,
                name.source,
                name.period_start,
                parsed.path.name,
                parsed.sha256,
                parsed.size,
                received_at,
                dag_run_id,
            ),
        ).fetchone()[0]
        columns = ["submission_id", "source_row", *contract.column_names]
        if contract.attributor:
            columns += ["person_key", *(a.name for a in contract.stored_ages)]
        # every name is a quoted identifier and every value a COPY field: file content never becomes SQL
        copy = sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier("raw", contract.table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with conn.cursor().copy(copy) as writer:
            for buffer in _copy_buffers(submission_id, fields, parsed.row_count):
                writer.write(buffer)
        faults.hold("copy")
        conn.execute(
            "update raw.submissions set loaded_at = now(), row_count = %s where submission_id = %s",
            (parsed.row_count, submission_id),
        )
    archive(parsed.path, parsed.sha256, received_at)
    return Outcome(
        parsed.path.name,
        name.feed,
        name.source,
        name.period,
        "loaded",
        submission_id,
        parsed.row_count,
        message=f"{parsed.row_count} rows loaded as submission {submission_id}"
        + (f" (supersedes {current[0]})" if current else ""),
    )


def copy_fields(parsed: ParsedFile, key: bytes) -> list[Field]:
    """The file's COPY fields after the submission id: line, values, then pseudonym and ages.

    The costly part of a load on the client (the pseudonyms above all), made before the
    transaction opens.
    """
    contract = parsed.contract
    table = parsed.table
    fields: list[Field] = [pc.cast(pa.array(parsed.line_numbers, pa.int64()), pa.string())]
    fields += [
        copy_text.escaped(values) if column.type in _FREE_TEXT_TYPES else values
        for column, values in zip(contract.columns, table.columns, strict=True)
    ]
    if contract.attributor:
        attributor = [table.column(contract.attributor[role]) for role in ("initials", "dob", "sex")]
        fields.append(pseudonymise.person_keys(key, *attributor))
        fields += [age_years(table.column(age.args[0]), table.column(age.args[1])) for age in contract.stored_ages]
    return fields


def _copy_buffers(submission_id: int, fields: list[Field], row_count: int) -> Iterator[memoryview]:
    """The rows in COPY text format, in batches: the server parses one while the next is joined."""
    submission = pa.scalar(str(submission_id))
    for start in range(0, row_count, COPY_BATCH_ROWS):
        yield from copy_text.rows([submission, *(f.slice(start, COPY_BATCH_ROWS) for f in fields)])


def reserve_submission_ids(conn: psycopg.Connection, count: int) -> list[int]:
    """`count` submission ids, ascending: given to files in their order before they load side by side,
    so a submission's id follows the order of its file, whichever lane commits first (ids appear in
    the marts, and the same files must publish the same marts)."""
    if count == 0:
        return []
    rows = conn.execute(
        "select nextval('raw.submissions_submission_id_seq') from generate_series(1, %s) order by 1", (count,)
    )
    return [row[0] for row in rows]


def lane(parsed: ParsedFile) -> tuple[str, str, str]:
    """The files that must load in order: one feed, source and period (the load's lock)."""
    return (parsed.name.feed, parsed.name.source, str(parsed.name.period_start))


def in_lanes(
    items: Sequence[Item],
    lane_of: Callable[[Item], Hashable],
    work: Callable[[psycopg.Connection, Item], Result],
    connect: Callable[[], psycopg.Connection],
    connections: int = LOAD_CONNECTIONS,
) -> list[Result]:
    """`work(conn, item)` for every item, results in the items' order, over up to `connections` connections.

    Items of one lane (a feed, source and period) run in their order on one connection: should a
    list hold two files of one lane, the later supersedes and its restatement check reads the
    earlier. (One landing holds one such file: its name and folder follow from the three.)
    Lanes run side by side, each on a connection of its own, so the server parses one file's COPY
    while the client prepares another's. A lane that raises stops; the others finish; then the
    first error is raised.
    """
    lanes: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        lanes.setdefault(lane_of(item), []).append(index)
    results: list[Result] = [None] * len(items)  # type: ignore[list-item]
    opened: list[psycopg.Connection] = []
    local = threading.local()

    def run_lane(indices: list[int]) -> None:
        if not hasattr(local, "conn"):
            local.conn = connect()
            opened.append(local.conn)
        for index in indices:
            results[index] = work(local.conn, items[index])

    try:
        with ThreadPoolExecutor(max(1, min(connections, len(lanes))), thread_name_prefix="load-lane") as pool:
            done = [pool.submit(run_lane, indices) for indices in lanes.values()]
    finally:
        for conn in opened:
            conn.close()
    for finished in done:
        finished.result()
    return results


def age_years(born: pa.ChunkedArray, on: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whole years from `born` to `on` (checked YYYY-MM-DD dates) as text; null when either is missing.

    The same as Postgres' extract(year from age(on, born)).
    """

    def part(dates: pa.ChunkedArray, start: int, stop: int) -> pa.ChunkedArray:
        return pc.utf8_slice_codeunits(dates, start, stop)

    years = pc.subtract(pc.cast(part(on, 0, 4), pa.int32()), pc.cast(part(born, 0, 4), pa.int32()))
    before_birthday = pc.cast(pc.less(part(on, 5, 10), part(born, 5, 10)), pa.int32())
    return pc.cast(pc.subtract(years, before_birthday), pa.string())


def refuse(
    conn: psycopg.Connection,
    path: Path,
    refusal: Refusal,
    dag_run_id: str | None = None,
    submission_id: int | None = None,
    seen_at: datetime | None = None,
) -> Outcome:
    """Audit the refusal, then move the file to quarantine with its reasons and report beside it.

    The file is hashed in pieces, never read whole (it may have been refused for its size) and never
    through a symbolic link (file_checks.landed_digest).
    """
    sha256, size = landed_digest(path)
    try:
        name = parse_file_name(path)
        feed, source, period, start = name.feed, name.source, name.period, name.period_start
    except Refusal:
        feed, source, period, start = path.parent.parent.name, "?", path.parent.name, None
    with conn.transaction():
        received_at = first_seen(conn, sha256, seen_at)
        submission_id = conn.execute(
            f"""insert into raw.submissions (submission_id, feed, source_code, period_start, file_name,
                   file_sha256, file_bytes, received_at, status, refusal_code, refusal_reason, dag_run_id)
               overriding system value
               values ({_SUBMISSION_ID}, %s, %s,
                       coalesce(%s, to_date(%s || '-01', 'YYYY-MM-DD'), date '1900-01-01'),
                       %s, %s, %s, %s, 'refused', %s, %s, %s) returning submission_id""",
            (
                submission_id,
                feed,
                source,
                start,
                period if _is_month(period) else None,
                path.name,
                sha256,
                size,
                received_at,
                refusal.code,
                refusal.message,
                dag_run_id,
            ),
        ).fetchone()[0]
    target = quarantine(path, refusal, received_at)
    report = target.parent / f"{target.name}.report.html"
    return Outcome(
        path.name,
        feed,
        source,
        period,
        "refused",
        submission_id,
        refusal_code=refusal.code,
        message=f"{refusal.message} (quarantined at {target})",
        report=str(report) if report.exists() else None,
    )


def quarantine(path: Path, refusal: Refusal, received_at: datetime | None = None) -> Path:
    """Move the file to quarantine with `.reason.json`, `.reason.txt` and the validation report.

    An earlier refused file of the same name with other bytes is kept under `earlier/`, never overwritten.
    The file's time becomes `received_at` (default now): retention reads it, and the sender's is not
    to be trusted (a time in the future would never be purged).
    """
    folder = settings.quarantine_dir() / path.parent.parent.name / path.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if (target.exists() or target.is_symlink()) and _sha256(target) != _sha256(path):
        _set_aside(target)
    shutil.move(str(path), target)
    settings.make_private(target)  # a moved file keeps the sender's mode
    _stamp(target, received_at or datetime.now(UTC))
    reason = refusal.as_dict() | {"file": path.name, "quarantined_at": datetime.now(UTC).isoformat()}
    report = validation_report.write_for_refusal(target, refusal)
    reason["report"] = {"csv": report.csv_path.name, "html": report.html_path.name, "findings": report.findings}
    (folder / f"{path.name}.reason.json").write_text(json.dumps(reason, indent=2, default=str))
    (folder / f"{path.name}.reason.txt").write_text(
        _readable(path.name, refusal) + f"\nValidation report for the submitter: {report.html_path.name}\n"
    )
    return target


def _set_aside(target: Path) -> None:
    """Keep an earlier quarantined file and its reasons as `earlier/<sha256 prefix>_<name>...`."""
    earlier = target.parent / "earlier"
    earlier.mkdir(exist_ok=True)
    prefix = _sha256(target)[:16]
    for old in target.parent.iterdir():
        if (old.is_file() or old.is_symlink()) and (old.name == target.name or old.name.startswith(f"{target.name}.")):
            old.rename(earlier / f"{prefix}_{old.name}")


def _sha256(path: Path) -> str:
    return landed_digest(path)[0]


def archive(path: Path, sha256: str, received_at: datetime | None = None) -> Path:
    """Move the accepted bytes out of landing into the archive (the raw landing zone on disk), content-addressed.

    Landing then holds only files not taken yet. The same bytes archived before (a resubmission, or
    a run that stopped between its load and this move) are not written twice: the landing copy is
    dropped. The archived file's time is `received_at` (default: kept as it was), which retention reads.
    """
    folder = settings.archive_dir() / path.parent.parent.name / path.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{sha256[:16]}_{path.name}"
    if not target.exists():  # copy, rename, then drop from landing: a crash never leaves a half-copied archive file
        partial = target.with_name(f".{target.name}.partial")
        shutil.copy2(path, partial)
        settings.make_private(partial)  # copy2 keeps the sender's mode
        if received_at is not None:
            _stamp(partial, received_at)
        partial.replace(target)
    path.unlink(missing_ok=True)
    return target


def first_seen(conn: psycopg.Connection, sha256: str, seen_at: datetime | None = None) -> datetime:
    """When the pipeline first saw these bytes: the landing watch's first sight of them, else `seen_at`
    (the ingest that read them; default now), whichever is earlier.

    Never the file's modification time: the sender sets it, and retention counts from receipt.
    """
    seen_at = seen_at or datetime.now(UTC)
    watched = conn.execute(
        "select min(first_seen_at) from ops.landing_files where file_sha256 = %s", (sha256,)
    ).fetchone()
    return min(seen_at, watched[0]) if watched and watched[0] else seen_at


def _stamp(path: Path, when: datetime) -> None:
    """Give a kept file the time it was received, the time retention reads (a link's own time, never
    its target's)."""
    os.utime(path, (when.timestamp(), when.timestamp()), follow_symlinks=False)


def _readable(file_name: str, refusal: Refusal) -> str:
    lines = [f"{file_name} was refused ({refusal.code}).", "", refusal.message, ""]
    for detail in refusal.details:
        lines.append("- " + ", ".join(f"{k}: {v}" for k, v in detail.items() if v not in (None, [])))
    return "\n".join(lines) + "\n"


def _is_month(period: str) -> bool:
    return (
        len(period) == 7
        and period[4] == "-"
        and period[:4].isdigit()
        and period[5:].isdigit()
        and 1 <= int(period[5:]) <= 12
    )
