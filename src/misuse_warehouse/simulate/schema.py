"""Column lists and code lists of every file feed, in the order the contracts print them.

Kept here rather than imported from the warehouse's own contract YAML so that
the simulator is an independent reading of ``shared/feeds/*.md``: if the two
disagree, the gate refuses simulated files and the disagreement shows up.
"""

from __future__ import annotations

TREATMENT = (
    "submission_month",
    "provider_code",
    "episode_id",
    "area_code",
    "client_initials",
    "client_dob",
    "client_sex",
    "ethnicity",
    "service_type",
    "substance_group",
    "primary_substance",
    "injecting_status",
    "referral_source",
    "referral_date",
    "triage_date",
    "first_intervention_date",
    "modality",
    "discharge_date",
    "discharge_reason",
    "top_start_days_used",
    "top_review_days_used",
    "housing_problem",
)
LEDGER = (
    "period_month",
    "line_id",
    "area_code",
    "cost_centre",
    "contract_id",
    "provider_code",
    "funding_stream",
    "service_line",
    "budget_gbp",
    "actual_gbp",
)
CONTRACTS = (
    "contract_id",
    "provider_code",
    "provider_name",
    "area_code",
    "service_line",
    "start_date",
    "end_date",
    "extension_end_date",
    "annual_value_gbp",
    "status",
)
GRANTS = ("financial_year", "area_code", "funding_stream", "allocation_gbp", "ring_fenced_gbp")
CJ_RETURN = ("period_month", "area_code", "agency", "measure", "value")
PRISON_RELEASES = (
    "release_id",
    "release_date",
    "prison_code",
    "area_code",
    "client_initials",
    "client_dob",
    "client_sex",
    "treatment_need",
    "treated_in_custody",
    "referred_to_community",
)

HEADERS: dict[str, tuple[str, ...]] = {
    "treatment": TREATMENT,
    "funding": LEDGER,
    "contracts": CONTRACTS,
    "grants": GRANTS,
    "cj-return": CJ_RETURN,
    "prison-releases": PRISON_RELEASES,
}
"""Feed name (as in the landing folder and file name) -> header."""

SUCCESS = ("completed_drug_free", "completed_alcohol_free", "completed_occasional_user")

CJ_MEASURES: tuple[tuple[str, str], ...] = (
    ("police", "arrests_drug_offences"),
    ("police", "dtoa_tests"),
    ("police", "dtoa_positive"),
    ("police", "required_assessments"),
    ("police", "required_assessments_attended"),
    ("probation", "drr_starts"),
    ("probation", "drr_completions"),
    ("probation", "atr_starts"),
    ("probation", "atr_completions"),
    ("courts", "community_orders_with_treatment"),
    ("prison", "releases_total"),
)
