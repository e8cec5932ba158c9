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
    """

    name: str
    schemes: tuple[str, ...]
    opener: Opener | str
    summary: str = ""
    #: An example URL, shown by ``tributestore backends``.
    example: str = ""


@hookspec
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    """Register storage backends.

    Call ``register(BackendSpec(...))`` once per backend the plugin provides.
    A scheme claimed by two plugins is an error naming both.
    """
