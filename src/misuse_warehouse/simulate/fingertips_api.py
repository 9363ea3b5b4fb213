"""A local stand-in for OHID's Fingertips API, so the demo and tests pull benchmarks offline.

It answers the two endpoints the connector uses, in the API's shape:

- `GET /api/indicator_metadata/by_indicator_id?indicator_ids=a,b`: JSON keyed by indicator id
  (`Descriptive.Name`, `Descriptive.Definition`, `Unit.Label`, `YearType`);
- `GET /api/all_data/csv/by_indicator_id?indicator_ids=a&child_area_type_id=t&parent_area_type_id=15`:
  the CSV with the API's columns, England always, regions for t=6, upper-tier areas for t=502.

The figures are invented but shaped like the real ones: England's values follow the published
levels (successful completions: opiates about 5%, non-opiates about 30%, alcohol about 35%;
continuity of care after prison 37% rising to about 48%; drug misuse deaths about 5 per 100,000;
alcohol-specific admissions about 480 per 100,000), each upper-tier area scatters around them in
proportion to its adult population (ONS mid-2023, from the dbt seeds), regions and England are
the sums of their areas, and the quirks the connector must handle are there: an area listed twice
(once without its parent), England listed in every answer, deprivation-decile breakdown rows,
suppressed values (empty with a `Value note`) for the smallest areas, period texts such as
`2022/23` and `2021 - 23` with `Time period Sortable`. `old_header=True` writes the older header
(`Target data`, no `Time period range`). The same seed gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from misuse_warehouse import settings
from misuse_warehouse.simulate import serving

ENGLAND = ("E92000001", "England")
Z95, Z998 = 1.959964, 3.090232
SUPPRESSED_NOTE = "Value suppressed for disclosure control due to small count"
DEPRIVATION = "County & UA deprivation deciles in England (IMD2019, 4/23 geography)"
DECILES = (
    "Most deprived decile (IMD2019)",
    "Second most deprived decile (IMD2019)",
    "Third more deprived decile (IMD2019)",
    "Fourth more deprived decile (IMD2019)",
    "Fifth more deprived decile (IMD2019)",
    "Fifth less deprived decile (IMD2019)",
    "Fourth less deprived decile (IMD2019)",
    "Third less deprived decile (IMD2019)",
    "Second least deprived decile (IMD2019)",
    "Least deprived decile (IMD2019)",
)
AREA_TYPE_NAMES = {15: "England", 6: "Region", 502: "Counties & UAs (from Apr 2023)"}

HEADER = [
    "Indicator ID", "Indicator Name", "Parent Code", "Parent Name", "Area Code", "Area Name", "Area Type",
    "Sex", "Age", "Category Type", "Category", "Time period", "Value", "Lower CI 95.0 limit",
    "Upper CI 95.0 limit", "Lower CI 99.8 limit", "Upper CI 99.8 limit", "Count", "Denominator",
    "Value note", "Recent Trend", "Compared to England value or percentiles",
    "Compared to {parent} value or percentiles", "Time period Sortable", "New data", "Compared to goal",
    "Time period range",
]  # fmt: skip


@dataclass(frozen=True)
class Spec:
    """One indicator as the stand-in publishes it."""

    indicator_id: int
    name: str
    definition: str
    unit: str
    year_type: str  # calendar, financial, three_year
    first_year: int
    england: tuple[tuple[int, float], ...]
    """(year, England value) anchors; years in between are interpolated."""
    people_per_adult: float
    """Denominator per adult resident (per resident for rates: the population itself)."""
    polarity: str
    age: str = "18+ yrs"


SPECS = {
    s.indicator_id: s
    for s in (
        Spec(
            90244,
            "Successful completion of drug treatment: opiate users",
            "Number of users of opiates that left drug treatment successfully (free of drug(s) of dependence) "
            "who do not then re-present to treatment again within 6 months as a percentage of the total "
            "number of opiate users in treatment.",
            "%",
            "calendar",
            2012,
            ((2012, 7.8), (2015, 6.7), (2019, 5.6), (2021, 5.0), (2023, 5.1), (2026, 5.3)),
            0.0031,
            "higher",
        ),
        Spec(
            90245,
            "Successful completion of drug treatment: non-opiate users",
            "Number of users of non-opiates that left drug treatment successfully who do not then re-present "
            "within 6 months as a percentage of the total number of non-opiate users in treatment.",
            "%",
            "calendar",
            2012,
            ((2012, 40.2), (2015, 37.3), (2019, 33.7), (2021, 32.0), (2023, 30.8), (2026, 31.5)),
            0.0011,
            "higher",
        ),
        Spec(
            92447,
            "Successful completion of alcohol treatment",
            "Number of alcohol users that left structured treatment successfully who do not then re-present "
            "within 6 months as a percentage of the total number of alcohol users in structured treatment.",
            "%",
            "calendar",
            2012,
            ((2012, 37.4), (2015, 38.4), (2019, 37.8), (2021, 36.6), (2023, 34.9), (2026, 35.5)),
            0.0017,
            "higher",
        ),
        Spec(
            92544,
            "Adults with substance misuse treatment need who successfully engage in community-based structured "
            "treatment following release from prison",
            "The proportion of adults released from prison with a substance misuse treatment need who "
            "successfully engaged in community-based structured treatment within three weeks of release.",
            "%",
            "financial",
            2019,
            ((2019, 37.2), (2020, 36.9), (2021, 38.6), (2022, 43.2), (2023, 48.1), (2026, 50.0)),
            0.00065,
            "higher",
        ),
        Spec(
            92432,
            "Deaths from drug misuse",
            "Age-standardised mortality rate from drug misuse per 100,000 population.",
            "per 100,000",
            "three_year",
            2010,
            ((2010, 3.3), (2015, 4.2), (2019, 5.0), (2021, 5.2), (2024, 5.6)),
            3.0,
            "lower",
            age="All ages",
        ),
        Spec(
            91414,
            "Admission episodes for alcohol-related conditions (Narrow)",
            "Admissions to hospital where the primary diagnosis is an alcohol-related condition, or a "
            "secondary diagnosis is an alcohol-related external cause, per 100,000 population.",
            "per 100,000",
            "financial",
            2016,
            ((2016, 464.0), (2019, 519.0), (2020, 456.0), (2022, 475.0), (2023, 494.0), (2026, 500.0)),
            1.0,
            "lower",
            age="All ages",
        ),
    )
}


def _rng(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big"))


def _england_value(spec: Spec, year: int) -> float:
    anchors = spec.england
    if year <= anchors[0][0]:
        return anchors[0][1]
    for (y0, v0), (y1, v1) in zip(anchors, anchors[1:], strict=False):
        if y0 <= year <= y1:
            return v0 + (v1 - v0) * (year - y0) / (y1 - y0)
    return anchors[-1][1]


def period_text(spec: Spec, year: int) -> tuple[str, int, str]:
    """(Time period, Time period Sortable, Time period range) as the API writes them."""
    if spec.year_type == "financial":
        return f"{year}/{(year + 1) % 100:02d}", year * 10000, "1y"
    if spec.year_type == "three_year":
        return f"{year} - {(year + 2) % 100:02d}", year * 10000, "3y"
    return str(year), year * 10000, "1y"


def _last_year(spec: Spec, latest_year: int) -> int:
    """Financial years end a year later and three-year periods start two years earlier."""
    return {"financial": latest_year - 1, "three_year": latest_year - 2}.get(spec.year_type, latest_year)


@cache
def _areas() -> tuple[tuple[str, str, str, str, int, int], ...]:
    """(code, name, region code, region name, adults, residents) of today's upper-tier areas."""
    seeds = settings.DBT_PROJECT_DIR / "seeds"
    with (seeds / "ref_population_mid_year.csv").open(newline="") as handle:
        people = {
            r["area_code"]: (int(r["population_18_plus"]), int(r["population_all_ages"]))
            for r in csv.DictReader(handle)
            if r["year"] == "2023"
        }
    with (seeds / "ref_upper_tier_local_authorities.csv").open(newline="") as handle:
        return tuple(
            (r["area_code"], r["area_name"], r["region_code"], r["region_name"], *people[r["area_code"]])
            for r in csv.DictReader(handle)
            if not r["valid_to"] and r["area_code"] in people
        )


def _proportion_limits(count: int, denominator: int, z: float) -> tuple[float, float]:
    """Wilson score interval, in %: the method Fingertips uses for proportions."""
    p, n = count / denominator, denominator
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 100 * (centre - spread) / (1 + z * z / n), 100 * (centre + spread) / (1 + z * z / n)


def _rate_limits(count: int, denominator: int, z: float) -> tuple[float, float]:
    """Byar's approximation for a rate per 100,000, as Fingertips does for counts."""
    lower = 0.0 if count == 0 else count * (1 - 1 / (9 * count) - z / (3 * math.sqrt(count))) ** 3
    upper = (count + 1) * (1 - 1 / (9 * (count + 1)) + z / (3 * math.sqrt(count + 1))) ** 3
    return 100_000 * lower / denominator, 100_000 * upper / denominator


@dataclass(frozen=True)
class Figure:
    count: int
    denominator: int

    def value(self, spec: Spec) -> float:
        scale = 100 if spec.unit == "%" else 100_000
        return scale * self.count / self.denominator

    def limits(self, spec: Spec, z: float) -> tuple[float, float]:
        if spec.unit == "%":
            return _proportion_limits(self.count, self.denominator, z)
        return _rate_limits(self.count, self.denominator, z)

    def suppressed(self) -> bool:
        return self.count < 5 or self.denominator < 10


@cache
def _figures(seed: int, indicator_id: int, latest_year: int) -> dict[tuple[str, int], Figure]:
    """(area code, year) -> count and denominator for every area, region and England."""
    spec = SPECS[indicator_id]
    figures: dict[tuple[str, int], Figure] = {}
    for code, _, region, _, adults, residents in _areas():
        people = residents if spec.unit != "%" else adults
        level = _rng(seed, indicator_id, code).lognormvariate(-(0.22**2) / 2, 0.22)  # mean 1
        for year in range(spec.first_year, _last_year(spec, latest_year) + 1):
            noise = _rng(seed, indicator_id, code, year).lognormvariate(-(0.08**2) / 2, 0.08)
            denominator = max(1, round(people * spec.people_per_adult))
            expected = _england_value(spec, year) * level * noise / (100 if spec.unit == "%" else 100_000)
            count = min(denominator, round(denominator * expected))
            figures[(code, year)] = Figure(count, denominator)
            for parent in (region, ENGLAND[0]):
                total = figures.get((parent, year), Figure(0, 0))
                figures[(parent, year)] = Figure(total.count + count, total.denominator + denominator)
    return figures


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _comparison(spec: Spec, figure: Figure, benchmark: float) -> str:
    lower, upper = figure.limits(spec, Z95)
    if lower <= benchmark <= upper:
        return "Similar"
    higher = lower > benchmark
    if spec.polarity in ("higher", "lower"):
        return "Better 95%" if higher == (spec.polarity == "higher") else "Worse 95%"
    return "Higher 95%" if higher else "Lower 95%"


def _row(
    spec: Spec,
    year: int,
    latest: int,
    area: tuple[str, str, str],
    parent: tuple[str, str] | None,
    figure: Figure,
    england: Figure,
    parent_figure: Figure | None,
    category: tuple[str, str] | None = None,
) -> list[str]:
    code, name, area_type = area
    text, sortable, span = period_text(spec, year)
    values = ["", "", "", "", ""]
    note, versus_england, versus_parent = "", "", ""
    if figure.suppressed():
        note = SUPPRESSED_NOTE
        versus_england = versus_parent = "Not compared"
    else:
        lower, upper = figure.limits(spec, Z95)
        lower_998, upper_998 = figure.limits(spec, Z998)
        values = [_number(v) for v in (figure.value(spec), lower, upper, lower_998, upper_998)]
        if code != ENGLAND[0] and category is None:
            versus_england = _comparison(spec, figure, england.value(spec))
            if parent_figure is not None:
                versus_parent = _comparison(spec, figure, parent_figure.value(spec))
    return [
        str(spec.indicator_id),
        spec.name,
        parent[0] if parent else "",
        parent[1] if parent else "",
        code,
        name,
        area_type,
        "Persons",
        spec.age,
        category[0] if category else "",
        category[1] if category else "",
        text,
        *values,
        "" if figure.suppressed() else str(figure.count),
        "" if figure.suppressed() else str(figure.denominator),
        note,
        "Cannot be calculated" if category else "No significant change",
        versus_england,
        versus_parent,
        str(sortable),
        "New data" if year == latest else "",
        "",
        span,
    ]


def csv_body(seed: int, indicator_id: int, child_area_type: int, latest_year: int, old_header: bool = False) -> bytes:
    """The all_data CSV of one indicator for one child area type, parent England."""
    spec = SPECS[indicator_id]
    figures = _figures(seed, indicator_id, latest_year)
    last = _last_year(spec, latest_year)
    years = range(spec.first_year, last + 1)
    parent_label = "Region" if child_area_type == 502 else "parent"
    header = [h.format(parent=parent_label) for h in HEADER]
    rows: list[list[str]] = []
    england_area = (*ENGLAND, "England")
    for year in years:
        england = figures[(ENGLAND[0], year)]
        rows.append(_row(spec, year, last, england_area, None, england, england, None))
    # deprivation deciles of England for the latest three periods: breakdowns, not headline values
    for year in years[-3:]:
        england = figures[(ENGLAND[0], year)]
        for i, decile in enumerate(DECILES):
            gradient = 1 + (0.25 if spec.polarity == "lower" else -0.25) * (4.5 - i) / 4.5
            share = Figure(round(england.count * gradient / 10), max(1, round(england.denominator / 10)))
            rows.append(_row(spec, year, last, england_area, None, share, england, None, (DEPRIVATION, decile)))
    regions = sorted({(a[2], a[3]) for a in _areas()})
    if child_area_type == 6:
        for code, name in regions:
            for year in years:
                england = figures[(ENGLAND[0], year)]
                rows.append(
                    _row(spec, year, last, (code, name, "Region"), ENGLAND, figures[(code, year)], england, england)
                )
    if child_area_type == 502:
        for n, (code, name, region, region_name, _, _) in enumerate(_areas()):
            for year in years:
                england = figures[(ENGLAND[0], year)]
                args = (spec, year, last, (code, name, AREA_TYPE_NAMES[502]))
                region_figure = figures[(region, year)]
                rows.append(_row(*args, (region, region_name), figures[(code, year)], england, region_figure))
                if n == 0:  # the API lists some areas twice, once without their parent
                    rows.append(_row(*args, None, figures[(code, year)], england, region_figure))
    if old_header:
        drop = header.index("Time period range")
        header = [("Target data" if h == "Compared to goal" else h) for i, h in enumerate(header) if i != drop]
        rows = [[v for i, v in enumerate(r) if i != drop] for r in rows]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def metadata_body(ids: list[int], names: dict[int, str] | None = None) -> bytes:
    year_types = {"calendar": (1, "Calendar"), "financial": (2, "Financial"), "three_year": (1, "Calendar")}
    answer = {}
    for indicator_id in ids:
        spec = SPECS.get(indicator_id)
        if spec is None:
            continue
        year_type = year_types[spec.year_type]
        answer[str(indicator_id)] = {
            "IID": indicator_id,
            "Descriptive": {
                "Name": (names or {}).get(indicator_id, spec.name),
                "Definition": spec.definition,
                "DataSource": "National Drug Treatment Monitoring System (simulated)"
                if spec.unit == "%"
                else "Office for National Statistics (simulated)",
            },
            "Unit": {"Id": 5 if spec.unit == "%" else 8, "Label": spec.unit, "Value": 100 if spec.unit == "%" else 1e5},
            "ValueType": {"Id": 5 if spec.unit == "%" else 3, "Name": "Proportion" if spec.unit == "%" else "Rate"},
            "YearType": {"Id": year_type[0], "Name": year_type[1]},
        }
    return json.dumps(answer).encode()


def england_values(seed: int = 42, latest_year: int = 2024) -> dict[int, tuple[str, float]]:
    """England's latest period and value per indicator, as the stand-in publishes them (for checks)."""
    answer = {}
    for indicator_id, spec in SPECS.items():
        year = _last_year(spec, latest_year)
        figure = _figures(seed, indicator_id, latest_year)[(ENGLAND[0], year)]
        answer[indicator_id] = (period_text(spec, year)[0], figure.value(spec))
    return answer


def start(
    port: int = 0,
    *,
    seed: int = 42,
    latest_year: int = 2024,
    old_header: bool = False,
    names: dict[int, str] | None = None,
) -> tuple[str, Callable[[], None]]:
    """Serve on 127.0.0.1 in a daemon thread; returns (base URL ending in /api, stop).

    `latest_year` is the newest calendar year published; `names` renames indicators in the
    metadata (to show the connector refusing an id the API describes as something else).
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # http.server's naming
            url = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                ids = [int(i) for i in params.get("indicator_ids", "").split(",") if i.strip()]
            except ValueError:
                return self._answer(400, b"indicator_ids must be numbers", "text/plain")
            path = url.path.rstrip("/")
            if path == "/api/indicator_metadata/by_indicator_id":
                return self._answer(200, metadata_body(ids, names), "application/json")
            if path == "/api/all_data/csv/by_indicator_id":
                child = int(params.get("child_area_type_id", "0") or 0)
                if child not in AREA_TYPE_NAMES or params.get("parent_area_type_id") != "15":
                    return self._answer(400, b"unsupported area types", "text/plain")
                known = [i for i in ids if i in SPECS]
                bodies = [csv_body(seed, i, child, latest_year, old_header) for i in known]
                body = bodies[0] if bodies else ",".join(HEADER).encode() + b"\r\n"
                for extra in bodies[1:]:
                    body += extra.split(b"\r\n", 1)[1]
                return self._answer(200, body, "text/csv")
            return self._answer(404, b"not found", "text/plain")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the demo's console is for the pipeline."""

    return serving.serve(Handler, port, "fake-fingertips-api")
