"""One writer at a time: two writers started together never interleave.

Two processes start at the same instant: one loads the reference seeds (a dbt build run as a child
process, which must not wait for its own parent's lease), the other ingests a file (checks, GX,
load). Each holds the warehouse-wide lease for its whole step; ops.writer_leases shows the two
holdings one after the other, the second naming the first as the writer it waited for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from feeds import treatment_row, write_treatment_file

from misuse_warehouse import writer_lease

WRITERS = {
    "seeds": """
        from misuse_warehouse import reference_data
        print(reference_data.load("writer-test-seeds"))
    """,
    "ingest": """
        from misuse_warehouse import pipeline
        print(pipeline.ingest_files([{path!r}], "writer-test-ingest"))
    """,
}


def _start(code: str, at: float) -> subprocess.Popen:
    program = f"import time\ntime.sleep(max(0.0, {at} - time.time()))\n" + textwrap.dedent(code)
    return subprocess.Popen(
        [sys.executable, "-c", program],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_writers_started_together_never_interleave(pipeline, landing: Path) -> None:  # noqa: ANN001
    pipeline.reset()
    from misuse_warehouse import pipeline as steps

    steps.prepare()
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    at = time.time() + 3  # both past their imports, then together
    processes = {name: _start(code.format(path=str(path)), at) for name, code in WRITERS.items()}
    for name, process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name} failed:\n{err[-3000:]}"
    leases = pipeline.query(
        """select holder, acquired_at, released_at, waited_for, requested_at
           from ops.writer_leases order by acquired_at"""
    )
    holders = [row[0] for row in leases]
    assert sorted(holders) == ["ingest treatment (writer-test-ingest)", "reference data (writer-test-seeds)"]
    (first, acquired_1, released_1, waited_1, _), (second, acquired_2, _, waited_2, requested_2) = leases
    assert released_1 <= acquired_2, f"{second} started writing at {acquired_2} while {first} held until {released_1}"
    assert waited_1 is None
    assert requested_2 < released_1, "the two were not started together: nothing was shown"
    assert waited_2 == f"misuse_warehouse writer: {first}"
    # both really wrote: the file is loaded, the seeds recorded
    assert pipeline.query("select status from raw.submissions") == [("loaded",)]
    assert pipeline.query("select count(*) from ops.reference_data_loads where dag_run_id = 'writer-test-seeds'") == [
        (1,)
    ]
    # dbt, started by the seed load under its lease, took no lease of its own (it would have waited for ever)
    assert not any(h.startswith("dbt ") for h in holders)
    assert writer_lease.HELD_ENV not in os.environ
