"""Why a file was refused: a machine-readable code, a readable message, and the evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One rule broken at one place of a file: a line of the validation report sent to the submitter.

    `value` is already masked when it belongs to personal data (see validation_report).
    """

    rule: str
    message: str
    severity: str = "error"  # error: the file is refused; warning: the file is loaded
    dimension: str | None = None
    columns: tuple[str, ...] = ()
    row: int | None = None  # row number in the file as a spreadsheet shows it (the header is row 1)
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Refusal(Exception):
    """Raised by any check that refuses a file; carried to quarantine and the audit.

    `details` are the first examples (kept in the reason files); `findings` are every rule broken
    at every row, for the validation report.
    """

    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list, compare=False)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}
