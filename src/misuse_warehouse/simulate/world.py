"""The simulated world of one area, month by month from a fixed epoch.

Every month draws its own referrals and prison releases from a random stream
named after (seed, area, month), and each new episode's life is drawn whole at
once (including any transfer, re-presentation or spell in custody that follows).
Nothing drawn in month M depends on how far the run goes, and no episode or
release is ever back-dated before the month that drew it, so the files for
month M are the same whether the run stops at M or two years later.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta

from misuse_warehouse.months import add_months, age_on, days_in, first_day, month_of, parse_month

from .people import WITHHELD, Person, Pool, new_person
from .providers import NOVATION_DAY, AreaPlan, Service
from .rng import chance, pick, poisson, short_hash, stream
from .treatment import (
    ADULT_SOURCES,
    HOUSING,
    PROFILES,
    YOUNG_PEOPLE_SOURCES,
    Episode,
    Profile,
    kpi_group,
)

EPOCH = parse_month("2010-01")
"""The world starts empty here; long opiate careers need years to reach a steady caseload."""
EARLIEST_MONTH = parse_month("2016-01")
"""First month a run may ask for: six years of history behind its twelve-month window."""

# Monthly referrals per 100,000 adults, by the group that drives the referral.
REFERRALS_PER_100K = {"opiate": 3.8, "non_opiate": 7.8, "alcohol": 10.5, "young_people": 1.1}
RE_PRESENTATION = 0.16
RETURNING = 0.28
WITHHELD_EPISODE = 0.02
WITHHELD_RELEASE = 0.03
LATE_DISCHARGE = 0.08
CORRECTED_SOURCE = 0.02
CUSTODY_REASONS = ("transferred_in_custody", "retained_in_custody")
PRISON_PROFILE = (("opiate", 45.0), ("non_opiate", 33.0), ("alcohol", 22.0))


@dataclass(frozen=True)
class Release:
    release_id: str
    release_date: date
    prison_code: str
    person: Person
    initials: str
    need: bool
    treated_in_custody: bool
    referred: bool


class AreaWorld:
    """All episodes and releases of one area, simulated up to ``simulated_to``."""

    def __init__(self, plan: AreaPlan, seed: int) -> None:
        self.plan = plan
        self.seed = seed
        self.code = plan.area.code
        self.pool = Pool()
        self.episodes: list[Episode] = []
        self.releases: dict[int, list[Release]] = {}
        self.custody: dict[int, list[tuple[Person, date]]] = defaultdict(list)
        self.simulated_to = EPOCH - 1
        self.rates = {k: v * plan.area.adults / 100_000 for k, v in REFERRALS_PER_100K.items()}
        self._now = EPOCH
        self._serial = 0

    # -- driving -----------------------------------------------------------------------

    def run_to(self, month: int) -> None:
        for current in range(self.simulated_to + 1, month + 1):
            self._now, self._serial = current, 0
            rng = stream(self.seed, self.code, current, "referrals")
            for key in ("opiate", "non_opiate", "alcohol", "young_people"):
                for _ in range(poisson(rng, self.rates[key])):
                    self._referral(rng, key)
            self._releases(stream(self.seed, self.code, current, "releases"), current)
            self.simulated_to = current

    def _next_id(self, prefix: str) -> str:
        self._serial += 1
        return short_hash(self.seed, self.code, self._now, prefix, self._serial, length=12)

    # -- referrals ---------------------------------------------------------------------

    def _referral(self, rng: random.Random, key: str) -> None:
        day = first_day(self._now) + timedelta(days=rng.randrange(days_in(self._now)))
        person = None
        if key != "young_people" and chance(rng, RETURNING):
            person = self.pool.returning(rng, day, 18, 90, group=key)
        if person is None:
            profile = PROFILES[key]
            person = self.pool.add(new_person(rng, self._next_id("person"), day, key, profile.sex, profile.ages))
        sources = YOUNG_PEOPLE_SOURCES if key == "young_people" else ADULT_SOURCES
        if key == "alcohol":
            sources = tuple((s, w / 2 if s and s.startswith("cj_") else w) for s, w in sources)
        self._journey(rng, person, day, str(pick(rng, sources)))

    def _service(self, rng: random.Random, young: bool, source: str, not_key: str = "") -> Service:
        if young:
            return next(s for s in self.plan.services if s.young_people)
        cj = self.plan.service("cj")
        if cj and not_key != "cj" and source.startswith("cj_") and chance(rng, 0.7):
            return cj
        choices = [(s, s.adult_share) for s in self.plan.services if s.key != not_key]
        return pick(rng, choices)

    def _journey(
        self,
        rng: random.Random,
        person: Person,
        referral: date,
        source: str,
        *,
        fixed_start: date | None = None,
        never_starts: bool = False,
    ) -> None:
        """A person's run of episodes: transfers and re-presentations follow on directly."""
        group = person.group
        substance_group: str | None = None
        service: Service | None = None
        transfer_in = False
        last: Episode | None = None
        for _ in range(8):
            if age_on(person.dob, referral) > 99:
                break  # the contract's age rule: 10 to 100 on the referral date
            young = age_on(person.dob, referral) < 18
            if not young and group == "young_people":
                group = person.group = kpi_group(substance_group or "non_opiate_only")
            profile = PROFILES["young_people" if young else group]
            if substance_group is None or (not young and kpi_group(substance_group) != group):
                substance_group = str(pick(rng, profile.substance_groups))
            if service is None:
                service = self._service(rng, young, source)
            pieces = self._episode(
                rng,
                person,
                referral,
                source,
                service,
                profile,
                substance_group,
                young,
                transfer_in=transfer_in,
                fixed_start=fixed_start,
                never_starts=never_starts,
            )
            self.episodes.extend(pieces)
            last = pieces[-1]
            fixed_start, never_starts = None, False
            if last.reason == "transferred_not_in_custody":
                referral = last.discharge + timedelta(days=rng.randint(1, 14))
                adult_now = age_on(person.dob, referral) >= 18
                if young and adult_now:
                    service = self.plan.services[0]
                else:
                    service = self._service(rng, not adult_now, "other", not_key=service.key)
                source, transfer_in = "other", True
                continue
            if last.successful and chance(rng, RE_PRESENTATION):
                referral = last.discharge + timedelta(days=rng.randint(14, 180))
                source = str(pick(rng, ADULT_SOURCES if age_on(person.dob, referral) >= 18 else YOUNG_PEOPLE_SOURCES))
                service, transfer_in = None, False
                continue
            break
        if last is None:
            return
        person.busy_until = max(person.busy_until, last.discharge)
        person.last_success = last.successful
        if last.reason == "died":
            person.dead = True
        elif last.reason in CUSTODY_REASONS:
            release = last.discharge + timedelta(days=rng.randint(20, 300))
            release = max(release, first_day(self._now + 1))
            person.busy_until = release
            if age_on(person.dob, release) >= 18:
                self.custody[month_of(release)].append((person, release))

    def _episode(
        self,
        rng: random.Random,
        person: Person,
        referral: date,
        source: str,
        service: Service,
        profile: Profile,
        substance_group: str,
        young: bool,
        *,
        transfer_in: bool,
        fixed_start: date | None,
        never_starts: bool,
    ) -> list[Episode]:
        """Draw one episode's whole life; split it in two if its service is novated midway."""
        non_start = profile.non_start + (0.06 if source.startswith("cj_") else 0.0)
        triage: date | None = None
        first: date | None = None
        modality: str | None = None
        top_start: int | None = None
        reviews: list[tuple[date, int]] = []
        if never_starts or (not transfer_in and fixed_start is None and chance(rng, non_start)):
            discharge = referral + timedelta(days=rng.randint(14, 75))
            reason = "declined_treatment" if chance(rng, 0.4) else "dropped_out"
            if chance(rng, 0.6):
                triage = referral + timedelta(days=rng.randint(0, 10))
        else:
            if fixed_start is not None:
                first = fixed_start
            elif transfer_in:
                first = referral + timedelta(days=rng.randint(0, 7))
            else:
                wait = rng.lognormvariate(math.log(7.0 if not young else 9.0), 0.55)
                first = referral + timedelta(days=min(150, round(wait)))
            if chance(rng, 0.9):
                triage = referral + timedelta(days=rng.randint(0, (first - referral).days))
            modality = str(pick(rng, profile.modality))
            if chance(rng, profile.early_exit):
                discharge = first + timedelta(days=rng.randint(3, 84))
                reason = str(
                    pick(
                        rng,
                        (
                            ("dropped_out", 82.0),
                            ("withdrawn_by_provider", 10.0),
                            ("retained_in_custody", 6.0 if not young else 3.0),
                            ("died", 2.0 if substance_group == "opiate" and not young else 0.0),
                        ),
                    )
                )
            else:
                discharge = first + timedelta(days=85 + round(rng.expovariate(1 / profile.long_days)))
                reason = str(pick(rng, profile.outcomes))
                if reason == "success":
                    reason = str(pick(rng, profile.successes))
            if young:
                eighteen = add_months(person.dob, 18 * 12)
                if discharge > eighteen + timedelta(days=14):
                    discharge = max(first + timedelta(days=1), eighteen + timedelta(days=rng.randint(0, 14)))
                    reason = "transferred_not_in_custody"
            if chance(rng, 0.85):
                top_start, reviews = self._top(rng, profile, first, discharge, reason)
        provider = service.provider_on(referral)
        episode = Episode(
            provider=provider,
            episode_id=f"{referral:%y%m}-{self._next_id('episode')}",
            area_code=self.code,
            person=person,
            initials=WITHHELD if chance(rng, WITHHELD_EPISODE) else person.initials,
            sex="u" if chance(rng, 0.004) else person.sex,
            ethnicity=person.ethnicity,
            ethnicity_from=month_of(referral) + (rng.randint(1, 3) if chance(rng, 0.1) else 0),
            service_type="young_people" if young else "adult",
            substance_group=substance_group,
            primary_substance=str(pick(rng, profile.substances[substance_group])),
            injecting=pick(rng, profile.injecting),
            referral_source=source,
            referral=referral,
            triage=triage,
            first_intervention=first,
            modality=modality,
            discharge=discharge,
            reason=reason,
            discharge_recorded=month_of(discharge)
            + (1 if chance(rng, LATE_DISCHARGE) and not self._last_month_of_provider(service, discharge) else 0),
            housing=pick(rng, HOUSING),
            top_start=top_start,
            reviews=reviews,
        )
        if chance(rng, CORRECTED_SOURCE):
            wrong = str(pick(rng, ADULT_SOURCES if not young else YOUNG_PEOPLE_SOURCES))
            if wrong != source:
                episode.wrong_source = wrong
                episode.source_fixed = month_of(referral) + rng.randint(1, 3)
        person.episodes += 1
        if service.novated_to is not None and referral < NOVATION_DAY <= discharge:
            return self._novate(episode, service)
        return [episode]

    @staticmethod
    def _last_month_of_provider(service: Service, day: date) -> bool:
        """A discharge in a novated provider's last month cannot be recorded late."""
        return service.novated_to is not None and month_of(day) == month_of(NOVATION_DAY) - 1

    def _top(
        self, rng: random.Random, profile: Profile, first: date, discharge: date, reason: str
    ) -> tuple[int, list[tuple[date, int]]]:
        """Treatment Outcomes Profile: a start value, six-monthly reviews, maybe an exit review."""
        start = min(28, max(0, round(rng.gauss(profile.top_mean, 7))))
        improving = 0.55 if reason.startswith("completed") else 0.3
        points = []
        day = first + timedelta(days=182)
        while day < discharge:
            points.append(day)
            day += timedelta(days=182)
        if reason != "dropped_out" and chance(rng, 0.6):
            points.append(discharge)
        reviews = []
        for point in points:
            if not chance(rng, 0.75):
                continue
            if chance(rng, improving):
                value = round(start * rng.uniform(0, 0.5))
            else:
                value = min(28, max(0, round(start + rng.gauss(-3, 6))))
            reviews.append((point, value))
        return start, reviews

    def _novate(self, old: Episode, service: Service) -> list[Episode]:
        """Close the old provider's episode the day before the novation; reopen at the new one.

        This is how NDTMS handles a change of provider: a transfer, not a renamed record,
        so that (provider_code, episode_id) stays a key and no episode is counted twice.
        """
        assert service.novated_to is not None
        eve = NOVATION_DAY - timedelta(days=1)
        # the reopened episode is referred on the novation day: a young person may be 18 by then
        service_type = "adult" if age_on(old.person.dob, NOVATION_DAY) >= 18 else old.service_type
        new = replace(
            old,
            provider=service.novated_to,
            service_type=service_type,
            episode_id=f"{NOVATION_DAY:%y%m}-{self._next_id('novation')}",
            referral=NOVATION_DAY,
            referral_source="other",
            wrong_source=None,
            ethnicity_from=min(old.ethnicity_from, month_of(NOVATION_DAY)),
            triage=max(old.triage, NOVATION_DAY) if old.triage else None,
            first_intervention=(max(old.first_intervention, NOVATION_DAY) if old.first_intervention else None),
            reviews=[(d, v) for d, v in old.reviews if d >= NOVATION_DAY],
        )
        old.discharge, old.reason = eve, "transferred_not_in_custody"
        old.discharge_recorded = month_of(eve)
        old.reviews = [(d, v) for d, v in old.reviews if d <= eve]
        if old.triage is not None and old.triage > eve:
            old.triage = None
        if old.first_intervention is not None and old.first_intervention > eve:
            old.first_intervention, old.modality, old.top_start = None, None, None
            old.reviews = []
        return [old, new]

    # -- prison releases -----------------------------------------------------------------

    def _releases(self, rng: random.Random, month: int) -> None:
        due = sorted(self.custody.pop(month, []), key=lambda item: (item[1], item[0].person_id))
        mean = 8 + self.plan.area.adults / 100_000 * 6
        target = min(40, max(15, round(rng.gauss(mean, mean * 0.15))))
        start, length = first_day(month), days_in(month)
        released: list[tuple[date, Person, bool]] = [(day, p, True) for p, day in due]
        for _ in range(max(0, target - len(due))):
            day = start + timedelta(days=rng.randrange(length))
            group = str(pick(rng, PRISON_PROFILE))
            person = self.pool.returning(rng, day, 19, 70, group=group) if chance(rng, 0.3) else None
            if person is None:
                person = self.pool.add(
                    new_person(
                        rng, self._next_id("person"), day, group, (("m", 95.0), ("f", 5.0)), (19, 70, 35.0, 10.0)
                    )
                )
            released.append((day, person, False))
        released.sort(key=lambda item: (item[0], item[1].person_id))
        records = []
        for number, (day, person, known) in enumerate(released, start=1):
            need = chance(rng, 0.85 if known else 0.55)
            referred = need and chance(rng, 0.8)
            record = Release(
                release_id=f"R{self.code[-4:]}-{day:%y%m}-{number:03d}",
                release_date=day,
                prison_code=self.plan.prisons[rng.randrange(len(self.plan.prisons))],
                person=person,
                initials=WITHHELD if chance(rng, WITHHELD_RELEASE) else person.initials,
                need=need,
                treated_in_custody=chance(rng, 0.75 if need else 0.05),
                referred=referred,
            )
            records.append(record)
            person.busy_until = max(person.busy_until, day)
            self._after_release(rng, record, month)
        self.releases[month] = records

    def _after_release(self, rng: random.Random, record: Release, month: int) -> None:
        """Continuity of care: about half of those with a need start treatment within 21 days."""
        day = record.release_date
        draw = rng.random()
        if record.need:
            in_time, late, declined = (0.55, 0.08, 0.07) if record.referred else (0.25, 0.1, 0.05)
        else:
            in_time, late, declined = 0.0, 0.04, 0.0
        referral = max(first_day(month), day - timedelta(days=rng.randint(0, 7)))
        if draw < in_time:
            first = day + timedelta(days=min(21, int(rng.triangular(0, 21, 2))))
        elif draw < in_time + late:
            first = day + timedelta(days=rng.randint(22, 75))
            referral = max(referral, day + timedelta(days=rng.randint(0, 14)))
        elif draw < in_time + late + declined:
            self._journey(rng, record.person, referral, "cj_prison", never_starts=True)
            return
        else:
            return
        self._journey(rng, record.person, referral, "cj_prison", fixed_start=first)
