"""Feed contracts as data: one YAML per feed drives file checks, loading and the raw gate.

The YAML mirrors ../shared/feeds/*.md. Only what the file checks and the loader need
lives here (names, types, requiredness, keys); the rules between values live in the
feed's GX suite under `expectations/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).parent / "contracts"

# Postgres type of each contract type in the raw tables.
PG_TYPES = {
    "text": "text",
    "code": "text",
    "gss": "text",
    "date": "date",
    "month": "date",
    "integer": "integer",
    "money": "numeric(14, 2)",
    "decimal": "numeric",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool

    @property
    def pg_type(self) -> str:
        return PG_TYPES[self.type]


@dataclass(frozen=True)
class Derived:
    name: str
    kind: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Contract:
    feed: str
    title: str
    period: str  # "month" or "financial_year"
    source_pattern: str
    table: str
    record_key: tuple[str, ...]
    suite: str
    columns: tuple[Column, ...]
    derived: tuple[Derived, ...] = ()
    attributor: dict[str, str] = field(default_factory=dict)
    # every file is whole: a restatement of a month may not leave out a record of the one it replaces
    restatement_keeps_records: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def hidden_columns(self) -> frozenset[str]:
        """Person identifiers and what is computed from them (an age): never shown in any message or report."""
        personal = set(self.attributor.values())
        derived = {d.name for d in self.derived if personal.intersection(d.args)}
        return frozenset(personal | derived)

    def source_ok(self, source: str) -> bool:
        return re.fullmatch(self.source_pattern, source, re.ASCII) is not None

    @property
    def plain_attributor(self) -> tuple[str, ...]:
        """Columns that identify a person (initials, date of birth): raw zone only, purged after retention."""
        return tuple(self.attributor[role] for role in ("initials", "dob") if role in self.attributor)

    @property
    def stored_ages(self) -> tuple[Derived, ...]:
        """Ages derived from the date of birth, kept in raw so the date of birth itself can be purged."""
        return tuple(d for d in self.derived if d.kind == "age_years")


def _parse(path: Path) -> Contract:
    data = yaml.safe_load(path.read_text())
    return Contract(
        feed=data["feed"],
        title=data["title"],
        period=data["period"],
        source_pattern=data["source_pattern"],
        table=data["table"],
        record_key=tuple(data["record_key"]),
        suite=data["suite"],
        columns=tuple(Column(**c) for c in data["columns"]),
        derived=tuple(Derived(d["name"], d["kind"], tuple(d["args"])) for d in data.get("derived", [])),
        attributor=data.get("attributor", {}),
        restatement_keeps_records=data.get("restatement_keeps_records", False),
    )


@cache
def all_contracts() -> dict[str, Contract]:
    """Every feed contract by feed name (the first part of a file name)."""
    contracts = (_parse(p) for p in sorted(CONTRACTS_DIR.glob("*.yaml")))
    return {c.feed: c for c in contracts}


def contract_for(feed: str) -> Contract:
    try:
        return all_contracts()[feed]
    except KeyError:
        known = ", ".join(sorted(all_contracts()))
        raise KeyError(f"no contract for feed '{feed}' (known: {known})") from None
