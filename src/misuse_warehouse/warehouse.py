"""Which Postgres is the warehouse, and how to reach it.

One setting decides: `WAREHOUSE_URL`, else the Airflow connection `warehouse`
(as Airflow exposes it in `AIRFLOW_CONN_WAREHOUSE`), else the embedded default
under `.local/pg`, started on demand.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from misuse_warehouse import settings
from misuse_warehouse.embedded_pg import EmbeddedPostgres
from misuse_warehouse.roles import TRANSFORMER


def embedded() -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.home() / "pg")


def configured_url() -> str | None:
    for name in (settings.WAREHOUSE_URL_ENV, "AIRFLOW_CONN_WAREHOUSE"):
        value = os.environ.get(name)
        if value:
            return value.replace("postgres://", "postgresql://", 1)
    return None


def url(start: bool = True) -> str:
    """The warehouse URL; starts the embedded server when nothing else is configured."""
    configured = configured_url()
    if configured:
        return configured
    pg = embedded()
    return pg.start() if start else pg.url()


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
    """Environment for dbt's profiles.yml, derived from the URL without connecting."""
    parts = urlsplit(warehouse_url or url(start=False))
    return {
        "WAREHOUSE_HOST": parts.hostname or "127.0.0.1",
        "WAREHOUSE_PORT": str(parts.port or 5432),
        "WAREHOUSE_USER": unquote(parts.username or "postgres"),
        "WAREHOUSE_PASSWORD": unquote(parts.password or ""),
        "WAREHOUSE_DB": parts.path.lstrip("/") or "warehouse",
        # dbt works as the transformer role, whatever the login (profiles.yml `role`)
        "WAREHOUSE_ROLE": TRANSFORMER,
    }
