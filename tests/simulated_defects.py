"""The simulator's files, defects and accepted variants of some feeds, for the raw-suite tests of each domain.

Each defect the simulator can inject on a feed must be refused where the domain's test file says: by the
file checks (with their refusal code) or by the GX suite (with the rule); each accepted variant must pass.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from misuse_warehouse import gate
from misuse_warehouse.file_checks import read_file
from misuse_warehouse.refusal import Refusal
from misuse_warehouse.simulate import ACCEPTED_VARIANTS, DEFECTS, apply_defects
from misuse_warehouse.simulate.defects import KINDS


def defects_of(feeds: Iterable[str]) -> list[str]:
    return sorted(name for name in DEFECTS if KINDS[name].feed in set(feeds))


def variants_of(feeds: Iterable[str]) -> list[str]:
    return sorted(name for name in ACCEPTED_VARIANTS if KINDS[name].feed in set(feeds))


def feed_files(root: Path, feeds: Iterable[str]) -> list[Path]:
    return sorted(p for feed in feeds for p in (root / feed).glob("*/*.csv"))


def failing_files(simulated: Path, files: list[Path]) -> dict[str, list]:
    """The suite's failures of every file that does not pass it, by path under the landing."""
    failures = {}
    for path in files:
        result = gate.check_file(read_file(path))
        if not result.success:
            failures[str(path.relative_to(simulated))] = result.failures
    return failures


def with_defect(name: str, simulated: Path, tmp_path: Path) -> Path:
    """A copy of the simulated landing with one defect or variant applied; returns its file."""
    root = tmp_path / "landing"
    shutil.copytree(simulated, root)
    paths = [root / p.relative_to(simulated) for p in sorted(simulated.glob("*/*/*.csv"))]
    paths.sort(key=lambda p: (p.parent.name, p.parent.parent.name, p.name))
    _, targets = apply_defects(paths, [name])
    return targets[name]


def assert_refused(path: Path, name: str, file_level: dict[str, str], value_rules: dict[str, str]) -> None:
    """Refused by the file checks with the defect's code, or by the suite with its rule and no other."""
    if name in file_level:
        with pytest.raises(Refusal) as refused:
            read_file(path)
        assert refused.value.code == file_level[name]
    else:
        result = gate.check_file(read_file(path))
        assert {f["rule"] for f in result.failures} == {value_rules[name]}, result.failures
