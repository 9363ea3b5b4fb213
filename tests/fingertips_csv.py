"""Real-shaped Fingertips answers for tests: the API's CSV (either header variant) and metadata JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

CURRENT_HEADER = [
    "Indicator ID", "Indicator Name", "Parent Code", "Parent Name", "Area Code", "Area Name", "Area Type",
    "Sex", "Age", "Category Type", "Category", "Time period", "Value", "Lower CI 95.0 limit",
    "Upper CI 95.0 limit", "Lower CI 99.8 limit", "Upper CI 99.8 limit", "Count", "Denominator",
    "Value note", "Recent Trend", "Compared to England value or percentiles",
    "Compared to Region value or percentiles", "Time period Sortable", "New data", "Compared to goal",
    "Time period range",
]  # fmt: skip
"""The columns in the order the API writes them today."""

OLD_HEADER = [
    "Indicator ID", "Indicator Name", "Parent Code", "Parent Name", "Area Code", "Area Name", "Area Type",
    "Sex", "Age", "Category Type", "Category", "Time period", "Value", "Lower CI 95.0 limit",
    "Upper CI 95.0 limit", "Lower CI 99.8 limit", "Upper CI 99.8 limit", "Count", "Denominator",
    "Value note", "Recent Trend", "Compared to England value or percentiles",
    "Compared to parent value or percentiles", "Time period Sortable", "New data", "Target data",
]  # fmt: skip
"""Older files: `Target data` where newer say `Compared to goal`, and no `Time period range`."""

AREA_TYPES = {"E92000001": "England", "E12": "Region"}
UTLA = "Counties & UAs (from Apr 2023)"
DEPRIVATION = "County & UA deprivation deciles in England (IMD2019, 4/23 geography)"


def row(
    indicator_id: int,
    name: str,
    area: str,
    area_name: str,
    period: str,
    value: str,
    *,
    parent: tuple[str, str] | None = None,
    lower: str = "",
    upper: str = "",
    count: str = "",
    denominator: str = "",
    note: str = "",
    category: tuple[str, str] | None = None,
    age: str = "18+ yrs",
    sex: str = "Persons",
    goal: str = "",
) -> dict[str, str]:
    """One line of the API's CSV, keyed by its current column names (both comparison spellings)."""
    area_type = "England" if area == "E92000001" else "Region" if area.startswith("E12") else UTLA
    start = period[:4]
    return {
        "Indicator ID": str(indicator_id),
        "Indicator Name": name,
        "Parent Code": parent[0] if parent else "",
        "Parent Name": parent[1] if parent else "",
        "Area Code": area,
        "Area Name": area_name,
        "Area Type": area_type,
        "Sex": sex,
        "Age": age,
        "Category Type": category[0] if category else "",
        "Category": category[1] if category else "",
        "Time period": period,
        "Value": value,
        "Lower CI 95.0 limit": lower,
        "Upper CI 95.0 limit": upper,
        "Lower CI 99.8 limit": "",
        "Upper CI 99.8 limit": "",
        "Count": count,
        "Denominator": denominator,
        "Value note": note,
        "Recent Trend": "Cannot be calculated",
        "Compared to England value or percentiles": "" if area == "E92000001" else "Similar",
        "Compared to Region value or percentiles": "",
        "Compared to parent value or percentiles": "",
        "Time period Sortable": f"{start}0000",
        "New data": "",
        "Compared to goal": goal,
        "Target data": goal,
        "Time period range": "3y" if " - " in period else "1y",
    }


def csv_answer(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    """The CSV as the API sends it (CRLF lines); `header` picks the variant and the column order."""
    header = header or CURRENT_HEADER
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for line in rows:
        writer.writerow([line.get(column, "") for column in header])
    return buffer.getvalue().encode("utf-8")


def metadata_answer(indicators: dict[int, tuple[str, str]]) -> bytes:
    """indicator_metadata/by_indicator_id: keyed by id as text, with Descriptive.Name and Unit.Label."""
    return json.dumps(
        {
            str(iid): {
                "IID": iid,
                "Descriptive": {"Name": name, "Definition": f"{name} (test)"},
                "Unit": {"Id": 5, "Label": unit, "Value": 100},
                "YearType": {"Id": 1, "Name": "Calendar"},
            }
            for iid, (name, unit) in indicators.items()
        }
    ).encode()


def parse_query(query: Any) -> dict[str, Any]:
    """Werkzeug's request.args as plain values."""
    return {k: query.get(k) for k in query}
