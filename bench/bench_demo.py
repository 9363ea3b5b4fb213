# ruff: noqa: E501 (markdown tables of RESULTS.md written as f-strings)
"""Measure 6: `make demo` after install (5 areas, 24 months), from a fresh clone of this branch.

`git clone <this repo> <dir>` (default /tmp/bench-demo, removed first), `make install` (timed apart),
then `make demo` timed as a user would see it: dbt parse, simulation, 24 months through the DAG (the first 21
in one catch-up run, the last three month by month), the summary. The clone's own `.local` holds its state;
no environment of this shell leaks in.

Run: .venv/bin/python bench/bench_demo.py [--clone-dir /tmp/bench-demo]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TARGET_MINUTES = 5.0


def clean_env() -> dict[str, str]:
    prefixes = ("AIRFLOW", "MISUSE_WAREHOUSE_", "WAREHOUSE_", "BENCH_", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def timed(command: list[str], cwd: Path, log: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=cwd, env=clean_env(), stdout=out, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - started, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clone-dir", type=Path, default=Path("/tmp/bench-demo"))
    args = parser.parse_args()

    clone = args.clone_dir
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", str(harness.PROJECT_ROOT), str(clone)], check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.strip()
    logs = clone.parent / f"{clone.name}-logs"
    logs.mkdir(exist_ok=True)
    install_seconds, install_code = timed(["make", "install"], clone, logs / "install.log")
    if install_code:
        raise SystemExit(f"make install failed: see {logs / 'install.log'}")
    load_before = harness.load_average()
    demo_seconds, demo_code = timed(["make", "demo"], clone, logs / "demo.log")
    load_after = harness.load_average()
    output = (logs / "demo.log").read_text()
    summary = re.search(r"runs: (\d+), succeeded: (\d+), in ([\d.]+) min", output)
    catch_up = re.search(r"(\d{4}-\d{2})\.\.(\d{4}-\d{2}) \(catch-up\): (\w+) in (\d+)s", output)
    months = re.findall(r"^(\d{4}-\d{2}): (\w+) in (\d+)s", output, flags=re.MULTILINE)
    per_month = [int(s) for _, _, s in months]
    minutes = demo_seconds / 60
    runs = (
        f"catch-up run {catch_up.group(1)}..{catch_up.group(2)}: {catch_up.group(3)} in {catch_up.group(4)} s; "
        if catch_up
        else ""
    )
    if per_month:
        runs += f"{len(per_month)} monthly runs, {min(per_month)}–{max(per_month)} s, median {harness.median(per_month):.0f} s"
    harness.write_section(
        "demo",
        "6. `make demo` after install, from a fresh clone",
        f"""
`git clone` of this branch (commit {commit}) into {clone}; `make install` {install_seconds:.0f} s (warm uv cache);
then `make demo` (5 areas, 24 months, 2024-04..2026-03): exit {demo_code}.
Demo summary line: {summary.group(0) if summary else "not found (see the log)"}. Runs: {runs or "?"}.

| figure | measured | target | |
| --- | --- | --- | --- |
| `make demo` wall time after install | {minutes:.1f} min ({demo_seconds:.0f} s) | ≤ {TARGET_MINUTES:.0f} min | {harness.verdict(minutes <= TARGET_MINUTES and demo_code == 0)} |

- machine: {harness.machine()}
- load average (1/5/15 min) before: {load_before}; after: {load_after}
- versions: {harness.versions()} (the clone installs the same lock)
- log: {logs / "demo.log"}
""",
    )


if __name__ == "__main__":
    main()
