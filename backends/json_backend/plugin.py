"""Registers the ``json`` backend (an ordinary tributestore plugin)."""

from __future__ import annotations

from collections.abc import Callable

from tributestore.hookspecs import BackendSpec, hookimpl


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="json",
            schemes=("json",),
            opener="tributestore.backends.json_backend.store:open_json_store",
            summary="one JSON file per tribute, content-addressed file bytes, journaled commits",
            example="json:///data/tributes",
            options=("create", "read_only", "lock_timeout", "timeout"),
        )
    )
