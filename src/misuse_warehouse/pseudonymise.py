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

from misuse_warehouse import settings

UNLINKABLE_INITIALS = "XX"


class MissingSecretError(RuntimeError):
    """The pipeline must not pseudonymise with a guessable or absent key."""


def secret() -> bytes:
    value = os.environ.get(settings.PSEUDONYM_KEY_ENV)
    if not value:
        raise MissingSecretError(
            f"{settings.PSEUDONYM_KEY_ENV} is not set: the pseudonymisation secret must come "
            "from the environment (the demo generates one into .local/pseudonym.key)"
        )
    return value.encode()


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
    message = f"{initials}|{dob}|{sex}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
