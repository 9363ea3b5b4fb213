"""Validation reports the data team sends back to a submitter, the way NDTMS returns them to providers.

For every refused file (beside it in quarantine) and every file loaded with warnings (under
`<home>/reports/`): each rule broken, the row numbers and the offending values, as CSV for a
spreadsheet and as one self-contained HTML page to read or attach to an email. Values of the
person identifiers (initials, date of birth, sex, and ages computed from them) are never written:
the row number is enough for the submitter, who holds the record, to find it.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from misuse_warehouse import settings
from misuse_warehouse.contracts import all_contracts
from misuse_warehouse.file_checks import WITHHELD
from misuse_warehouse.refusal import Finding, Refusal

CSV_COLUMNS = ("file", "outcome", "severity", "rule", "quality_dimension", "columns", "row", "value", "what_is_wrong")
HTML_ROWS_PER_RULE = 200

# Quality dimension of the refusals the file checks make before the GX suite runs.
_FILE_CHECK_DIMENSIONS = {
    "missing_columns": "completeness",
    "no_header": "completeness",
    "duplicate_columns": "uniqueness",
    "restatement_drops_records": "completeness",
    "provider_without_contract": "consistency",
    "future_period": "timeliness",
}


@dataclass(frozen=True)
class Report:
    csv_path: Path
    html_path: Path
    findings: int


def findings_of(refusal: Refusal) -> list[Finding]:
    """Every finding of a refusal; a file-level refusal without row findings is one finding."""
    if refusal.findings:
        return list(refusal.findings)
    dimension = _FILE_CHECK_DIMENSIONS.get(refusal.code, "validity")
    if not refusal.details:
        return [Finding(refusal.code, refusal.message, "error", dimension)]
    return [
        Finding(
            refusal.code,
            refusal.message,
            "error",
            dimension,
            (detail["column"],) if detail.get("column") else (),
            detail.get("row"),
            detail.get("value"),
        )
        for detail in refusal.details
    ]


def _masked(findings: Iterable[Finding], feed: str) -> list[Finding]:
    """Withhold any value in a personal column again, whatever the check that produced it did."""
    contract = all_contracts().get(feed)
    hidden = contract.hidden_columns if contract else frozenset()
    return [
        replace(f, value=WITHHELD) if hidden.intersection(f.columns) and f.value is not None else f for f in findings
    ]


def write_for_refusal(quarantined: Path, refusal: Refusal) -> Report:
    """Report beside a quarantined file: `<file>.report.csv` and `<file>.report.html`."""
    feed, period = quarantined.parent.parent.name, quarantined.parent.name
    return _write(
        quarantined.parent,
        quarantined.name,
        feed,
        period,
        "refused",
        f"{refusal.code}: {refusal.message}",
        findings_of(refusal),
    )


def write_for_warnings(file_name: str, feed: str, month: str, submission_id: int, warnings: list[Finding]) -> Report:
    """Report of a file loaded with warnings: `<home>/reports/<feed>/<month>/submission-<id>_<file>.report.*`."""
    folder = reports_dir() / feed / month
    return _write(
        folder,
        file_name,
        feed,
        month,
        "loaded with warnings",
        f"loaded as submission {submission_id}; {len(warnings)} warning(s) to check",
        warnings,
        prefix=f"submission-{submission_id}_",
    )


def reports_dir() -> Path:
    return settings.reports_dir()


def _write(
    folder: Path,
    file_name: str,
    feed: str,
    period: str,
    outcome: str,
    summary: str,
    findings: list[Finding],
    prefix: str = "",
) -> Report:
    folder.mkdir(parents=True, exist_ok=True)
    findings = sorted(_masked(findings, feed), key=lambda f: (f.severity != "error", f.rule, f.row or 0))
    csv_path = folder / f"{prefix}{file_name}.report.csv"
    html_path = folder / f"{prefix}{file_name}.report.html"
    csv_path.write_text(render_csv(file_name, outcome, findings), encoding="utf-8", newline="")
    html_path.write_text(render_html(file_name, feed, period, outcome, summary, findings), encoding="utf-8")
    return Report(csv_path, html_path, len(findings))


def render_csv(file_name: str, outcome: str, findings: list[Finding]) -> str:
    """The report as CSV; every cell, of every column, made safe to open in a spreadsheet (`csv_cell`).

    Records end in \\r\\n (RFC 4180): Python 3.11's writer quotes a field holding a character of the
    line terminator only, and a bare \\r in a submitted value would otherwise end the record early.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in findings:
        cells = (
            file_name,
            outcome,
            f.severity,
            f.rule,
            f.dimension or "",
            " ".join(f.columns),
            "" if f.row is None else f.row,
            "" if f.value is None else f.value,
            f.message,
        )
        writer.writerow([csv_cell(cell) for cell in cells])
    return buffer.getvalue()


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection), full-width forms included:
# Excel and LibreOffice take them after leading spaces too, and "-2+3+cmd|' /C calc'!A0" runs as well as "=".
_FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def csv_cell(value: object) -> str:
    """The cell as text a spreadsheet shows and never runs: a leading ' when it could start a formula.

    The submitter's file name, values, column names and rule texts all reach the report, so every
    cell is guarded, not only the value. A plain number (-12, 3.5) cannot be a formula and is
    written as it is, so the report's numbers stay numbers.
    """
    text = str(value)
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    stripped = text.lstrip(" \u00a0\u3000\f\v")
    return f"'{text}" if stripped[:1] in _FORMULA_START else text


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:2rem;color:#1b1b1b;max-width:70rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #b1b4b6;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f3f2f1}.error{color:#b10e1e;font-weight:600}.warning{color:#8a5300;font-weight:600}
.note{background:#f3f2f1;padding:.6rem 1rem;border-left:4px solid #1d70b8}
code{font-family:ui-monospace,Consolas,monospace}
"""


def render_html(file_name: str, feed: str, period: str, outcome: str, summary: str, findings: list[Finding]) -> str:
    e = html.escape
    by_rule: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        by_rule.setdefault((f.severity, f.rule), []).append(f)
    refused = outcome == "refused"
    advice = (
        "Nothing from this file was loaded. Please correct the rows below and send the whole file again "
        "under the same name: it will replace this one."
        if refused
        else "The file was loaded. Please check the rows below; send a corrected file under the same name "
        "if they are wrong: it will replace this one."
    )
    contract = all_contracts().get(feed)
    hidden = ", ".join(sorted(contract.hidden_columns)) if contract and contract.hidden_columns else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Validation report: {e(file_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Validation report: <code>{e(file_name)}</code></h1>",
        "<table>",
        f"<tr><th>Feed</th><td>{e(feed)}</td></tr>",
        f"<tr><th>Period</th><td>{e(period)}</td></tr>",
        f'<tr><th>Outcome</th><td class="{"error" if refused else "warning"}">{e(outcome)}</td></tr>',
        f"<tr><th>Reason</th><td>{e(summary)}</td></tr>",
        f"<tr><th>Checked</th><td>{datetime.now(UTC):%Y-%m-%d %H:%M} UTC</td></tr>",
        "</table>",
        f'<p class="note">{e(advice)}</p>',
        "<h2>Rules broken</h2>",
        "<table><tr><th>severity</th><th>rule</th><th>what is wrong</th><th>columns</th><th>rows affected</th></tr>",
    ]
    for (severity, rule), items in by_rule.items():
        rows = sorted({f.row for f in items if f.row is not None})
        shown = ", ".join(map(str, rows[:20])) + (f" and {len(rows) - 20} more" if len(rows) > 20 else "")
        affected = f"{len(rows)} (row{'s' if len(rows) > 1 else ''} {e(shown)})" if rows else ""
        parts.append(
            f'<tr><td class="{e(severity)}">{e(severity)}</td><td><code>{e(rule)}</code></td>'
            f"<td>{e(items[0].message)}</td><td>{e(' '.join(items[0].columns))}</td>"
            f"<td>{affected}</td></tr>"
        )
    parts.append("</table><h2>Row by row</h2>")
    parts.append("<table><tr><th>row</th><th>rule</th><th>columns</th><th>value</th></tr>")
    for (_severity, rule), items in by_rule.items():
        for f in items[:HTML_ROWS_PER_RULE]:
            value = "" if f.value is None else str(f.value)
            parts.append(
                f"<tr><td>{'' if f.row is None else f.row}</td><td><code>{e(rule)}</code></td>"
                f"<td>{e(' '.join(f.columns))}</td><td><code>{e(value)}</code></td></tr>"
            )
        if len(items) > HTML_ROWS_PER_RULE:
            parts.append(
                f'<tr><td colspan="4">… {len(items) - HTML_ROWS_PER_RULE} more rows for <code>{e(rule)}</code> '
                "in the CSV report</td></tr>"
            )
    parts.append("</table>")
    parts.append(
        "<p>Row numbers count the header as row 1, as a spreadsheet shows them."
        + (
            f" Values of personal data ({e(hidden)}) are never shown in this report: use the row number."
            if hidden
            else ""
        )
        + "</p></body></html>"
    )
    return "\n".join(parts) + "\n"
