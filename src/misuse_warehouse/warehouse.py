"""Which Postgres is the warehouse, and how to reach it, as which login.

One setting decides the warehouse: `WAREHOUSE_URL` (a libpq URL or key=value conninfo), else the
Airflow connection `warehouse` (as Airflow exposes it in `AIRFLOW_CONN_WAREHOUSE`, URI or JSON), else
the embedded default under `.local/pg`, started on demand. Whichever it is, it is parsed once
(misuse_warehouse.connection_string) and psycopg, dbt's profile and the displayed form all come
from those parameters; when both settings are given they must name the same connection.

Logins. That URL's login is the admin: it migrates (schema, roles, grants). A deployment that
separates duties also gives `MISUSE_WAREHOUSE_LOADER_URL` and `MISUSE_WAREHOUSE_TRANSFORMER_URL`,
non-superuser logins that are members of only `loader` or `transformer` (the migration creates them
from those URLs); loading then connects as the first, dbt and publishing as the second, and the
workers need no admin login at all. Each step still runs `SET ROLE` into its group role (objects it
creates belong to the role, not the login), but a `RESET ROLE` only gets back to a login with the
same privileges. With one URL only (the embedded demo, the tests, a small install) every step logs
in as the admin and relies on `SET ROLE` alone, which a superuser login can undo.
"""

from __future__ import annotations

import os

import psycopg
from psycopg import sql

from misuse_warehouse import connection_string, settings
from misuse_warehouse.embedded_pg import EmbeddedPostgres
from misuse_warehouse.roles import LOADER, TRANSFORMER


def embedded() -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.home() / "pg")


AIRFLOW_CONNECTION_ENV = "AIRFLOW_CONN_WAREHOUSE"


def configured_params() -> dict[str, str] | None:
    """libpq's parameters of the configured warehouse; None when neither setting is given.

    With both set (a deployment that also gives Airflow its `warehouse` connection), a difference
    would send dbt or an Airflow hook somewhere psycopg does not go: refused, naming the keys only.
    """
    url_setting = os.environ.get(settings.WAREHOUSE_URL_ENV, "").strip()
    airflow_setting = os.environ.get(AIRFLOW_CONNECTION_ENV, "").strip()
    params = connection_string.parse(url_setting, settings.WAREHOUSE_URL_ENV) if url_setting else None
    if airflow_setting:
        from_airflow = connection_string.parse_airflow(airflow_setting, AIRFLOW_CONNECTION_ENV)
        if params is None:
            return from_airflow
        differ = sorted(k for k in params.keys() | from_airflow.keys() if params.get(k) != from_airflow.get(k))
        if differ:
            raise connection_string.ConnectionStringError(
                f"{settings.WAREHOUSE_URL_ENV} and {AIRFLOW_CONNECTION_ENV} name different connections "
                f"(they differ in {', '.join(differ)}): set one, or both to the same"
            )
    return params


LOGIN_URL_ENVS = {LOADER: settings.LOADER_URL_ENV, TRANSFORMER: settings.TRANSFORMER_URL_ENV}
"""The group roles that may have a login of their own, and the setting naming it."""


def login_params(role: str) -> dict[str, str] | None:
    """libpq's parameters of `role`'s own login (loader, transformer); None when the deployment gives none."""
    env = LOGIN_URL_ENVS.get(role)
    value = os.environ.get(env, "").strip() if env else ""
    return connection_string.parse(value, env) if value else None


def has_admin_login() -> bool:
    """Whether this process was given the admin login (WAREHOUSE_URL or AIRFLOW_CONN_WAREHOUSE).

    With a step login and no admin (a Docker worker or dag-processor) nothing here may migrate; with
    neither (the embedded demo, the tests) the embedded server's login is the admin.
    """
    return configured_params() is not None or all(login_params(role) is None for role in LOGIN_URL_ENVS)


def configured_url() -> str | None:
    """The configured warehouse as a libpq conninfo (None: the embedded default)."""
    params = configured_params()
    return connection_string.conninfo(params) if params is not None else None


def params(start: bool = False) -> dict[str, str]:
    """libpq's parameters of the warehouse, configured or embedded (as `url()` chooses the login)."""
    configured = configured_params()
    if configured is not None:
        return configured
    transformer = login_params(TRANSFORMER)
    if transformer is not None:
        return transformer
    pg = embedded()
    return connection_string.parse(pg.start() if start else pg.url(), "the embedded warehouse URL")


def url(start: bool = True) -> str:
    """The warehouse's libpq connection string; starts the embedded server when nothing else is configured.

    A configured string is given back as libpq reads it (key=value); the embedded one as its URL.
    It holds the password: connect with it, never show it (`display()` is the form for people).
    """
    configured = configured_url()
    if configured:
        return configured
    transformer = login_params(TRANSFORMER)
    if transformer is not None:  # no admin login (a Docker worker): what names no role runs as the transformer
        return connection_string.conninfo(transformer)
    pg = embedded()
    return pg.start() if start else pg.url()


def role_url(role: str | None) -> str:
    """The connection string a step working as `role` logs in with: its own login if it has one, else `url()`."""
    own = login_params(role) if role else None
    return connection_string.conninfo(own) if own is not None else url()


def display(warehouse_url: str | None = None) -> str:
    """The warehouse as people see it (CLI, run results, logs): a URL without the password."""
    if warehouse_url is None:
        return connection_string.display(params())
    return connection_string.display(connection_string.parse(warehouse_url, "the warehouse URL"))


def connect(autocommit: bool = False, role: str | None = None) -> psycopg.Connection:
    """A connection; with `role`, as that role's own login when it has one, switched into the role (SET ROLE).

    Each step works as the role it needs: loading as `loader`, dbt and publishing as `transformer`.
    Given separate logins (`MISUSE_WAREHOUSE_LOADER_URL`, `..._TRANSFORMER_URL`), the step logs in
    as that role's user, so a RESET ROLE in its session gains nothing; otherwise the admin login
    (a member of the pipeline's roles; the migration sees to it) switches, and SET ROLE is all there is.
    """
    conn = psycopg.connect(role_url(role), autocommit=True)
    if role:
        try:
            conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        except psycopg.Error:
            conn.close()
            raise
    conn.autocommit = autocommit
    return conn


def dbt_env(warehouse_url: str | None = None) -> dict[str, str]:
    """dbt's profiles.yml variables from libpq's parameters of the URL (default: the warehouse's), unconnected."""
    if warehouse_url is None:
        parsed = login_params(TRANSFORMER) or params()  # dbt logs in as the transformer's own login if any
    else:
        parsed = connection_string.parse(warehouse_url, "the warehouse URL")
    # dbt works as the transformer role, whatever the login (profiles.yml `role`)
    return connection_string.dbt_env(parsed) | {"WAREHOUSE_ROLE": TRANSFORMER}
