"""The disclosure audit: can any suppressed count be worked out from what a role reads?

Disclosure control (kpis.md v2, "Disclosure control") is judged here, not in the SQL that applies it:
for every role that reads aggregates, the audit takes every figure of `kpi_monthly` the role can
select, writes down every linear relation the KPI definitions imply between them (the list is
`RELATIONS` below and the data dictionary's "Disclosure audit"), adds what an attacker knows
(hidden counts are whole and at least 1, since zero is shown; the suppression rule is public), and
solves a linear programme per suppressed count for its smallest and largest feasible value (HiGHS
through highspy; an integer programme where the LP's optimum is not whole). A count whose feasible
range spans fewer than five whole values fails, unless its range is exactly 1–4: that is what the
NDTMS rule itself says of any primary cell, and nothing narrower. The mart gate runs it on the next
schema before publication and refuses the month on any failure.

No relation crosses areas, so each area is solved on its own, and an area seen by several roles
(bi_reader sees every area, an analyst group its own) is solved once for each distinct set of rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

import numpy as np

# Counts of persons or episodes: the published value is the count (zeros shown, so hidden means >= 1).
COUNT_KPIS = frozenset({"T1", "T2", "T7_month", "T7_12m", "T8", "C1_unlinked", "C5_starts", "C5_completions"})
# Rates on person or episode counts: numerator and denominator are both counts to protect.
RATE_KPIS = frozenset(
    {"T3_pct_over_21d", "T4", "T5", "T6", "C1", "C3_positivity", "C3_attendance", "C4", "T8_change_pct"}
)
# Rates whose numerator is part of their denominator; T8_change_pct compares two years (it can rise).
PROPORTIONS = RATE_KPIS - {"T8_change_pct"}
# Counts hidden also because an input is (kpi_monthly's suppression_dependencies), so possibly 0.
HIDDEN_AT_ZERO = frozenset({"T7_12m"})
# Breakdown families published with their total, where secondary suppression hides the cheapest cells.
FAMILIES = {("T1", "kpi_group"), ("T1", "service_type"), ("T2", "service_type")}
# A family whose cells partition the total (every person has one KPI group); the others may overlap.
PARTITIONS = {("T1", "kpi_group")}
SMALLEST_SPAN = 5  # whole values a hidden count's feasible range must span
ROUNDING = 0.005 + 1e-9  # money and unit costs are published to the penny
TOLERANCE = 1e-6

# The relations the audit writes down, as the data dictionary lists them.
RELATIONS = {
    "family_partition": "T1 by kpi_group adds up to T1 all (every person has one KPI group)",
    "family_overlap": "T1 and T2 by service_type: each cell at most the total, the cells together at least it",
    "family_cheapest": "hidden cells of a family (T1/T2 breakdowns; T7's months of a financial year) "
    "are no larger than its smallest visible cell above 0",
    "family_primary": "a family with hidden cells holds a primary cell (1-4): the only candidate is at most 4",
    "family_withheld": "a family whose total is 1-4 is withheld whole, zeros included",
    "t2_within_t1": "T2 of a breakdown at most T1 of the same breakdown and month",
    "t7_window": "T7_12m is the sum of the twelve T7_month cells of its window (at least those published)",
    "rate_bounds": "a proportion's numerator at most its denominator",
    "t4_denominator": "T4's denominator is T1 of the same KPI group six months earlier",
    "t8_change": "T8_change_pct's numerator is T8 of M and its denominator T8 of M-12",
    "c1_unlinked": "C1_unlinked at most C1's denominator",
    "f3_per_person": "F3_per_person is spend over T1 all (spend published, value to the penny)",
    "f3_per_completion": "F3_per_completion's denominator is the sum of the T4 numerators of M",
    "f4_alcohol_share": "F4 = spend x (4 - T1 alcohol / T1 all): the alcohol share from spend and value",
}


def _month(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _shift(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


class Row(NamedTuple):
    """One kpi_monthly row as a role reads it (a named tuple: the gate makes one per published row,
    1.3 million at national volume, and hashes them to find areas solved already)."""

    area_code: str
    month: date
    kpi_code: str
    breakdown: str
    numerator: float | None
    denominator: float | None
    value: float | None
    is_suppressed: bool

    @classmethod
    def of(cls, record: Iterable[Any]) -> Row:
        area, month, kpi, breakdown, numerator, denominator, value, suppressed = record
        number = lambda x: None if x is None else float(x)  # noqa: E731
        return cls(
            str(area), _month(month), str(kpi), str(breakdown),
            number(numerator), number(denominator), number(value), bool(suppressed),
        )  # fmt: skip


@dataclass
class Finding:
    """A suppressed count whose feasible range is too narrow, with the relations that bind it."""

    cell: str
    lowest: int
    highest: float
    relations: list[str]

    def text(self) -> str:
        high = "unbounded" if math.isinf(self.highest) else str(int(self.highest))
        return f"{self.cell} is {self.lowest}..{high} ({'; '.join(self.relations)})"


@dataclass
class AuditResult:
    role: str
    areas: int = 0
    cells_checked: int = 0  # suppressed counts solved for
    narrowest: tuple[str, int, float] | None = None  # the narrowest feasible range found
    findings: list[Finding] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.findings


@dataclass
class _Constraint:
    coefficients: dict[int, float]
    low: float  # low <= sum(coefficients * x) <= high
    high: float
    relation: str


class _AreaModel:
    """The hidden counts of one area as variables, and the linear relations among the figures."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = {(r.month, r.kpi_code, r.breakdown): r for r in rows}
        self.parent: dict[tuple, tuple] = {}
        self.known: dict[tuple, float] = {}
        self.low: dict[tuple, float] = {}
        self.names: dict[tuple, list[str]] = defaultdict(list)
        self.constraints: list[tuple[dict[tuple, float], float, float, str]] = []
        self.upper: dict[tuple, float] = {}
        self.families: list[list[tuple]] = []
        self.suppressed: set[tuple] = set()
        self.aliased_by: dict[tuple, str] = {}
        self.exposed: list[Finding] = []  # suppressed figures another published figure states outright
        self._quantities()
        self._relations()

    # quantities: a count, or a rate's numerator or denominator; aliases name one quantity twice

    def _find(self, key: tuple) -> tuple:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def _union(self, a: tuple, b: tuple, relation: str) -> None:
        ra, rb = self._find(a), self._find(b)
        self.aliased_by[a] = self.aliased_by[b] = relation
        if ra != rb:
            self.parent[ra] = rb

    def _quantity(self, key: tuple, name: str, shown: float | None, low: float) -> None:
        self._find(key)
        self.names[key].append(name)
        if shown is not None:
            self.known[key] = shown
        else:
            self.suppressed.add(key)
        self.low[key] = max(self.low.get(key, 0.0), low)

    def _quantities(self) -> None:
        months: dict[date, str] = {}  # strftime once a month, not once a row
        for (month, kpi, breakdown), row in self.rows.items():
            if month not in months:
                months[month] = f"{row.area_code} {month:%Y-%m}"
            cell = f"{months[month]} {kpi} {breakdown}"
            if kpi in COUNT_KPIS:
                floor = 0 if kpi in HIDDEN_AT_ZERO else 1
                self._quantity(("n", month, kpi, breakdown), cell, None if row.is_suppressed else row.value, floor)
            elif kpi in RATE_KPIS:
                numerator, denominator = (None, None) if row.is_suppressed else (row.numerator, row.denominator)
                self._quantity(("num", month, kpi, breakdown), f"{cell} numerator", numerator, 0)
                self._quantity(("den", month, kpi, breakdown), f"{cell} denominator", denominator, 1)
        for month, kpi, breakdown in list(self.rows):
            if kpi == "T4":
                earlier = ("n", _shift(month, -6), "T1", breakdown)
                if earlier in self.parent:
                    self._union(("den", month, kpi, breakdown), earlier, "t4_denominator")
            elif kpi == "T8_change_pct":
                for part, other_month in (("num", month), ("den", _shift(month, -12))):
                    other = ("n", other_month, "T8", breakdown)
                    if other in self.parent:
                        self._union((part, month, kpi, breakdown), other, "t8_change")
        # fold each alias class into its root: a figure shown anywhere is known everywhere
        members: dict[tuple, list[tuple]] = defaultdict(list)
        for key in list(self.parent):
            members[self._find(key)].append(key)
        self.members = members
        for key in list(self.parent):
            root = self._find(key)
            if key != root:
                if key in self.known:
                    self.known[root] = self.known[key]
                self.low[root] = max(self.low.get(root, 0.0), self.low.get(key, 0.0))
                self.names[root].extend(self.names.pop(key, []))
        for root, keys in members.items():
            # a hidden count cell that another name shows; a hidden rate's part shown as a count is public
            if root in self.known and any(k in self.suppressed and k[0] == "n" for k in keys):
                value = int(self.known[root])
                relations = sorted({RELATIONS[self.aliased_by[k]] for k in keys if k in self.aliased_by})
                self.exposed.append(Finding(" = ".join(self.names[root]), value, value, relations))

    def hidden(self) -> list[tuple]:
        return sorted((k for k in self.parent if self._find(k) == k and k not in self.known), key=str)

    def _term(self, key: tuple) -> tuple | None:
        return self._find(key) if key in self.parent else None

    def _add(self, terms: dict[tuple | None, float], low: float, high: float, relation: str) -> None:
        """sum(terms) within [low, high]; a term that is None makes the relation unknown to the reader."""
        if None in terms:
            return
        coefficients: dict[tuple, float] = defaultdict(float)
        constant = 0.0
        for key, coefficient in terms.items():
            if key in self.known:
                constant += coefficient * self.known[key]
            else:
                coefficients[key] += coefficient
        coefficients = {k: c for k, c in coefficients.items() if abs(c) > 1e-12}
        if coefficients:
            self.constraints.append((coefficients, low - constant, high - constant, relation))

    def _count(self, month: date, kpi: str, breakdown: str) -> tuple | None:
        return self._term(("n", month, kpi, breakdown))

    def _relations(self) -> None:
        breakdowns: dict[tuple[date, str], list[str]] = defaultdict(list)
        for month, kpi, breakdown in self.rows:
            breakdowns[month, kpi].append(breakdown)
        inf = math.inf
        for month in sorted({m for m, _ in breakdowns}):
            for kpi, family in FAMILIES:
                cells = [b for b in breakdowns.get((month, kpi), []) if b.startswith(f"{family}=")]
                total = self._count(month, kpi, "all")
                if not cells or total is None:
                    continue
                keys = [self._count(month, kpi, b) for b in cells]
                terms = {k: 1.0 for k in keys} | {total: -1.0}
                if (kpi, family) in PARTITIONS:
                    self._add(terms, 0, 0, "family_partition")
                else:
                    self._add(terms, 0, inf, "family_overlap")
                    for key in keys:
                        self._add({key: 1.0, total: -1.0}, -inf, 0, "family_overlap")
                self._family_knowledge(keys, total)
            for breakdown in ("all", "service_type=adult", "service_type=young_people"):
                t2, t1 = self._count(month, "T2", breakdown), self._count(month, "T1", breakdown)
                if t2 is not None and t1 is not None:
                    self._add({t2: 1.0, t1: -1.0}, -inf, 0, "t2_within_t1")
            window = [self._count(_shift(month, -k), "T7_month", "all") for k in range(12)]
            t7_12m = self._count(month, "T7_12m", "all")
            if t7_12m is not None:
                # every month of the window published: the sum; some before the first published: at least it
                terms: dict[tuple | None, float] = defaultdict(float)
                for key in window:
                    if key is not None:
                        terms[key] += 1.0
                terms[t7_12m] -= 1.0
                self._add(terms, -inf if None in window else 0, 0, "t7_window")
            self._funding(month)
            unlinked, c1_den = self._count(month, "C1_unlinked", "all"), self._term(("den", month, "C1", "all"))
            if unlinked is not None and c1_den is not None:
                self._add({unlinked: 1.0, c1_den: -1.0}, -inf, 0, "c1_unlinked")
        # T7's months are a family within each financial year (their total: T7_12m of March)
        financial_years: dict[int, list[tuple | None]] = defaultdict(list)
        for month, kpi, breakdown in self.rows:
            if kpi == "T7_month" and breakdown == "all":
                financial_years[month.year + (month.month > 3)].append(self._count(month, kpi, breakdown))
        for year, keys in financial_years.items():
            self._family_knowledge(keys, self._count(date(year, 3, 1), "T7_12m", "all"))
        for month, kpi, breakdown in self.rows:
            if kpi in PROPORTIONS:
                num, den = self._term(("num", month, kpi, breakdown)), self._term(("den", month, kpi, breakdown))
                self._add({num: 1.0, den: -1.0}, -inf, 0, "rate_bounds")

    def _family_knowledge(self, keys: list[tuple | None], total: tuple | None) -> None:
        """The public rule: hidden cells are the cheapest, and one of them is a primary cell.

        A family hidden whole under a hidden total may be a total of 1-4 withheld with its zeros:
        its cells' floor is 0 (a rate's denominator named by the same count keeps its 1).
        """
        hidden = [k for k in keys if k is not None and k not in self.known]
        if not hidden:
            return
        if total is not None and total not in self.known and len(hidden) == len(keys):
            for key in hidden:
                if not any(member[0] == "den" for member in self.members.get(key, [key])):
                    self.low[key] = 0.0
        visible = [self.known[k] for k in keys if k is not None and k in self.known and self.known[k] > 0]
        if visible:
            for key in hidden:
                self.upper[key] = min(self.upper.get(key, math.inf), min(visible))
        self.families.append(hidden)

    def _funding(self, month: date) -> None:
        inf = math.inf
        t1_all = self._count(month, "T1", "all")
        groups = ("opiate", "non_opiate", "alcohol")
        t4_numerators = [self._term(("num", month, "T4", f"kpi_group={g}")) for g in groups]
        t4_numerators = [k for k in t4_numerators if k is not None]
        for kpi, inputs, relation in (
            ("F3_per_person", {t1_all: 1.0}, "f3_per_person"),
            ("F3_per_completion", {k: 1.0 for k in t4_numerators}, "f3_per_completion"),
        ):
            row = self.rows.get((month, kpi, "all"))
            if row is None or row.is_suppressed or not inputs:
                continue
            if row.denominator is not None:
                self._add(dict(inputs), row.denominator, row.denominator, relation)
            elif row.numerator is not None and row.value is not None and row.value > ROUNDING:
                low, high = row.numerator / (row.value + ROUNDING), row.numerator / (row.value - ROUNDING)
                self._add(dict(inputs), low, high, relation)
        f4 = self.rows.get((month, "F4", "all"))
        alcohol = self._count(month, "T1", "kpi_group=alcohol")
        if f4 is not None and not f4.is_suppressed and f4.value is not None and f4.numerator:
            if f4.denominator is not None and t1_all is not None:
                self._add({t1_all: 1.0}, f4.denominator, f4.denominator, "f4_alcohol_share")
            spend = f4.numerator
            share_low = 4 - (f4.value + ROUNDING) / spend
            share_high = 4 - (f4.value - ROUNDING) / spend
            if alcohol is not None and t1_all is not None:
                self._add({alcohol: 1.0, t1_all: -share_low}, 0, inf, "f4_alcohol_share")
                self._add({alcohol: 1.0, t1_all: -share_high}, -inf, 0, "f4_alcohol_share")


def _components(variables: list[tuple], constraints: list[_Constraint]) -> Iterator[tuple[list[int], list[int]]]:
    """Groups of variables linked by constraints, with their constraints' indexes."""
    parent = list(range(len(variables)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for constraint in constraints:
        first, *rest = constraint.coefficients
        for other in rest:
            parent[find(other)] = find(first)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(variables)):
        members[find(i)].append(i)
    bound: dict[int, list[int]] = defaultdict(list)
    for c, constraint in enumerate(constraints):
        bound[find(next(iter(constraint.coefficients)))].append(c)
    for root, indexes in members.items():
        yield indexes, bound.get(root, [])


def _model(indexes: list[int], rows: list[_Constraint], low: np.ndarray, high: np.ndarray, whole: bool) -> Any:
    """One component as a HiGHS model: columns its variables, rows its constraints."""
    import highspy

    position = {v: i for i, v in enumerate(indexes)}
    columns: list[list[tuple[int, float]]] = [[] for _ in indexes]
    for r, constraint in enumerate(rows):
        for v, coefficient in constraint.coefficients.items():
            columns[position[v]].append((r, coefficient))
    infinity = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(indexes), len(rows)
    lp.col_cost_ = np.zeros(len(indexes))
    lp.col_lower_ = np.array([low[v] for v in indexes])
    lp.col_upper_ = np.array([min(high[v], infinity) for v in indexes])
    lp.row_lower_ = np.array([max(c.low, -infinity) for c in rows])
    lp.row_upper_ = np.array([min(c.high, infinity) for c in rows])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.cumsum([0] + [len(c) for c in columns])
    lp.a_matrix_.index_ = np.array([r for c in columns for r, _ in c], dtype=np.int32)
    lp.a_matrix_.value_ = np.array([x for c in columns for _, x in c], dtype=float)
    if whole:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(indexes)
    model = highspy.Highs()
    model.setOptionValue("output_flag", False)
    model.passModel(lp)
    return model


def _extreme(model: Any, column: int, sign: float) -> tuple[float, bool]:
    """Optimum of sign * x[column] (inf when unbounded), and whether the solution found is whole."""
    import highspy

    model.changeColCost(column, sign)
    model.run()
    status = model.getModelStatus()
    conclusive = (
        highspy.HighsModelStatus.kOptimal,
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnbounded,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    )
    if status not in conclusive:  # a warm start HiGHS could not finish from (kUnknown): solve afresh once
        model.clearSolver()
        model.run()
        status = model.getModelStatus()
    # read before the cost is reset: changing the model clears its solution
    optimum = sign * model.getInfo().objective_function_value
    values = np.asarray(model.getSolution().col_value)
    model.changeColCost(column, 0.0)
    if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return math.inf, True
    if status != highspy.HighsModelStatus.kOptimal:
        raise AuditError(f"the published figures admit no solution under the relations ({status})")
    return optimum, bool(np.all(np.abs(values - np.round(values)) < TOLERANCE))


def _solve(
    indexes: list[int], rows: list[_Constraint], low: np.ndarray, high: np.ndarray
) -> dict[int, tuple[float, float]]:
    """Smallest and largest whole value of each variable of one component under its constraints.

    One HiGHS model a component, its objective changed per variable (a warm-started simplex: the
    audit solves thousands of tiny programmes). An optimum at a point that is not whole is solved
    again as an integer programme, which gives the exact whole bound.
    """
    if not rows:
        return {v: (math.ceil(low[v] - TOLERANCE), high[v]) for v in indexes}
    if len(rows) == 1 and (single := _one_sum(indexes, rows[0], low, high)) is not None:
        return single
    model = _model(indexes, rows, low, high, whole=False)
    integer_model = None
    ranges: dict[int, tuple[float, float]] = {}
    for column, v in enumerate(indexes):
        bounds = []
        for sign in (-1.0, 1.0):
            value, is_whole = _extreme(model, column, sign)
            if not is_whole and not math.isinf(value):
                integer_model = integer_model or _model(indexes, rows, low, high, whole=True)
                value, _ = _extreme(integer_model, column, sign)
            bounds.append(value)
            if math.isinf(value):  # unbounded above: the range passes whatever its lowest value
                bounds.append(low[v])
                break
        highest, lowest = bounds
        ranges[v] = (math.ceil(lowest - TOLERANCE), highest if math.isinf(highest) else math.floor(highest + TOLERANCE))
    return ranges


def _one_sum(
    indexes: list[int], row: _Constraint, low: np.ndarray, high: np.ndarray
) -> dict[int, tuple[float, float]] | None:
    """A component held by one sum of +-1 terms with whole limits: each range by interval arithmetic.

    Exact for whole numbers (the sum of whole intervals is a whole interval), and about half the
    components of a month (a rate's numerator and denominator, a family's overlap) are of this
    shape. Anything else returns None and goes to HiGHS.
    """
    coefficients = [row.coefficients[v] for v in indexes]
    limits = [row.low, row.high, *(low[v] for v in indexes), *(high[v] for v in indexes)]
    if any(abs(abs(c) - 1) > 1e-12 for c in coefficients) or any(
        math.isfinite(x) and abs(x - round(x)) > 1e-9 for x in limits
    ):
        return None
    terms = [
        (c * low[v], c * high[v]) if c > 0 else (c * high[v], c * low[v])
        for c, v in zip(coefficients, indexes, strict=True)
    ]
    if sum(t[0] for t in terms) > row.high + TOLERANCE or sum(t[1] for t in terms) < row.low - TOLERANCE:
        raise AuditError("the published figures admit no solution under the relations")
    ranges: dict[int, tuple[float, float]] = {}
    for j, (c, v) in enumerate(zip(coefficients, indexes, strict=True)):
        term_low, term_high = terms[j]
        others_low = sum(t[0] for i, t in enumerate(terms) if i != j)
        others_high = sum(t[1] for i, t in enumerate(terms) if i != j)
        term = (max(term_low, row.low - others_high), min(term_high, row.high - others_low))
        lowest, highest = (term[0], term[1]) if c > 0 else (-term[1], -term[0])
        ranges[v] = (math.ceil(lowest - TOLERANCE), highest if math.isinf(highest) else math.floor(highest + TOLERANCE))
    return ranges


class AuditError(RuntimeError):
    """The relations contradict the published figures: a relation is wrong, and the audit cannot judge."""


def is_disclosed(lowest: float, highest: float) -> bool:
    """Fewer than five whole values, unless exactly the 1-4 that suppression itself says, or none at
    all: a count shown to be 0 gives nobody away (zeros are published, decision 17; one hidden with
    its family can be 0 and be known to be)."""
    if highest - lowest + 1 >= SMALLEST_SPAN or highest == 0:
        return False
    return not (lowest == 1 and highest == 4)


def audit_area(rows: list[Row]) -> tuple[int, tuple[str, int, float] | None, list[Finding]]:
    """Solve every suppressed count of one area: (cells checked, narrowest range, findings)."""
    model = _AreaModel(rows)
    keys = model.hidden()
    index = {k: i for i, k in enumerate(keys)}
    low = np.array([model.low.get(k, 0.0) for k in keys])
    high = np.array([model.upper.get(k, math.inf) for k in keys])
    constraints = [
        _Constraint({index[k]: c for k, c in coefficients.items()}, lo, hi, relation)
        for coefficients, lo, hi, relation in model.constraints
    ]
    components = list(_components(keys, constraints))
    component_of = {v: i for i, (indexes, _) in enumerate(components) for v in indexes}
    ranges: dict[int, tuple[float, float]] = {}
    todo = set(range(len(components)))
    for _ in range(len(keys) + 1):  # the "only candidate" deduction tightens bounds; repeat until it stops
        for c in sorted(todo):
            indexes, rows_of = components[c]
            try:
                ranges |= _solve(indexes, [constraints[r] for r in rows_of], low, high)
            except AuditError as error:
                cells = "; ".join(model.names[keys[v]][0] for v in indexes[:6])
                relations = ", ".join(sorted({constraints[r].relation for r in rows_of}))
                raise AuditError(f"{error}: {cells} under {relations}") from None
        todo = set()
        for family in model.families:
            members = [index[k] for k in family]
            candidates = [v for v in members if ranges[v][0] <= 4]
            if len(candidates) == 1 and high[candidates[0]] > 4:
                high[candidates[0]] = 4
                todo.add(component_of[candidates[0]])
        if not todo:
            break
    findings = list(model.exposed)
    narrowest: tuple[str, int, float] | None = None
    for key, v in index.items():
        lowest, highest = ranges[v]
        name = model.names[key][0]
        if narrowest is None or highest - lowest < narrowest[2] - narrowest[1]:
            narrowest = (name, int(lowest), highest)
        if is_disclosed(lowest, highest):
            indexes, rows_of = components[component_of[v]]
            used = {constraints[r].relation for r in rows_of}
            if v in (index[k] for family in model.families for k in family):
                used |= {"family_cheapest", "family_primary"} if math.isfinite(high[v]) else set()
            relations = [RELATIONS[r] for r in RELATIONS if r in used] or ["the suppression rule alone"]
            findings.append(Finding(" = ".join(model.names[key]), int(lowest), highest, relations))
    return len(keys) + len(model.exposed), narrowest, findings


def audit_rows(role: str, rows: Iterable[Row], solved: dict[str, Any] | None = None) -> AuditResult:
    """Audit what one role reads; `solved` caches areas by the digest of their rows across roles."""
    by_area: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_area[row.area_code].append(row)
    result = AuditResult(role, areas=len(by_area))
    solved = {} if solved is None else solved
    for _, area_rows in sorted(by_area.items()):
        area_rows.sort(key=lambda r: (r.month, r.kpi_code, r.breakdown))
        digest = hash(tuple(area_rows))
        if digest not in solved:
            solved[digest] = audit_area(area_rows)
        checked, narrowest, findings = solved[digest]
        result.cells_checked += checked
        result.findings.extend(findings)
        if narrowest and (
            result.narrowest is None or narrowest[2] - narrowest[1] < result.narrowest[2] - result.narrowest[1]
        ):
            result.narrowest = narrowest
    return result


# The audit in the mart gate: as each role that reads aggregates, on the next schema

# numbers as float8 in SQL: the rows become Rows as they come, with no conversion per value in Python
KPI_COLUMNS = (
    "area_code, month, kpi_code, breakdown, numerator::float8, denominator::float8, value::float8, is_suppressed"
)


def reader_roles(conn: Any) -> list[str]:
    """bi_reader and every analyst group role the migration made (ops.analyst_areas)."""
    from misuse_warehouse import roles

    groups = [r for (r,) in conn.execute("select distinct analyst_role from ops.analyst_areas order by 1").fetchall()]
    return [roles.BI_READER, *(g for g in groups if g != roles.ANALYST)]


def _read_as(conn: Any, role: str, schema: str) -> tuple[list[Row], list[str]]:
    """kpi_monthly as `role` reads it, and the scorecard cells that show what kpi_monthly hides."""
    from psycopg import sql

    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    rows = list(
        map(
            Row._make,
            conn.execute(
                sql.SQL("select {} from {}.kpi_monthly").format(sql.SQL(KPI_COLUMNS), sql.Identifier(schema))
            ).fetchall(),
        )
    )
    shown = conn.execute(
        sql.SQL(
            """select s.area_id || ' ' || to_char(s.month_id, 'YYYY-MM') || ' ' || s.kpi_code || ' ' || s.breakdown
               from {schema}.partnership_scorecard s join {schema}.kpi_monthly k
                 on k.area_code = s.area_id and k.month = s.month_id
                 and k.kpi_code = s.kpi_code and k.breakdown = s.breakdown
               where k.is_suppressed and s.value is not null"""
        ).format(schema=sql.Identifier(schema))
    ).fetchall()
    conn.execute("reset role")
    return rows, [c for (c,) in shown]


def run(schema: str) -> list[AuditResult]:
    """Audit `schema` as every role that reads aggregates, with the grants publication would give it.

    The grants and row-level security are applied inside a transaction that is rolled back, so no
    reader can see the unpublished schema; the connection's login must be able to SET ROLE to each
    reader (the warehouse's admin login can).
    """
    from misuse_warehouse import publish, roles, warehouse

    publication = next(p for p in publish.PUBLICATIONS if p.next == schema)
    solved: dict[str, Any] = {}
    results = []
    with warehouse.connect() as conn, conn.transaction(force_rollback=True):
        roles.secure_published(conn, schema, publication.readers, publication.analysts)
        for role in reader_roles(conn):
            rows, shown = _read_as(conn, role, schema)
            result = audit_rows(role, rows, solved)
            result.findings.extend(
                Finding(cell, 0, 0, ["partnership_scorecard shows a value kpi_monthly suppresses"]) for cell in shown
            )
            results.append(result)
    return results


def gate_checks(results: list[AuditResult]) -> list[dict[str, Any]]:
    """One ops.gate_results row per role, in the shape of a GX expectation's."""
    return [
        {
            "expectation": "disclosure_audit",
            "rule": f"no suppressed count can be worked out ({r.role})",
            "dimension": "disclosure",
            "columns": ["numerator", "denominator", "value"],
            "success": r.success,
            "element_count": r.cells_checked,
            "unexpected_count": len(r.findings),
            "unexpected_percent": 100.0 * len(r.findings) / r.cells_checked if r.cells_checked else 0.0,
        }
        for r in results
    ]


def summary(results: list[AuditResult]) -> dict[str, Any]:
    """What the run report and the task log say: cells checked, the narrowest range, every failure."""
    checked = sum(r.cells_checked for r in results)
    ranges = [r.narrowest for r in results if r.narrowest]
    narrowest = min(ranges, key=lambda n: n[2] - n[1], default=None)
    failed = sorted({f"{f.text()} [{r.role}]" for r in results for f in r.findings})
    narrow = None
    if narrowest:
        cell, low, high = narrowest
        narrow = f"{cell}: {low}..{'unbounded' if math.isinf(high) else int(high)}"
    roles = ", ".join(r.role for r in results)
    text = (
        f"{checked} suppressed counts checked as {len(results)} roles ({roles}); "
        f"narrowest feasible range {narrow or 'none (nothing suppressed)'}; "
        + (f"{len(failed)} disclosed" if failed else "none disclosed")
    )
    return {"cells_checked": checked, "roles": len(results), "narrowest": narrow, "failed": failed, "text": text}
