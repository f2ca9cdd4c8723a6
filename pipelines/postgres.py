"""Small PostgreSQL chores shared by the CLI, benchmarks and tests."""

from __future__ import annotations

import sqlalchemy as sa


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if the server does not have it yet."""
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": target.database}).scalar()
            if not exists:
                quoted = conn.dialect.identifier_preparer.quote(target.database)
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
