"""``write_feeds``: simulate the areas, then write every monthly file in the landing layout."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from misuse_warehouse.months import contiguous_months, first_day, fy_label, fy_start_year, month_text

from .areas import area
from .arrivals import stamp as stamp_arrivals
from .criminal_justice import cj_return_rows, release_rows
from .defects import apply_defects, check_names
from .funding import grant_rows, ledger_rows, register_rows
from .providers import AreaPlan, plan_for, treatment_providers
from .schema import HEADERS
from .treatment import Episode
from .world import EARLIEST_MONTH, AreaWorld
from .writer import landing_path, write_csv


def write_feeds(
    out_dir: Path,
    areas: Sequence[str],
    months: Sequence[str],
    seed: int = 42,
    defects: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write every feed file for ``areas`` x ``months`` under ``out_dir``; return the paths.

    ``months`` are contiguous ``YYYY-MM`` reporting months, 2016-01 or later. The world
    is simulated from 2010 up to the last month, so any month's files are the same
    whatever the run's length. Grant files go in the April folder of each financial
    year, also for the year holding the first month when that month is not April
    (funding.md §3; a run for that April loads it). ``defects`` names entries of ``DEFECTS`` or
    ``ACCEPTED_VARIANTS``; each rewrites one distinct file after everything is written.
    """
    out_dir = Path(out_dir)
    indices = contiguous_months(months)
    if indices[0] < EARLIEST_MONTH:
        raise ValueError(f"the earliest month that can be simulated is {month_text(EARLIEST_MONTH)}")
    if len(set(areas)) != len(areas) or not areas:
        raise ValueError(f"areas must be a non-empty list without repeats: {list(areas)}")
    check_names(defects)
    say = progress or (lambda _message: None)

    plans = [plan_for(area(code)) for code in areas]
    worlds = []
    for plan in plans:
        say(f"simulating {plan.area.code} to {month_text(indices[-1])}")
        world = AreaWorld(plan, seed)
        world.run_to(indices[-1])
        worlds.append(world)
    # Episodes discharged before the first window can never be restated again.
    horizon = first_day(indices[0] - 11)
    by_provider: dict[str, list[Episode]] = defaultdict(list)
    for world in worlds:
        for episode in world.episodes:
            if episode.discharge >= horizon:
                by_provider[episode.provider.code].append(episode)

    paths: list[Path] = []
    for month in indices:
        say(f"writing {month_text(month)}")
        paths += _treatment_files(out_dir, plans, by_provider, month)
        period = month_text(month)
        for feed, rows_of in (
            ("funding", lambda p, m=month: ledger_rows(p, m, seed)),
            ("contracts", lambda p, m=month: register_rows(p, m)),
        ):
            for plan in plans:
                path = landing_path(out_dir, feed, period, plan.area.code, period)
                paths.append(write_csv(path, HEADERS[feed], rows_of(plan)))
        if month % 12 == 3 or month == indices[0]:
            year = fy_start_year(month)
            april = month_text(year * 12 + 3)  # a yearly file lands in April of its year (funding.md §3)
            for plan in plans:
                path = landing_path(out_dir, "grants", april, plan.area.code, fy_label(year))
                paths.append(write_csv(path, HEADERS["grants"], grant_rows(plan, year, seed)))
        for plan, world in zip(plans, worlds, strict=True):
            releases = world.releases[month]
            path = landing_path(out_dir, "cj-return", period, plan.area.code, period)
            rows = cj_return_rows(plan, month, seed, len(releases))
            paths.append(write_csv(path, HEADERS["cj-return"], rows))
            path = landing_path(out_dir, "prison-releases", period, plan.area.code, period)
            paths.append(write_csv(path, HEADERS["prison-releases"], release_rows(plan, releases)))
    if defects:
        paths, targets = apply_defects(paths, defects)
        for name, path in targets.items():
            say(f"{name}: {path}")
    stamp_arrivals(paths, seed)
    return paths


def _treatment_files(
    out_dir: Path, plans: list[AreaPlan], by_provider: dict[str, list[Episode]], month: int
) -> list[Path]:
    """One file per provider submitting this month, restating its last twelve months."""
    codes = sorted({p.code for plan in plans for p in treatment_providers(plan, month)})
    period = month_text(month)
    written = []
    for code in codes:
        rows = [row for e in by_provider[code] if (row := e.row_at(month)) is not None]
        rows.sort(key=lambda r: (r["area_code"], r["referral_date"], r["episode_id"]))
        ids = [row["episode_id"] for row in rows]
        if len(set(ids)) != len(ids):
            raise RuntimeError(f"episode_id collision in {code} {period}; try another seed")
        path = landing_path(out_dir, "treatment", period, code, period)
        written.append(write_csv(path, HEADERS["treatment"], rows))
    return written
