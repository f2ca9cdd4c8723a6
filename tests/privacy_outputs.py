"""Read every value a run left behind, wherever it is, as text to search.

Compressed and binary stores are opened with their own readers, never byte-searched:
parquet through pyarrow (values and schema metadata), the DuckDB warehouse through SQL
(every table and view in every schema), SQLite files (Airflow's metadata DB) through
SQL; any other file is read as text. ``find(needles, places)`` says which needle is
where.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa


@dataclass(frozen=True)
class Place:
    where: str
    text: str


def parquet_text(path: Path) -> str:
    table = pq.read_table(path)
    metadata = table.schema.metadata or {}
    parts = [f"{k!r}={v!r}" for k, v in metadata.items()]
    for column in table.columns:
        parts.extend("" if v is None else str(v) for v in column.to_pylist())
    return "\n".join(parts)


def sqlite_text(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return "\n".join(db.iterdump())


def file_places(root: Path, skip: Iterable[str] = ()) -> Iterator[Place]:
    """Every file under ``root`` except the top-level folders in ``skip``; DuckDB files via SQL."""
    skipped = set(skip)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if relative.parts[0] in skipped:
            continue
        where = f"{root.name}/{relative}"
        if path.suffix == ".parquet":
            yield Place(where, parquet_text(path))
        elif path.suffix in (".duckdb", ".wal"):
            if path.suffix == ".duckdb":
                yield from warehouse_places(f"duckdb:///{path}")
        elif path.read_bytes()[:16] == b"SQLite format 3\x00":
            yield Place(where, sqlite_text(path))
        else:
            yield Place(where, path.read_text(encoding="utf-8", errors="replace"))


def warehouse_places(url: str, skip_tables: Iterable[str] = ()) -> Iterator[Place]:
    """One place per table and view of the warehouse (every schema), all values as text."""
    skipped = set(skip_tables)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            relations = conn.execute(sa.text(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables "
                "WHERE table_schema NOT IN ('information_schema', 'pg_catalog')")).all()
            for schema, name, kind in sorted(relations):
                if name in skipped:
                    continue
                rows = conn.execute(sa.text(f"SELECT * FROM {quote(schema)}.{quote(name)}")).all()
                text = "\n".join("\t".join("" if v is None else str(v) for v in row) for row in rows)
                yield Place(f"warehouse {kind.lower()} {schema}.{name}", text)
    finally:
        engine.dispose()


def find(needles: Iterable[str], places: Iterable[Place]) -> list[tuple[str, str]]:
    """``(needle, where)`` for every needle found in a place."""
    wanted = list(dict.fromkeys(needles))
    return [(needle, place.where) for place in places for needle in wanted if needle in place.text]
