"""Treatment episodes: how they are drawn, and what a provider's file says about them.

An episode's whole life (referral, wait, first intervention, discharge) is drawn
when it is created; a monthly file then shows it *as known at the end of that
month*: dates still in the future are blank, a few discharges are recorded a
month late, a few referral sources are corrected after the first submission.
That is what makes each file a faithful restatement of the last twelve months.

The rates below are set so that the KPIs land near England's 2023-24 figures:
opiate successful completions about 5% of those in treatment a year, non-opiate
about 30%, alcohol about 35%; median wait about a week with 2-5% over three
weeks; opiate deaths about 1% a year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from misuse_warehouse.months import first_day, last_day

from .people import Person
from .providers import Provider
from .schema import SUCCESS

Table = tuple[tuple[str | None, float], ...]


@dataclass(frozen=True)
class Profile:
    """Everything that differs between substance groups (and young people)."""

    substance_groups: Table
    substances: dict[str, Table]
    ages: tuple[int, int, float, float]
    sex: tuple[tuple[str, float], ...]
    injecting: Table
    modality: Table
    non_start: float
    early_exit: float
    long_days: float
    outcomes: tuple[tuple[str, float], ...]
    successes: tuple[tuple[str, float], ...]
    top_mean: float


_ADULT_SEX = (("m", 70.0), ("f", 29.2), ("x", 0.3), ("u", 0.5))
_EARLY = (("dropped_out", 82.0), ("withdrawn_by_provider", 10.0), ("retained_in_custody", 6.0), ("died", 2.0))
_NON_OPIATE = {
    "non_opiate_only": (
        ("cocaine", 42.0),
        ("cannabis", 34.0),
        ("crack", 10.0),
        ("benzodiazepines", 4.0),
        ("amphetamines", 4.0),
        ("ketamine", 3.0),
        ("synthetic_cannabinoids", 1.5),
        ("other", 1.5),
    ),
    "non_opiate_and_alcohol": (
        ("cocaine", 50.0),
        ("alcohol", 22.0),
        ("cannabis", 18.0),
        ("crack", 6.0),
        ("ketamine", 2.0),
        ("other", 2.0),
    ),
}

PROFILES: dict[str, Profile] = {
    "opiate": Profile(
        substance_groups=(("opiate", 1.0),),
        substances={"opiate": (("heroin", 86.0), ("methadone_illicit", 11.0), ("other", 3.0))},
        ages=(20, 75, 43.0, 9.0),
        sex=(("m", 72.0), ("f", 27.5), ("u", 0.5)),
        injecting=(("current", 22.0), ("previous", 40.0), ("never", 30.0), ("declined", 3.0), (None, 5.0)),
        modality=(
            ("pharmacological", 86.0),
            ("psychosocial", 8.0),
            ("inpatient_detox", 3.0),
            ("recovery_support", 2.0),
            ("residential_rehab", 1.0),
        ),
        non_start=0.08,
        early_exit=0.08,
        long_days=1300.0,
        outcomes=(
            ("success", 26.0),
            ("dropped_out", 33.0),
            ("withdrawn_by_provider", 4.0),
            ("transferred_not_in_custody", 12.0),
            ("transferred_in_custody", 9.0),
            ("retained_in_custody", 9.0),
            ("died", 5.0),
        ),
        successes=(("completed_drug_free", 60.0), ("completed_occasional_user", 40.0)),
        top_mean=17.0,
    ),
    "non_opiate": Profile(
        substance_groups=(("non_opiate_only", 45.0), ("non_opiate_and_alcohol", 55.0)),
        substances=_NON_OPIATE,
        ages=(18, 70, 33.0, 9.0),
        sex=_ADULT_SEX,
        injecting=(("current", 2.0), ("previous", 7.0), ("never", 80.0), ("declined", 2.0), (None, 9.0)),
        modality=(
            ("psychosocial", 84.0),
            ("pharmacological", 5.0),
            ("recovery_support", 8.0),
            ("residential_rehab", 2.0),
            ("inpatient_detox", 1.0),
        ),
        non_start=0.10,
        early_exit=0.16,
        long_days=125.0,
        outcomes=(
            ("success", 62.0),
            ("dropped_out", 22.0),
            ("withdrawn_by_provider", 3.0),
            ("transferred_not_in_custody", 6.0),
            ("transferred_in_custody", 3.0),
            ("retained_in_custody", 3.0),
            ("died", 1.0),
        ),
        successes=(("completed_drug_free", 65.0), ("completed_occasional_user", 35.0)),
        top_mean=12.0,
    ),
    "alcohol": Profile(
        substance_groups=(("alcohol_only", 1.0),),
        substances={"alcohol_only": (("alcohol", 1.0),)},
        ages=(18, 90, 47.0, 11.0),
        sex=(("m", 60.0), ("f", 39.3), ("x", 0.2), ("u", 0.5)),
        injecting=(("current", 0.5), ("previous", 3.5), ("never", 86.0), ("declined", 2.0), (None, 8.0)),
        modality=(
            ("psychosocial", 66.0),
            ("pharmacological", 19.0),
            ("inpatient_detox", 10.0),
            ("residential_rehab", 3.0),
            ("recovery_support", 2.0),
        ),
        non_start=0.09,
        early_exit=0.14,
        long_days=115.0,
        outcomes=(
            ("success", 66.0),
            ("dropped_out", 20.0),
            ("withdrawn_by_provider", 3.0),
            ("transferred_not_in_custody", 5.0),
            ("transferred_in_custody", 1.0),
            ("retained_in_custody", 1.0),
            ("died", 2.5),
        ),
        successes=(("completed_alcohol_free", 75.0), ("completed_occasional_user", 25.0)),
        top_mean=19.0,
    ),
    "young_people": Profile(
        substance_groups=(
            ("non_opiate_only", 62.0),
            ("non_opiate_and_alcohol", 28.0),
            ("alcohol_only", 9.0),
            ("opiate", 1.0),
        ),
        substances={
            "non_opiate_only": (
                ("cannabis", 88.0),
                ("cocaine", 5.0),
                ("ketamine", 3.0),
                ("synthetic_cannabinoids", 2.0),
                ("other", 2.0),
            ),
            "non_opiate_and_alcohol": (("cannabis", 70.0), ("alcohol", 20.0), ("cocaine", 8.0), ("other", 2.0)),
            "alcohol_only": (("alcohol", 1.0),),
            "opiate": (("heroin", 60.0), ("other", 40.0)),
        },
        ages=(11, 17, 15.5, 1.5),
        sex=(("m", 64.0), ("f", 35.0), ("x", 0.5), ("u", 0.5)),
        injecting=(("never", 90.0), ("declined", 1.0), (None, 9.0)),
        modality=(("psychosocial", 95.0), ("recovery_support", 5.0)),
        non_start=0.08,
        early_exit=0.12,
        long_days=100.0,
        outcomes=(
            ("success", 76.0),
            ("dropped_out", 18.0),
            ("withdrawn_by_provider", 3.0),
            ("retained_in_custody", 3.0),
        ),
        successes=(("completed_drug_free", 60.0), ("completed_occasional_user", 40.0)),
        top_mean=15.0,
    ),
}

ADULT_SOURCES: Table = (
    ("self", 38.0),
    ("gp", 12.0),
    ("hospital", 6.0),
    ("mental_health", 3.0),
    ("social_care", 3.0),
    ("children_and_family_services", 1.0),
    ("education", 0.3),
    ("housing", 2.0),
    ("cj_probation", 6.5),
    ("cj_police_custody", 2.0),
    ("cj_liaison_diversion", 3.0),
    ("cj_court", 2.0),
    ("cj_prison", 1.0),
    ("other", 6.0),
)
YOUNG_PEOPLE_SOURCES: Table = (
    ("education", 26.0),
    ("children_and_family_services", 18.0),
    ("social_care", 10.0),
    ("self", 10.0),
    ("mental_health", 8.0),
    ("gp", 5.0),
    ("hospital", 3.0),
    ("cj_liaison_diversion", 6.0),
    ("cj_court", 4.0),
    ("cj_police_custody", 3.0),
    ("housing", 1.0),
    ("other", 6.0),
)
HOUSING: Table = (("none", 72.0), ("urgent", 9.0), ("nfa", 6.0), ("unknown", 6.0), (None, 7.0))


def kpi_group(substance_group: str) -> str:
    if substance_group == "opiate":
        return "opiate"
    if substance_group == "alcohol_only":
        return "alcohol"
    return "non_opiate"


@dataclass
class Episode:
    """One provider's episode, with its full drawn history and what is known when."""

    provider: Provider
    episode_id: str
    area_code: str
    person: Person
    initials: str
    sex: str
    ethnicity: str | None
    ethnicity_from: int
    service_type: str
    substance_group: str
    primary_substance: str
    injecting: str | None
    referral_source: str
    referral: date
    triage: date | None
    first_intervention: date | None
    modality: str | None
    discharge: date
    reason: str
    discharge_recorded: int
    housing: str | None
    top_start: int | None = None
    reviews: list[tuple[date, int]] = field(default_factory=list)
    wrong_source: str | None = None
    source_fixed: int = 0

    @property
    def successful(self) -> bool:
        return self.reason in SUCCESS

    def row_at(self, month: int) -> dict[str, str] | None:
        """The row this provider submits for ``month``, or None if outside the 12 months."""
        end = last_day(month)
        if self.referral > end:
            return None
        discharged = self.discharge_recorded <= month
        if discharged and self.discharge < first_day(month - 11):
            return None
        started = self.first_intervention is not None and self.first_intervention <= end
        review = ""
        if started and self.top_start is not None:
            known = [value for day, value in self.reviews if day <= end]
            review = str(known[-1]) if known else ""
        return {
            "submission_month": f"{month // 12:04d}-{month % 12 + 1:02d}",
            "provider_code": self.provider.code,
            "episode_id": self.episode_id,
            "area_code": self.area_code,
            "client_initials": self.initials,
            "client_dob": self.person.dob.isoformat(),
            "client_sex": self.sex,
            "ethnicity": (self.ethnicity or "") if month >= self.ethnicity_from else "",
            "service_type": self.service_type,
            "substance_group": self.substance_group,
            "primary_substance": self.primary_substance,
            "injecting_status": self.injecting or "",
            "referral_source": (
                self.wrong_source if self.wrong_source and month < self.source_fixed else self.referral_source
            ),
            "referral_date": self.referral.isoformat(),
            "triage_date": self.triage.isoformat() if self.triage and self.triage <= end else "",
            "first_intervention_date": (
                self.first_intervention.isoformat() if started and self.first_intervention else ""
            ),
            "modality": (self.modality or "") if started else "",
            "discharge_date": self.discharge.isoformat() if discharged else "",
            "discharge_reason": self.reason if discharged else "",
            "top_start_days_used": (str(self.top_start) if started and self.top_start is not None else ""),
            "top_review_days_used": review,
            "housing_problem": self.housing or "",
        }
