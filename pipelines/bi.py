"""The BI layer: plain-named views in schema ``bi`` and the read-only role ``xoflow_bi``.

Each ``warehouse/views/<name>.sql`` is one SELECT over marts, curated facts and
dimensions; it becomes the view ``bi.<name>``. Its leading ``--`` lines become the
view's comment; every column gets the comment of the model column of the same name
(from ``pipelines/model.py``, itself written from the contracts), looked up in the
tables in the order the SELECT names them, unless the file says
``-- column <name>: <comment>``. A column left without a comment is an error, so BI users
always see what a column means.

The views leave out what BI users must not see: quarantined records as received, ledger
failure messages (both may quote raw values) and customer keys. Free text in them
(survey comments, feedback) is redacted before it is loaded.

On PostgreSQL the role ``xoflow_bi`` (``warehouse/roles/xoflow_bi.sql``) may read the
``bi`` views and the mart tables and nothing else: the grants are re-applied on every
run, in the transaction that recreates the views, after revoking anything else granted
on the warehouse's tables. DuckDB has no roles; there the views are the whole BI layer.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa

from pipelines.contracts import SAFE_NAME
from pipelines.model import MARTS, metadata

log = logging.getLogger(__name__)

BI_SCHEMA = "bi"
BI_ROLE = "xoflow_bi"
_COLUMN_NOTE = re.compile(r"^--\s*column\s+([a-z][a-z0-9_]*)\s*:\s*(.+)$")


class ViewDefinition:
    """One ``warehouse/views/<name>.sql`` file: the view's name, comment, column notes and SELECT."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.stem
        if not SAFE_NAME.match(self.name):
            raise ValueError(f"{path}: view name {self.name!r} must match {SAFE_NAME.pattern}")
        lines = path.read_text().splitlines()
        header = []
        for line in lines:
            if not line.startswith("--"):
                break
            header.append(line)
        self.notes = {m[1]: m[2].strip() for m in map(_COLUMN_NOTE.match, header) if m}
        self.comment = " ".join(line.removeprefix("--").strip() for line in header
                                if not _COLUMN_NOTE.match(line)).strip()
        self.select = "\n".join(lines[len(header):]).strip().rstrip(";")
        if not self.comment or not self.select:
            raise ValueError(f"{path}: a view file is leading -- comment lines, then one SELECT")

    @cached_property
    def source_tables(self) -> list[sa.Table]:
        """Model tables the SELECT names, in the order it first names them."""
        found = []
        for table in metadata.tables.values():
            match = re.search(rf"\b{re.escape(table.name)}\b", self.select)
            if match:
                found.append((match.start(), table))
        return [table for _, table in sorted(found, key=lambda pair: pair[0])]

    def column_comment(self, column: str) -> str:
        if column in self.notes:
            return self.notes[column]
        for table in self.source_tables:
            if column in table.columns and table.columns[column].comment:
                return table.columns[column].comment
        raise ValueError(f"{self.path}: column {column} has no comment in pipelines/model.py; "
                         f"add '-- column {column}: <what it means>' to the file")


def view_definitions(sql_dir: Path) -> list[ViewDefinition]:
    return [ViewDefinition(path) for path in sorted((Path(sql_dir) / "views").glob("*.sql"))]


def ensure_bi_layer(conn: sa.Connection, sql_dir: Path) -> list[str]:
    """(Re)create every view with its comments and, on PostgreSQL, the role's grants; returns view names.

    Three round trips whatever the number of views: the DDL goes as scripts, because a
    statement per view and column costs more than the rest of a small nightly load.
    """
    views = view_definitions(sql_dir)
    preparer = conn.dialect.identifier_preparer
    schema = preparer.quote_schema(BI_SCHEMA)

    def qualified(name: str) -> str:
        return f"{schema}.{preparer.quote(name)}"

    script = [f"CREATE SCHEMA IF NOT EXISTS {schema}"]
    for view in views:
        script += [f"DROP VIEW IF EXISTS {qualified(view.name)}",
                   f"CREATE VIEW {qualified(view.name)} AS\n{view.select}"]
    execute_script(conn, script)
    columns = _view_columns(conn, [view.name for view in views])
    script = []
    for view in views:
        script.append(f"COMMENT ON VIEW {qualified(view.name)} IS {sql_literal(view.comment)}")
        script += [f"COMMENT ON COLUMN {qualified(view.name)}.{preparer.quote(column)} IS "
                   f"{sql_literal(view.column_comment(column))}" for column in columns[view.name]]
    execute_script(conn, script)
    if conn.dialect.name == "postgresql":
        grant_bi_role(conn, sql_dir)
    return [view.name for view in views]


def _view_columns(conn: sa.Connection, names: list[str]) -> dict[str, list[str]]:
    columns = sa.table("columns", sa.column("table_catalog"), sa.column("table_schema"),
                       sa.column("table_name"), sa.column("column_name"), sa.column("ordinal_position"),
                       schema="information_schema")
    query = sa.select(columns.c.table_name, columns.c.column_name).where(
        columns.c.table_catalog == sa.func.current_database(), columns.c.table_schema == BI_SCHEMA,
        columns.c.table_name.in_(names)).order_by(columns.c.table_name, columns.c.ordinal_position)
    found: dict[str, list[str]] = {name: [] for name in names}
    for view, column in conn.execute(query).all():
        found[view].append(column)
    return found


def sql_literal(text: str) -> str:
    """A standard SQL string literal, for DDL sent as a script (no bind parameters there)."""
    return "'" + text.replace("'", "''") + "'"


def execute_script(conn: sa.Connection, statements: list[str]) -> None:
    """Run several statements in one round trip, in the connection's open transaction.

    Through the driver without parameters, so ``%`` and ``:`` in SQL and comments are
    plain characters (psycopg then sends the script in PostgreSQL's simple protocol).
    """
    if not statements:
        return
    script = ";\n".join(statements)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "duckdb":
        raw.execute(script)
        return
    with raw.cursor() as cursor:
        cursor.execute(script)


def grant_bi_role(conn: sa.Connection, sql_dir: Path) -> bool:
    """Create the role when missing and allowed, then grant it the bi views and marts, nothing else.

    Returns whether the role exists; without it (and without the right to create it) the
    views are in place and a warning says how an administrator creates it.
    """
    role = sa.table("pg_roles", sa.column("rolname"), sa.column("rolcreaterole"), sa.column("rolsuper"),
                    schema="pg_catalog")
    exists = conn.execute(sa.select(sa.func.count()).select_from(role).where(
        role.c.rolname == BI_ROLE)).scalar()
    if not exists:
        may_create = conn.execute(sa.select(role.c.rolcreaterole | role.c.rolsuper).where(
            role.c.rolname == sa.func.current_user())).scalar()
        if not may_create:
            log.warning("BI role %s does not exist and this user may not create roles: a database "
                        "administrator runs warehouse/roles/%s.sql once", BI_ROLE, BI_ROLE)
            return False
        execute_script(conn, [(Path(sql_dir) / "roles" / f"{BI_ROLE}.sql").read_text()])
    preparer = conn.dialect.identifier_preparer
    bi_role, bi_schema = preparer.quote(BI_ROLE), preparer.quote_schema(BI_SCHEMA)
    base = preparer.quote_schema(conn.execute(sa.select(sa.func.current_schema())).scalar())
    execute_script(conn, [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {base} FROM {bi_role}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {bi_schema} FROM {bi_role}",
        f"REVOKE CREATE ON SCHEMA {bi_schema} FROM {bi_role}",
        f"GRANT USAGE ON SCHEMA {bi_schema} TO {bi_role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {bi_schema} TO {bi_role}",
        f"GRANT USAGE ON SCHEMA {base} TO {bi_role}",
        *[f"GRANT SELECT ON {preparer.format_table(table)} TO {bi_role}" for table in MARTS.values()],
    ])
    return True
