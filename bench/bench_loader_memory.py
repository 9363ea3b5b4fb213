# ruff: noqa: E501 (markdown tables of RESULTS.md written as f-strings)
"""Measure 7: peak memory (max RSS) of the loading process on a national month.

Each case runs in a fresh child process that reports its own `ru_maxrss` (so nothing of this
process counts), after a baseline child that only imports what the case imports:

- loader, every file of the month (all feeds): `file_checks.read_file` then `loader.load`, one
  process for all files — more than an `ingest` task holds, which is one file;
- ingest, every treatment file of the month: `pipeline.ingest_files` (checks, GX raw gate, load), the
  code of the DAG's treatment `ingest` task (one task per feed; the gate holds up to `gate.BATCH_ROWS`
  rows at a time);
- stress: one file holding every treatment row of the national month (as if one submitter sent all
  of England): read_file then load. The loader reads a file whole, so this shows how peak memory
  grows with the size of one file.

Run: .venv/bin/python bench/bench_loader_memory.py [--month 2025-04]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET_MIB = 1024

CHILD = r"""
import json, resource, sys, time
mode, listing = sys.argv[1], sys.argv[2]
files = [l for l in open(listing).read().splitlines() if l]
from misuse_warehouse import file_checks, loader, pipeline, roles, warehouse
if mode == "ingest":
    import great_expectations  # noqa: F401  (the ingest task imports it through the gate)
    from misuse_warehouse import gate  # noqa: F401
rows = 0
started = time.perf_counter()
if mode == "loader":
    with warehouse.connect(autocommit=True, role=roles.LOADER) as conn:
        for path in files:
            from pathlib import Path
            outcome = loader.load(conn, file_checks.read_file(Path(path)), "bench_memory")
            assert outcome.status == "loaded", outcome
            rows += outcome.rows
elif mode == "ingest":
    for outcome in pipeline.ingest_files(files, "bench_memory"):
        assert outcome["status"] == "loaded", outcome
        rows += outcome["rows"]
seconds = time.perf_counter() - started
print(json.dumps({"max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "rows": rows, "seconds": seconds}))
"""


def child(mode: str, files: list[Path], tmp: Path) -> dict:
    listing = tmp / f"{mode}-{len(files)}.txt"
    listing.write_text("\n".join(map(str, files)))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(listing)], check=True, capture_output=True, text=True, env=os.environ
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_tables() -> None:
    from misuse_warehouse import warehouse

    with warehouse.connect(autocommit=True) as conn:
        conn.execute("update raw.submissions set file_sha256 = file_sha256 || '~' where status = 'loaded'")


def one_big_file(files: list[Path], folder: Path, month: str) -> Path:
    """Every treatment row of the month in one file (header once), named for a provider of the demo range."""
    target = folder / "treatment" / month / f"treatment_P9999_{month}.csv"
    target.parent.mkdir(parents=True)
    with target.open("w", newline="") as out:
        for index, path in enumerate(files):
            lines = path.read_text().splitlines(keepends=True)
            out.writelines(lines if index == 0 else lines[1:])
    return target


def _landed(month: str) -> tuple[list[Path], list[Path]]:
    """A fresh landing copy of the national month: (every file, the treatment files)."""
    landing = harness.landed("national", harness.all_areas(), [month])
    return harness.feed_files(landing, month), harness.feed_files(landing, month, ("treatment",))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", default="2025-04")
    args = parser.parse_args()

    files, treatment = _landed(args.month)
    load_before = harness.load_average()
    with harness.throwaway_home("memory"), tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp_name:
        from misuse_warehouse import warehouse

        tmp = Path(tmp_name)
        harness.migrated()
        baseline = child("none", [], tmp)
        baseline_gx = child("ingest", [], tmp)
        all_files = child("loader", files, tmp)
        fresh_tables()
        files, treatment = _landed(args.month)  # the loader moved what it took into the archive
        ingest = child("ingest", treatment, tmp)
        fresh_tables()
        files, treatment = _landed(args.month)
        big = one_big_file(treatment, tmp / "big", args.month)
        stress = child("loader", [big], tmp)
        with warehouse.connect() as conn:
            env = harness.environment_lines(conn, load_before)

    from misuse_warehouse import gate

    gate_rows = gate.BATCH_ROWS

    def mib(result: dict) -> float:
        return result["max_rss_kib"] / 1024

    largest_mb = max(p.stat().st_size for p in treatment) / 1e6
    met = mib(all_files) <= TARGET_MIB and mib(ingest) <= TARGET_MIB
    harness.write_section(
        "memory",
        "7. Peak memory of the loader on a national month",
        f"""
Volume: {args.month}, all {len(harness.all_areas())} simulated areas: {len(files)} files of every feed,
{all_files["rows"]:,} rows; the largest treatment file {largest_mb:.1f} MB. Max RSS of a fresh child process.

| process | files | rows | seconds | max RSS MiB |
| --- | --- | --- | --- | --- |
| baseline: Python + the loader's imports, nothing loaded | 0 | 0 | – | {mib(baseline):.0f} |
| baseline: + GX and the gate imported | 0 | 0 | – | {mib(baseline_gx):.0f} |
| loader (checks + load), every file of the month, one process | {len(files)} | {all_files["rows"]:,} | {all_files["seconds"]:.1f} | {mib(all_files):.0f} |
| `pipeline.ingest_files` (checks, GX raw gate in batches of {gate_rows:,} rows, load): the DAG's treatment task, every treatment file | {len(treatment)} | {ingest["rows"]:,} | {ingest["seconds"]:.1f} | {mib(ingest):.0f} |
| stress: one file with every treatment row of the month (checks + load) | 1 | {stress["rows"]:,} | {stress["seconds"]:.1f} | {mib(stress):.0f} |

Target ≤ {TARGET_MIB} MiB for the loading process on a national month: loader {mib(all_files):.0f} MiB,
ingest task code with GX {mib(ingest):.0f} MiB — {harness.verdict(met)}.
The loader reads one file whole (`read_bytes`, then its values as typed columns): memory follows the largest file, not the month;
the stress row shows the cost if one file held the whole month.

{env}""",
    )


if __name__ == "__main__":
    main()
