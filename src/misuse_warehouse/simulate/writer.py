"""Writing CSV files exactly as the contracts say: UTF-8, comma, RFC 4180, ``\\n`` endings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def landing_path(out_dir: Path, feed: str, folder: str, source: str, period: str) -> Path:
    """``<out>/<feed>/<YYYY-MM>/<feed>_<source>_<period>.csv``."""
    return out_dir / feed / folder / f"{feed}_{source}_{period}.csv"


def csv_text(header: Sequence[str], rows: Iterable[Mapping[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row[column] for column in header])
    return buffer.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Mapping[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text(header, rows).encode("utf-8"))
    return path
