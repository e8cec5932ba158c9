"""Registers the ``composite`` backend (an ordinary tributestore plugin)."""

from __future__ import annotations

from collections.abc import Callable

from tributestore.hookspecs import BackendSpec, hookimpl

from .options import CHILDREN, check_url, child_mode


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="composite",
            schemes=("composite",),
            opener="tributestore.backends.composite_backend.store:open_composite",
            summary="reads primary then fallback, writes primary; tombstones stop deleted data coming back",
            example="composite:?primary=sqlite:///thg.db&fallback=thgbot:///config",
            options=("primary", "fallback", "promote_on_read", "dual_write", "fallback_errors"),
            children=CHILDREN,
            child_mode=child_mode,
            check_url=check_url,
        )
    )
