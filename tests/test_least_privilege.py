"""Least privilege by login, not by SET ROLE: the Docker topology's warehouse logins, set up natively.

In Docker the init service migrates as the admin login and, from `MISUSE_WAREHOUSE_LOADER_URL` and
`MISUSE_WAREHOUSE_TRANSFORMER_URL`, creates the two logins the workers get; the workers have no
admin login. Here the same happens on the session's embedded Postgres (a real server, real password
logins over TCP), and the process then runs as a worker does: both step URLs set, no WAREHOUSE_URL.
Before, every step logged in as the admin and switched with SET ROLE, so a dbt model could
`reset role` back to a superuser and read the plain dates of birth.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from feeds import treatment_row, write_treatment_file
from psycopg import errors, sql

from misuse_warehouse import connection_string, migrations, orchestration, roles, settings, warehouse

PASSWORDS = {"misuse_loader": "loader-password-for-tests", "misuse_transformer": "transformer-password-for-tests"}


def _drop_logins(conn: psycopg.Connection) -> None:
    for user in PASSWORDS:
        if conn.execute("select 1 from pg_roles where rolname = %s", (user,)).fetchone():
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(user)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(user)))


@pytest.fixture
def logins(db: psycopg.Connection, warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The init service's migration with the step URLs, then this process as a worker: no admin login."""
    urls = {
        role: connection_string.replaced(warehouse_url, user=user, password=PASSWORDS[user])
        for role, user in ((roles.LOADER, "misuse_loader"), (roles.TRANSFORMER, "misuse_transformer"))
    }
    monkeypatch.setenv(settings.LOADER_URL_ENV, urls[roles.LOADER])
    monkeypatch.setenv(settings.TRANSFORMER_URL_ENV, urls[roles.TRANSFORMER])
    migrations.migrate(db)  # as init: the admin login creates the step logins from their URLs
    assert not warehouse.has_admin_login()
    yield warehouse_url
    db.rollback()
    with psycopg.connect(warehouse_url, autocommit=True) as admin:
        _drop_logins(admin)


@pytest.fixture
def worker(logins: str, db: psycopg.Connection) -> str:
    """`logins`, with one treatment row in raw whose date of birth no step but loading may read."""
    submission = db.execute(
        """insert into raw.submissions (feed, source_code, period_start, file_name, file_sha256, file_bytes,
               received_at, status)
           values ('treatment', 'P0001', '2025-03-01', 'f.csv', 'x', 1, now(), 'loaded') returning submission_id"""
    ).fetchone()[0]
    db.execute(
        """insert into raw.treatment_episodes (submission_id, source_row, episode_id, client_initials, client_dob)
           values (%s, 1, 'E1', 'QA', '1971-02-13')""",
        (submission,),
    )
    db.commit()
    return logins


def test_the_step_logins_are_plain_members_of_their_one_role(worker: str) -> None:
    with psycopg.connect(worker) as admin:
        rows = admin.execute(
            """select r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
                      array(select p.rolname from pg_auth_members m join pg_roles p on p.oid = m.roleid
                            where m.member = r.oid order by 1)
               from pg_roles r where r.rolname = any(%s) order by 1""",
            (list(PASSWORDS),),
        ).fetchall()
    assert rows == [
        ("misuse_loader", True, False, False, False, False, [roles.LOADER]),
        ("misuse_transformer", True, False, False, False, False, [roles.TRANSFORMER]),
    ]


def test_each_step_logs_in_as_its_own_user(worker: str) -> None:
    for role, user in ((roles.LOADER, "misuse_loader"), (roles.TRANSFORMER, "misuse_transformer")):
        with warehouse.connect(role=role) as conn:
            assert conn.execute("select session_user, current_user").fetchone() == (user, role)
    assert warehouse.dbt_env()["WAREHOUSE_USER"] == "misuse_transformer"


def test_reset_role_in_the_transformers_session_cannot_read_dates_of_birth(worker: str) -> None:
    with warehouse.connect(autocommit=True, role=roles.TRANSFORMER) as conn:
        conn.execute("reset role")
        assert conn.execute("select current_user").fetchone() == ("misuse_transformer",)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select client_dob from raw.treatment_episodes")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select client_initials from raw.treatment_episodes")
        # what the transformer may read, it still reads
        assert conn.execute("select episode_id from raw.treatment_episodes").fetchall() == [("E1",)]
        for other in (roles.OWNER, roles.LOADER, "postgres"):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql.SQL("set role {}").format(sql.Identifier(other)))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("set session authorization postgres")


def test_reset_role_in_the_loaders_session_cannot_read_the_marts_or_ops_beyond_its_grants(worker: str) -> None:
    with warehouse.connect(autocommit=True, role=roles.LOADER) as conn:
        conn.execute("reset role")
        assert conn.execute("select current_user").fetchone() == ("misuse_loader",)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select * from ops.publications")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("set role {}").format(sql.Identifier(roles.TRANSFORMER)))


def test_the_transformer_may_act_as_each_reader_without_inheriting_from_them(worker: str) -> None:
    """The mart gate reads as every reader, publication recreates analysts' views as their owners."""
    with psycopg.connect(worker, autocommit=True) as admin:
        admin.execute("drop role if exists lp_analyst")
        admin.execute("create role lp_analyst login password 'x' in role analyst_medway")
        try:
            migrations.migrate(admin)
            with warehouse.connect(autocommit=True, role=roles.TRANSFORMER) as conn:
                for reader in (roles.BI_READER, roles.PUBLIC_HEALTH, "analyst_medway", "lp_analyst"):
                    conn.execute(sql.SQL("set role {}").format(sql.Identifier(reader)))
                    assert conn.execute("select current_user").fetchone() == (reader,)
                    conn.execute(sql.SQL("set role {}").format(sql.Identifier(roles.TRANSFORMER)))
                inherited = conn.execute(
                    "select pg_has_role('misuse_transformer', %s, 'usage')", (roles.BI_READER,)
                ).fetchone()
                assert inherited == (False,)
        finally:
            admin.execute("drop role lp_analyst")


PROBE_PROJECT = {
    "dbt_project.yml": """
        name: reset_role_probe
        version: "1.0"
        profile: misuse_warehouse
        model-paths: [models]
    """,
    # what any model of the project could do: a hook that resets the role, then read the attributor
    "models/dates_of_birth.sql": """
        {{ config(materialized='table', pre_hook='reset role') }}
        select episode_id, client_dob from raw.treatment_episodes
    """,
}


def test_a_dbt_model_that_resets_its_role_cannot_read_dates_of_birth(worker: str, tmp_path: Path) -> None:
    """A real dbt run, with the real profile and the environment the worker's dbt gets."""
    project = tmp_path / "project"
    for name, text in PROBE_PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    (project / "profiles.yml").write_text((settings.DBT_PROJECT_DIR / "profiles.yml").read_text())
    done = orchestration.run_dbt(["run"], tmp_path / "target", project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "permission denied for table treatment_episodes" in done.stdout + done.stderr
    with psycopg.connect(worker) as admin:
        assert admin.execute("select to_regclass('staging.dates_of_birth')").fetchone() == (None,)


PENDING_REVISION = '''
"""Test only: a release's revision the warehouse has not had yet."""

revision = "9100"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
'''


def test_a_worker_without_the_admin_login_checks_the_schema_instead_of_migrating(
    worker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrations.ensure_current() == ()  # at head: nothing to do, and nothing it could do
    with psycopg.connect(worker) as admin:
        head = migrations.revisions(admin).head
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "9100_pending.py").write_text(PENDING_REVISION.format(head=head))
    shipped = migrations.alembic_config
    monkeypatch.setattr(migrations, "alembic_config", lambda extra=(): shipped([versions, *extra]))
    with pytest.raises(migrations.SchemaError, match="no admin login to migrate with"):
        migrations.ensure_current()
    with psycopg.connect(worker) as admin:
        assert migrations.revisions(admin).current == head, "the worker changed nothing"


def test_a_month_runs_through_the_dag_on_the_step_logins_alone(logins: str, pipeline: Any, landing: Path) -> None:
    """The monthly DAG as a Docker worker runs it: the schema checked, not migrated; loading, dbt, the gates
    (the disclosure audit reads as every reader) and publication each on its own login."""
    rows = [treatment_row(episode_id=f"E{i}", client_initials=f"A{chr(65 + i)}") for i in range(6)]
    write_treatment_file(landing, "P0001", "2025-03", rows)
    result = pipeline.run_month(landing, "2025-03")
    assert result.task_states["publish"] == "success"
    t1 = pipeline.query(
        "select value from marts.kpi_monthly where area_code = 'E06000035' "
        "and month = '2025-03-01' and kpi_code = 'T1' and breakdown = 'all'"
    )
    assert t1 == [(6,)]
    assert pipeline.query("select count(*) from raw.treatment_episodes where client_dob is not null") == [(6,)]
    # what the run built belongs to the group roles, not to the logins it ran on
    owners = pipeline.query(
        """select distinct pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('raw', 'staging', 'intermediate', 'marts', 'marts_person') and c.relkind in ('r', 'v')"""
    )
    assert {owner for (owner,) in owners} <= {roles.OWNER, roles.TRANSFORMER}


def test_the_migration_puts_a_widened_login_back(worker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A login given another role by hand, or a new password in the deployment's secrets, is set again."""
    with psycopg.connect(worker, autocommit=True) as admin:
        admin.execute(sql.SQL("grant {} to misuse_transformer").format(sql.Identifier(roles.OWNER)))
        admin.execute("alter role misuse_transformer superuser")
    rotated = connection_string.replaced(worker, user="misuse_transformer", password="a-rotated-password")
    monkeypatch.setenv(settings.TRANSFORMER_URL_ENV, rotated)
    with psycopg.connect(worker) as admin:
        migrations.migrate(admin)
        assert admin.execute(
            """select rolsuper, array(select p.rolname from pg_auth_members m join pg_roles p on p.oid = m.roleid
                                      where m.member = r.oid)
               from pg_roles r where rolname = 'misuse_transformer'"""
        ).fetchone() == (False, [roles.TRANSFORMER])
    with psycopg.connect(rotated) as conn:
        assert conn.execute("select session_user").fetchone() == ("misuse_transformer",)


def test_migrate_on_a_worker_refuses_and_names_the_admin_setting(logins: str) -> None:
    from typer.testing import CliRunner

    from misuse_warehouse.cli import app

    refused = CliRunner().invoke(app, ["migrate"])
    assert refused.exit_code == 2
    assert "WAREHOUSE_URL" in refused.output
    shown = CliRunner().invoke(app, ["migrate", "--show"])  # reading the revision is the transformer's right
    assert shown.exit_code == 0 and "nothing, up to date" in shown.output, shown.output


def test_the_two_steps_may_not_share_a_login(db: psycopg.Connection, warehouse_url: str) -> None:
    same = connection_string.replaced(warehouse_url, user="misuse_both", password="x")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(settings.LOADER_URL_ENV, same)
        patch.setenv(settings.TRANSFORMER_URL_ENV, same)
        with pytest.raises(ValueError, match="must be different users"):
            migrations.migrate(db)
