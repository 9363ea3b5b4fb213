"""Named stages where a crash test can park the pipeline and kill it for real.

Crash safety is proved by killing a real run with SIGKILL at each stage (tests/test_crash_safety.py).
To kill *during* a stage rather than near it, the process parks itself there when
`MISUSE_WAREHOUSE_HOLD_AT` names the stage: it writes a marker file (its pid) and sleeps until
killed. Unset, as in every real run, `hold()` does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from misuse_warehouse import settings

HOLD_ENV = "MISUSE_WAREHOUSE_HOLD_AT"
STAGES = ("copy", "gate", "publish")
HOLD_SECONDS = 900


def marker(stage: str) -> Path:
    return settings.home() / "holds" / stage


def hold(stage: str) -> None:
    """Park here if a crash test asked for this stage; otherwise return at once."""
    if os.environ.get(HOLD_ENV) != stage:
        return
    path = marker(stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))
    time.sleep(HOLD_SECONDS)
