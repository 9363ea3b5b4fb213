"""The keyed pseudonym that links people across feeds without naming them.

person_key = HMAC-SHA256(secret, "INITIALS|YYYY-MM-DD|sex") as in ../shared/kpis.md.
Initials `XX` were withheld: such a record cannot be linked, so it gets no key
(NULL) and the models count it as a person of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pyarrow as pa

from misuse_warehouse import settings

UNLINKABLE_INITIALS = "XX"


AIRFLOW_VARIABLE = "misuse_warehouse_pseudonym_key"
"""The Airflow Variable read through the secrets backends (env AIRFLOW_VAR_..., Vault, AWS, metastore)."""


class MissingSecretError(RuntimeError):
    """The pipeline must not pseudonymise with a guessable or absent key."""


def secret() -> bytes:
    """The HMAC key: the environment first, else the Airflow Variable through Airflow's secrets backends."""
    value = os.environ.get(settings.PSEUDONYM_KEY_ENV) or _airflow_variable()
    if not value:
        raise MissingSecretError(
            f"no pseudonymisation secret: set {settings.PSEUDONYM_KEY_ENV} or the Airflow Variable "
            f"{AIRFLOW_VARIABLE} (any secrets backend: AIRFLOW_VAR_{AIRFLOW_VARIABLE.upper()}, Vault, ...). "
            "The pipeline refuses to start without it; only `misuse-warehouse demo` generates one "
            "(into .local/pseudonym.key)."
        )
    return value.encode()


def _airflow_variable() -> str | None:
    """The Variable through Airflow's secrets backends, when Airflow is there to ask (tasks, the CLI)."""
    try:
        from airflow.sdk import Variable
    except ImportError:
        return None
    return Variable.get(AIRFLOW_VARIABLE, default=None)


def demo_secret(home: Path) -> str:
    """A random key kept under .local/ for the demo only; never committed."""
    path = home / "pseudonym.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def person_key(key: bytes, initials: str, dob: str, sex: str) -> str | None:
    initials = initials.strip().upper()
    if initials == UNLINKABLE_INITIALS:
        return None
    return hmac.digest(key, f"{initials}|{dob}|{sex}".encode(), hashlib.sha256).hex()


def person_keys(key: bytes, initials: pa.ChunkedArray, dob: pa.ChunkedArray, sex: pa.ChunkedArray) -> pa.Array:
    """`person_key` of every row of three columns (a null read as empty)."""
    values = (column.to_pylist() for column in (initials, dob, sex))
    return pa.array([person_key(key, i or "", d or "", s or "") for i, d, s in zip(*values, strict=True)], pa.string())
