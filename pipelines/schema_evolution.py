"""Schema evolution: bring a live warehouse table in line with its declaration in ``model.py``.

A column declared in the model but missing from the table is added when it is nullable
(``ALTER TABLE ... ADD COLUMN``, in the caller's transaction, with its comment), so rows
already loaded stay and carry NULL in it. A declared column whose live type belongs to a
different family (text, integer, float, ...), a non-nullable column that is missing, or a
live column the model no longer declares is *drift*: changing or dropping it would lose
or reinterpret rows, so it stops the load with :class:`SchemaDrift` naming table, column
and both types, for a person to migrate by hand.

The live columns are read from ``information_schema.columns`` with SQLAlchemy Core
(duckdb-engine 0.17 table reflection fails under SQLAlchemy 2.1), which DuckDB and
PostgreSQL both provide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.schema import SetColumnComment

from pipelines.contracts import ContractError

# Type families: a declared SQLAlchemy type and a live ``information_schema`` data_type
# match when they fall in the same family. Widening within a family (INTEGER to BIGINT,
# REAL to DOUBLE) is not drift.
_DECLARED_FAMILY: tuple[tuple[type[sa.types.TypeEngine], str], ...] = (
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Float, "float"),
    (sa.String, "text"),
    (sa.Date, "date"),
)
_LIVE_FAMILY = {
    "boolean": "boolean",
    "smallint": "integer", "integer": "integer", "bigint": "integer", "tinyint": "integer",
    "hugeint": "integer", "int": "integer",
    "real": "float", "float": "float", "double": "float", "double precision": "float",
    "character varying": "text", "varchar": "text", "text": "text", "character": "text",
    "date": "date",
    "timestamp with time zone": "timestamp with time zone",
    "timestamp without time zone": "timestamp", "timestamp": "timestamp",
}

_COLUMNS = sa.table(
    "columns", sa.column("table_catalog"), sa.column("table_schema"), sa.column("table_name"),
    sa.column("column_name"), sa.column("data_type"), sa.column("ordinal_position"),
    schema="information_schema")


class SchemaDrift(ContractError):
    """The live table differs from its declaration in a way that cannot be applied safely."""


@dataclass
class Evolution:
    """What comparing a declared table with the live one found."""

    table: str
    added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def declared_family(column: sa.Column) -> str:
    if isinstance(column.type, sa.DateTime):
        return "timestamp with time zone" if column.type.timezone else "timestamp"
    for type_, family in _DECLARED_FAMILY:
        if isinstance(column.type, type_):
            return family
    raise TypeError(f"{column.table.name}.{column.name}: no type family for {column.type!r}")


def live_family(data_type: str) -> str:
    """The family of an ``information_schema`` data_type; an unknown type is its own family."""
    text = data_type.strip().lower()
    return _LIVE_FAMILY.get(text, text)


def live_columns(conn: sa.Connection, table: sa.Table) -> dict[str, str]:
    """``{column: data_type}`` of the table as it is in the database; empty when it does not exist."""
    schema = sa.literal(table.schema) if table.schema else sa.func.current_schema()
    query = sa.select(_COLUMNS.c.column_name, _COLUMNS.c.data_type).where(
        _COLUMNS.c.table_catalog == sa.func.current_database(),
        _COLUMNS.c.table_schema == schema,
        _COLUMNS.c.table_name == table.name,
    ).order_by(_COLUMNS.c.ordinal_position)
    return {name: data_type for name, data_type in conn.execute(query).all()}


def live_schema(conn: sa.Connection, tables: list[sa.Table]) -> dict[str, dict[str, str]]:
    """``live_columns`` of every table (all in the current schema) in one query."""
    query = sa.select(_COLUMNS.c.table_name, _COLUMNS.c.column_name, _COLUMNS.c.data_type).where(
        _COLUMNS.c.table_catalog == sa.func.current_database(),
        _COLUMNS.c.table_schema == sa.func.current_schema(),
        _COLUMNS.c.table_name.in_([t.name for t in tables]),
    ).order_by(_COLUMNS.c.table_name, _COLUMNS.c.ordinal_position)
    found: dict[str, dict[str, str]] = {t.name: {} for t in tables}
    for table_name, column, data_type in conn.execute(query).all():
        found[table_name][column] = data_type
    return found


def compare(table: sa.Table, live: dict[str, str]) -> tuple[list[sa.Column], list[str]]:
    """(declared columns that can be added, drift problems in words)."""
    addable, problems = [], []
    for column in table.columns:
        if column.name not in live:
            if column.nullable and not column.primary_key:
                addable.append(column)
            else:
                problems.append(f"required column {column.name} is declared but missing from the "
                                f"warehouse table; it cannot be added to rows already loaded")
            continue
        declared, found = declared_family(column), live_family(live[column.name])
        if declared != found:
            problems.append(f"column {column.name} is {live[column.name]} in the warehouse but declared "
                            f"as {column.type.compile()} ({declared}); a change of type is not applied "
                            f"automatically")
    for name in live:
        if name not in table.columns:
            problems.append(f"column {name} is in the warehouse table but no longer declared; dropping "
                            f"it would lose its values and loading without it would leave it empty")
    return addable, problems


def check(conn: sa.Connection, table: sa.Table) -> list[str]:
    """The drift problems of the live table, without changing anything (none when it does not exist)."""
    live = live_columns(conn, table)
    return compare(table, live)[1] if live else []


def evolve(conn: sa.Connection, table: sa.Table, *, strict: bool = True,
           live: dict[str, str] | None = None) -> Evolution:
    """Add the table's newly declared nullable columns; raise ``SchemaDrift`` on anything else.

    With ``strict=False`` drift is reported in the result instead of raised (the caller
    stops only the source that loads the table). A table that does not exist yet is left
    alone: ``metadata.create_all`` creates it whole. ``live``: its columns, if already read.
    """
    result = Evolution(table.name)
    live = live_columns(conn, table) if live is None else live
    if not live:
        return result
    addable, result.problems = compare(table, live)
    if result.problems and strict:
        raise SchemaDrift(describe(table.name, result.problems))
    preparer = conn.dialect.identifier_preparer
    for column in addable:
        type_sql = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {preparer.format_table(table)} "
                             f"ADD COLUMN {preparer.format_column(column)} {type_sql}"))
        if column.comment:
            conn.execute(SetColumnComment(column))
        result.added.append(column.name)
    return result


def describe(table: str, problems: list[str]) -> str:
    return (f"warehouse table {table} no longer matches pipelines/model.py: " + "; ".join(problems)
            + ". Migrate the table by hand (or restore the declaration), then rerun.")
