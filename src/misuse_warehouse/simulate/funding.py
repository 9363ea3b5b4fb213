"""Funding feeds: the contract register, the monthly ledger and yearly grant allocations.

Money is handled in whole pence (``int``) and only formatted at the edge, so no
value ever carries more than two decimals or a binary-float artefact. The
register is rebuilt from each contract's life for every month, which is how the
stories show up: an extension appearing in October 2024, a novation in January
2025, a 12.5% cut from April 2025, a replacement contract registered while
still mobilising.
"""

from __future__ import annotations

import random

from misuse_warehouse.months import first_day, fy_label, fy_start_year, last_day, month_text

from .providers import CUT_FACTOR, GRANT, AreaPlan, Contract
from .rng import chance, stream, sub_seed

COST_CENTRES = {
    "adult_community": "PH-SM-ADULT",
    "young_people": "PH-SM-YP",
    "criminal_justice": "PH-SM-CJ",
    "residential_rehab": "PH-SM-RESI",
    "inpatient_detox": "PH-SM-DETOX",
    "supervised_consumption": "PH-SM-PHARM",
    "pharmacy_needle_exchange": "PH-SM-NSP",
    "gp_shared_care": "PH-SM-GPSC",
    "recovery_support": "PH-SM-RECOV",
    "prevention": "PH-SM-PREV",
    "other": "PH-SM-COMM",
}


def money(pence: int) -> str:
    """Pounds with exactly two decimals, no sign but a minus, no separators."""
    sign = "-" if pence < 0 else ""
    return f"{sign}{abs(pence) // 100}.{abs(pence) % 100:02d}"


def stream_name(placeholder: str, month: int) -> str:
    """The grant that funds a ``GRANT`` share in a month: SSMTRG became DATRIG in 2025-26."""
    if placeholder != GRANT:
        return placeholder
    year = fy_start_year(month)
    if year >= 2025:
        return "datrig"
    if year >= 2022:
        return "ssmtrg"
    return "public_health_grant"


def status(contract: Contract, month: int) -> str:
    """Status at the end of ``month``; a contract with an agreed extension reads ``extended``."""
    end_of_month = last_day(month)
    if end_of_month < contract.start:
        return "mobilising"
    if end_of_month > contract.effective_end(month):
        return "ended"
    return "extended" if contract.extension_in(month) else "active"


def register_rows(plan: AreaPlan, month: int) -> list[dict[str, str]]:
    """The whole register as it stands at the end of ``month``, past contracts included."""
    rows = []
    for contract in plan.contracts:
        if contract.registered_from > month:
            continue
        provider = contract.provider_in(month)
        extension = contract.extension_in(month)
        rows.append(
            {
                "contract_id": contract.contract_id,
                "provider_code": provider.code,
                "provider_name": provider.name,
                "area_code": plan.area.code,
                "service_line": contract.service_line,
                "start_date": contract.start.isoformat(),
                "end_date": contract.end.isoformat(),
                "extension_end_date": extension.isoformat() if extension else "",
                "annual_value_gbp": money(contract.value_in(month) * 100),
                "status": status(contract, month),
            }
        )
    return rows


def _in_service(contract: Contract, month: int) -> bool:
    return (
        contract.registered_from <= month
        and contract.start <= last_day(month)
        and contract.effective_end(month) >= first_day(month)
    )


def _actual(rng: random.Random, budget: int) -> int:
    """Spend near budget; now and then a credit note leaves the line negative."""
    if chance(rng, 0.03):
        return -round(budget * rng.uniform(0.05, 0.4))
    return round(budget * (1 + rng.gauss(0, 0.06)))


def ledger_rows(plan: AreaPlan, month: int, seed: int) -> list[dict[str, str]]:
    """One month's budget lines: contract payments, in-house lines, GP and pharmacy claims."""
    rng = stream(seed, plan.area.code, month, "ledger")
    adults = plan.area.adults
    lines: list[tuple[str, str, str, str, str, int, int]] = []

    def add(
        centre: str, contract_id: str, provider: str, fund: str, line: str, budget: int, actual: int | None = None
    ) -> None:
        lines.append(
            (centre, contract_id, provider, fund, line, budget, _actual(rng, budget) if actual is None else actual)
        )

    for contract in plan.contracts:
        if not _in_service(contract, month):
            continue
        provider = contract.provider_in(month).code
        annual = contract.value_in(month) * 100
        for placeholder, share in contract.streams:
            fund = stream_name(placeholder, month)
            budget = round(annual * share / 12)
            line = contract.service_line
            if line == "adult_community" and contract.contract_id.endswith(("-C02", "-C11")):
                shared_care = round(budget * 0.1)
                add(COST_CENTRES["gp_shared_care"], contract.contract_id, provider, fund, "gp_shared_care", shared_care)
                budget -= shared_care
            add(COST_CENTRES[line], contract.contract_id, provider, fund, line, budget)
    for _ in range(rng.randint(0, 2)):
        if lines:
            centre, contract_id, provider, fund, line, budget, _actual_pence = lines[rng.randrange(len(lines))]
            if contract_id:
                add(centre, contract_id, provider, fund, line, 0, -round(max(budget, 10_000) * rng.uniform(0.1, 0.5)))

    phg = "public_health_grant"
    add(COST_CENTRES["other"], "", "", phg, "other", round(adults * 60 / 12))
    add(COST_CENTRES["other"], "", "", "council_general", "other", round(adults * 15 / 12))
    add(COST_CENTRES["prevention"], "", "", phg, "prevention", round(adults * 30 / 12))
    add(COST_CENTRES["criminal_justice"], "", "", "pcc", "criminal_justice", round(adults * 20 / 12))
    if plan.rsdatg and fy_start_year(month) >= 2021:
        add(COST_CENTRES["recovery_support"], "", "", "rsdatg", "recovery_support", round(adults * 100 / 12))
    for practice in range(plan.gp_practices):
        budget = 40_000 + sub_seed("gp", plan.area.code, practice) % 160_000
        add(
            COST_CENTRES["gp_shared_care"], "", "", phg, "gp_shared_care", budget, round(budget * rng.uniform(0.5, 1.4))
        )
    for pharmacy in range(plan.pharmacies):
        budget = 15_000 + sub_seed("nsp", plan.area.code, pharmacy) % 60_000
        add(
            COST_CENTRES["pharmacy_needle_exchange"],
            "",
            "",
            phg,
            "pharmacy_needle_exchange",
            budget,
            round(budget * rng.uniform(0.3, 1.5)),
        )

    period = month_text(month)
    return [
        {
            "period_month": period,
            "line_id": f"GL{period.replace('-', '')}-{number:04d}",
            "area_code": plan.area.code,
            "cost_centre": centre,
            "contract_id": contract_id,
            "provider_code": provider,
            "funding_stream": fund,
            "service_line": line,
            "budget_gbp": money(budget),
            "actual_gbp": money(actual),
        }
        for number, (centre, contract_id, provider, fund, line, budget, actual) in enumerate(lines, start=1)
    ]


def grant_rows(plan: AreaPlan, year: int, seed: int) -> list[dict[str, str]]:
    """Allocations for the financial year starting in April ``year``, one row per stream."""
    adults = plan.area.adults
    tilt = 0.9 + (sub_seed(seed, "grant-tilt", plan.area.code) % 200) / 1000
    allocations: list[tuple[str, float, float | None]] = []
    phg = adults * 78 * tilt * 1.013 ** (year - 2020)
    if "cut" in plan.stories and year >= 2025:
        phg *= CUT_FACTOR
    allocations.append(("public_health_grant", phg, 0.27))
    grant = {2022: 3.9, 2023: 6.6, 2024: 9.0}.get(year)
    if grant is not None:
        allocations.append(("ssmtrg", adults * grant * tilt, 1.0))
    elif year >= 2025:
        allocations.append(("datrig", adults * 9.6 * tilt * 1.02 ** (year - 2025), 1.0))
    if plan.rsdatg and year >= 2021:
        allocations.append(("rsdatg", adults * 1.6 * tilt, 1.0))
    allocations.append(("inpatient_detox_grant", adults * 0.45 * tilt, 1.0))
    allocations.append(("pcc", adults * 0.9 * tilt, None))
    rows = []
    for fund, pounds, ring_share in allocations:
        pence = round(pounds) * 100
        rows.append(
            {
                "financial_year": fy_label(year),
                "area_code": plan.area.code,
                "funding_stream": fund,
                "allocation_gbp": money(pence),
                "ring_fenced_gbp": "" if ring_share is None else money(round(pence * ring_share / 100) * 100),
            }
        )
    return rows
