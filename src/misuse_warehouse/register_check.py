"""Treatment providers without a contract in the register: a warning, never a refusal (treatment.md).

The register may lag, so the file loads; the warning goes into the provider's validation report.
An area whose register has not arrived at all gives no warning (nothing to compare with; a
missing register is a late feed, not a provider's error).
"""

from __future__ import annotations

import calendar
from datetime import date

import psycopg

from misuse_warehouse.file_checks import ParsedFile
from misuse_warehouse.refusal import Finding

# For each area, the register submitted for the latest month up to M, and whether it holds a
# contract of the provider in force at some time in M.
_CONTRACT_IN_FORCE = """
with registers as (
    select distinct on (source_code) submission_id, source_code
    from raw.submissions
    where feed = 'contracts' and status = 'loaded' and period_start <= %(month_start)s
    order by source_code, period_start desc, submission_id desc
)
select registers.source_code as area_code,
       coalesce(bool_or(rows.provider_code = %(provider)s
                        and rows.start_date <= %(month_end)s
                        and coalesce(rows.extension_end_date, rows.end_date) >= %(month_start)s), false)
           as has_contract
from registers
left join raw.contract_register_rows as rows on rows.submission_id = registers.submission_id
where registers.source_code = any(%(areas)s)
group by registers.source_code
"""


def provider_contract_warnings(conn: psycopg.Connection, parsed: ParsedFile) -> list[Finding]:
    if parsed.contract.feed != "treatment":
        return []
    rows_by_area: dict[str, list[int]] = {}
    for line, area in zip(parsed.line_numbers, parsed.column("area_code"), strict=True):
        if area:
            rows_by_area.setdefault(area, []).append(line)
    if not rows_by_area:
        return []
    start = parsed.name.period_start
    end = date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])
    provider = parsed.name.source
    areas = conn.execute(
        _CONTRACT_IN_FORCE,
        {"month_start": start, "month_end": end, "provider": provider, "areas": sorted(rows_by_area)},
    ).fetchall()
    text = (
        f"the register of this area has no contract of {provider} in force in {parsed.name.period}: "
        "the rows are loaded; the commissioner checks the register"
    )
    return [
        Finding("provider_without_contract", text, "warning", "consistency", ("area_code",), line, area)
        for area, has_contract in areas
        if not has_contract
        for line in rows_by_area[area]
    ]
