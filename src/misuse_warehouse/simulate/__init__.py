"""Synthetic monthly feeds for the warehouse: treatment, funding and criminal justice.

``write_feeds`` simulates a small England-like world (people, treatment journeys,
prison releases, contracts and money) and writes every file exactly as the feed
contracts in ``shared/feeds/`` describe, in the landing layout. It is
deterministic: the same arguments give byte-identical files, and a month's files
do not depend on how long the run is. ``DEFECTS`` lists the broken files it can
inject for testing refusals; ``ACCEPTED_VARIANTS`` the awkward files that must
still be accepted. All people are invented.
"""

from __future__ import annotations

from .areas import SEED_AREAS
from .defects import ACCEPTED_VARIANTS, DEFECTS, apply_defects
from .feeds import write_feeds

__all__ = ["ACCEPTED_VARIANTS", "DEFECTS", "SEED_AREAS", "apply_defects", "write_feeds"]
