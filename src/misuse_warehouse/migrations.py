"""The warehouse schema, versioned: Alembic revisions upgraded under a lock, then roles and grants.

Before 2026-12-07 this module created every table `if not exists` with no version, so a column added
to a feed contract never reached a warehouse that already had the table. Now the schema is the
chain of revisions in `schema_revisions/versions/` (Alembic, driven from here: no alembic.ini), with
the revision a warehouse is at in `ops.alembic_version`:

- `migrate()` (run by every DAG's `prepare`, and `misuse-warehouse migrate`) takes a Postgres advisory
  lock, upgrades to head and re-applies roles, grants and the analyst area look-up, all in one
  transaction: a second process waits for the lock and then finds nothing to do.
- A warehouse made by the unversioned code is recognised (raw.submissions present, no version
  table) and stamped at the baseline by running the baseline, whose DDL is idempotent like the
  code it replaces: nothing is re-created.
- After the upgrade the raw tables are compared with the feed contracts: a contract column the
  warehouse lacks stops the run here, naming the revision to write, before any file is read.

Roles, grants and the analyst area look-up stay idempotent code run after every upgrade rather than
revisions: roles live in the cluster, not the database; the area look-up is rewritten from
analyst_groups.yaml, configuration that changes without a release; and `grant ... on all tables`
must be re-applied whenever a revision adds a table, which re-applying every time does without
anyone remembering.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql

from misuse_warehouse import roles
from misuse_warehouse.contracts import Contract, all_contracts

log = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).parent / "schema_revisions"
VERSION_TABLE_SCHEMA = "ops"
VERSION_TABLE = "alembic_version"
BASELINE = "0001"
LOCK_KEY = "misuse_warehouse.migrate"
"""The advisory lock's key: the same one the unversioned code took, so old and new never overlap."""

PROVENANCE = (("submission_id", "bigint"), ("source_row", "integer"))
"""Columns every raw table of a feed starts with, before the contract's own."""

RETIRED_TABLES = ("intermediate.int_treatment__person_ranges",)
"""Tables of models dbt no longer builds. dbt leaves them behind; person-level ones would keep old
pseudonyms past a key rotation, so they go (int_treatment__person_ranges became a macro, 2026-12-05).
dbt's schemas are not versioned here (dbt rebuilds them), so this stays a drop on every migrate."""


class SchemaError(RuntimeError):
    """The warehouse cannot be brought to the schema this code needs: nothing was changed."""


@dataclass(frozen=True)
class Revisions:
    current: str | None  # None: not versioned (a new warehouse, or one the unversioned code made)
    head: str
    pending: tuple[str, ...]  # what an upgrade to head runs, oldest first


def alembic_config(extra_locations: Iterable[Path] = ()) -> Config:
    """Alembic's configuration, built in code: the revisions shipped in the package, plus any given.

    `extra_locations` adds version folders (the tests' contract-column revision uses one); the
    upgrade they take is otherwise exactly the production one.
    """
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    locations = [SCRIPT_LOCATION / "versions", *extra_locations]
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", ":".join(str(p) for p in locations))
    config.attributes["version_table_schema"] = VERSION_TABLE_SCHEMA
    return config


@contextmanager
def _alembic_connection(conn: psycopg.Connection) -> Iterator[sqlalchemy.Connection]:
    """The caller's psycopg connection seen through SQLAlchemy (Alembic needs one), in one transaction.

    The pool is handed this one connection and never closes it; SQLAlchemy's transaction is the
    psycopg connection's own, so the psycopg calls made inside it are part of the same commit. An
    autocommit connection is switched out of autocommit for the transaction and back after.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise SchemaError("migrate runs its own transaction: commit or roll back first")
    autocommit = conn.autocommit
    conn.autocommit = False
    try:
        engine = sqlalchemy.create_engine(
            "postgresql+psycopg://", creator=lambda: conn, poolclass=sqlalchemy.StaticPool
        )
        with engine.connect() as connection, connection.begin():
            yield connection
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.autocommit = autocommit


def revisions(conn: psycopg.Connection, config: Config | None = None) -> Revisions:
    """The revision the warehouse is at (None: not versioned yet), head, and what an upgrade would run."""
    config = config or alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    if head is None:
        raise SchemaError(f"no revisions in {SCRIPT_LOCATION}")
    with _alembic_connection(conn) as connection:
        current = _current(connection)
    return Revisions(current, head, _between(script, current, head))


def _between(script: ScriptDirectory, lower: str | None, upper: str | None) -> tuple[str, ...]:
    """The revisions after `lower` up to and including `upper`, oldest first."""
    if upper is None or upper == lower:
        return ()
    return tuple(reversed([r.revision for r in script.iterate_revisions(upper, lower or "base")]))


def _current(connection: sqlalchemy.Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": VERSION_TABLE_SCHEMA})
    return context.get_current_revision()


def migrate(conn: psycopg.Connection, target: str = "head", config: Config | None = None) -> tuple[str, ...]:
    """Upgrade the warehouse to `target` under the advisory lock, then roles and grants; one transaction.

    Roles and grants (and the contract check) follow only an upgrade to head: they are this code's,
    and name head's tables. Returns the revisions this call ran, oldest first (none when the
    warehouse was already there). The analyst groups file is read first, so a malformed one stops
    here before anything changes; so does a contract the upgraded schema does not match (the
    transaction rolls back).
    """
    groups = roles.load_analyst_groups()
    contracts = all_contracts().values()
    config = config or alembic_config()
    with _alembic_connection(conn) as connection:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (LOCK_KEY,))
        before = _current(connection)
        if before is None and _exists(conn, "raw.submissions"):
            log.info("unversioned warehouse (made before versioned migrations): stamping it at baseline %s", BASELINE)
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(VERSION_TABLE_SCHEMA)))
        config.attributes["connection"] = connection
        command.upgrade(config, target)
        after = _current(connection)
        if after != before:
            log.info("warehouse schema upgraded from %s to %s", before or "nothing", after)
        if target != "head":  # roles and grants are this code's, written for head's tables
            return _between(ScriptDirectory.from_config(config), before, after)
        problems = contract_mismatches(conn, contracts)
        if problems:
            raise SchemaError(
                "the feed contracts and the warehouse's raw tables disagree after upgrading to "
                f"{after}; a contract change ships with a revision (docs/operations.md, "
                "'Schema migrations'): " + "; ".join(problems)
            )
        for table in RETIRED_TABLES:
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(*table.split("."))))
        roles.ensure_roles(conn, groups)
        roles.ensure_logins(conn, step_logins())
        roles.secure_zones(conn, {c.table: c.plain_attributor for c in contracts if c.plain_attributor}, groups)
        roles.limit_reader_sessions(conn)
        roles.let_transformer_act_as_readers(conn)
    return _between(ScriptDirectory.from_config(config), before, after)


def step_logins() -> list[roles.Login]:
    """The loader's and transformer's own logins, from their URLs where this process was given them (init)."""
    from misuse_warehouse import warehouse

    logins = []
    for role in warehouse.LOGIN_URL_ENVS:
        params = warehouse.login_params(role)
        if params is None:
            continue
        if not params.get("user") or not params.get("password"):
            raise SchemaError(f"{warehouse.LOGIN_URL_ENVS[role]} must name a user and a password to create the login")
        logins.append(roles.Login(params["user"], params["password"], role))
    return logins


def ensure_current() -> tuple[str, ...]:
    """What a DAG's first task does with the schema: migrate it, or, without the admin login, check it.

    With the admin login (the embedded demo, the tests, a one-login install) this is `migrate()`.
    A worker given only the loader's and transformer's logins (Docker) may not change the schema or
    grants: it checks the warehouse is at head and stops the run otherwise, naming the command that
    migrates (the init service runs it at every `docker compose up`).
    """
    from misuse_warehouse import warehouse

    if warehouse.has_admin_login():
        with warehouse.connect() as conn:
            return migrate(conn)
    with warehouse.connect(role=roles.TRANSFORMER) as conn:
        state = revisions(conn)
    if state.pending:
        raise SchemaError(
            f"the warehouse is at revision {state.current or 'none'}, this code needs {state.head}; "
            "this worker has no admin login to migrate with: run `misuse-warehouse migrate` with "
            "WAREHOUSE_URL set to the admin login (Docker: `docker compose run --rm init`)"
        )
    return ()


def new_revision(message: str, config: Config | None = None) -> Path:
    """Write the next revision's file (numbered after head, upgrade() to fill in) and return its path."""
    config = config or alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head() or "0000"
    if not head.isdigit():
        raise SchemaError(f"head revision {head!r} is not numbered: give the new one its id by hand")
    script = command.revision(config, message, rev_id=f"{int(head) + 1:04d}")
    if script is None or isinstance(script, list):
        raise SchemaError(f"alembic wrote no single revision for {message!r}")
    return Path(script.path)


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


# The contracts against the raw tables


def raw_table_ddl(contract: Contract) -> sql.Composed:
    """The append-only raw table of a feed as its contract describes it today: contract columns, typed, plus provenance.

    With an attributor: its pseudonym `person_key` and the ages derived from the date of birth
    (so the date of birth can be purged after retention and the models still have the age).
    Revisions are frozen SQL, not calls to this: a new feed's revision pastes what this prints.
    """
    columns = [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in raw_columns(contract)]
    return sql.SQL(
        """
create table raw.{} (
    {},
    primary key (submission_id, source_row)
)"""
    ).format(sql.Identifier(contract.table), sql.SQL(",\n    ").join(columns))


def raw_columns(contract: Contract) -> list[tuple[str, str]]:
    """(name, Postgres type) of every column a feed's raw table must have, in table order."""
    columns = [*PROVENANCE, *((c.name, c.pg_type) for c in contract.columns)]
    if contract.attributor:
        columns.append(("person_key", "text"))
        columns += [(age.name, "integer") for age in contract.stored_ages]
    return columns


def contract_mismatches(conn: psycopg.Connection, contracts: Iterable[Contract]) -> list[str]:
    """Every difference between the contracts and the raw tables, each with the SQL that would close it.

    Compared by column name and type (order aside: `add column` appends). An empty list means the
    loader can write every contract column and the raw tables hold nothing the contracts dropped.
    """
    problems = []
    for contract in contracts:
        table = f"raw.{contract.table}"
        present = {
            name: _normal(kind)
            for name, kind in conn.execute(
                """select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a
                   where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped""",
                (table,),
            )
        }
        if not present:
            problems.append(
                f"feed {contract.feed}: no table {table} (create it: {raw_table_ddl(contract).as_string()})"
            )
            continue
        wanted = dict(raw_columns(contract))
        for name, kind in wanted.items():
            ident = sql.Identifier(name).as_string()
            if name not in present:
                problems.append(f"{table} lacks {name} (alter table {table} add column {ident} {kind})")
            elif present[name] != _normal(kind):
                problems.append(
                    f"{table}.{name} is {present[name]}, the contract says {kind} "
                    f"(alter table {table} alter column {ident} type {kind} using {ident}::{kind})"
                )
        problems += [
            f"{table}.{name} is in no contract (drop it in a revision, or put it back in the contract)"
            for name in present
            if name not in wanted
        ]
    return problems


def _normal(kind: str) -> str:
    return re.sub(r"\s+", "", kind)
