"""Any libpq connection string reaches the same server, the same way, from psycopg and from dbt.

Real servers: the session's embedded Postgres over its unix socket, and a second embedded cluster
with SSL on (a certificate authority, server and client certificates made here with
`cryptography`). dbt runs as the pipeline runs it (`orchestration.run_dbt`: misuse-warehouse-dbt,
the profile's variables from `warehouse.dbt_env()` of WAREHOUSE_URL or AIRFLOW_CONN_WAREHOUSE)
and builds one model that records how its own session is connected: SSL or not
(`pg_stat_ssl`), socket or TCP, which login. psycopg connects through `warehouse.connect()`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from ssl_postgres import PASSWORD, SslPostgres

from misuse_warehouse import connection_string, orchestration, roles, settings, warehouse
from misuse_warehouse.connection_string import ConnectionStringError

SECRET = "s3cret-Pa55word"
CERT_LOGIN = "cert_login"
PROJECT = """name: scratch_connection
version: "1.0"
profile: misuse_warehouse
models:
  scratch_connection:
    +materialized: table
"""
# how the model's own session is connected, as the server sees it
MODEL = """select
    (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as ssl,
    inet_server_addr() is null as over_socket,
    session_user::text as login,
    current_database()::text as database
"""
SESSION_QUERY = MODEL
# dbt builds as transformer (`set role`), and pg_stat_ssl hides the columns of a session the current
# role has no rights over, its own login's included: the role may read them while these tests run
READ_STATS = f"grant pg_read_all_stats to {roles.TRANSFORMER}"


@pytest.fixture(scope="module")
def ssl_server() -> Iterator[SslPostgres]:
    """Debian's PostgreSQL with SSL on, the pipeline's transformer role and schema for dbt to build in."""
    server = SslPostgres(client_login=CERT_LOGIN)
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f"create role {roles.TRANSFORMER} nologin")
            conn.execute(f"create schema staging authorization {roles.TRANSFORMER}")
            conn.execute(f"create role {CERT_LOGIN} login in role {roles.TRANSFORMER}")
            conn.execute(READ_STATS)
            assert conn.execute("show ssl").fetchone() == ("on",)
        yield server
    finally:
        server.stop()


def ssl_url(server: SslPostgres, **params: str) -> str:
    return connection_string.as_url(connection_string.parse(server.url()) | params)


@pytest.fixture
def only_setting(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No warehouse setting but the one the test gives, and dbt's variables from it alone."""
    names = connection_string.DBT_PROFILE_VARIABLES.values()
    for name in (settings.WAREHOUSE_URL_ENV, warehouse.AIRFLOW_CONNECTION_ENV, *names):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def dbt_session(tmp_path: Path) -> tuple[bool, bool, str, str]:
    """dbt, as the pipeline runs it against the configured warehouse, builds a model of its own session."""
    project = tmp_path / "scratch_connection"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(PROJECT)
    shutil.copy(settings.DBT_PROJECT_DIR / "profiles.yml", project / "profiles.yml")
    (project / "models" / "scratch_connection.sql").write_text(MODEL)
    done = orchestration.run_dbt(["build", "--threads", "1"], tmp_path / "target", project)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    with warehouse.connect(autocommit=True) as conn:
        row = conn.execute("select ssl, over_socket, login, database from staging.scratch_connection").fetchone()
        conn.execute("drop table staging.scratch_connection")
    return row


def psycopg_session() -> tuple[bool, bool, str, str]:
    """psycopg, as the pipeline connects (`warehouse.connect()`), reports its own session."""
    with warehouse.connect() as conn:
        return conn.execute(SESSION_QUERY).fetchone()


# (a) a socket directory in the query string


def test_socket_url_with_its_host_in_the_query_string(
    db: psycopg.Connection, only_setting: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pg = warehouse.embedded()
    socket_url = f"postgresql://postgres@/warehouse?host={pg.socket_dir}&port={pg.port()}"
    only_setting.setenv(settings.WAREHOUSE_URL_ENV, socket_url)

    assert warehouse.dbt_env()["WAREHOUSE_HOST"] == str(pg.socket_dir)  # was 127.0.0.1 (urlsplit)
    assert psycopg_session() == (False, True, "postgres", "warehouse")
    db.execute(READ_STATS)
    db.commit()
    try:
        assert dbt_session(tmp_path) == (False, True, "postgres", "warehouse")
    finally:
        db.execute(READ_STATS.replace("grant", "revoke").replace(" to ", " from "))
        db.commit()


# (b) a key=value conninfo


def test_key_value_conninfo(ssl_server: SslPostgres, only_setting: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Quoted values, and sslmode=disable against a server that offers SSL: both clients go without."""
    conninfo = (
        f"host=127.0.0.1 port={ssl_server.port} dbname=warehouse user=postgres password='{PASSWORD}' "
        "sslmode=disable application_name='misuse warehouse test'"
    )
    only_setting.setenv(settings.WAREHOUSE_URL_ENV, conninfo)

    assert psycopg_session() == (False, False, "postgres", "warehouse")
    assert dbt_session(tmp_path) == (False, False, "postgres", "warehouse")


# (c) SSL


def test_sslmode_require(ssl_server: SslPostgres, only_setting: pytest.MonkeyPatch, tmp_path: Path) -> None:
    only_setting.setenv(settings.WAREHOUSE_URL_ENV, ssl_url(ssl_server, sslmode="require"))

    assert psycopg_session() == (True, False, "postgres", "warehouse")
    assert dbt_session(tmp_path) == (True, False, "postgres", "warehouse")


def test_verify_full_checks_the_server_against_sslrootcert(
    ssl_server: SslPostgres, only_setting: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The right CA: SSL for both. Another CA: both refuse, so dbt really was given sslrootcert."""
    only_setting.setenv(
        settings.WAREHOUSE_URL_ENV, ssl_url(ssl_server, sslmode="verify-full", sslrootcert=str(ssl_server.ca))
    )
    assert psycopg_session() == (True, False, "postgres", "warehouse")
    assert dbt_session(tmp_path / "right") == (True, False, "postgres", "warehouse")

    only_setting.setenv(
        settings.WAREHOUSE_URL_ENV, ssl_url(ssl_server, sslmode="verify-full", sslrootcert=str(ssl_server.wrong_ca))
    )
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg_session()
    project = tmp_path / "wrong"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(PROJECT)
    shutil.copy(settings.DBT_PROJECT_DIR / "profiles.yml", project / "profiles.yml")
    (project / "models" / "scratch_connection.sql").write_text(MODEL)
    refused = orchestration.run_dbt(["build", "--threads", "1"], project / "target", project)
    assert refused.returncode != 0
    assert "certificate verify failed" in refused.stdout + refused.stderr


def test_client_certificate_through_the_airflow_connection(
    ssl_server: SslPostgres, only_setting: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Airflow's JSON form, no password: the login is proved by sslcert and sslkey, which dbt must be given."""
    connection = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": ssl_server.port,
        "login": CERT_LOGIN,
        "schema": "warehouse",
        "extra": {
            "sslmode": "verify-full",
            "sslrootcert": str(ssl_server.ca),
            "sslcert": str(ssl_server.client_cert),
            "sslkey": str(ssl_server.client_key),
        },
    }
    only_setting.setenv(warehouse.AIRFLOW_CONNECTION_ENV, json.dumps(connection))

    assert psycopg_session() == (True, False, CERT_LOGIN, "warehouse")
    assert dbt_session(tmp_path) == (True, False, CERT_LOGIN, "warehouse")


# parsing, refusals and what people see


def test_a_url_and_its_display_mean_what_libpq_reads() -> None:
    cases = [
        "postgresql://u%40x:p%2Fw@db.example.org:6432/ware%20house?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        "postgresql://postgres@/warehouse?host=/var/run/postgresql&port=5433",
        "postgresql://u@h1:5432,h2:5432/warehouse?connect_timeout=5",
        "postgresql://[::1]:5433/warehouse",
        "postgresql:///warehouse",
    ]
    for url in cases:
        params = connection_string.parse(url)
        assert connection_string.parse(connection_string.as_url(params)) == params, url
        shown = connection_string.display(params)
        assert connection_string.parse(shown) == {k: v for k, v in params.items() if k != "password"}
    assert connection_string.parse(cases[1]) == {
        "user": "postgres",
        "dbname": "warehouse",
        "host": "/var/run/postgresql",
        "port": "5433",
    }


def test_dbt_gets_libpqs_defaults_where_the_string_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq fills an omitted host, user or database from PGHOST, PGUSER, ...: dbt must get the same."""
    monkeypatch.setenv("PGHOST", "/run/elsewhere")
    monkeypatch.setenv("PGUSER", "from_environment")
    monkeypatch.delenv("PGDATABASE", raising=False)
    env = connection_string.dbt_env(connection_string.parse("postgresql://?sslmode=require"))
    assert env["WAREHOUSE_HOST"] == "/run/elsewhere"
    assert env["WAREHOUSE_USER"] == env["WAREHOUSE_DB"] == "from_environment"
    assert env["WAREHOUSE_SSLMODE"] == "require" and env["WAREHOUSE_SSLROOTCERT"] == ""


@pytest.mark.parametrize(
    "bad",
    [
        f"postgresql://u:{SECRET}%zz@h/db",  # a broken percent-encoding, libpq quotes the token
        f"http://u:{SECRET}@h/db",  # not a postgresql URL: libpq quotes all of it
        f"host=h password {SECRET}",
        f"host=h password='{SECRET}",
        f"postgresql://u:{SECRET}@h/db?sslmod=require",
    ],
)
def test_bad_input_is_refused_clearly_without_the_password(bad: str) -> None:
    with pytest.raises(ConnectionStringError, match="WAREHOUSE_URL is not a libpq connection string") as refused:
        connection_string.parse(bad)
    assert SECRET not in str(refused.value)


def test_parameters_dbt_cannot_take_are_refused_by_name(only_setting: pytest.MonkeyPatch, tmp_path: Path) -> None:
    only_setting.setenv(
        settings.WAREHOUSE_URL_ENV,
        f"postgresql://u:{SECRET}@h/db?sslmode=verify-full&sslcrl=/etc/crl.pem&target_session_attrs=read-write",
    )
    with pytest.raises(ConnectionStringError, match="sets sslcrl, target_session_attrs, which dbt") as refused:
        warehouse.connect()
    assert SECRET not in str(refused.value)
    with pytest.raises(ConnectionStringError, match="dbt cannot take a different port per host"):
        connection_string.parse("postgresql://h1:5432,h2:5433/db")
    with pytest.raises(ConnectionStringError, match='invalid connection option "cursor"'):
        connection_string.parse_airflow('{"conn_type": "postgres", "host": "h", "extra": {"cursor": "dictcursor"}}')
    with pytest.raises(ConnectionStringError, match="not a postgres connection"):
        connection_string.parse_airflow(f"mysql://u:{SECRET}@h/db")


def test_both_settings_must_name_the_same_connection(only_setting: pytest.MonkeyPatch) -> None:
    url = f"postgresql://u:{SECRET}@db.example.org:5432/warehouse?sslmode=require"
    only_setting.setenv(settings.WAREHOUSE_URL_ENV, url)
    only_setting.setenv(warehouse.AIRFLOW_CONNECTION_ENV, url.replace("postgresql://", "postgres://"))
    assert connection_string.parse(warehouse.url()) == connection_string.parse(url)

    only_setting.setenv(warehouse.AIRFLOW_CONNECTION_ENV, url.replace("require", "disable").replace(SECRET, "other"))
    with pytest.raises(ConnectionStringError, match=r"differ in password, sslmode") as refused:
        warehouse.url()
    assert SECRET not in str(refused.value) and "other" not in str(refused.value)


def test_the_cli_and_the_run_show_the_warehouse_without_its_password(
    db: psycopg.Connection, warehouse_url: str, only_setting: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from misuse_warehouse import cli, pipeline

    with_secret = connection_string.replaced(warehouse_url, password=SECRET)
    only_setting.setenv(settings.WAREHOUSE_URL_ENV, with_secret)
    printed = CliRunner().invoke(cli.app, ["url"])
    assert printed.exit_code == 0, printed.output
    assert SECRET not in printed.output
    assert connection_string.parse(printed.output.strip()) == {
        k: v for k, v in connection_string.parse(warehouse_url).items() if k != "password"
    }

    only_setting.setenv(settings.WAREHOUSE_URL_ENV, warehouse_url)  # the real password, to connect
    shown = connection_string.parse(pipeline.prepare()["warehouse"])
    assert "password" not in shown and shown["host"] == "127.0.0.1"
