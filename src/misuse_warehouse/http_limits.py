"""API answers read as a stream up to a byte limit, never whole first.

`requests` reads a body whole into memory before the caller sees it, so one answer that runs away
(a proxy's endless error page, an API that returns every record it has) could exhaust a worker
and fail the task on every retry. The connectors (police, Fingertips) ask with `stream=True` and
read the body here: pieces of 64 KiB, given up at `settings.max_answer_bytes()`, the connection
closed rather than drained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from misuse_warehouse import settings

PIECE_BYTES = 64 << 10


class AnswerTooLarge(Exception):
    """The answer passed the byte limit: the caller refuses it with this message."""

    def __init__(self, url: str, limit: int, received: int, declared: int | None) -> None:
        if declared is not None:
            said = f"it declared {declared:,} bytes"
        else:
            said = f"{received:,} bytes came before reading stopped"
        super().__init__(
            f"the answer is over the limit of {limit:,} bytes ({settings.MAX_ANSWER_BYTES_ENV}): {said}; "
            "it was not read further, nor kept"
        )
        self.url, self.limit, self.received, self.declared = url, limit, received, declared


@dataclass(frozen=True)
class Answer:
    """What the connectors read of a response: status, headers and the capped body."""

    status_code: int
    reason: str
    headers: Mapping[str, str]
    content: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.content)


def read_capped(response: requests.Response, limit: int | None = None) -> Answer:
    """The response with its body read to at most `limit` bytes (default `settings.max_answer_bytes()`).

    A Content-Length over the limit refuses the answer before a byte of the body is read; without
    one (chunked answers), reading stops at the first piece that passes it. Bodies are counted as
    decoded, so a gzip answer that inflates past the limit is refused too. The connection is closed
    either way, so a refused answer is not drained to the end.
    """
    limit = settings.max_answer_bytes() if limit is None else limit
    try:
        declared_text = response.headers.get("Content-Length", "")
        declared = int(declared_text) if declared_text.isascii() and declared_text.isdigit() else None
        if declared is not None and declared > limit:  # compressed, it only inflates
            raise AnswerTooLarge(response.url, limit, 0, declared)
        pieces: list[bytes] = []
        received = 0
        for piece in response.iter_content(PIECE_BYTES):
            received += len(piece)
            if received > limit:
                raise AnswerTooLarge(response.url, limit, received, None)
            pieces.append(piece)
    finally:
        response.close()
    return Answer(response.status_code, response.reason or "", response.headers, b"".join(pieces), response.url)
