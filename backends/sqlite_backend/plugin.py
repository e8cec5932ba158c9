"""Registers the SQL backend: ``sqlite`` and ``postgresql``, one backend class on two dialects."""

from __future__ import annotations

from collections.abc import Callable

from tributestore.hookspecs import BackendSpec, hookimpl

OPENER = "tributestore.backends.sqlite_backend.store:open_sql_backend"
#: SQLite files: a light reader answers a bot's first reads of an up-to-date store (see .light).
SQLITE_OPENER = "tributestore.backends.sqlite_backend.light:open_sqlite_backend"
#: Checks a URL as the dialect reads it (path, options), opening nothing.
CHECK_URL = "tributestore.backends.sqlite_backend.urlcheck:check_url"


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="sqlite",
            schemes=("sqlite",),
            opener=SQLITE_OPENER,
            summary="SQLite through SQLAlchemy: foreign keys, WAL, FTS5 trigram search",
            example="sqlite:///thg.db",
            options=("timeout", "synchronous", "fts"),
            check_url=CHECK_URL,
        )
    )
    register(
        BackendSpec(
            name="postgresql",
            schemes=("postgresql", "postgres", "postgresql+psycopg"),
            opener=OPENER,
            summary="PostgreSQL via psycopg 3 (extra: postgres): several bots share it, pg_trgm search",
            example="postgresql://bot@127.0.0.1:5432/thg?schema=tributes",
            check_url=CHECK_URL,
        )
    )
