"""Secrets come from the environment or Airflow connections, never from the repository.

Every secret (the pseudonymisation key, the survey API key, database passwords) is
looked up in this order:

1. its ``XOFLOW_*`` environment variable (for the CLI, tests, a container's env);
2. its Airflow connection: under Airflow (a task process, where ``airflow`` is already
   imported) through ``airflow.sdk.Connection.get``, so any configured secrets backend
   works (environment, metadata DB, Vault...) and Airflow masks the password in task
   logs; elsewhere from the ``AIRFLOW_CONN_<CONN_ID>`` environment variable, in either
   of Airflow's formats (URI or JSON), without importing Airflow.

| secret | environment variable | Airflow connection (field) |
|---|---|---|
| pseudonymisation key | ``XOFLOW_PSEUDONYM_KEY`` | ``xoflow_pseudonym_key`` (password) |
| survey API key (+ URL) | ``XOFLOW_SURVEY_API_KEY`` (``..._URL``) | ``xoflow_survey_api`` (password; host) |
| case database | ``XOFLOW_CASE_DB_URL`` | ``xoflow_case_db`` (the whole connection) |
| warehouse | ``XOFLOW_WAREHOUSE_URL`` | ``xoflow_warehouse`` (the whole connection) |

Secrets found in the environment are registered with Airflow's log masker too when
running under Airflow. Nothing here logs or formats a secret into a message.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

PSEUDONYM_KEY_ENV = "XOFLOW_PSEUDONYM_KEY"
PSEUDONYM_KEY_CONNECTION = "xoflow_pseudonym_key"
SURVEY_API_KEY_ENV = "XOFLOW_SURVEY_API_KEY"
SURVEY_API_CONNECTION = "xoflow_survey_api"
CASE_DB_CONNECTION = "xoflow_case_db"
WAREHOUSE_CONNECTION = "xoflow_warehouse"

# Airflow connection types and the SQLAlchemy driver that speaks them.
SQLALCHEMY_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mssql": "mssql+pymssql",
}

# Only for `xoflow demo` (and the demo survey server): never used unless set on purpose.
DEMO_SECRETS = {PSEUDONYM_KEY_ENV: "demo-pseudonym-key", SURVEY_API_KEY_ENV: "demo-key"}


class MissingSecret(RuntimeError):
    """A secret the run needs is configured nowhere (message says where to put it)."""


@dataclass(frozen=True)
class ConnectionFields:
    """The parts of an Airflow connection xoflow uses; ``repr`` never shows the password."""

    conn_id: str
    conn_type: str = ""
    host: str = ""
    login: str = ""
    password: str = field(default="", repr=False)
    schema: str = ""
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


def connection_env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def parse_connection(conn_id: str, value: str) -> ConnectionFields:
    """An ``AIRFLOW_CONN_*`` value, URI or JSON, read the way Airflow reads it."""
    value = value.strip()
    if value.startswith("{"):
        try:
            spec = json.loads(value)
        except json.JSONDecodeError as exc:  # the message would quote the value: keep it out
            raise ValueError(f"{connection_env_name(conn_id)} is not valid JSON "
                             f"(line {exc.lineno} column {exc.colno})") from None
        extra = spec.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        return ConnectionFields(
            conn_id, _normal_type(str(spec.get("conn_type") or "")), str(spec.get("host") or ""),
            str(spec.get("login") or ""), str(spec.get("password") or ""), str(spec.get("schema") or ""),
            int(spec["port"]) if spec.get("port") not in (None, "") else None, dict(extra))
    if value.count("://") > 2 or "://" not in value:
        raise ValueError(f"{connection_env_name(conn_id)} is neither a connection URI nor JSON")
    scheme = urlsplit(value).scheme
    rest = value.replace(f"{scheme}://", "", 1)
    protocol = ""
    if "://" in rest:  # host with its own protocol: http://https%3A%2F%2Fhost or https://...
        protocol, rest = rest.split("://", 1)
    parts = urlsplit(f"//{rest}")
    host = unquote(parts.hostname or "")
    if protocol and host:
        host = f"{protocol}://{host}"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra = json.loads(query["__extra__"]) if "__extra__" in query else query
    return ConnectionFields(
        conn_id, _normal_type(scheme), host, unquote(parts.username or ""), unquote(parts.password or ""),
        unquote(parts.path[1:]) if parts.path else "", parts.port, dict(extra))


def _normal_type(conn_type: str) -> str:
    return "postgres" if conn_type == "postgresql" else conn_type.replace("-", "_")


def _under_airflow(env: Mapping[str, str]) -> bool:
    """Ask Airflow itself only in a process that already runs it, and for the real environment."""
    return env is os.environ and "airflow.sdk" in sys.modules


def airflow_connection(conn_id: str, env: Mapping[str, str] | None = None) -> ConnectionFields | None:
    """The Airflow connection ``conn_id``, or ``None`` when it is not defined."""
    env = os.environ if env is None else env
    if _under_airflow(env):
        try:
            return _from_airflow(conn_id)
        except LookupError:
            return None
        except RuntimeError:  # no task context (a script that imported airflow): environment only
            pass
    value = env.get(connection_env_name(conn_id))
    return parse_connection(conn_id, value) if value else None


def _from_airflow(conn_id: str) -> ConnectionFields:
    """Through Airflow's own lookup; ``LookupError`` if undefined, ``RuntimeError`` if it cannot ask."""
    try:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError as exc:
        raise RuntimeError("no Airflow task SDK") from exc
    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        raise LookupError(conn_id) from None
    except Exception as exc:
        raise RuntimeError(f"cannot ask Airflow for {conn_id!r}: {type(exc).__name__}") from None
    if conn is None:
        raise LookupError(conn_id)
    return ConnectionFields(conn_id, conn.conn_type or "", conn.host or "", conn.login or "",
                            conn.password or "", conn.schema or "", conn.port, dict(conn.extra_dejson or {}))


def mask(secret: str) -> None:
    """Tell Airflow's log masker about a secret, when running under Airflow."""
    if secret and "airflow.sdk" in sys.modules:
        try:
            from airflow.sdk.log import mask_secret
        except ImportError:
            return
        mask_secret(secret)


def secret(env: Mapping[str, str], env_var: str, conn_id: str, part: str = "password") -> str:
    """A secret from ``env_var`` or the ``part`` of connection ``conn_id``; ``""`` when neither is set."""
    value = env.get(env_var, "")
    if value:
        if env is os.environ:
            mask(value)
        return value
    conn = airflow_connection(conn_id, env)
    return getattr(conn, part, "") if conn else ""


def sqlalchemy_url(conn: ConnectionFields) -> str:
    """A SQLAlchemy URL for a database connection (``extra.sqlalchemy_driver`` overrides the driver)."""
    driver = conn.extra.get("sqlalchemy_driver") or SQLALCHEMY_DRIVERS.get(conn.conn_type, conn.conn_type)
    driver = str(driver)
    if not driver:
        raise ValueError(f"Airflow connection {conn.conn_id!r} has no conn_type")
    user = quote(conn.login, safe="") if conn.login else ""
    if conn.password:
        user += ":" + quote(conn.password, safe="")
    netloc = (f"{user}@" if user else "") + conn.host + (f":{conn.port}" if conn.port else "")
    query = "&".join(f"{quote(str(k))}={quote(str(v))}" for k, v in conn.extra.items()
                     if k != "sqlalchemy_driver")
    return f"{driver}://{netloc}/{quote(conn.schema, safe='/')}" + (f"?{query}" if query else "")


def database_url(env: Mapping[str, str], env_var: str, conn_id: str) -> str:
    """A database URL from ``env_var`` or the Airflow connection ``conn_id``; ``""`` when neither is set."""
    value = env.get(env_var, "")
    if not value:
        conn = airflow_connection(conn_id, env)
        if conn is None:
            return ""
        value = sqlalchemy_url(conn)
    if env is os.environ:
        password = urlsplit(value).password
        if password:
            mask(unquote(password))
    return value


def http_url(conn: ConnectionFields) -> str:
    """Base URL of an HTTP connection: host (``https://`` unless it names a scheme), port, path."""
    if not conn.host:
        return ""
    host = conn.host if "://" in conn.host else f"https://{conn.host}"
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.lstrip('/')}" if conn.schema else ""
    return f"{host.rstrip('/')}{port}{path}"


def survey_api(env: Mapping[str, str]) -> tuple[str, str]:
    """``(url, key)`` of the survey API from the environment or its connection (``""`` if unset)."""
    url, key = env.get("XOFLOW_SURVEY_API_URL", ""), env.get(SURVEY_API_KEY_ENV, "")
    if not (url and key):
        conn = airflow_connection(SURVEY_API_CONNECTION, env)
        if conn is not None:
            url, key = url or http_url(conn), key or conn.password
    if env is os.environ:
        mask(key)
    return url, key


def use_demo_secrets(env: MutableMapping[str, str] | None = None) -> list[str]:
    """Give the demo its throw-away keys where none is configured; returns the variables set."""
    env = os.environ if env is None else env
    chosen = []
    for name, value in DEMO_SECRETS.items():
        if not env.get(name):
            env[name] = value
            chosen.append(name)
    return chosen
