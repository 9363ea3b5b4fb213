"""Governance end to end: roles, row-level security per area, disclosure control, personal data in raw only.

One month (2025-03) of hand-made files for Medway, Herefordshire and Worcestershire goes through the
real monthly DAG, with the pseudonymisation secret only in an Airflow secrets backend (the
environment-variables backend), not in MISUSE_WAREHOUSE_PSEUDONYM_KEY. Then every role is tried
through a login of its own (a real password login over TCP, as a BI tool or an analyst would
connect). Last, the `retention` DAG purges files received long ago, and re-keying follows.

DAG runs: one monthly_pipeline month and one retention run.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import jinja2
import psycopg
import pytest
from feeds import treatment_row, write_feed_file, write_treatment_file
from psycopg import errors, sql

from misuse_warehouse import connection_string, pseudonymise, roles, settings, warehouse
from misuse_warehouse import pipeline as tasks

MEDWAY, HEREFORDSHIRE, WORCESTERSHIRE = "E06000035", "E06000019", "E10000034"
MONTH = "2025-03"
HOSTILE = "'); drop table raw.submissions; --"
BACKEND_SECRET = "secret-from-the-airflow-secrets-backend"
PASSWORD = "test-only-password"
LOGINS = {
    "gov_bi": roles.BI_READER,
    "gov_medway": "analyst_medway",
    "gov_west_mercia": "analyst_west_mercia",
    "gov_public_health": roles.PUBLIC_HEALTH,
    "gov_loader": roles.LOADER,
    "gov_transformer": roles.TRANSFORMER,
}
# kpis.md decision 18: the person and episode counts, and the rates built on them
COUNT_KPIS = {"T1", "T2", "T7_month", "T7_12m", "T8", "C1_unlinked", "C5_starts", "C5_completions"}
RATE_KPIS = {"T3_pct_over_21d", "T4", "T5", "T6", "C1", "C3_positivity", "C3_attendance", "C4"}
# count columns outside kpi_monthly that do not count people: files and areas
# counts of files and areas, not of people
NOT_PERSON_COUNTS = {("dim_provider", "submission_count")} | {
    ("fct_area_month_completeness", f"{kind}_file_count") for kind in ("expected", "received", "missing", "late")
}


def adult(n: int, initials: str, born: str, area: str) -> dict[str, Any]:
    return treatment_row(episode_id=f"A{n}", area_code=area, client_initials=initials, client_dob=born, client_sex="m")


def young_person(n: int, initials: str, born: str, area: str) -> dict[str, Any]:
    return treatment_row(
        episode_id=f"Y{n}",
        area_code=area,
        client_initials=initials,
        client_dob=born,
        client_sex="f",
        service_type="young_people",
        substance_group="alcohol_only",
        primary_substance="alcohol",
        modality="psychosocial",
    )


# distinctive attributors (Q*, Z* initials; birthdays never the 1st of a month) so the scan below can
# look for their values anywhere outside raw
MEDWAY_ADULTS = [adult(i, f"Q{'ABCDEFG'[i]}", f"1971-02-{13 + i}", MEDWAY) for i in range(7)]
MEDWAY_YOUNG = [young_person(i, f"Q{'HIJ'[i]}", f"2009-06-{13 + i}", MEDWAY) for i in range(3)]
HEREFORDSHIRE_ADULTS = [adult(i, f"Z{'ABCDEF'[i]}", f"1972-03-{13 + i}", HEREFORDSHIRE) for i in range(6)]
SMALL_PROVIDER_ADULTS = [adult(10 + i, f"Z{'GH'[i]}", f"1972-04-{13 + i}", HEREFORDSHIRE) for i in range(2)]
WORCESTERSHIRE_ADULTS = [adult(i, f"Z{'JKLMN'[i]}", f"1973-05-{13 + i}", WORCESTERSHIRE) for i in range(5)]
ALL_ROWS = MEDWAY_ADULTS + MEDWAY_YOUNG + HEREFORDSHIRE_ADULTS + SMALL_PROVIDER_ADULTS + WORCESTERSHIRE_ADULTS
ATTRIBUTOR_VALUES = sorted({r["client_initials"] for r in ALL_ROWS} | {r["client_dob"] for r in ALL_ROWS})

CONTRACT = {
    "contract_id": "C01",
    "provider_code": "P0001",
    "provider_name": HOSTILE,
    "area_code": MEDWAY,
    "service_line": "adult_community",
    "start_date": "2023-04-01",
    "end_date": "2026-03-31",
    "annual_value_gbp": "240000.00",
    "status": "active",
}


def login_url(base_url: str, user: str) -> str:
    return connection_string.replaced(base_url, user=user, password=PASSWORD)


@pytest.fixture(scope="module")
def governed(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    landing = tmp_path_factory.mktemp("governance")
    pipeline.reset()
    write_treatment_file(landing, "P0001", MONTH, MEDWAY_ADULTS + MEDWAY_YOUNG)
    write_treatment_file(landing, "P0002", MONTH, HEREFORDSHIRE_ADULTS)
    write_treatment_file(landing, "P0004", MONTH, SMALL_PROVIDER_ADULTS)
    write_treatment_file(landing, "P0003", MONTH, WORCESTERSHIRE_ADULTS)
    write_feed_file(landing, "contracts", MEDWAY, MONTH, [CONTRACT])
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(settings.PSEUDONYM_KEY_ENV)
        patch.setenv(f"AIRFLOW_VAR_{pseudonymise.AIRFLOW_VARIABLE.upper()}", BACKEND_SECRET)
        pipeline.run_month(landing, MONTH)
    with psycopg.connect(pipeline.url, autocommit=True) as conn:
        for user, role in LOGINS.items():
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(user)))
            conn.execute(
                sql.SQL("create role {} login password {} in role {}").format(
                    sql.Identifier(user), sql.Literal(PASSWORD), sql.Identifier(role)
                )
            )
    return pipeline


def connect_as(governed: Any, user: str) -> psycopg.Connection:
    """A password login over TCP as `user`, as a BI tool or an analyst connects."""
    return psycopg.connect(login_url(governed.url, user), autocommit=True)


def denied(conn: psycopg.Connection, query: str) -> bool:
    try:
        conn.execute(query)
    except errors.InsufficientPrivilege:
        return True
    return False


def area_tables(governed: Any, schema: str) -> dict[str, str]:
    """Published tables with an area column, and that column."""
    rows = governed.query(
        """select table_name, column_name from information_schema.columns
           where table_schema = %s and column_name = any(%s)
           order by table_name, array_position(%s, column_name::text)""",
        (schema, list(roles.AREA_COLUMNS), list(roles.AREA_COLUMNS)),
    )
    found: dict[str, str] = {}
    for table, column in rows:
        found.setdefault(table, column)
    return found


def areas_seen(conn: psycopg.Connection, schema: str, table: str, column: str) -> set[str | None]:
    query = sql.SQL("select distinct {} from {}").format(sql.Identifier(column), sql.Identifier(schema, table))
    return {r[0] for r in conn.execute(query)}


# Roles ------------------------------------------------------------------------------------------


def test_bi_reader_reads_aggregates_only(governed: Any) -> None:
    with connect_as(governed, "gov_bi") as conn:
        areas = {r[0] for r in conn.execute("select distinct area_code from marts.kpi_monthly")}
        assert areas == {MEDWAY, HEREFORDSHIRE, WORCESTERSHIRE}, "every area"
        assert conn.execute("select count(*) from marts.dim_provider").fetchone()[0] == 4
        for query in (
            "select * from raw.submissions",
            "select * from raw.treatment_episodes",
            "select * from marts_person.fct_treatment_episodes",
            "select * from marts_person.fct_treatment_person_months",
            "select * from staging.stg_treatment__episode_versions",
            "select * from intermediate.int_treatment__episodes",
            "select * from ops.publications",
            "create table marts.scratch (x int)",
        ):
            assert denied(conn, query), query
        # nothing person-level left in the aggregate schema
        person_columns = conn.execute(
            """select table_name, column_name from information_schema.columns
               where table_schema = 'marts' and column_name in ('person_id', 'person_key')"""
        ).fetchall()
        assert person_columns == []


def test_medway_analyst_sees_medway_rows_only_and_cannot_widen(governed: Any) -> None:
    shared = set(roles.load_analyst_groups().shared)
    tables = area_tables(governed, "marts")
    assert {"kpi_monthly", "dim_area", "dim_contract", "dim_kpi_target"} <= tables.keys()
    with connect_as(governed, "gov_medway") as conn:
        for table, column in tables.items():
            # a row with no area is no analyst's, but for a target that applies to every area
            no_area = {None} if table in roles.EVERY_AREA_WHEN_NULL else set()
            assert areas_seen(conn, "marts", table, column) <= {MEDWAY, *shared, *no_area}, table
        assert None in areas_seen(conn, "marts", "dim_kpi_target", "area_id"), "C1's 75% for every area"
        assert areas_seen(conn, "marts", "kpi_monthly", "area_code") == {MEDWAY}
        medway_rows = governed.query("select count(*) from marts.kpi_monthly where area_code = %s", (MEDWAY,))
        assert conn.execute("select count(*) from marts.kpi_monthly").fetchone() == medway_rows[0]
        # tables without an area are read whole
        assert conn.execute("select count(*) from marts.dim_month").fetchone() == tuple(
            governed.query("select count(*) from marts.dim_month")[0]
        )
        # a session setting does not move the policy; roles it is not a member of cannot be taken
        conn.execute("set misuse_warehouse.area_code = 'E06000019'")
        conn.execute("set application_name = 'analyst_herefordshire'")
        for attempt in (
            "set role analyst_herefordshire",
            "set role bi_reader",
            "set session authorization postgres",
        ):
            assert denied(conn, attempt), attempt
        assert areas_seen(conn, "marts", "kpi_monthly", "area_code") == {MEDWAY}
        # the area look-up is the policy's, not the analyst's to call or change
        assert denied(conn, "select ops.analyst_area_codes('analyst_herefordshire')")
        assert denied(conn, "select * from marts_person.fct_treatment_episodes")
        assert denied(conn, "select * from raw.treatment_episodes")
        assert denied(conn, "insert into ops.analyst_areas values ('analyst_medway', 'E06000019')")


def test_partnership_analyst_sees_its_areas(governed: Any) -> None:
    with connect_as(governed, "gov_west_mercia") as conn:
        assert areas_seen(conn, "marts", "kpi_monthly", "area_code") == {HEREFORDSHIRE, WORCESTERSHIRE}
        assert areas_seen(conn, "marts", "dim_area", "area_id") <= {HEREFORDSHIRE, WORCESTERSHIRE, "E92000001"}


def test_public_health_reads_person_level_marts(governed: Any) -> None:
    with connect_as(governed, "gov_public_health") as conn:
        areas = areas_seen(conn, "marts_person", "fct_treatment_episodes", "area_id")
        assert areas == {MEDWAY, HEREFORDSHIRE, WORCESTERSHIRE}
        persons = conn.execute("select count(distinct person_id) from marts_person.fct_treatment_episodes").fetchone()
        assert persons == (len(ALL_ROWS),)
        assert conn.execute("select count(*) from marts.kpi_monthly").fetchone()[0] > 0
        assert denied(conn, "select * from raw.treatment_episodes")


def test_pipeline_roles_are_least_privilege(governed: Any) -> None:
    with connect_as(governed, "gov_transformer") as conn:
        # dbt never sees the plain attributor, only its pseudonym and the age
        assert denied(conn, "select client_initials from raw.treatment_episodes")
        assert denied(conn, "select client_dob from raw.prison_releases")
        assert conn.execute("select count(person_key), count(age_at_referral) from raw.treatment_episodes").fetchone()[
            0
        ] == len(ALL_ROWS)
        assert denied(conn, "insert into raw.submissions (feed) values ('x')")
    with connect_as(governed, "gov_loader") as conn:
        assert conn.execute("select count(*) from raw.submissions").fetchone()[0] >= 5
        for query in (
            "select * from marts.kpi_monthly",
            "delete from raw.submissions",
            "drop table raw.treatment_episodes",
            "create schema loader_scratch",
        ):
            assert denied(conn, query), query
    owners = governed.query(
        """select distinct n.nspname, pg_get_userbyid(c.relowner) from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('raw', 'ops', 'marts', 'marts_person') and c.relkind in ('r', 'v')
           order by 1"""
    )
    assert owners == [
        ("marts", roles.TRANSFORMER),
        ("marts_person", roles.TRANSFORMER),
        ("ops", roles.OWNER),
        ("raw", roles.OWNER),
    ]
    can_login = governed.query(
        "select rolname from pg_roles where rolcanlogin and rolname = any(%s)",
        (list(roles.GROUP_ROLES) + list(roles.load_analyst_groups().groups),),
    )
    assert can_login == [], "group roles: no one logs in as them"


def test_published_tables_carry_grants_and_policies(governed: Any) -> None:
    for schema in ("marts", "marts_person"):
        tables = area_tables(governed, schema)
        assert tables
        secured = governed.query(
            """select c.relname, c.relrowsecurity, array_agg(p.polname order by p.polname)
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               left join pg_policy p on p.polrelid = c.oid
               where n.nspname = %s and c.relname = any(%s) group by 1, 2""",
            (schema, list(tables)),
        )
        expected = ["every_area", "owner_reads"]
        expected = sorted(["analyst_areas", *expected]) if schema == "marts" else expected
        assert {name: (rls, policies) for name, rls, policies in secured} == {t: (True, expected) for t in tables}
        forced = governed.query(
            """select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = %s and c.relname = any(%s) and not c.relforcerowsecurity""",
            (schema, list(tables)),
        )
        assert forced == [], "row-level security binds the owner too"
    # every view the project builds runs with the invoker's rights (and so the invoker's policies)
    views = governed.query(
        """select n.nspname, c.relname, coalesce('security_invoker=true' = any(c.reloptions), false)
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where c.relkind = 'v' and n.nspname not in ('pg_catalog', 'information_schema')"""
    )
    assert views and all(invoker for _, _, invoker in views), views


def test_provider_facts_by_area_follow_the_analysts_areas(governed: Any) -> None:
    """dim_provider is read whole, so it holds no area facts; a provider's episodes by area are under the policy."""
    columns = governed.query(
        """select column_name from information_schema.columns
           where table_schema = 'marts' and table_name = 'dim_provider'"""
    )
    assert not {c for (c,) in columns} & {"area_ids", "area_count", "episode_count", "area_id", "area_code"}
    everything = governed.query(
        "select provider_id, area_id, episode_count from marts.fct_provider_area_episodes order by 1, 2"
    )
    assert everything == [
        ("P0001", MEDWAY, 10),
        ("P0002", HEREFORDSHIRE, 6),
        ("P0003", WORCESTERSHIRE, 5),
        ("P0004", HEREFORDSHIRE, None),
    ]
    query = "select provider_id, area_id, episode_count from marts.fct_provider_area_episodes order by 1, 2"
    with connect_as(governed, "gov_medway") as conn:
        assert conn.execute(query).fetchall() == everything[:1]
        assert conn.execute("select count(*) from marts.dim_provider").fetchone() == (4,), "names and codes: all"
    with connect_as(governed, "gov_west_mercia") as conn:
        assert conn.execute(query).fetchall() == everything[1:]
    with connect_as(governed, "gov_bi") as conn:
        assert conn.execute(query).fetchall() == everything


def test_rows_without_an_area_are_no_analysts(governed: Any) -> None:
    """Only the every-area readers see a row with no area, but in a table whose NULL means every area."""
    with psycopg.connect(governed.url, autocommit=True) as conn:
        conn.execute("drop schema if exists gov_null cascade")
        conn.execute("create schema gov_null authorization transformer")
        conn.execute("set role transformer")
        for table in ("cells", "dim_kpi_target"):
            values = sql.SQL("values ({}, 1), ({}, 2), (null, 3)").format(
                sql.Literal(MEDWAY), sql.Literal(HEREFORDSHIRE)
            )
            conn.execute(
                sql.SQL("create table {} as select * from ({}) v (area_id, value)").format(
                    sql.Identifier("gov_null", table), values
                )
            )
        roles.secure_published(conn, "gov_null", (roles.BI_READER,), analysts=True)
    try:
        with connect_as(governed, "gov_medway") as conn:
            assert areas_seen(conn, "gov_null", "cells", "area_id") == {MEDWAY}
            assert areas_seen(conn, "gov_null", "dim_kpi_target", "area_id") == {MEDWAY, None}
        with connect_as(governed, "gov_bi") as conn:
            assert areas_seen(conn, "gov_null", "cells", "area_id") == {MEDWAY, HEREFORDSHIRE, None}
    finally:
        with psycopg.connect(governed.url, autocommit=True) as conn:
            conn.execute("drop schema gov_null cascade")


def test_forced_row_level_security_leaves_the_owner_reading_not_writing(governed: Any) -> None:
    """The transformer owns the published tables: it reads every row (publication checksums them) and
    changes none; with row-level security only enabled, not forced, the owner passed it by."""
    rows = governed.query("select count(*) from marts.kpi_monthly")[0][0]
    assert rows > 0
    with connect_as(governed, "gov_transformer") as conn:
        assert conn.execute("select count(*) from marts.kpi_monthly").fetchone() == (rows,)
        assert conn.execute("delete from marts.kpi_monthly").rowcount == 0
        assert conn.execute("update marts.dim_area set area_name = 'x'").rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("insert into marts.fct_provider_area_episodes values ('P9|E06000035', 'P9', %s, 9)", (MEDWAY,))
    assert governed.query("select count(*) from marts.kpi_monthly") == [(rows,)]
    assert governed.query("select count(*) from marts.dim_area where area_name = 'x'") == [(0,)]


def test_published_marts_keep_the_indexes_bi_queries_need(governed: Any) -> None:
    """The swap renames schemas, so indexes dbt built in marts_next must still be there once published."""
    indexed = governed.query(
        """select t.relname, array_agg(a.attname::text order by k.ord)
           from pg_index x
           join pg_class t on t.oid = x.indrelid join pg_namespace n on n.oid = t.relnamespace
           cross join lateral unnest(x.indkey) with ordinality as k(attnum, ord)
           join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum
           where n.nspname = 'marts' and t.relname = any(%s)
           group by t.relname, x.indexrelid""",
        (["kpi_monthly", "fct_funding_ledger_lines", "partnership_scorecard"],),
    )
    assert {(table, tuple(columns)) for table, columns in indexed} >= {
        ("kpi_monthly", ("area_code", "month", "kpi_code", "breakdown")),
        ("kpi_monthly", ("kpi_code", "breakdown", "month")),
        ("kpi_monthly", ("month",)),
        ("kpi_monthly", ("area_code", "kpi_code", "breakdown", "month")),
        ("fct_funding_ledger_lines", ("area_id", "month_id")),
        ("partnership_scorecard", ("month_id",)),
    }


def test_a_published_view_applies_the_readers_policy(governed: Any) -> None:
    """Without security_invoker a view owned by the transformer would show an analyst every area."""
    with psycopg.connect(governed.url, autocommit=True) as conn:
        conn.execute("drop schema if exists gov_next cascade")
        conn.execute("create schema gov_next authorization transformer")
        conn.execute("set role transformer")
        conn.execute("create table gov_next.cells as select area_code, value from marts.kpi_monthly")
        conn.execute("create view gov_next.cells_view as select * from gov_next.cells")
        secured = roles.secure_published(conn, "gov_next", (roles.BI_READER,), analysts=True)
        assert secured == {"cells": "area_code"}
    try:
        with connect_as(governed, "gov_medway") as conn:
            assert areas_seen(conn, "gov_next", "cells_view", "area_code") == {MEDWAY}
    finally:
        with psycopg.connect(governed.url, autocommit=True) as conn:
            conn.execute("drop schema gov_next cascade")


# Disclosure control -----------------------------------------------------------------------------


def test_no_published_cell_holds_a_count_of_1_to_4(governed: Any) -> None:
    small = governed.query(
        """select kpi_code, breakdown, area_code, numerator, denominator, value from marts.kpi_monthly
           where (kpi_code = any(%s) and (value between 1 and 4 or numerator between 1 and 4))
              or (kpi_code = any(%s) and (numerator between 1 and 4 or denominator between 1 and 4))""",
        (sorted(COUNT_KPIS), sorted(RATE_KPIS)),
    )
    assert small == []
    # the data did hold small cells: they were hidden, not absent
    hidden = governed.query("select count(*) from marts.kpi_monthly where is_suppressed and value is null")
    assert hidden[0][0] > 0
    count_columns = governed.query(
        r"""select table_name, column_name from information_schema.columns
            where table_schema = 'marts' and table_name <> 'kpi_monthly'
              and data_type in ('integer', 'bigint', 'smallint', 'numeric')
              and column_name ~ '(^|_)(count|persons|people|episodes|clients|numerator|denominator)$'"""
    )
    assert ("fct_provider_area_episodes", "episode_count") in count_columns
    for table, column in count_columns:
        if (table, column) in NOT_PERSON_COUNTS:
            continue
        query = sql.SQL("select count(*) from {} where {} between 1 and 4").format(
            sql.Identifier("marts", table), sql.Identifier(column)
        )
        assert governed.query(query.as_string(None)) == [(0,)], f"{table}.{column}"
    # the provider with two episodes has its count hidden
    assert governed.query("select episode_count from marts.fct_provider_area_episodes where provider_id = 'P0004'") == [
        (None,)
    ]


def test_secondary_suppression_in_the_published_breakdowns(governed: Any) -> None:
    """Medway: 7 adults and 3 young people. T1's 3 is hidden, and so its only sibling, 7: no subtraction."""
    rows = governed.query(
        """select breakdown, value, is_suppressed from marts.kpi_monthly
           where area_code = %s and month = %s and kpi_code = 'T1' order by breakdown""",
        (MEDWAY, f"{MONTH}-01"),
    )
    figures = {b: (v, s) for b, v, s in rows}
    assert figures["all"] == (10, False)
    assert figures["service_type=young_people"] == (None, True)
    assert figures["service_type=adult"] == (None, True)
    assert figures["kpi_group=alcohol"] == (None, True)
    assert figures["kpi_group=opiate"] == (None, True)
    hereford = governed.query(
        """select breakdown, value, is_suppressed from marts.kpi_monthly
           where area_code = %s and month = %s and kpi_code = 'T1' and breakdown like 'service_type=%%'""",
        (HEREFORDSHIRE, f"{MONTH}-01"),
    )
    assert dict((b, (v, s)) for b, v, s in hereford)["service_type=adult"] == (8, False)


def disclosure_control(relation: str, dependencies: str) -> str:
    """The project's macro rendered as dbt renders it (plain Jinja: it calls only its own file's macros
    and add_months)."""
    macros = settings.DBT_PROJECT_DIR / "macros"
    source = (macros / "add_months.sql").read_text() + (macros / "disclosure_control.sql").read_text()
    return str(jinja2.Environment().from_string(source).module.disclosure_control(relation, dependencies))


def test_secondary_suppression_macro_on_a_hand_made_breakdown(governed: Any) -> None:
    """The one macro on cells made by hand: which cells a breakdown with its total hides, and what
    a dependent figure hides with its input."""
    cells = """
        select * from (values
            -- family F1: total 20; a = 3 is hidden, so the next smallest above zero (b = 5) too: the two
            -- hidden cells sum to 8 and are each at most 12 (c), so each could be 1..7; zero stays
            ('F1', 'all', 20, null::text), ('F1', 'x=a', 3, 'F1'), ('F1', 'x=b', 5, 'F1'),
            ('F1', 'x=c', 12, 'F1'), ('F1', 'x=d', 0, 'F1'),
            -- family F2: two cells hidden already, 1..4 each (the rule's own interval): nothing more
            ('F2', 'all', 20, null), ('F2', 'x=a', 2, 'F2'), ('F2', 'x=b', 3, 'F2'), ('F2', 'x=c', 15, 'F2'),
            -- family F3: nothing small, nothing hidden
            ('F3', 'all', 30, null), ('F3', 'x=a', 10, 'F3'), ('F3', 'x=b', 20, 'F3'),
            -- family F4: 2 and 5 hidden beside a visible 5 would be 2..5: the other 5 is hidden too
            ('F4', 'all', 12, null), ('F4', 'x=a', 2, 'F4'), ('F4', 'x=b', 5, 'F4'), ('F4', 'x=c', 5, 'F4'),
            -- family F5: 1 and 1 are both 1 whatever is hidden: the total goes too
            ('F5', 'all', 2, null), ('F5', 'x=a', 1, 'F5'), ('F5', 'x=b', 1, 'F5'),
            -- G would give F5's total away: hidden with it
            ('G', 'all', 50, null), ('H', 'all', 40, null), ('I', 'all', 30, null), ('J', 'all', 35, null)
        ) as cells (kpi_code, breakdown, value, suppression_family)
    """
    query = f"""
        with cells as ({cells}),
        kpi_cells as (
            select 'E06000035' as area_code, date '2025-03-01' as month, kpi_code, breakdown,
                   value as numerator, null::numeric as denominator, value, null::numeric as ci_lower,
                   null::numeric as ci_upper, false as is_provisional, null::text[] as source_submissions,
                   'count' as disclosure_rule, kpi_code || '|' || suppression_family as suppression_family,
                   date '2025-03-01' as family_month, kpi_code as family_total_kpi
            from cells
        ),
        dependencies (
            kind, route, dependent_kpi, dependent_breakdown, dependent_months, input_kpi, input_breakdown,
            from_offset, to_offset
        ) as (values
            ('hidden_with', null, 'G', 'all', null::integer[], 'F5', 'all', 0, 0),
            -- H is hidden with F1's a, but F3's total states it: shown
            ('hidden_with', null, 'H', 'all', null, 'F1', 'x=a', 0, 0),
            ('shown_with', 'by_f3', 'H', 'all', null, 'F3', 'all', 0, 0),
            -- I and J are hidden with F1's a; a route needs all its inputs shown, one route is enough:
            -- I's second route (F3 and F4's total) states it, J's routes each miss an input
            ('hidden_with', null, 'I', 'all', null, 'F1', 'x=a', 0, 0),
            ('shown_with', 'by_f1', 'I', 'all', null, 'F1', 'x=b', 0, 0),
            ('shown_with', 'by_f3', 'I', 'all', null, 'F3', 'all', 0, 0),
            ('shown_with', 'by_f3', 'I', 'all', null, 'F4', 'all', 0, 0),
            ('hidden_with', null, 'J', 'all', null, 'F1', 'x=a', 0, 0),
            ('shown_with', 'by_f1', 'J', 'all', null, 'F1', 'x=b', 0, 0),
            ('shown_with', 'by_f3', 'J', 'all', null, 'F3', 'all', 0, 0),
            ('shown_with', 'by_f3', 'J', 'all', null, 'F5', 'all', 0, 0)
        ),
        disclosed as ({disclosure_control("kpi_cells", "dependencies")})
        select kpi_code, breakdown, value, is_suppressed from disclosed order by 1, 2
    """
    result = {(k, b): (v, s) for k, b, v, s in governed.query(query)}
    assert result == {
        ("F1", "all"): (20, False),
        ("F1", "x=a"): (None, True),
        ("F1", "x=b"): (None, True),
        ("F1", "x=c"): (12, False),
        ("F1", "x=d"): (0, False),
        ("F2", "all"): (20, False),
        ("F2", "x=a"): (None, True),
        ("F2", "x=b"): (None, True),
        ("F2", "x=c"): (15, False),
        ("F3", "all"): (30, False),
        ("F3", "x=a"): (10, False),
        ("F3", "x=b"): (20, False),
        ("F4", "all"): (12, False),
        ("F4", "x=a"): (None, True),
        ("F4", "x=b"): (None, True),
        ("F4", "x=c"): (None, True),
        ("F5", "all"): (None, True),
        ("F5", "x=a"): (None, True),
        ("F5", "x=b"): (None, True),
        ("G", "all"): (None, True),
        ("H", "all"): (40, False),
        ("I", "all"): (30, False),
        ("J", "all"): (None, True),
    }


# Personal data stays in raw ---------------------------------------------------------------------


def _attributor_hits(governed: Any, schemas: list[str]) -> list[tuple[str, str, str]]:
    """(schema, relation, column) of every text or date cell equal to one of the fed initials or birth dates."""
    columns = governed.query(
        """select c.table_schema, c.table_name, c.column_name from information_schema.columns c
           join information_schema.tables t using (table_schema, table_name)
           where c.table_schema = any(%s)
             and c.data_type in ('text', 'character varying', 'character', 'date', 'timestamp with time zone',
                                 'timestamp without time zone')""",
        (schemas,),
    )
    hits = []
    with psycopg.connect(governed.url) as conn:
        for schema, table, column in columns:
            query = sql.SQL("select exists (select 1 from {} where {}::text = any(%s))").format(
                sql.Identifier(schema, table), sql.Identifier(column)
            )
            if conn.execute(query, (ATTRIBUTOR_VALUES,)).fetchone()[0]:
                hits.append((schema, table, column))
    return hits


def test_no_initials_or_dates_of_birth_outside_raw(governed: Any) -> None:
    schemas = [
        r[0]
        for r in governed.query(
            """select nspname from pg_namespace
               where nspname not in ('raw', 'pg_catalog', 'information_schema', 'pg_toast')
                 and nspname not like 'pg_temp%%' and nspname not like 'pg_toast_temp%%'"""
        )
    ]
    assert {"staging", "intermediate", "reference", "marts", "marts_person", "ops"} <= set(schemas)
    named = governed.query(
        r"""select table_schema, table_name, column_name from information_schema.columns
            where table_schema = any(%s) and column_name ~* '(initial|dob|birth)'""",
        (schemas,),
    )
    assert named == []
    assert _attributor_hits(governed, schemas) == []
    # the scan finds them where they are
    assert ("raw", "treatment_episodes", "client_dob") in _attributor_hits(governed, ["raw"])


# SQL safety -------------------------------------------------------------------------------------


def test_hostile_values_are_stored_as_text(governed: Any, tmp_path: Path) -> None:
    # a feed value went through checks, gate, COPY and dbt into the published dimension
    assert governed.query("select provider_name from raw.contract_register_rows") == [(HOSTILE,)]
    assert governed.query("select provider_name from marts.dim_provider where provider_id = 'P0001'") == [(HOSTILE,)]
    # a hostile file name is refused, and its name is recorded as text
    folder = tmp_path / "landing" / "treatment" / MONTH
    folder.mkdir(parents=True)
    path = folder / f"treatment_P0001_2025-03{HOSTILE}.csv"
    path.write_text("header\n")
    outcome = tasks.ingest(str(path), "hostile-run")
    assert outcome["status"] == "refused" and outcome["refusal_code"] == "bad_file_name"
    stored = governed.query("select file_name from raw.submissions where dag_run_id = 'hostile-run'")
    assert stored == [(path.name,)]
    assert governed.query("select to_regclass('raw.submissions') is not null") == [(True,)]
    assert (settings.quarantine_dir() / "treatment" / MONTH / path.name).exists()


def test_hostile_analyst_groups_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "groups.yaml"
    config.write_text(f'groups:\n  "medway; drop role postgres": [E06000035]\n  kent: ["{HOSTILE}"]\n')
    with pytest.raises(roles.AnalystGroupsError) as refused:
        roles.load_analyst_groups(config)
    assert "group name" in str(refused.value) and "not GSS codes" in str(refused.value)
    config.write_text("groups:\n  medway: [E\u0660\u0666\u0660\u0660\u0660\u0660\u0663\u0665]\n")
    with pytest.raises(roles.AnalystGroupsError, match="not GSS codes"):
        roles.load_analyst_groups(config)  # a code in Arabic-Indic digits would never match a mart's row


# The secret -------------------------------------------------------------------------------------


def test_the_run_used_the_secret_from_the_airflow_secrets_backend(governed: Any) -> None:
    key = hmac.new(BACKEND_SECRET.encode(), b"QA|1971-02-13|m", hashlib.sha256).hexdigest()
    stored = governed.query(
        "select person_key from raw.treatment_episodes where client_initials = 'QA' and client_dob = '1971-02-13'"
    )
    assert stored == [(key,)]


def test_the_pipeline_refuses_to_run_without_a_secret(governed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from misuse_warehouse import cli, runner

    monkeypatch.delenv(settings.PSEUDONYM_KEY_ENV)
    monkeypatch.delenv(f"AIRFLOW_VAR_{pseudonymise.AIRFLOW_VARIABLE.upper()}", raising=False)
    result = CliRunner().invoke(cli.app, ["run", "--month", MONTH])
    assert result.exit_code == 2
    assert settings.PSEUDONYM_KEY_ENV in result.output and pseudonymise.AIRFLOW_VARIABLE in result.output
    # the DAG's first task refuses on its own too (a scheduler-started run never passes the CLI)
    prepare = runner.load_dag().get_task("prepare")
    with pytest.raises(pseudonymise.MissingSecretError, match="refuses to start"):
        prepare.python_callable()


# Retention and re-keying ------------------------------------------------------------------------

OLD_MONTH = "2022-03"
RECEIVED_LONG_AGO = 1648771200  # 2022-04-01, before any cutoff of 24 months from now
RETURNING = MEDWAY_ADULTS[0]  # QA: back in 2025, their old row can be re-keyed through the new one
ONLY_OLD = treatment_row(
    episode_id="OLD2", area_code=MEDWAY, client_initials="QW", client_dob="1970-07-17", client_sex="m"
)


@pytest.fixture(scope="module")
def purged(governed: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from misuse_warehouse import runner, runtime

    landing = tmp_path_factory.mktemp("old_landing")
    old_rows = [
        {**RETURNING, "episode_id": "OLD1", "referral_date": "2022-01-10", "first_intervention_date": "2022-01-20"},
        {**ONLY_OLD, "referral_date": "2022-02-10", "first_intervention_date": "2022-02-20"},
    ]
    old_file = write_treatment_file(landing, "P0001", OLD_MONTH, old_rows)
    refused = old_file.with_name("treatment_P0001_2022-03 (copy).csv")
    refused.write_text(old_file.read_text())
    with warehouse.connect(autocommit=True) as conn:  # the landing watch first saw them long ago
        for path in (old_file, refused):
            conn.execute(
                """insert into ops.landing_files (landing_path, feed, reporting_month, file_bytes, modified_ns,
                       file_sha256, first_seen_at)
                   values (%s, 'treatment', %s, %s, 0, %s, to_timestamp(%s))""",
                (
                    path.name,
                    f"{OLD_MONTH}-01",
                    path.stat().st_size,
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    RECEIVED_LONG_AGO,
                ),
            )
    with pytest.MonkeyPatch.context() as patch:  # the key the month was loaded with
        patch.setenv(settings.PSEUDONYM_KEY_ENV, BACKEND_SECRET)
        outcomes = [tasks.ingest(str(p), "old-run") for p in (old_file, refused)]
    assert [o["status"] for o in outcomes] == ["loaded", "refused"]
    before = dict(
        governed.query("select episode_id, person_key from raw.treatment_episodes where episode_id like 'OLD%%'")
    )
    archived = sorted(p.name for p in settings.archive_dir().rglob("*.csv"))
    runtime.configure()
    run = runner.load_dag("retention").test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"run": run, "states": states, "before": before, "archived": archived}


def test_retention_dag_purges_attributors_and_old_files(governed: Any, purged: dict[str, Any]) -> None:
    assert str(purged["run"].state) == "success", purged["states"]
    old = governed.query(
        """select episode_id, client_initials, client_dob, person_key, age_at_referral from raw.treatment_episodes
           where episode_id like 'OLD%%' order by 1"""
    )
    assert [(e, i, d) for e, i, d, _, _ in old] == [("OLD1", None, None), ("OLD2", None, None)]
    assert {e: k for e, _, _, k, _ in old} == purged["before"], "the pseudonym stays"
    assert [a for *_, a in old] == [50, 51], "the age at referral stays"
    recent = governed.query(
        "select count(*) from raw.treatment_episodes where submission_month = '2025-03-01' and client_dob is not null"
    )
    assert recent == [(len(ALL_ROWS),)]
    archived = sorted(p.name for p in settings.archive_dir().rglob("*.csv"))
    old_names = [a for a in purged["archived"] if OLD_MONTH in a]
    assert len(old_names) == 1 and archived == sorted(set(purged["archived"]) - set(old_names))
    assert not list(settings.quarantine_dir().rglob("*2022-03*"))
    records = governed.query(
        """select target, submission_count, row_count, file_count from ops.retention_purges
           where row_count > 0 or file_count > 0 order by target"""
    )
    assert records == [("archive", 0, 0, 1), ("quarantine", 0, 0, 1), ("raw.treatment_episodes", 1, 2, 0)]


def test_rekey_after_rotation(governed: Any, purged: dict[str, Any]) -> None:
    from misuse_warehouse import rekey

    new_secret = b"the-rotated-secret"
    with warehouse.connect(role=roles.LOADER) as conn:
        summary = rekey.rekey(conn, new_secret)
    by_table = {s["table"]: s for s in summary}
    assert by_table["raw.treatment_episodes"]["purged_mapped"] == 1
    assert by_table["raw.treatment_episodes"]["purged_unmatched"] == 1
    keys = dict(
        governed.query(
            "select provider_code || ':' || episode_id || '@' || submission_month, person_key"
            " from raw.treatment_episodes"
        )
    )
    returning_key = pseudonymise.person_key(new_secret, "QA", "1971-02-13", "m")
    assert keys["P0001:A0@2025-03-01"] == returning_key
    assert keys["P0001:OLD1@2022-03-01"] == returning_key, "the purged row follows its person to the new key"
    unmatched = hmac.new(new_secret, f"rekeyed|{purged['before']['OLD2']}".encode(), hashlib.sha256).hexdigest()
    assert keys["P0001:OLD2@2022-03-01"] == unmatched
    assert governed.query("select count(*) from ops.key_rotations") == [(2,)]
