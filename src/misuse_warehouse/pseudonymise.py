"""The keyed pseudonym that links people across feeds without naming them.

person_key = HMAC-SHA256(secret, "INITIALS|YYYY-MM-DD|sex") as in ../shared/kpis.md.
Initials `XX` were withheld: such a record cannot be linked, so it gets no key
(NULL) and the models count it as a person of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from misuse_warehouse import settings

UNLINKABLE_INITIALS = "XX"


AIRFLOW_VARIABLE = "misuse_warehouse_pseudonym_secret"
"""The Airflow Variable read through the secrets backends (env AIRFLOW_VAR_..., Vault, AWS, metastore).

Its name holds "secret", one of Airflow's sensitive words, so the UI, the REST API and task logs
mask its value; the name before 2026-12-08 had none and was shown in the clear."""

DEPRECATED_AIRFLOW_VARIABLE = "misuse_warehouse_pseudonym_key"
"""The Variable's old name: still read for one release, with a warning, when the new one is absent."""

MIN_SECRET_BYTES = 32
"""Shortest key accepted. Whoever holds the key can reverse person_key by trying every initials,
date of birth and sex (a few hundred million messages), so the key itself must be beyond guessing.
Length is what code can check (not randomness): 32 bytes, the strength of HMAC-SHA256's 256-bit output;
`secrets.token_hex(32)` gives 64 characters of 32 random bytes."""

log = logging.getLogger(__name__)


class MissingSecretError(RuntimeError):
    """The pipeline must not pseudonymise with a guessable or absent key."""


class WeakSecretError(MissingSecretError):
    """A key is set but too short to be beyond guessing; a MissingSecretError, so every caller refuses alike."""


def secret() -> bytes:
    """The HMAC key: the environment first, else the Airflow Variable through Airflow's secrets backends.

    Whatever the source, the value is registered with Airflow's secrets masker before it is returned,
    so a task log that prints it (or a traceback that holds it) shows *** instead: a Variable with a
    sensitive name is masked by Airflow on read, an environment variable never is. A key shorter
    than MIN_SECRET_BYTES is refused.
    """
    value = os.environ.get(settings.PSEUDONYM_KEY_ENV) or _airflow_variable()
    if not value:
        raise MissingSecretError(
            f"no pseudonymisation secret: set {settings.PSEUDONYM_KEY_ENV} or the Airflow Variable "
            f"{AIRFLOW_VARIABLE} (any secrets backend: AIRFLOW_VAR_{AIRFLOW_VARIABLE.upper()}, Vault, ...). "
            "The pipeline refuses to start without it; only `misuse-warehouse demo` generates one "
            "(into .local/pseudonym.key)."
        )
    _mask(value)
    key = value.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise WeakSecretError(
            f"the pseudonymisation secret is {len(key)} bytes; at least {MIN_SECRET_BYTES} are required, "
            "because anyone holding a guessable key can reverse every person_key by trying initials x "
            'date of birth x sex. Make one with: python3 -c "import secrets; print(secrets.token_hex(32))" '
            "(a new key means re-keying: README, Pseudonymisation key rotation)."
        )
    return key


def _mask(value: str) -> None:
    """Have Airflow's secrets masker redact `value` in this process's logs and, in a task, the supervisor's."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # no Airflow (a bare library use): nothing logs through its masker
        return
    # no name: Airflow drops a named secret whose name has no sensitive word, as MISUSE_WAREHOUSE_PSEUDONYM_KEY has not
    mask_secret(value)


def _airflow_variable() -> str | None:
    """The Variable through Airflow's secrets backends, when Airflow is there to ask (tasks, the CLI).

    The old name is read only when the new one is absent, and says so: renaming a Variable in a
    secrets backend is an operator's change, so the code change does not break a running deployment.
    """
    try:
        from airflow.sdk import Variable
    except ImportError:
        return None
    value = Variable.get(AIRFLOW_VARIABLE, default=None)
    if value:
        return value
    value = Variable.get(DEPRECATED_AIRFLOW_VARIABLE, default=None)
    if value:
        message = (
            f"the pseudonymisation secret was read from the Airflow Variable {DEPRECATED_AIRFLOW_VARIABLE}, "
            f"which Airflow does not mask: rename it to {AIRFLOW_VARIABLE} (the old name stops working "
            "in the next release)"
        )
        warnings.warn(message, DeprecationWarning, stacklevel=3)
        log.warning(message)
    return value


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
