"""Atomic publication: the schemas dbt built and the gate passed replace the published ones in one transaction.

Two published schemas, swapped together: `marts` (aggregates and dimensions; BI and analysts) and
`marts_person` (person-level facts; the public-health team only). Readers always see either the
previous publication or the new one, never a mix. Grants, security_invoker views and row-level
security are applied to the next schemas before the swap, so no window opens without them.

BI sessions and publication stay out of each other's way:
- the swap only renames schemas, which waits for no reader (a BI session idle in a transaction
  included); the old schema is renamed `<schema>_retired_<publication id>` and dropped after the
  commit in a transaction of its own, which gives up after a short lock timeout when a reader still
  holds one of its tables (it is dropped by a later publication instead);
- every lock is asked for with a short timeout and the publication retried, so a reader never
  queues behind a publication for longer than that timeout;
- views kept outside the marts (an analyst's view on `marts.kpi_monthly`) are recreated on the new
  tables in the same transaction, as their owner, with their options, grants and comments; one that
  no longer fits the new marts is kept in `ops.analyst_views` with the reason, and the run says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql
from tenacity import before_sleep_log, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from misuse_warehouse import faults, roles

PUBLISHED = "marts"
NEXT = "marts_next"
RETIRED = "marts_retired"
PERSON_PUBLISHED = "marts_person"
PERSON_NEXT = "marts_person_next"
PERSON_RETIRED = "marts_person_retired"
READER_ROLE = roles.BI_READER
# Autovacuum of a table dbt just built can deadlock with the publication's ALTER TABLEs (seen in
# the demo on PostgreSQL 18); the transaction rolls back whole, so it is simply tried again.
CONTENDED = (errors.DeadlockDetected, errors.LockNotAvailable)
# A reader waits at most LOCK_TIMEOUT behind an attempt; attempts back off 1, 2, 4 ... 20 s, about two
# minutes in all before the publication gives up (a reader holding a next table that long).
PUBLISH_ATTEMPTS = 10
LOCK_TIMEOUT = "3s"
RETIRED_DROP_LOCK_TIMEOUT = "2s"

log = logging.getLogger(__name__)

DDL = """
-- Views outside the marts that read them, as each publication found and recreated them.
create table if not exists ops.analyst_views (
    analyst_view_id bigint generated always as identity primary key,
    publication_id bigint not null,
    view_schema text not null,
    view_name text not null,
    view_owner text not null,
    definition text not null,
    is_recreated boolean not null,
    reason text,
    recorded_at timestamptz not null default now()
);
"""


class MartsChangedSinceGate(RuntimeError):
    """The next schemas are not what the mart gate checked: another writer built them since. Nothing published."""


class DependentObjects(RuntimeError):
    """Objects other than views depend on the published marts; the swap would drop them. Nothing published."""


@dataclass(frozen=True)
class Publication:
    """One published schema: where dbt builds it, who reads every row, whether analysts read their areas."""

    published: str
    next: str
    retired: str
    readers: tuple[str, ...]
    analysts: bool


PUBLICATIONS = (
    Publication(PUBLISHED, NEXT, RETIRED, (roles.BI_READER, roles.PUBLIC_HEALTH), analysts=True),
    Publication(PERSON_PUBLISHED, PERSON_NEXT, PERSON_RETIRED, (roles.PUBLIC_HEALTH,), analysts=False),
)
NEXT_SCHEMAS = tuple(p.next for p in PUBLICATIONS)
PUBLISHED_SCHEMAS = tuple(p.published for p in PUBLICATIONS)


@dataclass(frozen=True)
class DependentView:
    """A view outside the marts that reads them: what it takes to create it again on the new tables."""

    schema: str
    name: str
    owner: str
    definition: str  # pg_get_viewdef, read before the swap: it names `marts.<table>`
    options: tuple[str, ...]  # reloptions, e.g. security_invoker=true

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def table_checksums(conn: psycopg.Connection, schema: str) -> dict[str, str]:
    """Content checksum of every table in `schema`, independent of row order: its row count and the sum
    of each row's md5 (first 60 bits). Summing needs no sort: at 36 months of ten areas the published
    schemas took 1.2 s against 3.2 s for the md5 of the sorted row digests it replaced.
    """
    tables = [
        r[0]
        for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s order by 1",
            (schema,),
        )
    ]
    sums = {}
    for table in tables:
        query = sql.SQL(
            "select count(*) || ':' || coalesce(sum(('x' || left(md5(t::text), 15))::bit(60)::bigint), 0) from {}.{} t"
        ).format(sql.Identifier(schema), sql.Identifier(table))
        sums[table] = conn.execute(query).fetchone()[0]
    return sums


def next_checksums(conn: psycopg.Connection) -> dict[str, str]:
    """Checksums of every next table, keyed as ops.publications records them (`marts_person.` prefixed).

    The mart gate records them for the tables it checked; publication computes them again inside its
    transaction and refuses when they differ.
    """
    checksums: dict[str, str] = {}
    for publication in PUBLICATIONS:
        prefix = "" if publication.published == PUBLISHED else f"{publication.published}."
        sums = table_checksums(conn, publication.next)
        checksums |= {f"{prefix}{table}": value for table, value in sums.items()}
    return checksums


def published_checksum(conn: psycopg.Connection) -> str:
    """One checksum of every published table's content, order-independent: equal marts, equal checksum."""
    sums = {p.published: table_checksums(conn, p.published) for p in PUBLICATIONS}
    return hashlib.sha256(json.dumps(sums, sort_keys=True).encode()).hexdigest()[:16]


def _exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone() is not None


@retry(
    retry=retry_if_exception_type(CONTENDED),
    stop=stop_after_attempt(PUBLISH_ATTEMPTS),
    wait=wait_exponential(min=1, max=20),
    before_sleep=before_sleep_log(log, logging.WARNING),
    reraise=True,
)
def publish(
    conn: psycopg.Connection,
    dag_run_id: str | None,
    reporting_month: str | None,
    gate_checksums: dict[str, str] | None = None,
) -> dict:
    """Swap every next schema into its published name; record what was published. Raises if nothing was built.

    `conn` works as the transformer (it owns what dbt built); grants and policies need the roles
    the migration made. With `gate_checksums` (what the mart gate checked), the next tables must
    still hold exactly that. A deadlock or lock timeout rolls the transaction back and it is tried
    again, up to PUBLISH_ATTEMPTS times. Views outside the marts that read them are recreated.
    """
    with conn.transaction():
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        conn.execute("select pg_advisory_xact_lock(hashtext('misuse_warehouse.publish'))")
        # every name in a view definition read here comes out schema-qualified, and is read back the same way
        conn.execute("set local search_path = pg_catalog, pg_temp")
        missing = [p.next for p in PUBLICATIONS if not _exists(conn, p.next)]
        if missing:
            raise RuntimeError(f"schema {', '.join(missing)} does not exist: dbt has not built the marts")
        views = dependent_views(conn)
        security = {p.published: roles.secure_published(conn, p.next, p.readers, p.analysts) for p in PUBLICATIONS}
        checksums = next_checksums(conn)
        if gate_checksums is not None and checksums != gate_checksums:
            changed = sorted(
                t for t in checksums.keys() | gate_checksums.keys() if checksums.get(t) != gate_checksums.get(t)
            )
            raise MartsChangedSinceGate(
                f"the next marts changed after the mart gate checked them ({', '.join(changed)}): "
                "another writer built them since; nothing published (the run that built them publishes them)"
            )
        month = f"{reporting_month}-01" if reporting_month else None
        publication_id = conn.execute(
            """insert into ops.publications (dag_run_id, reporting_month, tables)
               values (%s, %s, %s) returning publication_id""",
            (dag_run_id, month, json.dumps(checksums)),
        ).fetchone()[0]
        for publication in PUBLICATIONS:
            _swap(conn, publication, publication_id)
        not_recreated = _recreate_views(conn, views, publication_id)
    dropped = drop_retired(conn)
    digest = hashlib.sha256(json.dumps(checksums, sort_keys=True).encode()).hexdigest()
    row_security = {schema: sorted(t for t, column in tables.items() if column) for schema, tables in security.items()}
    return {
        "publication_id": publication_id,
        "tables": len(checksums),
        "checksum": digest,
        "row_level_security": row_security,
        "views_recreated": sorted(v.qualified for v in views if v.qualified not in not_recreated),
        "views_not_recreated": not_recreated,
        "retired_dropped": dropped,
    }


def _swap(conn: psycopg.Connection, publication: Publication, publication_id: int) -> None:
    """Renames only: they wait for no reader of the published tables (an idle BI transaction included)."""
    published, next_ = sql.Identifier(publication.published), sql.Identifier(publication.next)
    if _exists(conn, publication.published):
        retired = sql.Identifier(f"{publication.retired}_{publication_id}")
        conn.execute(sql.SQL("alter schema {} rename to {}").format(published, retired))
    faults.hold("publish")
    conn.execute(sql.SQL("alter schema {} rename to {}").format(next_, published))


def drop_retired(conn: psycopg.Connection) -> list[str]:
    """Drop the schemas earlier publications retired, each in its own short transaction after the swap.

    A BI session still reading an old table (even idle in a transaction) holds a lock the drop needs;
    the drop then gives up after RETIRED_DROP_LOCK_TIMEOUT rather than make that session's next
    queries, or anyone else's, queue behind it. The schema stays until a later publication drops it.
    """
    patterns = [f"{p.retired}%" for p in PUBLICATIONS]
    schemas = [
        r[0]
        for r in conn.execute(
            "select nspname from pg_namespace where nspname like any(%s) order by 1", (patterns,)
        ).fetchall()
    ]
    dropped: list[str] = []
    for schema in schemas:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(RETIRED_DROP_LOCK_TIMEOUT)))
                conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
            dropped.append(schema)
        except errors.LockNotAvailable:
            log.warning("%s is still read by a session: kept, a later publication drops it", schema)
    return dropped


def dependent_views(conn: psycopg.Connection) -> list[DependentView]:
    """Views outside the published schemas that read their tables.

    Only these need recreating: a view built on such a view follows it (same object, replaced in place).

    Raises DependentObjects, before anything changes, when something other than a view depends on
    the marts (a materialized view, a foreign key): the swap would drop it and it cannot be recreated
    faithfully.
    """
    inside = list(PUBLISHED_SCHEMAS)
    others = conn.execute(
        """with dependents as (
               select d.classid, d.objid, d.objsubid,
                      case d.classid
                          when 'pg_rewrite'::regclass then (select ev_class from pg_rewrite where oid = d.objid)
                          when 'pg_policy'::regclass then (select polrelid from pg_policy where oid = d.objid)
                          when 'pg_trigger'::regclass then (select tgrelid from pg_trigger where oid = d.objid)
                          when 'pg_constraint'::regclass then (select conrelid from pg_constraint where oid = d.objid)
                          when 'pg_attrdef'::regclass then (select adrelid from pg_attrdef where oid = d.objid)
                          when 'pg_statistic_ext'::regclass
                              then (select stxrelid from pg_statistic_ext where oid = d.objid)
                          when 'pg_class'::regclass then d.objid
                      end as relation
               from pg_depend d
               join pg_class t on t.oid = d.refobjid and d.refclassid = 'pg_class'::regclass
               join pg_namespace tn on tn.oid = t.relnamespace
               where tn.nspname = any(%(inside)s) and d.deptype = 'n'
           )
           select distinct pg_describe_object(dependents.classid, dependents.objid, dependents.objsubid)
           from dependents
           left join pg_class c on c.oid = dependents.relation
           left join pg_namespace n on n.oid = c.relnamespace
           where coalesce(n.nspname, '') <> all(%(inside)s)
             and not (dependents.classid = 'pg_rewrite'::regclass and c.relkind = 'v')""",
        {"inside": inside},
    ).fetchall()
    if others:
        names = ", ".join(sorted(r[0] for r in others))
        raise DependentObjects(
            f"objects outside the marts depend on them and would be dropped by the publication: {names}; "
            "keep analysts' work on the marts as views (recreated at each publication) or tables; nothing published"
        )
    rows = conn.execute(
        """select distinct n.nspname, v.relname, pg_get_userbyid(v.relowner), pg_get_viewdef(v.oid),
                  coalesce(v.reloptions, '{}')
           from pg_depend d
           join pg_rewrite r on r.oid = d.objid
           join pg_class v on v.oid = r.ev_class and v.relkind = 'v'
           join pg_namespace n on n.oid = v.relnamespace
           join pg_class t on t.oid = d.refobjid and t.oid <> v.oid
           join pg_namespace tn on tn.oid = t.relnamespace
           where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
             and tn.nspname = any(%(inside)s) and n.nspname <> all(%(inside)s)
           order by 1, 2""",
        {"inside": inside},
    ).fetchall()
    return [
        DependentView(schema, name, owner, definition, tuple(options))
        for schema, name, owner, definition, options in rows
    ]


def _recreate_views(conn: psycopg.Connection, views: list[DependentView], publication_id: int) -> dict[str, str]:
    """Each view again on the new marts, as its owner (row-level security and grants stay theirs).

    `create or replace` keeps the view's grants, comment and the views built on it. A view that no
    longer fits the new marts (a column it reads is gone) stays on the retired tables until they are
    dropped, with the views built on it; its definition and the reason are kept in ops.analyst_views.
    Returns those views with their reasons.
    """
    not_recreated: dict[str, str] = {}
    current = conn.execute("select current_user").fetchone()[0]
    for view in views:
        reason = None
        options = (
            sql.SQL(" with ({})").format(sql.SQL(", ").join(map(sql.SQL, view.options)))
            if view.options
            else sql.SQL("")
        )
        statement = sql.SQL("create or replace view {}{} as {}").format(
            sql.Identifier(view.schema, view.name), options, sql.SQL(view.definition.rstrip().rstrip(";"))
        )
        try:
            with conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(view.owner)))
                conn.execute(statement)
        except psycopg.errors.LockNotAvailable:
            raise
        except psycopg.Error as error:
            reason = str(error).splitlines()[0]
            not_recreated[view.qualified] = reason
            log.warning("view %s not recreated on the new marts: %s", view.qualified, reason)
        finally:
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(current)))
        conn.execute(
            """insert into ops.analyst_views
                   (publication_id, view_schema, view_name, view_owner, definition, is_recreated, reason)
               values (%s, %s, %s, %s, %s, %s, %s)""",
            (publication_id, view.schema, view.name, view.owner, view.definition, reason is None, reason),
        )
    return not_recreated
