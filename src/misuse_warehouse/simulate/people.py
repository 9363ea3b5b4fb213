"""Synthetic people: an NDTMS-style attributor (initials, date of birth, sex) and a pool.

Nothing here comes from real records. Initials are drawn from rough frequencies
of English first-name and surname initials, so that two different people now
and then share an attributor, as they do in real data. A pool per area lets the
same person come back for another episode, or leave prison and start treatment,
with exactly the same attributor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from misuse_warehouse.months import age_on

from .rng import pick

_FIRST = tuple(
    zip(
        "ABCDEFGHIJKLMNOPQRSTUVWYZ",
        (
            8,
            3,
            7,
            7,
            4,
            1.5,
            3,
            3,
            1,
            11,
            5,
            6,
            9,
            3,
            0.6,
            4,
            0.3,
            6,
            8,
            4,
            0.3,
            0.6,
            2,
            0.5,
            0.4,
        ),
        strict=True,
    )
)
_SURNAME = tuple(
    zip(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        (
            3,
            9,
            7,
            4,
            2,
            3,
            4,
            8,
            0.5,
            3,
            3,
            4,
            8,
            2,
            1,
            6,
            0.2,
            5,
            10,
            5,
            0.2,
            1,
            8,
            0.05,
            0.5,
            0.1,
        ),
        strict=True,
    )
)

WITHHELD = "XX"


@dataclass
class Person:
    """A synthetic client; ``busy_until`` is the last day of their current or planned care."""

    person_id: str
    initials: str
    dob: date
    sex: str
    ethnicity: str | None
    group: str
    busy_until: date = date.min
    last_success: bool = False
    dead: bool = False
    episodes: int = field(default=0)


def draw_initials(rng: random.Random) -> str:
    while True:
        initials = pick(rng, _FIRST) + pick(rng, _SURNAME)
        if initials != WITHHELD:
            return initials


def draw_dob(rng: random.Random, on: date, low: int, high: int, mean: float, sd: float) -> date:
    """A date of birth giving a whole age in [low, high] on ``on``, roughly normal."""
    age = min(high, max(low, round(rng.gauss(mean, sd))))
    dob = on - timedelta(days=round(age * 365.25) + rng.randrange(365))
    while age_on(dob, on) > age:
        dob += timedelta(days=1)
    while age_on(dob, on) < age:
        dob -= timedelta(days=1)
    return dob


def draw_ethnicity(rng: random.Random) -> str | None:
    """NHS ethnic category: mostly White British, about 3% never recorded."""
    return pick(
        rng,
        (
            ("a", 80),
            ("b", 1),
            ("c", 4),
            ("d", 0.8),
            ("e", 0.5),
            ("f", 0.5),
            ("g", 0.8),
            ("h", 0.8),
            ("j", 1.2),
            ("k", 0.5),
            ("l", 0.5),
            ("m", 0.8),
            ("n", 1.2),
            ("p", 0.5),
            ("r", 0.3),
            ("s", 1.2),
            ("z", 2.5),
            (None, 3),
        ),
    )


def new_person(
    rng: random.Random,
    person_id: str,
    on: date,
    group: str,
    sex_table: tuple[tuple[str, float], ...],
    ages: tuple[int, int, float, float],
) -> Person:
    low, high, mean, sd = ages
    return Person(
        person_id=person_id,
        initials=draw_initials(rng),
        dob=draw_dob(rng, on, low, high, mean, sd),
        sex=pick(rng, sex_table),
        ethnicity=draw_ethnicity(rng),
        group=group,
    )


class Pool:
    """Everyone who has been seen in one area, for repeat episodes and prison releases."""

    def __init__(self) -> None:
        self.people: list[Person] = []

    def add(self, person: Person) -> Person:
        self.people.append(person)
        return person

    def returning(
        self,
        rng: random.Random,
        on: date,
        min_age: int,
        max_age: int,
        *,
        group: str,
        tries: int = 12,
    ) -> Person | None:
        """A former client free to start again on ``on``, or None after a few random tries.

        Successful completers are left alone for six months, so re-presentation within
        six months is governed by the explicit re-presentation rate alone.
        """
        if not self.people:
            return None
        for _ in range(tries):
            person = self.people[rng.randrange(len(self.people))]
            gap = 183 if person.last_success else 30
            if (
                not person.dead
                and person.group == group
                and person.busy_until + timedelta(days=gap) < on
                and min_age <= age_on(person.dob, on) <= max_age
            ):
                return person
        return None
