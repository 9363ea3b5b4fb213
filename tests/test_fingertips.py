"""The Fingertips connector against local HTTP servers answering like the API (shared/feeds/benchmarks.md).

Hand-made answers (pytest-httpserver) cover the CSV's shapes: both header variants and a shuffled
column order, an area listed twice, England in every answer, a suppressed value, deprivation
breakdown rows, periods out of order; then the metadata check, refusals, retries, the raw gate's
rules, and the demo's stand-in.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fingertips_csv import CURRENT_HEADER, DEPRIVATION, OLD_HEADER, csv_answer, metadata_answer, row
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from misuse_warehouse import fingertips, gate, pipeline, settings
from misuse_warehouse.file_checks import read_file
from misuse_warehouse.simulate import fingertips_api

OPIATES = 90244
OPIATES_NAME = "Successful completion of drug treatment: opiate users"
ENGLAND = ("E92000001", "England")
SOUTH_EAST = ("E12000008", "South East")
MONTH = "2025-03"
FAST = fingertips.RetryPolicy(attempts=3, backoff=0, timeout=5.0)
INDICATORS = {i.indicator_id: i for i in fingertips.load_indicators()}
SUPPRESSED = "Value suppressed for disclosure control due to small count"


def england(period: str, value: str, **fields: Any) -> dict[str, str]:
    return row(OPIATES, OPIATES_NAME, *ENGLAND, period, value, **fields)


def area(code: str, name: str, period: str, value: str, **fields: Any) -> dict[str, str]:
    return row(OPIATES, OPIATES_NAME, code, name, period, value, **fields)


# England 2023 is listed before 2022: order comes from Time period Sortable, never from the file
ENGLAND_ROWS = [
    england("2023", "5.1234", lower="5.0123", upper="5.2345", count="6512", denominator="127104"),
    england("2022", "5.0", lower="4.9", upper="5.1", count="6400", denominator="128000"),
]
DECILES = [
    england("2023", "3.9", category=(DEPRIVATION, "Most deprived decile (IMD2019)"), count="700", denominator="17949"),
    england("2023", "6.4", category=(DEPRIVATION, "Least deprived decile (IMD2019)"), count="512", denominator="8000"),
]
REGION = area("E12000008", "South East", "2023", "5.6", parent=ENGLAND, goal="Better", count="900", denominator="16071")
MEDWAY = {"count": "41", "denominator": "682", "lower": "4.4", "upper": "8.1"}
UTLA_ROWS = [
    # Medway twice: once without its parent, once with its region (the API does this)
    area("E06000035", "Medway", "2023", "6.0117", **MEDWAY),
    area("E06000035", "Medway", "2023", "6.0117", parent=SOUTH_EAST, **MEDWAY),
    # suppressed: no value, the note kept
    area("E06000053", "Isles of Scilly", "2023", "", parent=("E12000009", "South West"), note=SUPPRESSED),
]
SHUFFLED_HEADER = list(reversed(CURRENT_HEADER))


def answers(area_type: int) -> bytes:
    if area_type == 15:
        return csv_answer(ENGLAND_ROWS + DECILES)
    if area_type == 6:
        return csv_answer(ENGLAND_ROWS + [REGION], OLD_HEADER)
    return csv_answer(ENGLAND_ROWS + UTLA_ROWS, SHUFFLED_HEADER)


def serve(
    httpserver: HTTPServer,
    metadata: dict[int, tuple[str, str]],
    csv_for: Any = lambda indicator_id, area_type: answers(area_type),
) -> list[tuple[int, int]]:
    """Metadata and CSV endpoints; returns the (indicator, area type) CSV requests as they come."""
    asked: list[tuple[int, int]] = []

    def data(request: Request) -> Response:
        indicator_id, area_type = int(request.args["indicator_ids"]), int(request.args["child_area_type_id"])
        assert request.args["parent_area_type_id"] == "15"
        asked.append((indicator_id, area_type))
        return Response(csv_for(indicator_id, area_type), content_type="text/csv")

    httpserver.expect_request("/api/indicator_metadata/by_indicator_id").respond_with_data(
        metadata_answer(metadata), content_type="application/json"
    )
    httpserver.expect_request("/api/all_data/csv/by_indicator_id").respond_with_handler(data)
    return asked


def client(httpserver: HTTPServer) -> fingertips.FingertipsClient:
    return fingertips.FingertipsClient(httpserver.url_for("/api"), FAST)


def read_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- the CSV's shapes ------------------------------------------------------------------------


def test_pull_reads_the_csv_by_name_and_normalises_it(
    db: psycopg.Connection, httpserver: HTTPServer, tmp_path: Path
) -> None:
    asked = serve(httpserver, {OPIATES: (OPIATES_NAME, "%")})
    result = fingertips.pull(MONTH, client=client(httpserver), indicators=[INDICATORS[OPIATES]], out_dir=tmp_path)

    assert result.refused == []
    assert asked == [(OPIATES, 15), (OPIATES, 6), (OPIATES, 502)]
    summary = result.indicators[OPIATES]
    assert summary["header_variants"] == ["current", "old"]  # Compared to goal / Target data
    assert summary["parent_comparison_labels"] == ["Region", "parent"]
    # England twice more (the 6 and 502 answers) x 2 periods, and Medway's second listing
    assert summary["duplicates_removed"] == 5
    assert (summary["breakdown_rows"], summary["suppressed_rows"]) == (2, 1)
    # every answer archived as received before it was read
    archived = [Path(p) for p in summary["archived"]]
    assert [p.name.split("_")[0] for p in archived] == ["indicator"] * 4
    assert archived[1].read_bytes() == answers(15)

    path = Path(result.files[0])
    assert path == tmp_path / "fingertips" / MONTH / f"fingertips_{OPIATES}_{MONTH}.csv"
    rows = read_rows(str(path))
    keys = [(r["area_code"], r["time_period"], r["category"]) for r in rows]
    assert keys == [
        # England first, periods by Time period Sortable (2022 before 2023), breakdowns after headline
        ("E92000001", "2022", ""),
        ("E92000001", "2023", ""),
        ("E92000001", "2023", "Least deprived decile (IMD2019)"),
        ("E92000001", "2023", "Most deprived decile (IMD2019)"),
        ("E12000008", "2023", ""),
        ("E06000035", "2023", ""),
        ("E06000053", "2023", ""),
    ]
    by_area = {(r["area_code"], r["time_period"], r["category"]): r for r in rows}
    medway = by_area[("E06000035", "2023", "")]
    assert (medway["parent_code"], medway["value"], medway["count"], medway["denominator"]) == (
        "E12000008",  # the listing that names its region is kept
        "6.0117",
        "41",
        "682",
    )
    assert medway["child_area_type_id"] == "502"
    scilly = by_area[("E06000053", "2023", "")]
    assert (scilly["value"], scilly["value_note"], scilly["compared_to_england"]) == ("", SUPPRESSED, "Similar")
    decile = by_area[("E92000001", "2023", "Most deprived decile (IMD2019)")]
    assert (decile["category_type"], decile["value"]) == (DEPRIVATION, "3.9")
    region = by_area[("E12000008", "2023", "")]
    # the old header's Target data is compared_to_goal; it has no Time period range
    assert (region["compared_to_goal"], region["time_period_range"], region["parent_comparison_label"]) == (
        "Better",
        "",
        "parent",
    )
    england_2023 = by_area[("E92000001", "2023", "")]
    assert (england_2023["time_period_sortable"], england_2023["time_period_range"]) == ("20230000", "1y")
    assert {r["unit_label"] for r in rows} == {"%"}

    # the shared path: file checks, GX raw gate, contract-driven loader
    outcome = pipeline.ingest(str(path), "test-run")
    assert (outcome["status"], outcome["rows"], outcome["source"], outcome["period"]) == (
        "loaded",
        7,
        str(OPIATES),
        MONTH,
    )
    audit = db.execute(
        "select feed, source_code, period_start::text, status, row_count, dag_run_id from raw.submissions"
    ).fetchall()
    assert audit == [("fingertips", str(OPIATES), "2025-03-01", "loaded", 7, "test-run")]
    loaded = db.execute(
        """select value, value_note, category_type is not null from raw.fingertips_values
           where area_code = 'E06000053'"""
    ).fetchall()
    assert loaded == [(None, SUPPRESSED, False)]
    assert db.execute(
        "select value from raw.fingertips_values where area_code = 'E92000001' and time_period = '2023'"
        " and category is null"
    ).fetchall() == [(Decimal("5.1234"),)]

    # the same answers again: the same bytes, nothing changes
    again = fingertips.pull(MONTH, client=client(httpserver), indicators=[INDICATORS[OPIATES]], out_dir=tmp_path)
    assert pipeline.ingest(again.files[0], "test-run")["status"] == "duplicate"
    assert db.execute("select count(*) from raw.submissions").fetchone() == (1,)


# --- refusals --------------------------------------------------------------------------------


def test_metadata_that_names_another_indicator_refuses_it_alone(
    db: psycopg.Connection, httpserver: HTTPServer, tmp_path: Path
) -> None:
    metadata = {
        OPIATES: (OPIATES_NAME, "%"),
        92544: ("Smoking Prevalence in adults (18+) - current smokers (APS)", "%"),  # the unconfirmed id, wrong
        92432: ("Deaths from drug misuse", "%"),  # right name, wrong unit
        # 90245 (non-opiates) missing from the answer
    }
    asked = serve(httpserver, metadata)
    chosen = [INDICATORS[i] for i in (OPIATES, 92544, 92432, 90245)]
    result = fingertips.pull(MONTH, client=client(httpserver), indicators=chosen, out_dir=tmp_path)

    assert [Path(f).name for f in result.files] == [f"fingertips_{OPIATES}_{MONTH}.csv"]
    assert {a[0] for a in asked} == {OPIATES}, "no data is fetched for an indicator the metadata refused"
    refused = {r["indicator_id"]: r for r in result.refused}
    assert {i: r["code"] for i, r in refused.items()} == {
        92544: "indicator_metadata_mismatch",
        92432: "indicator_metadata_mismatch",
        90245: "indicator_metadata_mismatch",
    }
    assert "the API names it 'Smoking Prevalence" in refused[92544]["message"]
    assert "unconfirmed" in refused[92544]["message"]
    assert "its unit is '%', expected 'per 100,000'" in refused[92432]["message"]
    assert "not in the API's indicator_metadata answer" in refused[90245]["message"]

    for entry in result.refused:
        fingertips.record_refusal(db, entry, MONTH, "test-run")
    audit = db.execute(
        "select source_code, status, refusal_code from raw.submissions where feed = 'fingertips' order by 1"
    ).fetchall()
    assert audit == [
        ("90245", "refused", "indicator_metadata_mismatch"),
        ("92432", "refused", "indicator_metadata_mismatch"),
        ("92544", "refused", "indicator_metadata_mismatch"),
    ]
    reason = settings.quarantine_dir() / "fingertips" / MONTH / f"fingertips_92544_{MONTH}.csv.reason.txt"
    text = reason.read_text()
    assert "Smoking Prevalence" in text and "indicator_metadata_" in text  # names the archived metadata answer


def test_listings_that_disagree_refuse_the_indicator(httpserver: HTTPServer, tmp_path: Path) -> None:
    conflicting = [
        area("E06000035", "Medway", "2023", "6.0117", **MEDWAY),
        area("E06000035", "Medway", "2023", "7.5", parent=SOUTH_EAST, **MEDWAY),
    ]
    serve(
        httpserver,
        {OPIATES: (OPIATES_NAME, "%")},
        lambda _, area_type: csv_answer(ENGLAND_ROWS + (conflicting if area_type == 502 else [])),
    )
    result = fingertips.pull(MONTH, client=client(httpserver), indicators=[INDICATORS[OPIATES]], out_dir=tmp_path)
    assert result.files == []
    [refused] = result.refused
    assert refused["code"] == "conflicting_duplicates"
    assert "E06000035 2023" in refused["message"] and "value 6.0117 vs 7.5" in refused["message"]
    assert len(refused["archived"]) == 4  # metadata and the three answers, all kept


@pytest.mark.parametrize(
    ("answer", "code", "words"),
    [
        (
            csv_answer(ENGLAND_ROWS, [h for h in CURRENT_HEADER if h != "Time period Sortable"]),
            "missing_columns",
            "no column for time_period_sortable",
        ),
        (csv_answer([row(90245, "x", *ENGLAND, "2023", "30.1")]), "wrong_indicator", "is indicator 90245"),
        (csv_answer([england("2023", "five")]), "unreadable_answer", "value 'five' is not a number"),
        (b"", "unreadable_answer", "empty answer"),
    ],
)
def test_unreadable_answers_are_refused_with_the_url(
    httpserver: HTTPServer, tmp_path: Path, answer: bytes, code: str, words: str
) -> None:
    serve(httpserver, {OPIATES: (OPIATES_NAME, "%")}, lambda *_: answer)
    result = fingertips.pull(MONTH, client=client(httpserver), indicators=[INDICATORS[OPIATES]], out_dir=tmp_path)
    [refused] = result.refused
    assert refused["code"] == code
    assert words in refused["message"]
    assert "all_data/csv/by_indicator_id?indicator_ids=90244&child_area_type_id=15" in refused["message"]


# --- HTTP ------------------------------------------------------------------------------------


def test_server_errors_are_retried_then_named(httpserver: HTTPServer) -> None:
    path = "/api/indicator_metadata/by_indicator_id"
    httpserver.expect_oneshot_request(path).respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request(path).respond_with_data("busy", status=429, headers={"Retry-After": "0"})
    httpserver.expect_request(path).respond_with_data(metadata_answer({OPIATES: (OPIATES_NAME, "%")}))
    api = client(httpserver)
    url, body = api.metadata([OPIATES])
    assert json.loads(body)[str(OPIATES)]["Unit"]["Label"] == "%"
    assert len(httpserver.log) == 3  # two refusals retried, then the answer

    httpserver.clear()
    httpserver.expect_request(path).respond_with_data("down", status=500)
    with pytest.raises(fingertips.FingertipsApiError) as failed:
        api.metadata([OPIATES])
    assert "HTTP 500" in str(failed.value) and "indicator_ids=90244" in str(failed.value)
    assert len(httpserver.log) == FAST.attempts


def test_no_api_at_all_fails_the_pull_naming_the_url(tmp_path: Path) -> None:
    api = fingertips.FingertipsClient("http://127.0.0.1:9/api", FAST)  # discard port: nothing listens
    with pytest.raises(fingertips.FingertipsApiError, match=r"(?s)no answer after 3 tries .* http://127.0.0.1:9/api/"):
        fingertips.pull(MONTH, client=api, indicators=[INDICATORS[OPIATES]], out_dir=tmp_path)
    assert not (tmp_path / "fingertips").exists()


# --- the raw gate ----------------------------------------------------------------------------


def _normalised(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    records = []
    for line in rows:
        read = fingertips.read_csv(csv_answer([line]), OPIATES, 502, "test")
        records.extend(read.rows)
    for record in records:
        record["indicator_name"], record["unit_label"] = OPIATES_NAME, "%"
    return fingertips.write_file(tmp_path, OPIATES, MONTH, records)


@pytest.mark.parametrize(
    ("rows", "rule"),
    [
        ([ENGLAND_ROWS[0], ENGLAND_ROWS[0]], "one_row_per_area_sex_age_category_period"),
        ([area("E06000035", "Medway", "2023", "6.0117", **MEDWAY)], "england_listed"),
        ([england("2023", "5.1", lower="5.0", upper="5.05")], "upper_ci_95_not_below_value"),
        ([england("2023", "101.0", count="101", denominator="100")], "value_percentage_0_to_100"),
        ([england("2023", "5.1"), area("W06000001", "Anglesey", "2023", "5.0")], "area_code_gss"),
    ],
)
def test_raw_gate_refuses_each_broken_rule(tmp_path: Path, rows: list[dict[str, str]], rule: str) -> None:
    result = gate.check_file(read_file(_normalised(tmp_path, rows)))
    assert not result.success
    assert rule in [f["rule"] for f in result.failures]


def test_raw_gate_passes_a_good_file(tmp_path: Path) -> None:
    rows = ENGLAND_ROWS + DECILES + [REGION] + UTLA_ROWS[1:]
    result = gate.check_file(read_file(_normalised(tmp_path, rows)))
    assert result.success, result.failures
    assert result.evaluated == len(gate.suite_json("raw_fingertips")["expectations"])


# --- the demo's stand-in ---------------------------------------------------------------------


def test_stand_in_serves_real_shaped_benchmarks_near_published_england_values(tmp_path: Path) -> None:
    url, stop = fingertips_api.start(latest_year=2024)
    old_url, stop_old = fingertips_api.start(latest_year=2024, old_header=True)
    try:
        result = fingertips.pull(MONTH, client=fingertips.FingertipsClient(url, FAST), out_dir=tmp_path / "new")
        old = fingertips.pull(MONTH, client=fingertips.FingertipsClient(old_url, FAST), out_dir=tmp_path / "old")
    finally:
        stop()
        stop_old()
    assert result.refused == [] and len(result.files) == len(INDICATORS)
    latest = {}
    for path in result.files:
        rows = read_rows(path)
        headline = [r for r in rows if r["area_code"] == "E92000001" and not r["category_type"]]
        newest = max(headline, key=lambda r: int(r["time_period_sortable"]))
        latest[int(rows[0]["indicator_id"])] = (newest["time_period"], float(newest["value"]))
        assert any(r["category_type"] for r in rows), "deprivation breakdowns"
        assert len({r["area_code"] for r in rows if r["area_code"].startswith("E12")}) == 9
    assert latest[90244][0] == "2024" and 4.5 <= latest[90244][1] <= 6.0  # opiates about 5%
    assert 28 <= latest[90245][1] <= 34  # non-opiates about 30%
    assert 32 <= latest[92447][1] <= 38  # alcohol about 35%
    assert latest[92544][0] == "2023/24" and 40 <= latest[92544][1] <= 50  # continuity of care 40-50%
    assert latest[92432][0] == "2022 - 24" and 4 <= latest[92432][1] <= 7  # drug deaths per 100,000
    assert 400 <= latest[91414][1] <= 600  # alcohol admissions per 100,000
    assert all(s["duplicates_removed"] > 0 for s in result.indicators.values())
    assert sum(s["suppressed_rows"] for s in result.indicators.values()) > 0  # the smallest areas
    # the older header gives the same values
    assert old.indicators[OPIATES]["header_variants"] == ["old"]
    figures = ("area_code", "time_period", "category", "value", "lower_ci_95", "upper_ci_95", "value_note")
    for new_path, old_path in zip(result.files, old.files, strict=True):
        assert [tuple(r[c] for c in figures) for r in read_rows(new_path)] == [
            tuple(r[c] for c in figures) for r in read_rows(old_path)
        ]


# --- answers over the byte limit -------------------------------------------------------------


def _endless(piece: bytes, most: int) -> Any:
    """A chunked answer (no Content-Length) of `most` bytes at most: what a runaway API would send."""

    def pieces() -> Any:
        sent = 0
        while sent < most:
            sent += len(piece)
            yield piece

    return pieces()


def test_an_answer_over_the_byte_limit_refuses_the_indicator_unread(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracemalloc

    monkeypatch.setenv(settings.MAX_ANSWER_BYTES_ENV, str(2**20))
    runaway = 64 * 2**20
    row_bytes = csv_answer(ENGLAND_ROWS).partition(b"\n")[2]

    def csv_for(indicator_id: int, area_type: int) -> Any:
        if area_type == 502:
            return _endless(csv_answer(ENGLAND_ROWS).partition(b"\n")[0] + b"\n" + row_bytes * 100, runaway)
        return answers(area_type)

    serve(httpserver, {OPIATES: (OPIATES_NAME, "%")}, csv_for)
    tracemalloc.start()
    try:
        result = fingertips.pull(MONTH, client=client(httpserver), indicators=[INDICATORS[OPIATES]], out_dir=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [refused] = result.refused
    assert refused["code"] == "answer_too_large" and result.files == []
    assert "over the limit of 1,048,576 bytes (MISUSE_WAREHOUSE_MAX_ANSWER_BYTES)" in refused["message"]
    assert "child_area_type_id=502" in refused["message"]
    assert peak < 16 * 2**20, f"{peak:,} bytes traced: the answer was held whole"
    # an answer that declares its length over the limit is refused before its body is read
    httpserver.clear()
    httpserver.expect_request("/api/indicator_metadata/by_indicator_id").respond_with_data(b" " * (2**20 + 1))
    with pytest.raises(fingertips.FingertipsApiError, match="it declared 1,048,577 bytes"):
        fingertips.pull(MONTH, client=client(httpserver), indicators=[INDICATORS[OPIATES]], out_dir=tmp_path)
