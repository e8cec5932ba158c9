"""Registers the SQL backend: ``sqlite``, and ``postgresql`` on the same store code."""

from __future__ import annotations

from collections.abc import Callable

from tributestore.hookspecs import BackendSpec, hookimpl


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="sqlite",
            schemes=("sqlite",),
            opener="tributestore.backends.sqlite_backend.store:open_sqlite_store",
            summary="SQLite through dataset/SQLAlchemy: foreign keys, WAL, indexed search",
            example="sqlite:///thg.db",
            options=("timeout", "synchronous", "fts"),
        )
    )
    register(
        BackendSpec(
            name="postgresql",
            schemes=("postgresql", "postgres", "postgresql+psycopg"),
            opener="tributestore.backends.sqlite_backend.postgres:open_postgres_store",
            summary="PostgreSQL via psycopg 3 (extra: postgres): several bots share it, pg_trgm search",
            example="postgresql://bot@127.0.0.1:5432/thg?schema=tributes",
        )
    )
