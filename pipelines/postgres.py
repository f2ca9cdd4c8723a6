"""Small PostgreSQL chores shared by the CLI, benchmarks and tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database named after the one in ``url`` (plus a random suffix), dropped after.

    A measurement over a database an earlier run filled would also measure deleting that run's rows.
    """
    target = sa.make_url(url)
    name = f"{target.database}_{secrets.token_hex(4)}"
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        yield target.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        admin.dispose()
