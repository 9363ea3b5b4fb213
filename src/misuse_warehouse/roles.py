"""Who may read and write what: the roles the migration creates, and the security every publication carries.

All of them are group roles (NOLOGIN). People and tools log in as their own users and are granted one:

- `misuse_owner` owns the raw and ops zones and the area look-up; no one logs in as it.
- `loader` writes raw (and records purges); it cannot read or build the marts.
- `transformer` runs dbt: reads raw except the plain attributor (initials, date of birth), builds,
  gates and publishes the marts.
- `bi_reader` reads the aggregate marts (`marts`), every area.
- `analyst` is the parent of `analyst_<group>` (analyst_groups.yaml): the aggregate marts, restricted by
  row-level security to the rows of its group's areas in every published table with an area.
- `public_health` reads the person-level marts (`marts_person`) as well as the aggregates.

Where the deployment gives the pipeline's steps logins of their own (`MISUSE_WAREHOUSE_LOADER_URL`,
`MISUSE_WAREHOUSE_TRANSFORMER_URL`), the migration creates those logins from the URLs (`ensure_logins`):
not superusers, members of `loader` or `transformer` only, so a `RESET ROLE` in a dbt model or a
load gets back to the same privileges, never to the admin's.

Row-level security finds an analyst's areas from role membership of `current_user` (ops.analyst_areas
through `ops.analyst_area_codes`), never from a setting a session could change.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

OWNER = "misuse_owner"
LOADER = "loader"
TRANSFORMER = "transformer"
BI_READER = "bi_reader"
ANALYST = "analyst"
PUBLIC_HEALTH = "public_health"
GROUP_ROLES = (OWNER, LOADER, TRANSFORMER, BI_READER, ANALYST, PUBLIC_HEALTH)
PIPELINE_ROLES = (OWNER, LOADER, TRANSFORMER)  # the pipeline's login switches into these

# Columns that say which area a published row belongs to (kpi_monthly: area_code; facts and dims: area_id).
AREA_COLUMNS = ("area_code", "area_id")
# Published tables whose rows with no area apply to every area (a KPI target for all areas): analysts read
# those rows. Anywhere else a row with no area is no analyst's, and only the every-area readers see it.
EVERY_AREA_WHEN_NULL = frozenset({"dim_kpi_target"})
# Schemas dbt builds: the transformer owns them and everything in them.
BUILT_SCHEMAS = ("staging", "intermediate", "reference", "marts", "marts_next", "marts_person", "marts_person_next")

log = logging.getLogger(__name__)

ANALYST_GROUPS_ENV = "MISUSE_WAREHOUSE_ANALYST_GROUPS"
DEFAULT_ANALYST_GROUPS = Path(__file__).parent / "analyst_groups.yaml"
_GROUP_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")
_AREA_CODE = re.compile(r"[EWSN][0-9]{8}")


class AnalystGroupsError(ValueError):
    """The analyst groups file is malformed: nothing is changed."""


@dataclass(frozen=True)
class AnalystGroups:
    groups: dict[str, tuple[str, ...]]  # role name -> area codes
    shared: tuple[str, ...]  # area codes every analyst reads (e.g. England)

    def mapping(self) -> list[tuple[str, str]]:
        """(role, area_code) rows of ops.analyst_areas; shared areas belong to the parent role."""
        rows = {(role, code) for role, codes in self.groups.items() for code in codes}
        rows |= {(ANALYST, code) for code in self.shared}
        return sorted(rows)


def analyst_groups_path() -> Path:
    return Path(os.environ.get(ANALYST_GROUPS_ENV) or DEFAULT_ANALYST_GROUPS)


def load_analyst_groups(path: Path | None = None) -> AnalystGroups:
    """Read and check the analyst groups file: group names become role names, so both are validated."""
    path = path or analyst_groups_path()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise AnalystGroupsError(f"analyst groups file {path}: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("groups", {}), dict):
        raise AnalystGroupsError(f"analyst groups file {path}: expected `groups:` mapping group name to area codes")
    problems: list[str] = []
    groups: dict[str, tuple[str, ...]] = {}
    for name, codes in (data.get("groups") or {}).items():
        if not isinstance(name, str) or not _GROUP_NAME.fullmatch(name):
            problems.append(f"group name {name!r} must be lowercase letters, digits and _ (max 41)")
            continue
        groups[f"{ANALYST}_{name}"] = _area_codes(codes, f"group {name}", problems)
    shared = _area_codes(data.get("shared") or [], "shared", problems)
    if problems:
        raise AnalystGroupsError(f"analyst groups file {path}: " + "; ".join(problems))
    return AnalystGroups(groups, shared)


def _area_codes(codes: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(codes, list) or (not codes and where != "shared"):
        problems.append(f"{where}: expected a list of area codes")
        return ()
    bad = [c for c in codes if not isinstance(c, str) or not _AREA_CODE.fullmatch(c)]
    if bad:
        problems.append(f"{where}: not GSS codes: {', '.join(map(repr, bad))}")
    return tuple(c for c in codes if c not in bad)


# Migration: roles, ownership, grants on the zones the pipeline writes


AREA_LOOKUP_DDL = """
create table if not exists ops.analyst_areas (
    analyst_role text not null,
    area_code text not null,
    primary key (analyst_role, area_code)
);

-- The areas whose rows `role_name` may read: those of every analyst role it is a member of.
-- Security definer so analysts need no access to ops; the caller passes current_user, which
-- only SET ROLE / SET SESSION AUTHORIZATION change, and those need membership already.
create or replace function ops.analyst_area_codes(role_name name) returns text[]
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(array_agg(distinct analyst_areas.area_code order by analyst_areas.area_code), '{}'::text[])
    from ops.analyst_areas
    inner join pg_catalog.pg_roles on pg_roles.rolname = analyst_areas.analyst_role
    where pg_catalog.pg_has_role(role_name, pg_roles.oid, 'member')
$$;
"""


def ensure_roles(conn: psycopg.Connection, groups: AnalystGroups) -> None:
    """Create missing group roles and memberships; the pipeline's login may switch into its roles."""
    wanted = [*GROUP_ROLES, *groups.groups]
    existing = {r[0] for r in conn.execute("select rolname from pg_roles where rolname = any(%s)", (wanted,))}
    for role in wanted:
        if role not in existing:
            conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role)))
    members = {
        r[0]
        for r in conn.execute(
            """select member.rolname from pg_auth_members m
               join pg_roles member on member.oid = m.member
               join pg_roles parent on parent.oid = m.roleid
               where parent.rolname = %s""",
            (ANALYST,),
        )
    }
    for role in groups.groups:
        if role not in members:
            conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(ANALYST), sql.Identifier(role)))
    me, is_superuser = conn.execute(
        "select current_user, rolsuper from pg_roles where rolname = current_user"
    ).fetchone()
    if not is_superuser:  # a superuser may SET ROLE to anything; others need membership
        for role in PIPELINE_ROLES:
            if not conn.execute("select pg_has_role(current_user, %s, 'member')", (role,)).fetchone()[0]:
                conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(role), sql.Identifier(me)))


@dataclass(frozen=True)
class Login:
    """A pipeline step's own login: user and password as its URL gives them, and the one group role it joins."""

    user: str
    password: str
    role: str


LOGIN_ATTRIBUTES = "login nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit"
"""What a step's login may do beyond its group role: nothing. INHERIT so a RESET ROLE keeps (only) the role's grants."""


def ensure_logins(conn: psycopg.Connection, logins: list[Login]) -> list[str]:
    """Create or bring in line the pipeline steps' own logins; returns the users created or changed.

    Run by the admin login at every migration (Docker: the init service), so the passwords in the
    deployment's secrets are the ones in force after a rotation, and a login someone widened by hand
    (superuser, another role) is put back. A login whose user is the admin's own (one URL for all) is
    skipped: there is nothing to separate. Refuses when two roles would share a login.
    """
    users = [login.user for login in logins]
    if len(set(users)) != len(users):
        raise ValueError(f"the loader and transformer logins must be different users (got {', '.join(users)})")
    me = conn.execute("select current_user").fetchone()[0]
    changed: list[str] = []
    for login in logins:
        if login.user == me:
            log.warning("%s's login is the admin login %s: it relies on SET ROLE alone", login.role, me)
            continue
        try:
            with conn.transaction():  # a savepoint: an admin without CREATEROLE leaves the rest of the migration
                _ensure_login(conn, login)
        except psycopg.errors.InsufficientPrivilege:
            log.warning(
                "login %s for role %s not created or checked: %s may not manage roles. Ask a DBA to run: "
                "create role %s %s password '...'; grant %s to %s",
                login.user, login.role, me, login.user, LOGIN_ATTRIBUTES, login.role, login.user,
            )  # fmt: skip
            continue
        changed.append(login.user)
    return changed


def _ensure_login(conn: psycopg.Connection, login: Login) -> None:
    """One login as `ensure_logins` wants it: its attributes, its password, its one role."""
    user = sql.Identifier(login.user)
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (login.user,)).fetchone()
    verb = "alter" if exists else "create"
    conn.execute(
        sql.SQL("{} role {} with " + LOGIN_ATTRIBUTES + " password {}").format(
            sql.SQL(verb), user, sql.Literal(login.password)
        )
    )
    # memberships other than its own role are revoked: a login in `misuse_owner` or `loader` too
    # would read what its step must not
    others = [
        r[0]
        for r in conn.execute(
            """select parent.rolname from pg_auth_members m
               join pg_roles parent on parent.oid = m.roleid
               where m.member = (select oid from pg_roles where rolname = %s) and parent.rolname <> %s""",
            (login.user, login.role),
        )
    ]
    for other in others:
        conn.execute(sql.SQL("revoke {} from {}").format(sql.Identifier(other), user))
    conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(login.role), user))


def secure_zones(
    conn: psycopg.Connection, attributor_columns: dict[str, tuple[str, ...]], groups: AnalystGroups
) -> None:
    """Ownership and grants of raw, ops and the built schemas; the analyst area look-up. Idempotent.

    `attributor_columns`: raw table -> its plain attributor columns, which the transformer may not read.
    """
    conn.execute(AREA_LOOKUP_DDL)
    conn.execute("delete from ops.analyst_areas")
    with conn.cursor().copy("copy ops.analyst_areas (analyst_role, area_code) from stdin") as copy:
        for row in groups.mapping():
            copy.write_row(row)
    for schema in ("raw", "ops"):
        _own(conn, schema, OWNER)
    _own(conn, "analysts", OWNER, relations=False)  # the schema only: each view stays its analyst's
    for schema in BUILT_SCHEMAS:
        if conn.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone():
            _own(conn, schema, TRANSFORMER)
    statements = [
        ("grant create on database {} to {}", (_current_database(conn), TRANSFORMER)),
        ("grant usage on schema raw to {}, {}", (LOADER, TRANSFORMER)),
        ("grant select, insert, update on all tables in schema raw to {}", (LOADER,)),
        # submission ids reserved in file order before files load side by side (loader.reserve_submission_ids)
        ("grant usage on sequence raw.submissions_submission_id_seq to {}", (LOADER,)),
        ("grant select on all tables in schema raw to {}", (TRANSFORMER,)),
        ("grant usage on schema ops to {}, {}", (LOADER, TRANSFORMER)),
        ("grant select, insert on ops.publications, ops.reference_data_loads to {}", (TRANSFORMER,)),
        ("grant select, insert on ops.retention_purges, ops.key_rotations to {}", (LOADER,)),
        # a key rotation makes the month-keyed incremental models rebuild every month
        ("grant select on ops.key_rotations to {}", (TRANSFORMER,)),
        # run observability: every task records itself, as whichever role it runs as
        ("grant select, insert on ops.task_runs, ops.gate_results to {}, {}", (LOADER, TRANSFORMER)),
        # with logins of their own (no admin on the workers) both take the writer lease and check the
        # schema is at head before a run (migrations.ensure_current)
        ("grant select, insert, update on ops.writer_leases to {}, {}", (LOADER, TRANSFORMER)),
        ("grant usage on all sequences in schema ops to {}, {}", (LOADER, TRANSFORMER)),
        ("grant select on ops.alembic_version to {}, {}", (LOADER, TRANSFORMER)),
        # the run's report (per-layer row counts, rewritten per run) and the disclosure audit's reader list
        ("grant select, insert, delete on ops.layer_rows to {}", (TRANSFORMER,)),
        ("grant select on ops.analyst_areas to {}", (TRANSFORMER,)),
        ("grant select, insert, update on ops.submission_status to {}", (TRANSFORMER,)),
        # late-feed alerts claimed by the deadline check, given back by its notifier (misuse_warehouse.alerts)
        ("grant select, insert, update, delete on ops.late_feed_alerts to {}", (TRANSFORMER,)),
        # the mart gate's disclosure audit (misuse_warehouse.disclosure_audit)
        ("grant select, insert on ops.disclosure_audits to {}", (TRANSFORMER,)),
        # publication: the analysts' views it recreated or could not (misuse_warehouse.publish)
        ("grant select, insert on ops.analyst_views to {}", (TRANSFORMER,)),
        ("grant usage, create on schema analysts to {}, {}", (ANALYST, PUBLIC_HEALTH)),
        # the landing watch records the files it has seen and the run it started for them
        ("grant select, insert, update on ops.landing_files to {}", (LOADER,)),
        ("revoke all on function ops.analyst_area_codes(name) from public", ()),
        ("grant execute on function ops.analyst_area_codes(name) to {}", (ANALYST,)),
        ("grant usage on schema marts to {}, {}, {}", (BI_READER, ANALYST, PUBLIC_HEALTH)),
        ("grant usage on schema marts_person to {}", (PUBLIC_HEALTH,)),
    ]
    if conn.info.server_version >= 170000:  # MAINTAIN: dbt's on-run-start analyzes raw before planning joins over it
        statements.append(("grant maintain on all tables in schema raw to {}", (TRANSFORMER,)))
    for template, names in statements:
        conn.execute(sql.SQL(template).format(*map(sql.Identifier, names)))
    for table, hidden in attributor_columns.items():
        columns = [
            r[0]
            for r in conn.execute(
                """select column_name from information_schema.columns
                   where table_schema = 'raw' and table_name = %s order by ordinal_position""",
                (table,),
            )
            if r[0] not in hidden
        ]
        target = sql.Identifier("raw", table)
        conn.execute(sql.SQL("revoke select on {} from {}").format(target, sql.Identifier(TRANSFORMER)))
        conn.execute(
            sql.SQL("grant select ({}) on {} to {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), target, sql.Identifier(TRANSFORMER)
            )
        )


def let_transformer_act_as_readers(conn: psycopg.Connection) -> list[str]:
    """Let `transformer` SET ROLE to every reader role and reader login, without inheriting their rights.

    The mart gate reads the next marts as each reader (disclosure_audit) and publication recreates
    analysts' views as their owners (publish). A superuser login could do both; the transformer's own
    login (Docker) can only through these memberships, `WITH INHERIT FALSE, SET TRUE` (PostgreSQL 16+):
    the transformer's own queries get nothing from them, and every reader's rights are a subset of what
    the transformer, owner of the marts, already has. Logins made after this migration are covered by
    the next one (docs/operations.md, "Warehouse logins"). Returns the roles newly granted.
    """
    targets = [
        r[0]
        for r in conn.execute(
            """select r.rolname from pg_roles r
               where r.rolname <> all(%s::text[]) and not r.rolsuper
                 and (r.rolname = any(%s::text[])
                      or r.rolname like 'analyst\\_%%'
                      or (r.rolcanlogin and exists (
                              select 1 from unnest(%s::text[]) reader where pg_has_role(r.oid, reader, 'member'))
                          and not exists (
                              select 1 from unnest(%s::text[]) own where pg_has_role(r.oid, own, 'member'))))
                 and not exists (
                     select 1 from pg_auth_members m
                     where m.roleid = r.oid and m.member = (select oid from pg_roles where rolname = %s)
                       and m.set_option)
               order by 1""",
            (list(PIPELINE_ROLES), list(READER_ROLES), list(READER_ROLES), list(PIPELINE_ROLES), TRANSFORMER),
        )
    ]
    return [
        role
        for role in targets
        if _or_ask_a_dba(
            conn,
            sql.SQL("grant {} to {} with inherit false, set true").format(
                sql.Identifier(role), sql.Identifier(TRANSFORMER)
            ),
            f"transformer may not act as {role} (this login may not grant it): the mart gate or publication "
            "fails for it unless a DBA runs: ",
        )
    ]


def _or_ask_a_dba(conn: psycopg.Connection, statement: sql.Composed, problem: str) -> bool:
    """Run `statement`, or, without the privilege, log `problem` and the statement for a DBA to run.

    A managed Postgres may not give the migrating login every privilege; the rest of the migration
    still applies, and the warning says exactly what is missing.
    """
    try:
        with conn.transaction():
            conn.execute(statement)
        return True
    except psycopg.errors.InsufficientPrivilege:
        log.warning("%s%s", problem, statement.as_string(conn))
        return False


# A reader's transaction left open (a BI tool's session idle in a transaction) is ended after this: it
# holds locks on published tables that the drop of a retired publication needs (publish.drop_retired).
READER_IDLE_TIMEOUT = "5min"
READER_ROLES = (BI_READER, ANALYST, PUBLIC_HEALTH)


def limit_reader_sessions(conn: psycopg.Connection) -> list[str]:
    """Give every login of a reader role `idle_in_transaction_session_timeout`; returns the logins changed.

    A setting on a group role does not reach its members' sessions, so each login gets it; logins of
    the pipeline's own roles are left alone. New readers get it at the next migration (each run).
    Without the privilege to alter roles, the logins are named in a warning for a DBA instead.
    """
    setting = f"idle_in_transaction_session_timeout={READER_IDLE_TIMEOUT}"
    logins = [
        r[0]
        for r in conn.execute(
            """select r.rolname from pg_roles r
               where r.rolcanlogin and not r.rolsuper
                 and exists (select 1 from unnest(%s::text[]) reader where pg_has_role(r.oid, reader, 'member'))
                 and not exists (select 1 from unnest(%s::text[]) own where pg_has_role(r.oid, own, 'member'))
                 and not (coalesce(r.rolconfig, '{}') @> array[%s])
               order by 1""",
            (list(READER_ROLES), list(PIPELINE_ROLES), setting),
        )
    ]
    return [
        login
        for login in logins
        if _or_ask_a_dba(
            conn,
            sql.SQL("alter role {} set idle_in_transaction_session_timeout = {}").format(
                sql.Identifier(login), sql.Literal(READER_IDLE_TIMEOUT)
            ),
            f"reader login {login} has no idle_in_transaction_session_timeout and this login may not set it: "
            "ask a DBA to run: ",
        )
    ]


_ALTER_KIND = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "S": "sequence", "f": "foreign table"}


def _own(conn: psycopg.Connection, schema: str, owner: str, relations: bool = True) -> None:
    """Give `owner` the schema and (with `relations`) every relation in it (a no-op once done)."""
    current = conn.execute(
        "select pg_get_userbyid(nspowner) from pg_namespace where nspname = %s", (schema,)
    ).fetchone()
    if current and current[0] != owner:
        conn.execute(sql.SQL("alter schema {} owner to {}").format(sql.Identifier(schema), sql.Identifier(owner)))
    if not relations:
        return
    relations = conn.execute(
        """select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relkind = any(%s) and pg_get_userbyid(c.relowner) <> %s
             and not (c.relkind = 'S' and exists (  -- identity and serial sequences follow their table
                 select 1 from pg_depend d where d.objid = c.oid and d.deptype in ('a', 'i')))""",
        (schema, list(_ALTER_KIND), owner),
    ).fetchall()
    for name, kind in relations:
        conn.execute(
            sql.SQL("alter {} {} owner to {}").format(
                sql.SQL(_ALTER_KIND[kind]), sql.Identifier(schema, name), sql.Identifier(owner)
            )
        )


def _current_database(conn: psycopg.Connection) -> str:
    return conn.execute("select current_database()").fetchone()[0]


# Publication: grants and row-level security on the next schema, before it is swapped in


def secure_published(conn: psycopg.Connection, schema: str, readers: tuple[str, ...], analysts: bool) -> dict:
    """Grants, security_invoker views and row-level security on every table of `schema`.

    `readers` see every row; with `analysts`, analyst roles see the rows of their areas only (rows with
    no area only in EVERY_AREA_WHEN_NULL tables). Row-level security is forced, so it binds the
    tables' owner too: the transformer gets a policy to read every row (publication checksums them)
    and none to write, so a published table cannot be changed by any role but a superuser's. Run
    on the next schema inside the publishing transaction, so the swap never opens a window without
    them. Returns which tables got row-level security, on which column.
    """
    grantees = [*readers, *([ANALYST] if analysts else [])]
    roles = sql.SQL(", ").join(map(sql.Identifier, grantees))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), roles))
    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(sql.Identifier(schema), roles))
    relations = conn.execute(
        """select c.relname, c.relkind,
                  (select a.attname from pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                     and a.attname = any(%s)
                   order by array_position(%s, a.attname::text) limit 1) as area_column
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm')
           order by c.relname""",
        (list(AREA_COLUMNS), list(AREA_COLUMNS), schema),
    ).fetchall()
    secured: dict[str, str | None] = {}
    for name, kind, area_column in relations:
        relation = sql.Identifier(schema, name)
        if kind == "v":
            conn.execute(sql.SQL("alter view {} set (security_invoker = true)").format(relation))
            continue
        if kind == "m":  # no row-level security on materialized views: published tables only
            raise RuntimeError(f"{schema}.{name} is a materialized view; publish tables or views instead")
        if area_column is None:
            secured[name] = None
            continue
        conn.execute(sql.SQL("alter table {} enable row level security").format(relation))
        conn.execute(sql.SQL("alter table {} force row level security").format(relation))
        for policy in ("every_area", "analyst_areas", "owner_reads"):
            conn.execute(sql.SQL("drop policy if exists {} on {}").format(sql.Identifier(policy), relation))
        conn.execute(
            sql.SQL("create policy every_area on {} for select to {} using (true)").format(
                relation, sql.SQL(", ").join(map(sql.Identifier, readers))
            )
        )
        conn.execute(
            sql.SQL("create policy owner_reads on {} for select to {} using (true)").format(
                relation, sql.Identifier(TRANSFORMER)
            )
        )
        if analysts:
            column = sql.Identifier(area_column)
            in_areas = sql.SQL("{} in (select unnest(ops.analyst_area_codes(current_user)))").format(column)
            if name in EVERY_AREA_WHEN_NULL:
                in_areas = sql.SQL("{} is null or {}").format(column, in_areas)
            conn.execute(
                sql.SQL("create policy analyst_areas on {} for select to {} using ({})").format(
                    relation, sql.Identifier(ANALYST), in_areas
                )
            )
        secured[name] = area_column
    return secured
