"""Where things live. One place so the CLI, the DAGs and the tests agree.

Everything local sits under `.local/` of the project (or `MISUSE_WAREHOUSE_HOME`),
so a clone is self-contained and `rm -rf .local` is a full reset.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = Path(os.environ.get("MISUSE_WAREHOUSE_DBT_DIR", PROJECT_ROOT / "dbt_project"))
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DAGS_DIR = PROJECT_ROOT / "dags"

SEED_AREAS = ("E06000035", "E06000019", "E10000034", "E06000022", "E06000018")

PSEUDONYM_KEY_ENV = "MISUSE_WAREHOUSE_PSEUDONYM_KEY"
WAREHOUSE_URL_ENV = "WAREHOUSE_URL"
# The logins each step uses where the deployment separates them (Docker): loading, and dbt and publishing.
# Unset, the step uses the WAREHOUSE_URL login and switches role with SET ROLE (the embedded demo, tests).
LOADER_URL_ENV = "MISUSE_WAREHOUSE_LOADER_URL"
TRANSFORMER_URL_ENV = "MISUSE_WAREHOUSE_TRANSFORMER_URL"
RETENTION_MONTHS_ENV = "MISUSE_WAREHOUSE_RETENTION_MONTHS"
DEFAULT_RETENTION_MONTHS = 24
MAX_FILE_BYTES_ENV = "MISUSE_WAREHOUSE_MAX_FILE_BYTES"
# A national month's largest treatment file is a few MB; 1 GiB leaves room for any real feed while a
# file read whole at this size (bytes, text and records) still fits a worker's memory.
DEFAULT_MAX_FILE_BYTES = 1 << 30
MAX_ANSWER_BYTES_ENV = "MISUSE_WAREHOUSE_MAX_ANSWER_BYTES"
# One data.police.uk answer is at most 10,000 crimes (about 6 MB of JSON); a Fingertips CSV for one
# indicator and area type is tens of MB at most. An answer larger than this is not one of theirs.
DEFAULT_MAX_ANSWER_BYTES = 256 << 20


def home() -> Path:
    """The local state folder: embedded Postgres, Airflow home, landing, quarantine."""
    return Path(os.environ.get("MISUSE_WAREHOUSE_HOME", PROJECT_ROOT / ".local")).resolve()


def landing_dir() -> Path:
    return Path(os.environ.get("MISUSE_WAREHOUSE_LANDING", home() / "landing"))


def quarantine_dir() -> Path:
    return Path(os.environ.get("MISUSE_WAREHOUSE_QUARANTINE", home() / "quarantine"))


def archive_dir() -> Path:
    """Accepted files, kept byte for byte by checksum (the raw landing zone on disk)."""
    return Path(os.environ.get("MISUSE_WAREHOUSE_ARCHIVE", home() / "archive"))


def retention_months() -> int:
    """How long plain attributors and landing files are kept after receipt (retention DAG)."""
    value = os.environ.get(RETENTION_MONTHS_ENV, str(DEFAULT_RETENTION_MONTHS))
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{RETENTION_MONTHS_ENV} must be a whole number of months, at least 1 (got {value!r})")
    return int(value)


def max_file_bytes() -> int:
    """The largest landing file read (`MISUSE_WAREHOUSE_MAX_FILE_BYTES`); a larger one is refused unread.

    Checked on the open file before a byte is read, so a runaway export cannot exhaust the ingest
    task's memory and fail every retry of the month.
    """
    return _positive_bytes(MAX_FILE_BYTES_ENV, DEFAULT_MAX_FILE_BYTES)


def max_answer_bytes() -> int:
    """The largest API answer read (`MISUSE_WAREHOUSE_MAX_ANSWER_BYTES`): police and Fingertips answers
    are read as a stream and refused once they pass it, never held whole first."""
    return _positive_bytes(MAX_ANSWER_BYTES_ENV, DEFAULT_MAX_ANSWER_BYTES)


def _positive_bytes(env: str, default: int) -> int:
    value = os.environ.get(env, str(default)).strip()
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{env} must be a whole number of bytes, at least 1 (got {value!r})")
    return int(value)


def reports_dir() -> Path:
    """Validation reports of files loaded with warnings (refused files have theirs in quarantine)."""
    return Path(os.environ.get("MISUSE_WAREHOUSE_REPORTS", home() / "reports"))


def gx_dir() -> Path:
    return home() / "gx"


# What the pipeline writes is its own user's alone: without group or other bits a file is 0600, a folder 0700.
PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def private_umask() -> None:
    """Files and folders this process creates from now on: owner only (0600, 0700).

    The default umask (022) leaves them world-readable, and in Docker the home is a shared volume.
    """
    os.umask(PRIVATE_UMASK)


def make_private(path: Path) -> None:
    """A file 0600 or a folder 0700, whatever umask or copied mode (shutil keeps the sender's) made it.

    A symbolic link (a refused one, kept in quarantine) is left alone: chmod would act on whatever it
    points at, which a submitter chose, and a link's own mode means nothing on Linux.
    """
    if path.is_symlink():
        return
    path.chmod(PRIVATE_FOLDER if path.is_dir() else PRIVATE_FILE)


def gx_results_dirs() -> tuple[Path, ...]:
    """Where GX keeps each validation: its stored results and their Data Docs pages (under retention)."""
    uncommitted = gx_dir() / "gx" / "uncommitted"
    return (uncommitted / "validations", uncommitted / "data_docs" / "local_site" / "validations")


def cosmos_cache_dir() -> Path:
    """Cosmos keeps dbt's partial-parse file here between builds, one per home (default: one per machine).

    dbt reparses the whole project (about 3 s more a build) when the file was written for another
    connection, so homes with their own Postgres port (test workers, demos, benchmarks) must not share it.
    """
    return home() / "cosmos"


def telemetry_off() -> None:
    """The stack phones home by default; a health-data warehouse must not."""
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
