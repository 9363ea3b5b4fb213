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
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import psycopg.sql

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


def file_frame(parsed: ParsedFile) -> pd.DataFrame:
    """Typed dataframe of one file, indexed by file line number, with derived columns."""
    contract = parsed.contract
    frame = pd.DataFrame(parsed.rows, columns=list(contract.column_names), index=parsed.line_numbers, dtype=object)
    for column in contract.columns:
        values = frame[column.name]
        if column.type in ("date", "month"):
            frame[column.name] = pd.to_datetime(values, format="%Y-%m-%d")
        elif column.type in ("integer", "money", "decimal"):
            frame[column.name] = pd.to_numeric(values).astype("float64")
    start = parsed.name.period_start
    frame["_file_source"] = parsed.name.source
    frame["_file_period"] = parsed.name.period
    frame["_file_period_start"] = pd.Timestamp(start)
    frame["_period_end"] = pd.Timestamp(_period_end(start, contract.period))
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
    """The file's value of measure `name` on every row of a long-format file: NaN when absent or NULL."""
    values = frame.loc[frame[measure] == name, value]
    return pd.Series(values.iloc[0] if len(values) else float("nan"), index=frame.index, dtype="float64")


_DERIVED = {"age_years": _age_years, "area_valid_on": _area_valid_on, "measure_value": _measure_value}


def check_file(parsed: ParsedFile, run_name: str | None = None) -> GateResult:
    frame = file_frame(parsed)
    hidden = set(parsed.contract.hidden_columns)
    return run_suite(parsed.contract.suite, frame, parsed.contract.feed, run_name, hidden)


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
        results.append(run_suite(suite, frame, f"marts.{table}", run_name))
    return results


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


def _checkpoint(context: Any, suite_name: str, asset: str) -> Any:
    """Suite, validation and checkpoint registered once per process (registering costs ~1 s a file)."""
    import great_expectations as gx

    spec = suite_json(suite_name)
    fingerprint = json.dumps(spec, sort_keys=True)
    key = (settings.gx_dir(), suite_name, asset)
    cached = _checkpoint_cache.get(key)
    if cached and cached[0] == fingerprint:
        return cached[1]
    suite = context.suites.add_or_update(gx.ExpectationSuite(**spec))
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
            # every failing row: the frame's index is the file's row number, so unexpected_index_list
            # names the rows of the validation report
            result_format={"result_format": "COMPLETE"},
        )
    )
    _checkpoint_cache[key] = (fingerprint, checkpoint)
    return checkpoint


def run_suite(
    suite_name: str,
    frame: pd.DataFrame,
    asset: str,
    run_name: str | None = None,
    hidden_columns: set[str] = frozenset(),
) -> GateResult:
    """Validate `frame`; the stored result is filed under `run_name` (the Airflow run) for Data Docs."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.exceptions.resource_freshness import ResourceFreshnessAggregateError

    with _gx_context() as context:
        checkpoint = _checkpoint(context, suite_name, asset)
        run_id = RunIdentifier(run_name=run_name)
        try:
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        except ResourceFreshnessAggregateError:
            # another process saved the same suite since we cached it: register afresh, once
            _checkpoint_cache.pop((settings.gx_dir(), suite_name, asset), None)
            checkpoint = _checkpoint(context, suite_name, asset)
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
    results = next(iter(outcome.run_results.values())).results
    failed = [r for r in results if not r.success]
    failures = [_failure(r, hidden_columns) for r in failed]
    findings = [f for r in failed for f in _findings(r, frame, hidden_columns)]
    return GateResult(suite_name, not failures, failures, len(results), [_check(r) for r in results], findings)


def _check(result: Any) -> dict[str, Any]:
    """One expectation's outcome, counts only (no values: they may be personal data)."""
    config = result.expectation_config
    detail = result.result or {}
    return {
        "expectation": config.type,
        "rule": (config.meta or {}).get("rule", config.type),
        "dimension": (config.meta or {}).get("dimension"),
        "columns": [str(config.kwargs[k]) for k in ("column", "column_A", "column_B") if k in config.kwargs],
        "success": bool(result.success),
        "element_count": detail.get("element_count"),
        "unexpected_count": detail.get("unexpected_count"),
        "unexpected_percent": _plain(detail.get("unexpected_percent")),
    }


def _failure(result: Any, hidden_columns: set[str]) -> dict[str, Any]:
    config = result.expectation_config
    kwargs = config.kwargs
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    hidden = any(c in hidden_columns for c in columns)
    detail = result.result or {}
    rows = [int(i) for i in (detail.get("unexpected_index_list") or [])][:MAX_EXAMPLES]
    values = [] if hidden else [_plain(v) for v in (detail.get("partial_unexpected_list") or [])]
    return {
        "rule": (config.meta or {}).get("rule", config.type),
        "dimension": (config.meta or {}).get("dimension"),
        "expectation": config.type,
        "columns": columns,
        "unexpected_count": detail.get("unexpected_count"),
        "rows": rows,
        "values": values[:MAX_EXAMPLES],
        "exception": (result.exception_info or {}).get("exception_message")
        if result.exception_info and result.exception_info.get("raised_exception")
        else None,
    }


def _findings(result: Any, frame: pd.DataFrame, hidden_columns: set[str]) -> list[Finding]:
    """One finding per failing row, with the values the submitter needs to find and fix it.

    Rows come from GX's unexpected_index_list; values from the frame, for the rule's columns or
    the columns its `meta.report_columns` names (a derived flag says less than the code it tests).
    Values in a person-identifier column are withheld.
    """
    config = result.expectation_config
    meta = config.meta or {}
    kwargs = config.kwargs
    columns = tuple(kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs) or tuple(
        kwargs.get("column_list", ())
    )
    shown = tuple(meta.get("report_columns", columns))
    rule, dimension, text = meta.get("rule", config.type), meta.get("dimension"), describe(config)
    detail = result.result or {}
    rows = detail.get("unexpected_index_list") or []
    if result.exception_info and result.exception_info.get("raised_exception"):
        text = f"{text} (the check could not run: {result.exception_info.get('exception_message')})"
    if not rows:
        return [Finding(rule, text, "error", dimension, shown)]
    findings = []
    for index in rows[:MAX_REPORT_ROWS]:
        row = int(index["_row"]) if isinstance(index, dict) else int(index)
        findings.append(
            Finding(rule, text, "error", dimension, shown, row, _row_values(frame, row, shown, hidden_columns))
        )
    return findings


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
