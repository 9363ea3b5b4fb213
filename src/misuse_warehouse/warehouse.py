"""Which Postgres is the warehouse, and how to reach it.

One setting decides: `WAREHOUSE_URL` (a libpq URL or key=value conninfo), else the Airflow
connection `warehouse` (as Airflow exposes it in `AIRFLOW_CONN_WAREHOUSE`, URI or JSON), else the
embedded default under `.local/pg`, started on demand. Whichever it is, it is parsed once
(misuse_warehouse.connection_string) and psycopg, dbt's profile and the displayed form all come
from those parameters; when both settings are given they must name the same connection.
"""

from __future__ import annotations

import os

import psycopg
from psycopg import sql

from misuse_warehouse import connection_string, settings
from misuse_warehouse.embedded_pg import EmbeddedPostgres
from misuse_warehouse.roles import TRANSFORMER


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


def configured_url() -> str | None:
    """The configured warehouse as a libpq conninfo (None: the embedded default)."""
    params = configured_params()
    return connection_string.conninfo(params) if params is not None else None


def params(start: bool = False) -> dict[str, str]:
    """libpq's parameters of the warehouse, configured or embedded."""
    configured = configured_params()
    if configured is not None:
        return configured
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
    pg = embedded()
    return pg.start() if start else pg.url()


def display(warehouse_url: str | None = None) -> str:
    """The warehouse as people see it (CLI, run results, logs): a URL without the password."""
    if warehouse_url is None:
        return connection_string.display(params())
    return connection_string.display(connection_string.parse(warehouse_url, "the warehouse URL"))


def connect(autocommit: bool = False, role: str | None = None) -> psycopg.Connection:
    """A connection; with `role`, switched into that group role (SET ROLE) for least privilege.

    The login of the warehouse URL is a member of the pipeline's roles (the migration sees to it);
    each step works as the role it needs: loading as `loader`, dbt and publishing as `transformer`.
    """
    conn = psycopg.connect(url(), autocommit=True)
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
    parsed = params() if warehouse_url is None else connection_string.parse(warehouse_url, "the warehouse URL")
    # dbt works as the transformer role, whatever the login (profiles.yml `role`)
    return connection_string.dbt_env(parsed) | {"WAREHOUSE_ROLE": TRANSFORMER}
