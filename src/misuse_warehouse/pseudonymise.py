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
import pyarrow.compute as pc

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


def normalised_initials(initials: str) -> str:
    """Initials as they enter the key: padding dropped, upper case (Python's, so keys never change)."""
    return initials.strip().upper()


def person_key(key: bytes, initials: str, dob: str, sex: str) -> str | None:
    initials = normalised_initials(initials)
    if initials == UNLINKABLE_INITIALS:
        return None
    return hmac.digest(key, f"{initials}|{dob}|{sex}".encode(), hashlib.sha256).hex()


def person_keys(
    key: bytes, initials: pa.ChunkedArray, dob: pa.ChunkedArray, sex: pa.ChunkedArray
) -> pa.Array | pa.ChunkedArray:
    """`person_key` of every row of three columns (a null read as empty), as person_key gives it.

    Initials are normalised once per distinct value, the messages joined by Arrow, and the keyed
    HMAC state copied for each message instead of keyed again: 1.33 s → 0.97 s for a national
    month's 304,868 rows.
    """
    initials = pc.fill_null(initials, "")
    distinct = pc.unique(initials)
    normalised = pa.array([normalised_initials(value) for value in distinct.to_pylist()], pa.string())
    initials = pc.take(normalised, pc.index_in(initials, distinct))
    messages = pc.binary_join_element_wise(initials, pc.fill_null(dob, ""), pc.fill_null(sex, ""), "|")
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    digests = []
    for message in pc.cast(messages, pa.binary()).to_pylist():
        digest = keyed.copy()
        digest.update(message)
        digests.append(digest.hexdigest())
    keys = pa.array(digests, pa.string())
    return pc.if_else(pc.equal(initials, UNLINKABLE_INITIALS), pa.scalar(None, pa.string()), keys)
