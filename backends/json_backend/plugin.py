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
            summary="one JSON file per tribute; also opens a legacy THGBot data directory read-only",
            example="json:///data/tributes",
            # guild, guild_map, oversize: options of a legacy THGBot directory (see legacy_reader)
            options=("create", "read_only", "lock_timeout", "timeout", "guild", "guild_map", "oversize"),
        )
    )
