"""The two quality gates, both Great Expectations suites kept as JSON in `expectations/`.

Raw gate: the feed's suite on the typed rows of one file, before anything is loaded.
Mart gate: `marts_<table>` suites on the tables built in the next schema, before publication.
GX is imported here only (it takes seconds), never at DAG parse time.
"""

from __future__ import annotations

import calendar
import fcntl
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import psycopg.sql
import pyarrow as pa

from misuse_warehouse import settings
from misuse_warehouse.file_checks import MAX_EXAMPLES, WITHHELD, ParsedFile
from misuse_warehouse.refusal import Finding, Refusal

# Rows of one rule kept for the validation report; a rule broken on more rows is summarised.
MAX_REPORT_ROWS = 10_000


@dataclass
class GateResult:
    suite: str
    success: bool
    failures: list[dict[str, Any]]
    evaluated: int
    checks: list[dict[str, Any]] = field(default_factory=list)  # every expectation, for ops.gate_results
    findings: list[Finding] = field(default_factory=list)

    def refusal(self) -> Refusal:
        rules = ", ".join(f["rule"] for f in self.failures)
        first = self.failures[0]
        return Refusal(
            f"rule_broken:{first['rule']}" if len(self.failures) == 1 else "rules_broken",
            f"{len(self.failures)} contract rule(s) broken: {rules}",
            self.failures,
            self.findings,
        )


def suite_json(name: str) -> dict[str, Any]:
    return json.loads((settings.EXPECTATIONS_DIR / f"{name}.json").read_text())


def mart_suites() -> list[str]:
    return sorted(p.stem for p in settings.EXPECTATIONS_DIR.glob("marts_*.json"))


# Raw gate

# Each row's file, numbered in the list the frame was built from, and its line in that file.
FILE_COLUMN = "_file"
LINE_COLUMN = "_line"
# What GX keeps of a feed's failing rows: their file and line numbers, never their values. GX stores
# every result under <home>/gx and renders it into Data Docs, which nothing purges and many can
# read; a value there could be a date of birth or initials (or, in a shifted column, anything).
# The submitter's validation report, under retention, carries the values it may show.
RAW_RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [FILE_COLUMN, LINE_COLUMN],
    "exclude_unexpected_values": True,
}
# Marts hold aggregates and pseudonyms only: their failing rows are named by index, with their values.
MART_RESULT_FORMAT = {"result_format": "COMPLETE"}


def files_frame(files: list[ParsedFile]) -> pd.DataFrame:
    """Typed dataframe of files of one contract, indexed by file line number, with derived columns.

    `_file` numbers each row's file in `files`; the `_file_*` and `_period_end` columns hold what
    the rules compare a row with (the file's source and period). Built once for all the files:
    pandas' cost is per call more than per row.
    """
    contract = files[0].contract
    counts = [parsed.row_count for parsed in files]
    table = pa.concat_tables([parsed.table for parsed in files])
    frame = pd.DataFrame(
        {name: table.column(name).to_numpy(zero_copy_only=False) for name in contract.column_names},
        index=list(chain.from_iterable(parsed.line_numbers for parsed in files)),
        dtype=object,
    )
    for column in contract.columns:
        values = frame[column.name]
        if column.type in ("date", "month"):
            frame[column.name] = pd.to_datetime(values, format="%Y-%m-%d")
        elif column.type in ("integer", "money", "decimal"):
            frame[column.name] = pd.to_numeric(values).astype("float64")
    starts = [parsed.name.period_start for parsed in files]
    frame[FILE_COLUMN] = np.repeat(np.arange(len(files)), counts)
    frame[LINE_COLUMN] = frame.index.to_numpy(dtype="int64")
    frame["_file_source"] = np.repeat(np.array([parsed.name.source for parsed in files], dtype=object), counts)
    frame["_file_period"] = np.repeat(np.array([parsed.name.period for parsed in files], dtype=object), counts)
    frame["_file_period_start"] = np.repeat(pd.DatetimeIndex(starts), counts)
    frame["_period_end"] = np.repeat(pd.DatetimeIndex([_period_end(s, contract.period) for s in starts]), counts)
    for derived in contract.derived:
        frame[derived.name] = _DERIVED[derived.kind](frame, *derived.args)
    return frame


def _period_end(start: date, period: str) -> date:
    if period == "financial_year":
        return date(start.year + 1, 3, 31)
    return date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])


def _age_years(frame: pd.DataFrame, dob: str, on: str) -> pd.Series:
    born, day = frame[dob], frame[on]
    had_birthday = (day.dt.month > born.dt.month) | ((day.dt.month == born.dt.month) & (day.dt.day >= born.dt.day))
    return (day.dt.year - born.dt.year - (~had_birthday).astype("float64")).astype("float64")


@cache
def _areas() -> pd.DataFrame:
    path = settings.DBT_PROJECT_DIR / "seeds" / "ref_upper_tier_local_authorities.csv"
    areas = pd.read_csv(path, dtype=str)
    areas["valid_from"] = pd.to_datetime(areas["valid_from"])
    areas["valid_to"] = pd.to_datetime(areas["valid_to"])
    return areas.set_index("area_code")


def _area_valid_on(frame: pd.DataFrame, code: str, on: str) -> pd.Series:
    areas = _areas()
    known = frame[code].isin(areas.index)
    lookup = frame[code].where(known, areas.index[0])
    valid_from = areas["valid_from"].reindex(lookup).set_axis(frame.index)
    valid_to = areas["valid_to"].reindex(lookup).set_axis(frame.index)
    day = frame[on]
    inside = (valid_from.isna() | (valid_from <= day)) & (valid_to.isna() | (day <= valid_to))
    return (known & inside).astype(bool)


def _measure_value(frame: pd.DataFrame, measure: str, value: str, name: str) -> pd.Series:
    """Its file's value of measure `name` on every row of a long-format file: NaN when absent or NULL."""
    first = frame.loc[frame[measure] == name].drop_duplicates(FILE_COLUMN).set_index(FILE_COLUMN)[value]
    return frame[FILE_COLUMN].map(first).astype("float64")


_DERIVED = {"age_years": _age_years, "area_valid_on": _area_valid_on, "measure_value": _measure_value}


def check_file(parsed: ParsedFile, run_name: str | None = None) -> GateResult:
    return check_files([parsed], run_name)[0]


# Expectations GX decides row by row: the rows a file breaks are the same alone or beside other files.
ROW_BY_ROW = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
        "expect_column_value_lengths_to_be_between",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_in_set",
    }
)
# Uniqueness holds within a file: checked together with the file's number.
WITHIN_FILE = frozenset({"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"})
# Rows validated in one GX run: GX costs ~0.4 s per run whatever the rows, pandas memory grows with them
# (the national treatment month's ingest task: 478 MiB and 26.6 s at 50,000 rows, 641 MiB and 19.5 s at 100,000).
BATCH_ROWS = 100_000


def check_files(files: list[ParsedFile], run_name: str | None = None) -> list[GateResult]:
    """The raw gate on many files, one GX validation per suite and batch, each file judged as if alone.

    GX's cost is per expectation and run, not per row (0.4-2 s a file): a month of 300 treatment
    files checked one by one spent most of its time there. A suite of row-by-row rules and
    within-file uniqueness (every feed's) validates the files' frames stacked with a file number;
    each failing row is handed back to its file and line. Any other suite runs file by file.
    """
    results: list[GateResult | None] = [None] * len(files)
    by_suite: dict[str, list[int]] = {}
    for index, parsed in enumerate(files):
        by_suite.setdefault(parsed.contract.suite, []).append(index)
    for suite, members in by_suite.items():
        spec = suite_json(suite)
        together = all(
            e["type"] in ROW_BY_ROW | WITHIN_FILE and "mostly" not in e["kwargs"] for e in spec["expectations"]
        )
        for batch in _batches(members, files) if together else [[i] for i in members]:
            frame = files_frame([files[i] for i in batch])
            hidden = set(files[batch[0]].contract.hidden_columns)
            feed = files[batch[0]].contract.feed
            checked = (
                _check_together(spec, frame, [files[i].row_count for i in batch], feed, run_name, hidden)
                if together
                else [_validate(spec, frame, feed, run_name, hidden)]
            )
            for index, result in zip(batch, checked, strict=True):
                results[index] = result
    return [r for r in results if r is not None]


def _batches(members: list[int], files: list[ParsedFile]) -> list[list[int]]:
    batches: list[list[int]] = [[]]
    rows = 0
    for index in members:
        if batches[-1] and rows + files[index].row_count > BATCH_ROWS:
            batches.append([])
            rows = 0
        batches[-1].append(index)
        rows += files[index].row_count
    return batches


def _check_together(
    spec: dict[str, Any],
    stacked: pd.DataFrame,
    counts: list[int],
    asset: str,
    run_name: str | None,
    hidden: set[str],
) -> list[GateResult]:
    """One GX run over the files' rows together (`counts` rows each); each file's result from its own failing rows."""
    owners = stacked[FILE_COLUMN].to_numpy()
    evaluations = _evaluate(_within_files(spec), _text_as_categories(stacked.reset_index(drop=True)), asset, run_name)
    results = []
    for number, count in enumerate(counts):
        own = []
        for evaluation in evaluations:
            rows = [line for file, line in zip(evaluation.files, evaluation.rows, strict=True) if file == number]
            success = evaluation.exception is None and not rows
            own.append(replace(evaluation, rows=rows, success=success, element_count=count, unexpected_count=len(rows)))
        broken = not all(e.success for e in own)
        results.append(_result(spec, own, stacked[owners == number] if broken else None, hidden))
    return results


def _text_as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as one categorical type: GX copies the frame's rows for each expectation, and a
    category code copies far faster than a Python string (national treatment month: 18 s -> 11 s).

    One set of categories for every text column keeps them comparable with each other (a provider
    code against the file's source); values, nulls and each rule's outcome are those of the text.
    """
    text = [c for c in frame.columns if frame[c].dtype == object and pd.api.types.infer_dtype(frame[c]) == "string"]
    if not text:
        return frame
    codes, categories = pd.factorize(pd.concat([frame[c] for c in text], ignore_index=True))
    dtype, rows = pd.CategoricalDtype(categories), len(frame)
    return frame.assign(
        **{c: pd.Categorical.from_codes(codes[n * rows : (n + 1) * rows], dtype=dtype) for n, c in enumerate(text)}
    )


def _within_files(spec: dict[str, Any]) -> dict[str, Any]:
    """The suite for stacked files: uniqueness keyed on the file number as well."""
    expectations = []
    for expectation in spec["expectations"]:
        kwargs = dict(expectation["kwargs"])
        kind = expectation["type"]
        if kind == "expect_column_values_to_be_unique":
            kind = "expect_compound_columns_to_be_unique"
            # a null value is never a duplicate, as in the single-column expectation
            kwargs = {"column_list": [FILE_COLUMN, kwargs.pop("column")], "ignore_row_if": "any_value_is_missing"}
        elif kind == "expect_compound_columns_to_be_unique":
            kwargs["column_list"] = [FILE_COLUMN, *kwargs["column_list"]]
        expectations.append({**expectation, "type": kind, "kwargs": kwargs})
    return {**spec, "expectations": expectations}


# Mart gate


def check_marts(conn: Any, schemas: str | tuple[str, ...], run_name: str | None = None) -> list[GateResult]:
    """Every marts_<table> suite against `<schema>.<table>`, in whichever of `schemas` dbt built the table."""
    schemas = (schemas,) if isinstance(schemas, str) else schemas
    located = dict(
        conn.execute(
            """select distinct on (table_name) table_name, table_schema from information_schema.tables
               where table_schema = any(%s) order by table_name, array_position(%s, table_schema::text)""",
            (list(schemas), list(schemas)),
        ).fetchall()
    )
    results = []
    for suite in mart_suites():
        table = suite.removeprefix("marts_")
        schema = located.get(table, schemas[0])  # a missing table fails in the query, naming it
        cursor = conn.execute(
            psycopg.sql.SQL("select * from {}.{}").format(psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table))
        )
        frame = pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])
        results.append(run_suite(suite, _arrays_as_tuples(frame), f"marts.{table}", run_name))
    return results


def _arrays_as_tuples(frame: pd.DataFrame) -> pd.DataFrame:
    """Array columns (kpi_monthly.source_submissions) as tuples, which pandas can hash.

    GX fingerprints each batch with pandas' row hash; a list in any cell makes it pickle the whole
    frame instead (0.7 s of the mart gate's 4.9 s at 36 months of ten areas).
    """
    arrays = [c for c in frame.columns if frame[c].dtype == object and isinstance(_first_value(frame[c]), list)]
    return frame.assign(**{c: frame[c].map(lambda v: tuple(v) if isinstance(v, list) else v) for c in arrays})


def _first_value(column: pd.Series) -> Any:
    """A column's first non-null value: a Postgres array column holds lists (or nulls) throughout."""
    first = column.first_valid_index()
    return None if first is None else column[first]


# GX plumbing


_context_cache: dict[Path, Any] = {}
_checkpoint_cache: dict[tuple[Path, str, str], tuple[str, Any]] = {}


@contextmanager
def _gx_context() -> Iterator[Any]:
    """The file context under .local/gx (Data Docs live there), one per process, one process at a time."""
    settings.telemetry_off()
    import great_expectations as gx

    root = settings.gx_dir()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root not in _context_cache:
            context = gx.get_context(mode="file", project_root_dir=str(root))
            context.variables.progress_bars = {"globally": False}
            _context_cache[root] = context
        yield _context_cache[root]


def _checkpoint(context: Any, spec: dict[str, Any], asset: str, result_format: dict[str, Any]) -> Any:
    """Suite, validation and checkpoint registered once per process (registering costs ~1 s a file).

    Each expectation carries its position in the suite, so a result finds its rule again.
    """
    import great_expectations as gx

    suite_name = spec["name"]
    fingerprint = json.dumps([spec, result_format], sort_keys=True)
    key = (settings.gx_dir(), suite_name, asset)
    cached = _checkpoint_cache.get(key)
    if cached and cached[0] == fingerprint:
        return cached[1]
    positioned = [
        {**e, "meta": {**(e.get("meta") or {}), "suite_position": n}} for n, e in enumerate(spec["expectations"])
    ]
    suite = context.suites.add_or_update(gx.ExpectationSuite(**{**spec, "expectations": positioned}))
    try:  # add_or_update would replace the source and drop the other suites' assets
        source = context.data_sources.get("feeds")
    except KeyError:
        source = context.data_sources.add_pandas("feeds")
    try:
        data_asset = source.get_asset(asset)
    except LookupError:
        data_asset = source.add_dataframe_asset(asset)
    batch = next(iter(data_asset.batch_definitions), None) or data_asset.add_batch_definition_whole_dataframe("whole")
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite_name}__{asset}", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{suite_name}__{asset}",
            validation_definitions=[validation],
            actions=[],
            # every failing row, named by its file and line (RAW_RESULT_FORMAT) or index (marts)
            result_format=result_format,
        )
    )
    _checkpoint_cache[key] = (fingerprint, checkpoint)
    return checkpoint


@dataclass(frozen=True)
class Evaluation:
    """One expectation's outcome on one frame (a file, or a mart): counts and the rows it failed on."""

    position: int  # in the suite's JSON
    success: bool
    rows: list[int]  # a feed's: line numbers in their files; a mart's: the frame's index
    element_count: int | None
    unexpected_count: int | None
    exception: str | None = None
    files: list[int] = field(default_factory=list)  # a feed's: the file (FILE_COLUMN) of each of `rows`


def run_suite(
    suite_name: str,
    frame: pd.DataFrame,
    asset: str,
    run_name: str | None = None,
    hidden_columns: set[str] = frozenset(),
) -> GateResult:
    """Validate `frame`; the stored result is filed under `run_name` (the Airflow run) for Data Docs."""
    return _validate(suite_json(suite_name), frame, asset, run_name, hidden_columns)


def _validate(
    spec: dict[str, Any], frame: pd.DataFrame, asset: str, run_name: str | None, hidden_columns: set[str]
) -> GateResult:
    return _result(spec, _evaluate(spec, frame, asset, run_name), frame, hidden_columns)


def _evaluate(spec: dict[str, Any], frame: pd.DataFrame, asset: str, run_name: str | None) -> list[Evaluation]:
    """Run the suite on `frame` through its checkpoint; a feed's frame (files_frame) keeps no values in GX."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.exceptions.resource_freshness import ResourceFreshnessAggregateError

    feed = LINE_COLUMN in frame.columns and FILE_COLUMN in frame.columns
    result_format = RAW_RESULT_FORMAT if feed else MART_RESULT_FORMAT
    with _gx_context() as context:
        checkpoint = _checkpoint(context, spec, asset, result_format)
        run_id = RunIdentifier(run_name=run_name)
        try:
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        except ResourceFreshnessAggregateError:
            # another process saved the same suite since we cached it: register afresh, once
            _checkpoint_cache.pop((settings.gx_dir(), spec["name"], asset), None)
            checkpoint = _checkpoint(context, spec, asset, result_format)
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
    evaluations = []
    for result in next(iter(outcome.run_results.values())).results:
        detail = result.result or {}
        raised = result.exception_info and result.exception_info.get("raised_exception")
        files, rows = _failing_rows(detail.get("unexpected_index_list") or [])
        evaluations.append(
            Evaluation(
                position=int(result.expectation_config.meta["suite_position"]),
                success=bool(result.success),
                rows=rows,
                element_count=detail.get("element_count"),
                unexpected_count=detail.get("unexpected_count"),
                exception=result.exception_info.get("exception_message") if raised else None,
                files=files,
            )
        )
    return sorted(evaluations, key=lambda e: e.position)


def _failing_rows(index_list: list[Any]) -> tuple[list[int], list[int]]:
    """(files, rows) of GX's unexpected_index_list.

    A mart's list holds the frame's index; a feed's (RAW_RESULT_FORMAT) one mapping of the index
    columns to lists (GX's shape when values are excluded), or one mapping per row.
    """
    files: list[int] = []
    rows: list[int] = []
    for item in index_list:
        if not isinstance(item, dict):
            rows.append(int(item))
            continue
        lines, owners = item[LINE_COLUMN], item[FILE_COLUMN]
        if isinstance(lines, list):
            rows += [int(line) for line in lines]
            files += [int(owner) for owner in owners]
        else:
            rows.append(int(lines))
            files.append(int(owners))
    return files, rows


def _result(
    spec: dict[str, Any], evaluations: list[Evaluation], frame: pd.DataFrame | None, hidden: set[str]
) -> GateResult:
    """The suite's outcome on one file; `frame` (its rows, by line number) is read only for failures."""
    rules = [_Rule.of(e) for e in spec["expectations"]]
    failed = [e for e in evaluations if not e.success]
    assert frame is not None or not failed, "a failing file's rows are needed for its report"
    return GateResult(
        spec["name"],
        not failed,
        [_failure(rules[e.position], e, frame, hidden) for e in failed],
        len(evaluations),
        [_check(rules[e.position], e) for e in evaluations],
        [f for e in failed for f in _findings(rules[e.position], e, frame, hidden)],
    )


@dataclass(frozen=True)
class _Rule:
    """An expectation as its suite's JSON declares it: what a report names."""

    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]

    @classmethod
    def of(cls, expectation: dict[str, Any]) -> _Rule:
        return cls(expectation["type"], expectation["kwargs"], expectation.get("meta") or {})

    @property
    def name(self) -> str:
        return self.meta.get("rule", self.type)

    @property
    def columns(self) -> list[str]:
        return [str(self.kwargs[k]) for k in ("column", "column_A", "column_B") if k in self.kwargs]


def _check(rule: _Rule, evaluation: Evaluation) -> dict[str, Any]:
    """One expectation's outcome, counts only (no values: they may be personal data)."""
    count, unexpected = evaluation.element_count, evaluation.unexpected_count
    return {
        "expectation": rule.type,
        "rule": rule.name,
        "dimension": rule.meta.get("dimension"),
        "columns": rule.columns,
        "success": evaluation.success,
        "element_count": count,
        "unexpected_count": unexpected,
        "unexpected_percent": round(100 * unexpected / count, 6) if count and unexpected is not None else None,
    }


def _failure(rule: _Rule, evaluation: Evaluation, frame: pd.DataFrame, hidden_columns: set[str]) -> dict[str, Any]:
    columns = rule.columns
    rows = evaluation.rows[:MAX_EXAMPLES]
    shown = [c for c in columns if c in frame.columns]
    values = (
        []
        if any(c in hidden_columns for c in columns) or not shown
        else [
            _plain(frame.at[r, shown[0]]) if len(shown) == 1 else [_plain(frame.at[r, c]) for c in shown] for r in rows
        ]
    )
    return {
        "rule": rule.name,
        "dimension": rule.meta.get("dimension"),
        "expectation": rule.type,
        "columns": columns,
        "unexpected_count": evaluation.unexpected_count,
        "rows": rows,
        "values": values,
        "exception": evaluation.exception,
    }


def _findings(rule: _Rule, evaluation: Evaluation, frame: pd.DataFrame, hidden_columns: set[str]) -> list[Finding]:
    """One finding per failing row, with the values the submitter needs to find and fix it.

    Rows are the frame's index (the file's line numbers); values come from the frame, for the rule's
    columns or the columns its `meta.report_columns` names (a derived flag says less than the code it
    tests). Values in a person-identifier column are withheld.
    """
    columns = tuple(rule.columns) or tuple(rule.kwargs.get("column_list", ()))
    shown = tuple(rule.meta.get("report_columns", columns))
    text = describe(rule)
    if evaluation.exception:
        text = f"{text} (the check could not run: {evaluation.exception})"
    if not evaluation.rows:
        return [Finding(rule.name, text, "error", rule.meta.get("dimension"), shown)]
    return [
        Finding(
            rule.name,
            text,
            "error",
            rule.meta.get("dimension"),
            shown,
            row,
            _row_values(frame, row, shown, hidden_columns),
        )
        for row in evaluation.rows[:MAX_REPORT_ROWS]
    ]


def _row_values(frame: pd.DataFrame, row: int, columns: tuple[str, ...], hidden_columns: set[str]) -> Any:
    values = {}
    for column in columns:
        if column in hidden_columns:
            values[column] = WITHHELD
        elif column in frame.columns and row in frame.index:
            values[column] = _plain(frame.at[row, column])
    if len(values) == 1:
        return next(iter(values.values()))
    return "; ".join(f"{_FRIENDLY.get(c, c)}={'' if v is None else v}" for c, v in values.items())


# How the columns the gate adds to a file's rows read in a report.
_FRIENDLY = {
    "_file_source": "the source code in the file name",
    "_file_period": "the period in the file name",
    "_file_period_start": "the month in the file name",
    "_period_end": "the last day of the file's period",
    "dtoa_tests_in_file": "the file's dtoa_tests",
    "required_assessments_in_file": "the file's required_assessments",
}


def _condition(config: Any) -> str:
    condition = config.kwargs.get("row_condition")
    if isinstance(condition, dict):  # GX 1.x keeps a pandas condition as a pass-through filter
        condition = condition.get("pass_through_filter") or ""
    if not isinstance(condition, str) or not condition:
        return ""
    text = re.sub(r'(\w+)=="([^"]*)"', r"\1 is \2", condition)
    text = re.sub(r"(\w+)\.notna\(\)", r"\1 is set", text)
    text = re.sub(r"(\w+)\.isna\(\)", r"\1 is empty", text)
    return f" when {text}"


def describe(config: Any) -> str:
    """The rule in words, for the submitter: `meta.description` if the suite gives one, else from the expectation."""
    meta = config.meta or {}
    if meta.get("description"):
        return meta["description"]
    kw = config.kwargs
    name = {k: _FRIENDLY.get(kw[k], kw[k]) for k in ("column", "column_A", "column_B") if k in kw}
    column, a, b = name.get("column"), name.get("column_A"), name.get("column_B")
    kind = config.type
    when = _condition(config)
    if kind == "expect_column_values_to_not_be_null":
        return f"{column} is required{when}"
    if kind == "expect_column_values_to_be_null":
        return f"{column} must be empty{when}"
    if kind == "expect_column_values_to_be_in_set":
        return f"{column} must be one of: {', '.join(map(str, kw['value_set']))}{when}"
    if kind == "expect_column_values_to_be_unique":
        return f"{column} must be unique within the file"
    if kind == "expect_compound_columns_to_be_unique":
        return f"each ({', '.join(kw['column_list'])}) at most once in the file"
    if kind == "expect_column_values_to_match_regex":
        return f"{column} must match the pattern {kw['regex']}"
    if kind == "expect_column_value_lengths_to_be_between":
        return f"{column} must be {kw.get('min_value')} to {kw.get('max_value')} characters long"
    if kind == "expect_column_values_to_be_between":
        low, high = kw.get("min_value"), kw.get("max_value")
        if low is not None and high is not None:
            return f"{column} must be between {low} and {high}{when}"
        if low is not None:
            return f"{column} must be {'more than' if kw.get('strict_min') else 'at least'} {low}{when}"
        return f"{column} must be at most {high}{when}"
    if kind == "expect_column_pair_values_to_be_equal":
        return f"{a} must equal {b}{when}"
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        equal = kw.get("or_equal")
        dated = any(
            str(kw[k]).endswith(("_date", "_dob", "_period_end", "_period_start")) for k in ("column_A", "column_B")
        )
        if str(kw["column_A"]).startswith("_"):  # read from the submitted column's side
            word = ("on or before" if equal else "before") if dated else ("at most" if equal else "less than")
            return f"{b} must be {word} {a}{when}"
        word = ("on or after" if equal else "after") if dated else ("at least" if equal else "more than")
        return f"{a} must be {word} {b}{when}"
    if kind == "expect_column_pair_values_to_be_in_set":
        return f"({a}, {b}) must be one of the allowed pairs{when}"
    return f"{kind} {json.dumps(kw, default=str)}"


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(value)
        return None if pd.isna(stamp) else stamp.date().isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def build_data_docs(run_name: str | None = None) -> Path:
    """Render the Data Docs pages of one run's validations (all when None), and the index.

    Rendering every stored validation at every run grows with history (10 s after 24 months);
    a run only adds its own pages.
    """
    with _gx_context() as context:
        if run_name is None:
            context.build_data_docs()
        else:
            keys = [k for k in context.validation_results_store.list_keys() if k.run_id.run_name == run_name]
            context.build_data_docs(resource_identifiers=keys)
    return data_docs_index()


def data_docs_index() -> Path:
    return settings.gx_dir() / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
