"""What is loaded and published: the answers `misuse-warehouse status` and the demo print."""

from __future__ import annotations

from typing import Any

import psycopg


def submissions(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """Per feed and month: sources current, refused files, rows in the current submissions."""
    return conn.execute(
        """with current as (
               select distinct on (feed, source_code, period_start) *
               from raw.submissions where status = 'loaded'
               order by feed, source_code, period_start, submission_id desc
           )
           select s.feed, to_char(s.period_start, 'YYYY-MM') as month,
                  count(distinct c.source_code) as sources,
                  coalesce(sum(c.row_count), 0) as rows,
                  count(*) filter (where s.status = 'refused') as refused
           from raw.submissions s
           left join current c on c.submission_id = s.submission_id
           group by 1, 2 order by 1, 2"""
    ).fetchall()


def layer_rows(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """Row counts of every table in raw, intermediate and the published schemas (aggregate and person-level)."""
    tables = conn.execute(
        """select table_schema, table_name from information_schema.tables
           where table_schema in ('raw', 'intermediate', 'marts', 'marts_person') and table_type = 'BASE TABLE'
           order by array_position(array['raw', 'intermediate', 'marts', 'marts_person'], table_schema::text), 2"""
    ).fetchall()
    counts = []
    for schema, table in tables:
        query = psycopg.sql.SQL("select count(*) from {}.{}").format(
            psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table)
        )
        counts.append((schema, table, conn.execute(query).fetchone()[0]))
    return counts


def publications(conn: psycopg.Connection, limit: int = 5) -> list[tuple[Any, ...]]:
    return conn.execute(
        """select publication_id, published_at, to_char(reporting_month, 'YYYY-MM'), dag_run_id
           from ops.publications order by publication_id desc limit %s""",
        (limit,),
    ).fetchall()


def published_months(conn: psycopg.Connection) -> list[tuple[str, int, int]]:
    exists = conn.execute("select to_regclass('marts.kpi_monthly')").fetchone()[0]
    if not exists:
        return []
    return conn.execute(
        """select to_char(month, 'YYYY-MM'), count(distinct area_code), count(*)
           from marts.kpi_monthly group by 1 order by 1"""
    ).fetchall()


def disclosure_audits(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """The latest mart gate's disclosure audit, a row per role: cells checked and the narrowest range."""
    return conn.execute(
        """select role_name, areas, cells_checked, cells_disclosed,
                  narrowest_cell || ': ' || narrowest_lowest || '..' || coalesce(narrowest_highest::text, 'unbounded'),
                  to_char(audited_at, 'YYYY-MM-DD HH24:MI')
           from ops.disclosure_audits
           where dag_run_id is not distinct from (
               select dag_run_id from ops.disclosure_audits order by disclosure_audit_id desc limit 1)
             and audited_at >= (select max(audited_at) - interval '1 hour' from ops.disclosure_audits)
           order by role_name <> 'bi_reader', role_name"""
    ).fetchall()
