"""What every benchmark shares: a throwaway warehouse, simulated volume, the machine, RESULTS.md.

Each bench runs against its own embedded Postgres and its own MISUSE_WAREHOUSE_HOME in a temp dir
(never the repo's .local), so it can run beside the tests. Simulated landing folders are cached
under BENCH_CACHE (default /tmp/misuse-warehouse-bench-cache) because a national month takes
minutes to simulate and is the same bytes every time (the simulator is deterministic).
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
CACHE = Path(os.environ.get("BENCH_CACHE", "/tmp/misuse-warehouse-bench-cache"))
BENCH_KEY = "bench-only-pseudonymisation-key-of-32-bytes-or-more"

# The reduced volume for benches that need many months (36 national months would take hours here):
# the five demo areas, whose analyst groups exist, and five large ones from other regions.
REDUCED_AREAS = (
    "E06000035",
    "E06000019",
    "E10000034",
    "E06000022",
    "E06000018",
    "E08000025",
    "E10000016",
    "E09000030",
    "E06000047",
    "E08000003",
)


def command_line() -> str:
    """The exact command that produced a figure, as typed from the project root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(PROJECT_ROOT) if script.is_relative_to(PROJECT_ROOT) else script
    return shlex.join([".venv/bin/python", str(shown), *sys.argv[1:]])


# The machine and the software


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    return f"{os.cpu_count()} cores ({cpu}), {memory_gib():.1f} GiB RAM, {platform.system()} {platform.release()}"


def versions(conn: object | None = None) -> str:
    from importlib.metadata import version

    parts = [f"python {platform.python_version()}"]
    if conn is not None:
        parts.append("postgres " + conn.execute("show server_version").fetchone()[0])  # type: ignore[attr-defined]
    for package in ("dbt-core", "dbt-postgres", "apache-airflow", "great-expectations", "astronomer-cosmos", "psycopg"):
        parts.append(f"{package} {version(package)}")
    return ", ".join(parts)


# A throwaway warehouse


@contextmanager
def throwaway_home(prefix: str) -> Iterator[Path]:
    """MISUSE_WAREHOUSE_HOME in a temp dir with its own embedded Postgres; stopped and removed after.

    Set before anything imports airflow (Airflow reads its home at import).
    """
    keep = os.environ.get("BENCH_KEEP_HOME")
    home = Path(tempfile.mkdtemp(prefix=f"misuse-warehouse-bench-{prefix}-"))
    os.environ["MISUSE_WAREHOUSE_HOME"] = str(home)
    os.environ.setdefault("MISUSE_WAREHOUSE_PSEUDONYM_KEY", BENCH_KEY)
    for name in list(os.environ):
        if name.startswith("AIRFLOW__") or name == "AIRFLOW_HOME":
            os.environ.pop(name)
    if not os.environ.get("BENCH_WAREHOUSE_URL"):
        os.environ.pop("WAREHOUSE_URL", None)
        os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
    else:
        os.environ["WAREHOUSE_URL"] = os.environ["BENCH_WAREHOUSE_URL"]
    from misuse_warehouse import warehouse

    try:
        warehouse.url()
        yield home
    finally:
        if not os.environ.get("BENCH_WAREHOUSE_URL"):
            warehouse.embedded().stop()
        if not keep:
            import shutil

            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept {home}")


def migrated() -> None:
    from misuse_warehouse import migrations, warehouse

    with warehouse.connect() as conn:
        migrations.migrate(conn)


# Volume


def months_between(first: str, last: str) -> list[str]:
    from misuse_warehouse.months import months_between as between

    return between(first, last)


def all_areas() -> list[str]:
    from misuse_warehouse.simulate.areas import AREAS

    return sorted(AREAS)


def simulated(label: str, areas: list[str] | tuple[str, ...], months: list[str]) -> Path:
    """The landing folder for `areas` x `months`, simulated once and cached (seed 42, as the demo)."""
    from misuse_warehouse.simulate import write_feeds

    name = f"{label}-{months[0]}" + (f"_{months[-1]}" if len(months) > 1 else "")
    folder = CACHE / name
    done = folder / ".complete"
    if done.exists():
        return folder
    started = time.monotonic()
    print(f"simulating {len(areas)} areas x {len(months)} months into {folder} (cached for later runs)")
    write_feeds(folder, list(areas), months, seed=42)
    done.write_text(f"{len(areas)} areas, {len(months)} months, {time.monotonic() - started:.0f} s\n")
    return folder


def landed(label: str, areas: list[str] | tuple[str, ...], months: list[str]) -> Path:
    """A landing folder of its own holding the cached simulation (`simulated`), for a benchmark to load.

    The loader moves what it takes out of landing, so loading from the cache itself would empty it.
    """
    import shutil

    cached = simulated(label, areas, months)
    landing = cached.with_name(f"{cached.name}.landing")
    shutil.rmtree(landing, ignore_errors=True)
    shutil.copytree(cached, landing, ignore=shutil.ignore_patterns(".complete"))
    return landing


def relanded(files: list[Path], landing: Path) -> list[Path]:
    """Copies of `files` (in `<feed>/<month>/` folders) in a fresh `landing`, in their order: the loader
    moves what it loads out of landing, so a cached simulation is loaded from copies."""
    import shutil

    shutil.rmtree(landing, ignore_errors=True)
    copies = []
    for path in files:
        copy = landing / path.parent.parent.name / path.parent.name / path.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        copies.append(copy)
    return copies


def feed_files(landing: Path, month: str, feeds: tuple[str, ...] | None = None) -> list[Path]:
    return sorted(
        p for p in landing.glob(f"*/{month}/*.csv") if p.is_file() and (feeds is None or p.parent.parent.name in feeds)
    )


# Figures


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the value at or below which q% of the samples fall."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def verdict(met: bool) -> str:
    return "**met**" if met else "**not met**"


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) this bench's section of RESULTS.md, between its markers."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"{start}\n## {title}\n\n_Measured {stamp} — `{command_line()}`_\n\n{body.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")
    print(section)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def environment_lines(conn: object | None, load_before: str) -> str:
    return (
        f"- machine: {machine()}\n"
        f"- load average (1/5/15 min) before: {load_before}; after: {load_average()}\n"
        f"- versions: {versions(conn)}\n"
        f"- commit: {git_commit()}\n"
    )
