"""Registers the ``json`` backend (an ordinary tributestore plugin)."""

from __future__ import annotations

from collections.abc import Callable

from tributestore.hookspecs import BackendSpec, hookimpl
from tributestore.urls import StoreURL


def check_url(url: StoreURL) -> None:
    """The URL's path and option values as opening reads them, nothing opened."""
    url.local_path()
    url.seconds("timeout", 1.0)
    url.seconds("lock_timeout", 1.0)
    url.flag("create", True)
    url.flag("read_only", False)


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
            check_url=check_url,
        )
    )
