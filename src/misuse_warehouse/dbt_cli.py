"""`misuse-warehouse-dbt`: dbt's own command line, keeping each thread's connection between nodes.

dbt closes its connection after every node and opens a new one for the next: a month's build
opened 157 connections, each a TCP handshake, a SCRAM exchange and `set role` (6-7 ms against
2.4-2.8 ms on a reused session), and each new server process reads the catalog afresh. Kept open,
a build of the demo's warehouse took 0.7-2.6 s less (four alternating pairs). A released
connection is left as dbt would find a new one: no transaction open, no temporary tables (an
incremental model's staging table would otherwise stay until the build ends), the profile's role
set (a rollback would undo the `set role` dbt ran when it connected). dbt still closes every
connection at the end of the invocation (`cleanup_all`).

Commands that write the warehouse (build, run, seed, snapshot, run-operation) hold the one-writer
lease (misuse_warehouse.writer_lease) for the whole invocation, whoever started dbt.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import psycopg2.extensions
from dbt.adapters.sql.connections import SQLConnectionManager

_close_on_release = SQLConnectionManager.release


def _keep_open_on_release(manager: SQLConnectionManager) -> None:
    connection: Any = manager.get_if_exists()
    if connection is None or connection.state != "open":
        return _close_on_release(manager)
    try:
        if connection.transaction_open:
            manager._rollback(connection)
        handle = connection.handle
        if handle.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            handle.rollback()
        cursor = handle.cursor()
        cursor.execute("discard temp")
        role = getattr(connection.credentials, "role", None)
        if role:
            cursor.execute(f"set role {role}")
        handle.commit()
    except Exception:
        # a broken session is closed as dbt would, and the next node opens a new one
        return _close_on_release(manager)
    return None


WRITING_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "run-operation"})


def main() -> None:
    SQLConnectionManager.release = _keep_open_on_release  # type: ignore[method-assign]
    from dbt.cli.main import cli

    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
    if command not in WRITING_COMMANDS:
        sys.exit(cli())
    from misuse_warehouse import writer_lease

    run = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or "outside Airflow"
    with writer_lease.lease(f"dbt {command} ({run})"):
        try:
            cli()
            code: int | str | None = 0
        except SystemExit as exit_:
            code = exit_.code
    sys.exit(code)


if __name__ == "__main__":
    main()
