"""The warehouse's connection string, read once by libpq's own rules and handed to every client.

psycopg gives a connection string to libpq as it is, so libpq's rules decide what it means: a
socket directory in the query string (`postgresql://user@/db?host=/var/run/postgresql`), a
key=value conninfo, percent-encoding, several hosts, every SSL parameter. dbt takes a profile of
named fields instead, and splitting the URL ourselves (`urlsplit`) once sent dbt to
127.0.0.1:5432 while psycopg reached the socket, and dropped `sslmode` and the certificates on the
way. So every consumer here starts from the dictionary libpq itself parsed
(`psycopg.conninfo.conninfo_to_dict`): psycopg gets it back as a conninfo, dbt's profile gets its
fields from it, and an Airflow connection is read by Airflow's own parser into the same keys.

A parameter dbt-postgres cannot take is refused before anything connects, naming it: dbt would
otherwise reach the warehouse differently from psycopg (without a CRL check, say). A password is
never part of an error message or of the form shown to people (`display`).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class ConnectionStringError(ValueError):
    """The warehouse's connection setting cannot be used as it is; the message says why, never the password."""


# libpq keyword -> the variable dbt_project/profiles.yml reads it from (every field dbt-postgres 1.11's
# PostgresCredentials passes to libpq; `role` is the pipeline's, not the connection string's)
DBT_PROFILE_VARIABLES = {
    "host": "WAREHOUSE_HOST",
    "port": "WAREHOUSE_PORT",
    "user": "WAREHOUSE_USER",
    "password": "WAREHOUSE_PASSWORD",
    "dbname": "WAREHOUSE_DB",
    "sslmode": "WAREHOUSE_SSLMODE",
    "sslcert": "WAREHOUSE_SSLCERT",
    "sslkey": "WAREHOUSE_SSLKEY",
    "sslrootcert": "WAREHOUSE_SSLROOTCERT",
    "connect_timeout": "WAREHOUSE_CONNECT_TIMEOUT",
    "keepalives_idle": "WAREHOUSE_KEEPALIVES_IDLE",
    "application_name": "WAREHOUSE_APPLICATION_NAME",
}
# Dropped for dbt, safely: only a label for the server's views when no application_name is set,
# and dbt always sets one (`dbt`, or the connection string's application_name).
DROPPED_FOR_DBT = frozenset({"fallback_application_name"})
# Defaults libpq takes from the environment (PGHOST, PGUSER, ...) or its build when the string omits
# them. dbt always passes these fields, and an explicit empty value would hide the environment's.
ALWAYS_PASSED_TO_DBT = ("host", "port", "user", "password", "dbname")
# libpq's messages quote the offending text; only for these is it a keyword, never a secret
_KEYWORD_MESSAGES = ("invalid URI query parameter", "invalid connection option")


def parse(value: str, source: str = "WAREHOUSE_URL") -> dict[str, str]:
    """A libpq URL or key=value conninfo as libpq reads it, checked for what dbt can take."""
    return dict(_parse(value, source))


@lru_cache(maxsize=16)
def _parse(value: str, source: str) -> tuple[tuple[str, str], ...]:
    try:
        params = conninfo_to_dict(value)
    except psycopg.ProgrammingError as error:
        raise ConnectionStringError(
            f"{source} is not a libpq connection string ({_redacted(str(error))}); "
            "expected postgresql://user:password@host:port/dbname?param=value or key=value pairs"
        ) from None
    checked = {name: str(setting) for name, setting in params.items()}
    check_for_dbt(checked, source)
    return tuple(checked.items())


def parse_airflow(value: str, source: str = "AIRFLOW_CONN_WAREHOUSE") -> dict[str, str]:
    """An Airflow connection (URI or JSON, as Airflow reads AIRFLOW_CONN_*) as libpq keywords.

    Airflow's own parser reads it, so the connection means to us what it means to Airflow: login is
    libpq's user, schema its dbname, and every extra a libpq parameter (checked by libpq's parser).
    """
    return dict(_parse_airflow(value, source))


@lru_cache(maxsize=16)
def _parse_airflow(value: str, source: str) -> tuple[tuple[str, str], ...]:
    from airflow.sdk.definitions.connection import Connection

    try:
        if value.lstrip().startswith("{"):
            connection = Connection.from_json(value, conn_id="warehouse")
        else:
            connection = Connection.from_uri(value, conn_id="warehouse")
        extra = connection.extra_dejson
    except json.JSONDecodeError as error:
        raise ConnectionStringError(f"{source} is not valid JSON: {error.msg} at character {error.pos}") from None
    except Exception as error:  # Airflow's messages repeat the whole URI, password included
        raise ConnectionStringError(
            f"{source} is not an Airflow connection URI or JSON ({type(error).__name__}); "
            "expected postgres://login:password@host:port/schema?param=value or Airflow's JSON form"
        ) from None
    if connection.conn_type != "postgres":
        raise ConnectionStringError(
            f"{source} is not a postgres connection (type {connection.conn_type or 'missing'!r}); Airflow reads "
            "a URI (postgres://...) or JSON there, not key=value pairs"
        )
    fields = {
        "host": connection.host,
        "port": connection.port,
        "user": connection.login,
        "password": connection.password,
        "dbname": connection.schema,
    }
    nested = sorted(name for name, setting in extra.items() if isinstance(setting, dict | list))
    if nested:
        raise ConnectionStringError(f"{source}: extras {', '.join(nested)} are not libpq parameters")
    params = {name: str(setting) for name, setting in fields.items() if setting not in (None, "")}
    params |= {name: _text(setting) for name, setting in extra.items() if setting is not None}
    try:
        make_conninfo("", **params)  # libpq's own check of every keyword
    except psycopg.ProgrammingError as error:
        message = _redacted(str(error))
        raise ConnectionStringError(f"{source}: {message} (an extra that is not a libpq parameter)") from None
    check_for_dbt(params, source)
    return tuple(params.items())


def check_for_dbt(params: dict[str, str], source: str) -> None:
    """Refuse what dbt-postgres cannot take, naming it, so psycopg and dbt never connect differently."""
    unsupported = sorted(set(params) - DBT_PROFILE_VARIABLES.keys() - DROPPED_FOR_DBT)
    if unsupported:
        raise ConnectionStringError(
            f"{source} sets {', '.join(unsupported)}, which dbt-postgres cannot pass to its connection "
            f"(it takes {', '.join(DBT_PROFILE_VARIABLES)}); where libpq has an environment variable for one "
            "(PGSSLCRL, PGTARGETSESSIONATTRS, ...) set that instead: psycopg and dbt both read it"
        )
    if "port" in params:
        _one_port(params["port"], "5432", source)
    for name in ("connect_timeout", "keepalives_idle"):
        if name in params and not params[name].strip().isdigit():
            raise ConnectionStringError(f"{source}: {name} must be a whole number for dbt (got {params[name]!r})")


def _one_port(port: str, default: str, source: str) -> str:
    """dbt's one port for libpq's port list (`5432`, or `5432,5432` / `,` for a host list): one number or refused."""
    ports = {entry.strip() or default for entry in port.split(",")}
    if len(ports) != 1 or not next(iter(ports)).isdigit():
        raise ConnectionStringError(
            f"{source}: port must be one whole number for dbt (got {port!r}); dbt cannot take a different port per host"
        )
    return ports.pop()


def conninfo(params: dict[str, str]) -> str:
    """The parameters as a key=value conninfo, for psycopg and psql."""
    return make_conninfo("", **params)


def replaced(value: str, **changes: str) -> str:
    """The connection string `value` with some parameters changed (another database, another login), as a conninfo."""
    return conninfo(parse(value, "the connection string") | changes)


def dbt_env(params: dict[str, str]) -> dict[str, str]:
    """The variables dbt_project/profiles.yml reads, from libpq's parameters.

    Fields dbt always passes (host, port, user, password, dbname) get the value libpq would use
    when the string omits them: the environment's (PGHOST, PGUSER, PGPASSWORD, ...) or libpq's
    build default; an empty host is libpq's default socket directory, as for psycopg. Optional
    ones left out are empty, which the profile turns into "not given" (`or none`), so dbt's libpq
    reads the same environment (PGSSLMODE, ...) as psycopg's does. Every variable is always in the
    result, so it replaces whatever an earlier connection left in the environment.
    """
    check_for_dbt(params, "the warehouse connection")
    defaults = _libpq_defaults()
    effective = {name: defaults.get(name, "") for name in ALWAYS_PASSED_TO_DBT} | params
    effective["dbname"] = effective["dbname"] or effective["user"]
    effective["port"] = _one_port(effective["port"], defaults.get("port", "5432"), "the warehouse connection")
    return {variable: effective.get(name, "") for name, variable in DBT_PROFILE_VARIABLES.items()}


def display(params: dict[str, str]) -> str:
    """A libpq URL of the connection without its password: for people, logs and run results."""
    return as_url({name: setting for name, setting in params.items() if name != "password"})


def as_url(params: dict[str, str]) -> str:
    """The parameters as a libpq URL, meaning what they mean; a socket directory stays in the query string."""
    rest = dict(params)
    user, password, dbname = rest.pop("user", ""), rest.pop("password", None), rest.pop("dbname", "")
    netloc = _authority_hosts(rest)
    if user or password is not None:
        login = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        netloc = f"{login}@{netloc}"
    query = f"?{urlencode(rest, quote_via=quote, safe='/')}" if rest else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{query}"


def _authority_hosts(rest: dict[str, str]) -> str:
    """`host[:port][,host[:port]]` taken out of `rest` when every host is a name or an address, else ''."""
    if "host" not in rest:
        return ""
    hosts = rest["host"].split(",")
    ports = rest["port"].split(",") if "port" in rest else [""] * len(hosts)
    names = all(re.fullmatch(r"[A-Za-z0-9.\-_:]+", host) for host in hosts)
    if not names or len(ports) != len(hosts) or not all(port.isdigit() or not port for port in ports):
        return ""
    rest.pop("host")
    rest.pop("port", None)
    return ",".join(
        (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
        for host, port in zip(hosts, ports, strict=True)
    )


def _libpq_defaults() -> dict[str, str]:
    return {
        option.keyword.decode(): option.val.decode()
        for option in psycopg.pq.Conninfo.get_defaults()
        if option.val is not None
    }


def _redacted(message: str) -> str:
    """libpq's message with any quoted text it took from the string removed (it may be the password)."""
    message = message.strip().splitlines()[0] if message.strip() else message
    if message.startswith(_KEYWORD_MESSAGES):
        return message
    return re.sub(r'"[^"]*"', lambda quoted: quoted[0] if quoted[0] == '"="' else '"***"', message)


def _text(setting: Any) -> str:
    if isinstance(setting, bool):
        return "1" if setting else "0"
    return str(setting)
