"""Criminal-justice feeds: the partnership return (long format) and prison releases.

The return's counts scale with the adult population and are internally
consistent (positives never exceed tests, attendances never exceed required
assessments). Small probation counts are sometimes suppressed with ``*`` and a
value is now and then left empty, as partner returns are; the contract reads
both as NULL. ``releases_total`` is the number of rows of the month's
prison-releases file, so the two feeds agree.
"""

from __future__ import annotations

import random

from misuse_warehouse.months import month_text

from .providers import AreaPlan
from .rng import chance, poisson, stream
from .schema import CJ_MEASURES
from .world import Release


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


def cj_return_rows(plan: AreaPlan, month: int, seed: int, releases: int) -> list[dict[str, str]]:
    rng = stream(seed, plan.area.code, month, "cj-return")
    scale = plan.area.adults / 100_000
    tests = poisson(rng, 14 * scale)
    positive = _binomial(rng, tests, 0.45)
    required = _binomial(rng, positive, 0.8)
    values = {
        "arrests_drug_offences": poisson(rng, 11 * scale),
        "dtoa_tests": tests,
        "dtoa_positive": positive,
        "required_assessments": required,
        "required_assessments_attended": _binomial(rng, required, 0.7),
        "drr_starts": poisson(rng, 1.6 * scale),
        "drr_completions": poisson(rng, 0.8 * scale),
        "atr_starts": poisson(rng, 0.9 * scale),
        "atr_completions": poisson(rng, 0.5 * scale),
        "community_orders_with_treatment": poisson(rng, 3.5 * scale),
        "releases_total": releases,
    }
    courts_missing = chance(rng, 0.03)
    rows = []
    for agency, measure in CJ_MEASURES:
        if agency == "courts" and courts_missing:
            continue
        value = str(values[measure])
        if agency == "probation" and 1 <= values[measure] <= 4 and chance(rng, 0.25):
            value = "*"
        elif measure != "releases_total" and chance(rng, 0.01):
            value = ""
        rows.append(
            {
                "period_month": month_text(month),
                "area_code": plan.area.code,
                "agency": agency,
                "measure": measure,
                "value": value,
            }
        )
    return rows


def release_rows(plan: AreaPlan, releases: list[Release]) -> list[dict[str, str]]:
    return [
        {
            "release_id": r.release_id,
            "release_date": r.release_date.isoformat(),
            "prison_code": r.prison_code,
            "area_code": plan.area.code,
            "client_initials": r.initials,
            "client_dob": r.person.dob.isoformat(),
            "client_sex": r.person.sex,
            "treatment_need": "yes" if r.need else "no",
            "treated_in_custody": "yes" if r.treated_in_custody else "no",
            "referred_to_community": "yes" if r.referred else "no",
        }
        for r in releases
    ]
