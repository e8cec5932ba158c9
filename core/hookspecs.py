"""The hooks a tributestore plugin can implement.

A plugin is any module or object with functions marked ``@hookimpl``; it is
found through the entry-point group ``tributestore`` (built-ins are listed in
:data:`tributestore.plugins.DEFAULT_PLUGINS` and declared the same way).
Every hook name starts with ``tributestore_``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .store import TributeStore
    from .urls import StoreURL

PROJECT_NAME = "tributestore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: Opens a store for a parsed URL.
Opener = Callable[["StoreURL"], "TributeStore"]


@dataclass(frozen=True)
class BackendSpec:
    """What a plugin registers for one backend.

    ``opener`` is either a callable taking a :class:`~tributestore.urls.StoreURL`
    or a ``"package.module:function"`` string, imported only when a store of
    this backend is opened (so listing backends stays cheap).

    The opener must honour ``url.mode``: in ``"read"`` mode a store that does
    not exist yet is refused with ``raise url.missing(...)`` before anything
    (file, directory, lock, schema) is created; in ``"write"`` mode it may be
    created, and the store's ``created`` attribute then names where.
    """

    name: str
    schemes: tuple[str, ...]
    opener: Opener | str
    summary: str = ""
    #: An example URL, shown by ``tributestore backends``.
    example: str = ""
    #: The ``?key=value`` options the backend understands; any other is refused before opening
    #: (it is usually the tail of a path cut at a '?'). ``None``: the backend checks them itself.
    options: tuple[str, ...] | None = None


@hookspec
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    """Register storage backends.

    Call ``register(BackendSpec(...))`` once per backend the plugin provides.
    A scheme claimed by two plugins is an error naming both.
    """
