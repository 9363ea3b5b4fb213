"""Hand-made feed files for tests: contract-shaped CSVs from a few dicts."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from misuse_warehouse.contracts import contract_for


def write_feed_file(
    landing: Path, feed: str, source: str, period: str, rows: list[dict[str, Any]], month_folder: str | None = None
) -> Path:
    """Write `<landing>/<feed>/<month>/<feed>_<source>_<period>.csv` with every contract column."""
    contract = contract_for(feed)
    folder = landing / feed / (month_folder or period)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{feed}_{source}_{period}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(contract.column_names)
        for row in rows:
            unknown = set(row) - set(contract.column_names)
            if unknown:
                raise KeyError(f"not in the {feed} contract: {sorted(unknown)}")
            writer.writerow(["" if row.get(c) is None else row[c] for c in contract.column_names])
    return path


def treatment_row(**fields: Any) -> dict[str, Any]:
    """A valid adult opiate episode; override any field."""
    row = {
        "submission_month": "2025-03",
        "provider_code": "P0001",
        "episode_id": "E1",
        "area_code": "E06000035",
        "client_initials": "AB",
        "client_dob": "1980-01-01",
        "client_sex": "m",
        "service_type": "adult",
        "substance_group": "opiate",
        "primary_substance": "heroin",
        "referral_source": "self",
        "referral_date": "2025-01-10",
        "first_intervention_date": "2025-01-20",
        "modality": "pharmacological",
    }
    row.update(fields)
    return row


def write_treatment_file(landing: Path, provider: str, month: str, rows: list[dict[str, Any]]) -> Path:
    rows = [{**r, "submission_month": month, "provider_code": provider} for r in rows]
    return write_feed_file(landing, "treatment", provider, month, rows)
