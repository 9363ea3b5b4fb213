"""Deterministic randomness: every stream is a ``random.Random`` seeded from a hash.

Python's ``hash()`` is salted per process, so sub-seeds come from SHA-256 of
readable strings instead. Each (area, month, purpose) gets its own stream, which
is what makes a 3-month run identical to the same 3 months of a 24-month run and
an area's files independent of which other areas were asked for.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
from collections.abc import Sequence
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")


def sub_seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def stream(*parts: object) -> random.Random:
    """A fresh generator for one named purpose, e.g. ``stream(seed, area, month, "referrals")``."""
    return random.Random(sub_seed(*parts))


def short_hash(*parts: object, length: int = 10) -> str:
    """Upper-case hex digest prefix, for identifiers that must not depend on run shape."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:length].upper()


def pick(rng: random.Random, table: Sequence[tuple[T, float]]) -> T:
    """Weighted choice from ``(value, weight)`` pairs, weights need not sum to 1."""
    values, bounds = _cumulative(tuple(table))
    return values[bisect.bisect_right(bounds, rng.random() * bounds[-1])]


@lru_cache(maxsize=1024)
def _cumulative(table: tuple[tuple[T, float], ...]) -> tuple[tuple[T, ...], tuple[float, ...]]:
    return tuple(v for v, _ in table), tuple(itertools.accumulate(w for _, w in table))


def poisson(rng: random.Random, mean: float) -> int:
    """Poisson draw; Knuth's method for small means, a rounded normal above 30."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def chance(rng: random.Random, probability: float) -> bool:
    return rng.random() < probability
