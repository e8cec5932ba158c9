"""Registers the ``sqlite`` backend (an ordinary tributestore plugin)."""

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
        )
    )
