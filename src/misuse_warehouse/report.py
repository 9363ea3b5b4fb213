"""The performance pack: one area and month of the partnership scorecard as a page to read in a meeting.

`misuse-warehouse report --area E06000035 --month 2025-03` writes a self-contained HTML page (no
links out: styles inline, charts embedded as base64 PNG) and the same charts as PNG files beside
it. It reads the published marts only (`marts.partnership_scorecard`, `marts.kpi_monthly`,
`marts.fct_benchmark_values`), never raw or intermediate data, so the pack shows exactly what BI
tools see: a suppressed figure is shown as *suppressed*, never as zero, and is left out of lines
and bars rather than drawn at the axis. It reads as `bi_reader` when the login may take that role,
so it could not read anything else even by mistake.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from misuse_warehouse import roles, settings, warehouse
from misuse_warehouse.months import parse_month

_AREA = re.compile(r"^E[0-9]{8}$")
TREND_MONTHS = 12
COLOURS = {"better": "#1b7837", "similar": "#8c8c8c", "worse": "#b2182b", None: "#4c72b0"}
"""Comparison colours; the word is always written beside them, never colour alone."""
LINE, BAND, ENGLAND, TARGET, SUPPRESSED = "#1f4e79", "#9ecae1", "#d95f02", "#555555", "#999999"


class PackError(ValueError):
    """The pack cannot be written for this area and month (the message says why and what exists)."""


@dataclass
class Chart:
    name: str
    title: str
    png: bytes
    caption: str
    path: Path | None = None


@dataclass
class Pack:
    area: str
    area_name: str
    month: str
    html: Path
    charts: list[Path] = field(default_factory=list)


def connect() -> psycopg.Connection:
    """The published marts as `bi_reader` sees them, when the login may take that role.

    Otherwise the login's own rights apply: an analyst's login reads its areas (row-level security).
    """
    conn = warehouse.connect()
    may = conn.execute(
        """select case when exists (select 1 from pg_roles where rolname = %s)
                       then pg_has_role(current_user, %s, 'member') else false end""",
        (roles.BI_READER, roles.BI_READER),
    ).fetchone()[0]
    if may:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(roles.BI_READER)))
    return conn


def default_out_dir() -> Path:
    return settings.home() / "reports"


def _month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def _shift(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _rows(conn: psycopg.Connection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [c.name for c in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- reading the published marts -------------------------------------------------------------


def _scorecard(conn: psycopg.Connection, area: str, first: date, last: date) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """select * from marts.partnership_scorecard
           where area_id = %s and month_id between %s and %s
           order by sort_order, month_id""",
        (area, first, last),
    )


def _published_months(conn: psycopg.Connection, area: str) -> list[str]:
    rows = conn.execute(
        "select distinct to_char(month_id, 'YYYY-MM') from marts.partnership_scorecard where area_id = %s order by 1",
        (area,),
    ).fetchall()
    return [r[0] for r in rows]


def _spend(conn: psycopg.Connection, area: str, month: date) -> list[dict[str, Any]]:
    """F1 month and year-to-date totals for the financial year up to M (kpi_monthly)."""
    year_start = date(month.year if month.month >= 4 else month.year - 1, 4, 1)
    return _rows(
        conn,
        """select month, kpi_code, breakdown, value from marts.kpi_monthly
           where area_code = %s and month between %s and %s
             and kpi_code in ('F1_actual', 'F1_budget', 'F1_variance', 'F1_variance_pct')
             and breakdown in ('period=month', 'period=fytd')
           order by month""",
        (area, year_start, month),
    )


def _context_indicators(conn: psycopg.Connection, area: str) -> list[dict[str, Any]]:
    """Fingertips indicators without a KPI of their own, for the area, its region and England, latest period."""
    return _rows(
        conn,
        """with latest as (
               select * from marts.fct_benchmark_values
               where kpi_code is null and is_headline_sex and is_latest_period
           )
           select local.indicator_name, local.unit_label, local.polarity, local.time_period,
                  local.value, local.ci_lower, local.ci_upper, local.is_suppressed, local.value_note,
                  local.compared_to_england,
                  local.england_value, region.area_name as region_name, region.value as region_value
           from latest as local
           left join latest as region
             on region.indicator_id = local.indicator_id and region.area_id = local.parent_area_id
                and region.sex = local.sex and region.age = local.age
           where local.area_id = %s
           order by local.indicator_id""",
        (area,),
    )


# --- formatting ------------------------------------------------------------------------------


def fmt(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    number = float(value)
    if unit == "%":
        return f"{number:.1f}%"
    if unit == "£":
        return f"£{number:,.2f}"
    if unit == "count":
        return f"{number:,.0f}"
    if unit == "days":
        return f"{number:g} days"
    return f"{number:,.2f}"


def _published(row: dict[str, Any]) -> str:
    """A figure as the pack shows it: suppressed is a word, never a number."""
    return "suppressed" if row["is_suppressed"] else fmt(row["value"], row["unit"])


def _month_label(day: date) -> str:
    return day.strftime("%b %Y")


# --- charts ----------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    figure.set_facecolor("white")
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _trend_chart(
    name: str, title: str, series: dict[tuple[str, str], list[dict[str, Any]]], months: list[date], with_ci: bool
) -> Chart | None:
    """Small multiples: each KPI's line over the months, its 95% band, England and target lines."""
    shown = {
        key: rows for key, rows in series.items() if any(r["value"] is not None or r["is_suppressed"] for r in rows)
    }
    if not shown:
        return None
    columns = 2 if len(shown) > 1 else 1
    lines = (len(shown) + columns - 1) // columns
    figure = _figure(5.2 * columns, 2.6 * lines)
    axes = figure.subplots(lines, columns, squeeze=False)
    x_of = {m: i for i, m in enumerate(months)}
    for ax, ((_, _), rows) in zip(axes.flat, shown.items(), strict=False):
        first = rows[0]
        unit = first["unit"]
        points = [(x_of[r["month_id"]], r) for r in rows if r["month_id"] in x_of]
        xs = [x for x, r in points if r["value"] is not None]
        ys = [float(r["value"]) for _, r in points if r["value"] is not None]
        if with_ci:
            band = [
                (x, float(r["ci_lower"]), float(r["ci_upper"]))
                for x, r in points
                if r["ci_lower"] is not None and r["ci_upper"] is not None
            ]
            if band:
                ax.fill_between(
                    [b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                    color=BAND, alpha=0.6, linewidth=0, label="95% CI",
                )  # fmt: skip
        ax.plot(xs, ys, color=LINE, marker="o", markersize=3.5, linewidth=1.8, label="local")
        if with_ci:  # the interval of each month as a bar too: a single month has no band to draw
            limits = [
                (x, float(r["value"]), float(r["ci_lower"]), float(r["ci_upper"]))
                for x, r in points
                if r["value"] is not None and r["ci_lower"] is not None
            ]
            if limits:
                ax.errorbar(
                    [x for x, *_ in limits],
                    [v for _, v, _, _ in limits],
                    yerr=[[v - lo for _, v, lo, _ in limits], [hi - v for _, v, _, hi in limits]],
                    fmt="none", ecolor=LINE, elinewidth=0.8, capsize=2.5,
                )  # fmt: skip
        england = next((r["england_value"] for r in reversed(rows) if r["england_value"] is not None), None)
        if england is not None:
            period = next((r["england_time_period"] for r in reversed(rows) if r["england_time_period"]), "")
            ax.axhline(float(england), color=ENGLAND, linestyle="--", linewidth=1.3, label=f"England {period}")
        target = next((r["target_value"] for r in reversed(rows) if r["target_value"] is not None), None)
        if target is not None:
            ax.axhline(float(target), color=TARGET, linestyle=":", linewidth=1.5, label=f"target {fmt(target, unit)}")
        hidden = [x for x, r in points if r["is_suppressed"]]
        if hidden:  # at the foot of the axes, not at a value: a hidden figure is not zero
            foot = ax.get_xaxis_transform()
            ax.scatter(hidden, [0.06] * len(hidden), transform=foot, marker="x", color=SUPPRESSED, s=30,
                       label="suppressed", zorder=3, clip_on=False)  # fmt: skip
            for x in hidden:
                ax.text(x, 0.12, "suppressed", transform=foot, ha="center", va="bottom", fontsize=6.5,
                        color=SUPPRESSED, rotation=90)  # fmt: skip
        if not ys and not hidden:
            ax.text(0.5, 0.5, "not published", transform=ax.transAxes, ha="center", color=SUPPRESSED)
        ax.set_title(first["kpi_label"], fontsize=9, loc="left")
        ax.set_xticks(range(len(months)), [m.strftime("%b\n%y") for m in months], fontsize=6.5)
        ax.tick_params(axis="y", labelsize=7)
        if unit == "%":
            ax.set_ylabel("%", fontsize=8)
        if unit in ("count", "days") and ys:  # from zero: a change of 1 in 1,486 must not look like a fall
            ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    figure.suptitle(title, fontsize=11, x=0.01, ha="left")
    caption = (
        f"{_month_label(months[0])} to {_month_label(months[-1])} as published. "
        + ("Shaded: Wilson 95% confidence interval. " if with_ci else "")
        + "Dashed: England's latest Fingertips value; dotted: target. Suppressed months (a count of 1-4 "
        "behind the figure) are marked x and left out of the line, not drawn as zero."
    )
    return Chart(name, title, _png(figure), caption)


def _england_chart(current: list[dict[str, Any]]) -> Chart | None:
    """Local value with its 95% interval against England's, per benchmarked KPI, labelled with the comparison."""
    rows = [r for r in current if r["england_value"] is not None]
    if not rows:
        return None
    figure = _figure(8.5, 0.75 * len(rows) + 1.6)
    ax = figure.subplots()
    labels = []
    for y, row in enumerate(reversed(rows)):
        labels.append(row["kpi_label"].replace("Successful completions without re-presentation: ", "Completions: "))
        england = float(row["england_value"])
        ax.scatter([england], [y], marker="D", color=ENGLAND, s=42, zorder=4)
        if row["is_suppressed"] or row["value"] is None:
            ax.annotate("local figure suppressed", (england, y), xytext=(0, 9), textcoords="offset points",
                        fontsize=8, color=SUPPRESSED, ha="center")  # fmt: skip
            continue
        value = float(row["value"])
        colour = COLOURS.get(row["comparison"], COLOURS[None])
        ax.barh([y], [value], color=colour, alpha=0.85, height=0.55)
        if row["ci_lower"] is not None:
            lower, upper = float(row["ci_lower"]), float(row["ci_upper"])
            ax.errorbar([value], [y], xerr=[[value - lower], [upper - value]], fmt="none", ecolor="black", capsize=4)
            right = upper
        else:
            right = value
        word = row["comparison"] or "not compared"
        ax.text(right + 1, y, f"{fmt(value, row['unit'])} — {word}", va="center", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlabel("% (bar: local value, line: 95% CI, diamond: England)", fontsize=8)
    right_edge = max(float(r["ci_upper"] or r["value"] or 0) for r in rows)
    right_edge = max(right_edge, *(float(r["england_value"]) for r in rows))
    ax.set_xlim(0, right_edge * 1.3 + 12)  # room for the labels
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    month = _month_label(rows[0]["month_id"])
    figure.suptitle(f"Compared with England, {month}", fontsize=11, x=0.01, ha="left")
    caption = (
        "Similar when England's value lies inside the local 95% interval (a value exactly on a limit is "
        "inside); otherwise better or worse - higher is better for these four. England's value is the "
        "latest Fingertips publication (period in the table)."
    )
    return Chart("england", f"Compared with England, {month}", _png(figure), caption)


def _spend_chart(spend: list[dict[str, Any]]) -> Chart | None:
    monthly = {}
    for row in spend:
        if row["breakdown"] == "period=month" and row["kpi_code"] in ("F1_actual", "F1_budget"):
            monthly.setdefault(row["month"], {})[row["kpi_code"]] = row["value"]
    if not monthly:
        return None
    months = sorted(monthly)
    figure = _figure(8.5, 3.2)
    ax = figure.subplots()
    xs = range(len(months))
    budget = [float(monthly[m].get("F1_budget") or 0) / 1000 for m in months]
    actual = [float(monthly[m].get("F1_actual") or 0) / 1000 for m in months]
    ax.bar([x - 0.2 for x in xs], budget, width=0.4, color="#bdbdbd", label="budget")
    ax.bar([x + 0.2 for x in xs], actual, width=0.4, color=LINE, label="actual")
    ax.set_xticks(list(xs), [m.strftime("%b\n%y") for m in months], fontsize=7)
    ax.set_ylabel("£ thousand", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figure.suptitle("Spend against budget, financial year to date (F1)", fontsize=11, x=0.01, ha="left")
    caption = "Monthly actual and budget from the ledger (F1, all funding streams); money is never suppressed."
    return Chart("spend", "Spend against budget", _png(figure), caption)


# --- the page --------------------------------------------------------------------------------

_CSS = """
body{font-family:Arial,Helvetica,sans-serif;color:#1a1a1a;margin:24px auto;max-width:1100px;line-height:1.4}
h1{font-size:26px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #1f4e79}
.meta{color:#555;font-size:14px} table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f0f4f8} td.num{text-align:right;white-space:nowrap}
.better{color:#1b7837;font-weight:bold} .worse{color:#b2182b;font-weight:bold} .similar{color:#555;font-weight:bold}
.suppressed{color:#777;font-style:italic} .provisional{color:#8a6d00;font-size:12px}
.met{color:#1b7837} .missed{color:#b2182b} figure{margin:16px 0} figure img{max-width:100%;height:auto}
figcaption{font-size:13px;color:#444} .summary{display:flex;gap:16px;flex-wrap:wrap}
.summary div{background:#f0f4f8;padding:10px 14px;border-radius:6px;font-size:14px}
.notes{font-size:13px;color:#444}
"""

_TREND_CLASSES = {"improving": "better", "worsening": "worse"}
"""The label's colour (the word is always written too); the arrow is the figure's direction, not its goodness."""


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def fmt_change(change: Any, unit: str) -> str:
    """The change on M-12 with its sign, in the KPI's unit (a change in a % is in percentage points)."""
    number = float(change)
    if unit == "%":
        return f"{number:+.1f} points"
    if unit == "£":
        return f"{'-' if number < 0 else '+'}£{abs(number):,.2f}"
    if unit == "count":
        return f"{number:+,.0f}"
    if unit == "days":
        return f"{number:+g} days"
    return f"{number:+,.2f}"


def _trend_cell(row: dict[str, Any]) -> str:
    """Arrow, label and figure, all three from the scorecard row (decision 20), so they cannot disagree."""
    label = row["trend_label"] or "no comparison"
    words = " ".join(w for w in (row["trend_arrow"], label) if w)
    css = _TREND_CLASSES.get(row["trend_direction"] or "")
    cell = f'<span class="{css}">{_e(words)}</span>' if css else _e(words)
    if row["change_on_12_months_ago"] is not None:
        year_ago = _month_label(_shift(row["month_id"], -12))
        cell += f" <small>({_e(fmt_change(row['change_on_12_months_ago'], row['unit']))} on {year_ago})</small>"
    return cell


def _scorecard_table(current: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th>KPI</th><th>value</th><th>95% CI</th><th>target</th><th>England</th>"
        "<th>vs England</th><th>change on a year before</th></tr>"
    )
    body = []
    for row in current:
        unit = row["unit"]
        value = _published(row)
        value_cell = f'<span class="suppressed">{value}</span>' if row["is_suppressed"] else _e(value)
        if row["is_provisional"]:
            value_cell += ' <span class="provisional">provisional</span>'
        ci = "–" if row["ci_lower"] is None else f"{fmt(row['ci_lower'], unit)} – {fmt(row['ci_upper'], unit)}"
        if row["target_value"] is None:
            target = "–"
        else:
            met = row["is_target_met"]
            state = (
                ""
                if met is None
                else (' <span class="met">met</span>' if met else ' <span class="missed">not met</span>')
            )
            sign = "≤" if row["target_polarity"] == "lower" else "≥"
            target = f"{sign} {_e(fmt(row['target_value'], unit))}{state}"
        england = "–"
        if row["england_value"] is not None:
            england = f"{_e(fmt(row['england_value'], unit))} <small>({_e(row['england_time_period'])})</small>"
        comparison = row["comparison"]
        versus = f'<span class="{comparison}">{comparison}</span>' if comparison else "–"
        if row["england_value"] is not None and comparison is None:
            versus = '<span class="suppressed">not compared</span>'
        trend = _trend_cell(row)
        body.append(
            f"<tr><td>{_e(row['kpi_label'])}</td><td class='num'>{value_cell}</td><td class='num'>{ci}</td>"
            f"<td class='num'>{target}</td><td class='num'>{england}</td><td>{versus}</td><td>{trend}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _context_table(context: list[dict[str, Any]]) -> str:
    if not context:
        return ""
    rows = []
    for row in context:
        unit = row["unit_label"]
        note = "suppressed" if row["is_suppressed"] else row["value_note"] or "no value"
        value = f'<span class="suppressed">{_e(note)}</span>'
        if row["value"] is not None:
            value = _e(f"{float(row['value']):,.1f}")
        england = "–" if row["england_value"] is None else f"{float(row['england_value']):,.1f}"
        region = "–" if row["region_value"] is None else f"{float(row['region_value']):,.1f}"
        rows.append(
            f"<tr><td>{_e(row['indicator_name'])} <small>({_e(unit)})</small></td><td>{_e(row['time_period'])}</td>"
            f"<td class='num'>{value}</td><td class='num'>{_e(region)} <small>{_e(row['region_name'] or '')}</small>"
            f"</td><td class='num'>{_e(england)}</td><td>{_e(row['compared_to_england'] or '–')}</td></tr>"
        )
    return (
        "<h2>Context from Fingertips</h2><table><tr><th>indicator</th><th>period</th><th>this area</th>"
        "<th>region</th><th>England</th><th>Fingertips comparison</th></tr>" + "".join(rows) + "</table>"
    )


def _summary(current: list[dict[str, Any]]) -> str:
    compared = [r["comparison"] for r in current if r["comparison"]]
    targets = [r for r in current if r["is_target_met"] is not None]
    hidden = sum(1 for r in current if r["is_suppressed"])
    parts = [
        f"<div><b>{len(current)}</b> KPIs published</div>",
        "<div>vs England: "
        + (", ".join(f"<b>{compared.count(w)}</b> {w}" for w in ("better", "similar", "worse")) if compared else "none")
        + "</div>",
        f"<div>targets met: <b>{sum(1 for r in targets if r['is_target_met'])}</b> of {len(targets)}</div>",
        f"<div><b>{hidden}</b> suppressed</div>",
    ]
    return f"<div class='summary'>{''.join(parts)}</div>"


def render_html(area: str, area_name: str, month: date, current: list[dict[str, Any]], charts: list[Chart],
                context: list[dict[str, Any]], spend: list[dict[str, Any]]) -> str:  # fmt: skip
    figures = "".join(
        f"<figure><img alt='{_e(c.title)}' src='data:image/png;base64,{base64.b64encode(c.png).decode()}'>"
        f"<figcaption>{_e(c.caption)}</figcaption></figure>"
        for c in charts
    )
    fytd = {r["kpi_code"]: r["value"] for r in spend if r["breakdown"] == "period=fytd" and r["month"] == month}
    money = ""
    if fytd:
        money = (
            f"<p>Financial year to date: actual {_e(fmt(fytd.get('F1_actual'), '£'))} against a budget of "
            f"{_e(fmt(fytd.get('F1_budget'), '£'))}, variance {_e(fmt(fytd.get('F1_variance'), '£'))} "
            f"({_e(fmt(fytd.get('F1_variance_pct'), '%'))}).</p>"
        )
    elif not any(c.name == "spend" for c in charts):
        money = (
            "<p class='notes'>No ledger published for this financial year yet: spend against budget is not shown.</p>"
        )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Performance pack: {_e(area_name)} {_month_label(month)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Performance pack: {_e(area_name)}</h1>
<p class="meta">{_e(area)} · reporting month {_month_label(month)} · drawn from the published marts on {generated}</p>
{_summary(current)}
<h2>Scorecard</h2>
{_scorecard_table(current)}
<h2>Charts</h2>
{figures}
{money}
{_context_table(context)}
<h2>Reading this pack</h2>
<ul class="notes">
<li><b>suppressed</b>: disclosure control hides a figure that rests on 1 to 4 people (NDTMS rule); it is not zero.</li>
<li><b>provisional</b>: a later file can still restate the figure.</li>
<li><b>vs England</b> (B1): similar when England's latest Fingertips value lies inside the local 95% confidence
interval (limits included); otherwise better or worse given which way is better.</li>
<li><b>change on a year before</b>: this month's figure against the same month a year before (for
12-month measures, two windows that do not overlap). <b>improving</b> or <b>worsening</b> (by which way is
better; <b>increasing</b> or <b>decreasing</b> where neither is) only when the two 95% confidence intervals do
not overlap - Wilson for percentages of people or episodes, Byar's Poisson interval for counts (and for
crimes per 10,000 residents) - otherwise <b>no significant change</b>. ▲ and ▼ show which way the figure
moved, ► no significant change. Medians, money and spend variances are <b>not tested</b>: the change is
shown without a label. <b>no comparison</b>: the month a year before is not published or is suppressed.</li>
<li><b>target</b>: C1 against 75%; other KPIs only where the partnership has set a local target.</li>
<li>Definitions: kpis.md and docs/data_dictionary.md of the Misuse Warehouse.</li>
</ul>
</body></html>
"""


def write_pack(conn: psycopg.Connection, area: str, month: str, out: Path | None = None) -> Pack:
    """Write the pack's HTML and PNGs for one area and month; PackError when nothing is published for it."""
    if not _AREA.match(area or ""):
        raise PackError(f"not a GSS area code: {area!r} (e.g. E06000035)")
    try:
        parse_month(month or "")
    except ValueError:
        raise PackError(f"not a YYYY-MM month: {month!r}") from None
    exists = conn.execute("select to_regclass('marts.partnership_scorecard')").fetchone()[0]
    if not exists:
        raise PackError("nothing is published yet (marts.partnership_scorecard does not exist): run a month first")
    day = _month_start(month)
    first = _shift(day, -(TREND_MONTHS - 1))
    history = _scorecard(conn, area, first, day)
    current = [r for r in history if r["month_id"] == day]
    if not current:
        months = _published_months(conn, area)
        where = f"published months for {area}: {months[0]} to {months[-1]}" if months else f"{area} is not published"
        raise PackError(f"nothing published for {area} in {month} ({where})")
    area_name = current[0]["area_name"] or area
    months = [_shift(first, i) for i in range(TREND_MONTHS)]
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in history:
        series.setdefault((row["kpi_code"], row["breakdown"]), []).append(row)
    rates = {k: v for k, v in series.items() if v[0]["unit"] == "%" and any(r["ci_lower"] for r in v)}
    rates |= {k: v for k, v in series.items() if v[0]["kpi_code"] in ("T4", "C1")}
    activity = {k: v for k, v in series.items() if v[0]["unit"] in ("count", "days")}
    spend = _spend(conn, area, day)
    charts = [
        c
        for c in (
            _trend_chart("trends_rates", "Rates with 95% confidence intervals", rates, months, with_ci=True),
            _england_chart(current),
            _trend_chart("trends_activity", "Activity and waiting times", activity, months, with_ci=False),
            _spend_chart(spend),
        )
        if c is not None
    ]
    out = Path(out or default_out_dir())
    out.mkdir(parents=True, exist_ok=True)
    stem = f"performance_pack_{area}_{month}"
    for chart in charts:
        chart.path = out / f"{stem}_{chart.name}.png"
        chart.path.write_bytes(chart.png)
    page = out / f"{stem}.html"
    page.write_text(
        render_html(area, area_name, day, current, charts, _context_indicators(conn, area), spend), encoding="utf-8"
    )
    return Pack(area, area_name, month, page, [c.path for c in charts if c.path])
