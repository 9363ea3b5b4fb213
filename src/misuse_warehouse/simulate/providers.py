"""Who provides what in each area: treatment services, contracts and their stories.

The five seed areas are written out by hand so that the demo tells known
stories (a contract extension in Medway, a provider shared by Herefordshire and
Worcestershire, a third criminal-justice service in Worcestershire, a novation
in Bath and North East Somerset, a 12.5% cut in Nottingham). Any other area gets
the same shape with codes, names and one story derived from a hash of its code,
so it is stable whatever else is in the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from misuse_warehouse.months import first_day, parse_month

from .areas import Area
from .rng import sub_seed

NOVATION_DAY = date(2025, 1, 1)
"""The day a novated service's caseload moves to its new provider code."""
CUT_FROM = parse_month("2025-04")
CUT_FACTOR = 0.875
EXTENSION_AGREED = parse_month("2024-10")
REPLACEMENT_REGISTERED = parse_month("2025-11")

GRANT = "grant"
"""Placeholder stream: public_health_grant before 2022-23, ssmtrg to 2024-25, datrig after."""


@dataclass(frozen=True)
class Provider:
    code: str
    name: str


@dataclass(frozen=True)
class Service:
    """A commissioned treatment service; ``novated_to`` takes it over on ``NOVATION_DAY``."""

    key: str
    adult_share: float
    young_people: bool
    provider: Provider
    novated_to: Provider | None = None

    def provider_on(self, day: date) -> Provider:
        if self.novated_to is not None and day >= NOVATION_DAY:
            return self.novated_to
        return self.provider


@dataclass(frozen=True)
class Contract:
    """One register line over its whole life; the ``*_in(month)`` methods give what the
    register says at the end of a given month."""

    contract_id: str
    service_line: str
    start: date
    end: date
    annual_pounds: int
    provider: Provider
    registered_from: int
    streams: tuple[tuple[str, float], ...]
    novated_to: Provider | None = None
    extension_end: date | None = None
    cut: bool = False

    def provider_in(self, month: int) -> Provider:
        if self.novated_to is not None and first_day(month) >= NOVATION_DAY:
            return self.novated_to
        return self.provider

    def value_in(self, month: int) -> int:
        """Annual value in whole pounds as the register states it in ``month``."""
        if self.cut and month >= CUT_FROM:
            return round(self.annual_pounds * CUT_FACTOR / 100) * 100
        return self.annual_pounds

    def extension_in(self, month: int) -> date | None:
        return self.extension_end if self.extension_end and month >= EXTENSION_AGREED else None

    def effective_end(self, month: int) -> date:
        return self.extension_in(month) or self.end


@dataclass(frozen=True)
class AreaPlan:
    area: Area
    services: tuple[Service, ...]
    contracts: tuple[Contract, ...]
    stories: frozenset[str]
    prisons: tuple[str, ...]
    rsdatg: bool
    gp_practices: int
    pharmacies: int

    def service(self, key: str) -> Service | None:
        return next((s for s in self.services if s.key == key), None)


_SEED: dict[str, dict[str, object]] = {
    "E06000035": {
        "main": ("P4211", "Thameside Recovery Partnership"),
        "second": ("P4212", "Open Harbour Young People and Alcohol Service"),
        "stories": {"extension"},
        "prisons": ("ELI", "SPI", "LWI", "HOI"),
        "rsdatg": True,
    },
    "E06000019": {
        "main": ("P3107", "Severn Vale Recovery Trust"),
        "second": ("P3120", "Wye Valley Young People and Families Service"),
        "stories": {"shared_provider"},
        "prisons": ("HEI", "BWI", "BMI"),
        "rsdatg": False,
    },
    "E10000034": {
        "main": ("P3107", "Severn Vale Recovery Trust"),
        "second": ("P3140", "Malvern Hills Alcohol and Young People Service"),
        "cj": ("P3150", "Pathway Justice Recovery CIC"),
        "stories": {"shared_provider", "three_providers"},
        "prisons": ("HEI", "BMI", "LEI", "BWI"),
        "rsdatg": False,
    },
    "E06000022": {
        "main": ("P5310", "Avon Bridge Recovery Partnership"),
        "second": ("P5320", "Bathwick Community Recovery"),
        "novated_to": ("P5399", "Meridian Recovery Trust"),
        "stories": {"novation"},
        "prisons": ("BLI", "EWI", "EXI"),
        "rsdatg": False,
    },
    "E06000018": {
        "main": ("P4510", "Trent Recovery Network"),
        "second": ("P4520", "Sherwood Young People and Alcohol Service"),
        "stories": {"cut"},
        "prisons": ("NMI", "RNI", "LEI"),
        "rsdatg": True,
    },
}

_NATIONAL_PRISONS = ("BWI", "LEI", "NMI", "BLI", "EXI", "HEI", "ELI", "RNI", "DMI", "LPI", "MNI")
_NAME_A = ("Northgate", "Riverside", "Kestrel", "Beacon", "Harbour", "Meadow", "Lantern", "Oakwood")
_NAME_B = ("Recovery Partnership", "Recovery Trust", "Drug and Alcohol Service", "Recovery CIC")

# Shared by every area: providers of spot-purchased and regional services that do not
# submit treatment files themselves.
REHAB = Provider("P9101", "Hélène House Residential Rehabilitation")
DETOX = Provider("P9201", "Regional Inpatient Detoxification Consortium")
PHARMACY = Provider("P9301", "Community Pharmacy Supervised Consumption Network")
RECOVERY = Provider("P9401", "Lived Experience Recovery Network")


def _generated_provider(area_code: str, key: str) -> Provider:
    value = sub_seed("provider", area_code, key)
    code = f"P{1000 + value % 8000:04d}"
    name_seed = sub_seed("provider-name", code)
    name = f"{_NAME_A[name_seed % len(_NAME_A)]} {_NAME_B[(name_seed // 8) % len(_NAME_B)]}"
    return Provider(code, name)


def _seed_or_generated(area: Area) -> dict[str, object]:
    if area.code in _SEED:
        return _SEED[area.code]
    story = ("none", "extension", "novation", "cut")[sub_seed("story", area.code) % 4]
    spec: dict[str, object] = {
        "stories": {story},
        "prisons": tuple(
            _NATIONAL_PRISONS[(sub_seed("prison", area.code) + i * 3) % len(_NATIONAL_PRISONS)] for i in range(3)
        ),
        "rsdatg": sub_seed("rsdatg", area.code) % 3 == 0,
    }
    main, second = _generated_provider(area.code, "main"), _generated_provider(area.code, "second")
    spec["main"] = (main.code, main.name)
    spec["second"] = (second.code, second.name)
    if story == "novation":
        new = _generated_provider(area.code, "novated")
        spec["novated_to"] = (new.code, new.name)
    return spec


def _provider(value: object) -> Provider:
    code, name = value  # type: ignore[misc]
    return Provider(str(code), str(name))


def _pounds(area: Area, per_adult: float) -> int:
    return max(100, round(area.adults * per_adult / 100) * 100)


def plan_for(area: Area) -> AreaPlan:
    """The whole commissioning set-up of one area (deterministic, no randomness)."""
    spec = _seed_or_generated(area)
    stories = frozenset(spec["stories"])  # type: ignore[arg-type]
    main = _provider(spec["main"])
    second = _provider(spec["second"])
    novated_to = _provider(spec["novated_to"]) if "novated_to" in spec else None
    cj = _provider(spec["cj"]) if "cj" in spec else None

    services = [Service("main", 0.5 if cj else 0.72, False, main)]
    services.append(Service("second", 0.3 if cj else 0.28, True, second, novated_to))
    if cj:
        services.append(Service("cj", 0.20, False, cj))

    prefix = f"{area.code}-C"
    extension = "extension" in stories
    main_end = date(2025, 3, 31) if extension else date(2027, 3, 31)
    main_ext = date(2026, 3, 31) if extension else None
    contracts = [
        Contract(
            f"{prefix}01",
            "adult_community",
            date(2015, 4, 1),
            date(2020, 3, 31),
            _pounds(area, 13.0),
            main,
            parse_month("2015-01"),
            (("public_health_grant", 1.0),),
        ),
        Contract(
            f"{prefix}02",
            "adult_community",
            date(2020, 4, 1),
            main_end,
            _pounds(area, 14.0),
            main,
            parse_month("2020-01"),
            (("public_health_grant", 0.75), (GRANT, 0.2), ("nhs_icb", 0.05)),
            extension_end=main_ext,
            cut="cut" in stories,
        ),
        Contract(
            f"{prefix}04",
            "young_people",
            date(2021, 10, 1),
            date(2027, 9, 30),
            _pounds(area, 1.3),
            second,
            parse_month("2021-07"),
            (("public_health_grant", 1.0),),
            novated_to=novated_to,
        ),
        Contract(
            f"{prefix}05",
            "adult_community",
            date(2021, 10, 1),
            date(2027, 9, 30),
            _pounds(area, 4.0),
            second,
            parse_month("2021-07"),
            (("public_health_grant", 0.8), (GRANT, 0.2)),
            novated_to=novated_to,
        ),
        Contract(
            f"{prefix}07",
            "residential_rehab",
            date(2022, 4, 1),
            date(2026, 3, 31),
            _pounds(area, 1.0),
            REHAB,
            parse_month("2022-02"),
            ((GRANT, 0.7), ("public_health_grant", 0.3)),
        ),
        Contract(
            f"{prefix}08",
            "inpatient_detox",
            date(2023, 4, 1),
            date(2027, 3, 31),
            _pounds(area, 0.8),
            DETOX,
            parse_month("2023-02"),
            (("inpatient_detox_grant", 1.0),),
        ),
        Contract(
            f"{prefix}09",
            "supervised_consumption",
            date(2019, 4, 1),
            date(2027, 3, 31),
            _pounds(area, 1.2),
            PHARMACY,
            parse_month("2019-03"),
            (("public_health_grant", 1.0),),
        ),
        Contract(
            f"{prefix}10",
            "recovery_support",
            date(2023, 10, 1),
            date(2026, 9, 30),
            _pounds(area, 0.7),
            RECOVERY,
            parse_month("2023-08"),
            ((GRANT, 1.0),),
        ),
    ]
    if cj:
        contracts.append(
            Contract(
                f"{prefix}06",
                "criminal_justice",
                date(2022, 10, 1),
                date(2027, 9, 30),
                _pounds(area, 2.2),
                cj,
                parse_month("2022-08"),
                (("pcc", 0.4), (GRANT, 0.6)),
            )
        )
    else:
        contracts.append(
            Contract(
                f"{prefix}03",
                "criminal_justice",
                date(2020, 4, 1),
                main_end,
                _pounds(area, 1.6),
                main,
                parse_month("2020-01"),
                (("pcc", 0.4), (GRANT, 0.6)),
                extension_end=main_ext,
            )
        )
    if extension:
        contracts.append(
            Contract(
                f"{prefix}11",
                "adult_community",
                date(2026, 4, 1),
                date(2031, 3, 31),
                _pounds(area, 15.0),
                main,
                REPLACEMENT_REGISTERED,
                (("public_health_grant", 0.75), (GRANT, 0.25)),
            )
        )
    contracts.sort(key=lambda c: c.contract_id)
    size = sub_seed("size", area.code)
    return AreaPlan(
        area=area,
        services=tuple(services),
        contracts=tuple(contracts),
        stories=stories,
        prisons=tuple(spec["prisons"]),  # type: ignore[arg-type]
        rsdatg=bool(spec["rsdatg"]),
        gp_practices=max(6, min(30, area.adults // 12000)) + size % 3,
        pharmacies=max(8, min(40, area.adults // 9000)) + size % 4,
    )


def treatment_providers(plan: AreaPlan, month: int) -> list[Provider]:
    """Providers that submit a treatment file for this area in ``month``."""
    return [s.provider_on(first_day(month)) for s in plan.services]
