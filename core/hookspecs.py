"""The hooks a tributestore plugin can implement.

A plugin is any module or object with functions marked ``@hookimpl``; it is
found through the entry-point group ``tributestore`` (built-ins are listed in
:data:`tributestore.plugins.DEFAULT_PLUGINS` and declared the same way).
Every hook name starts with ``tributestore_``; a plugin implements only the
ones it needs, and pluggy checks their signatures on load.

- :func:`tributestore_register_backends`: provide storage backends (URL schemes);
- :func:`tributestore_store_opened`: a store was opened (start a cache, a mirror, an audit log);
- :func:`tributestore_transaction_committed`: a transaction committed, with every tribute it
  changed, before and after (keep an audit log, invalidate a cache, mirror changes);
- :func:`tributestore_check`: extra integrity checks run by ``TributeStore.check()``;
- :func:`tributestore_register_commands`: add commands to the ``tributestore`` CLI.

The rest of tributestore calls them only through the typed facade
:class:`tributestore.plugins.PluginHooks`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pluggy

if TYPE_CHECKING:
    import click

    from .backend import Backend
    from .models import Guild, TributeBundle
    from .store import TributeStore
    from .urls import OpenMode, StoreURL

PROJECT_NAME = "tributestore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: Opens a backend for a parsed URL.  A backend with ``children`` gets them, already opened.
Opener = Callable[..., "Backend"]


@dataclass(frozen=True)
class BackendSpec:
    """What a plugin registers for one backend.

    ``opener`` is either a callable taking a :class:`~tributestore.urls.StoreURL`
    and returning a :class:`~tributestore.backend.Backend`, or a
    ``"package.module:function"`` string, imported only when a store of this
    backend is opened (so listing backends stays cheap).  A backend built over
    other stores (the composite) names the URL options holding them in
    ``children``: the registry opens each of them (in that order, in the mode
    ``child_mode`` gives, default the parent's) and calls
    ``opener(url, {option: backend, ...})``.

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
    #: URL options naming nested stores, opened by the registry and handed to the opener.
    children: tuple[str, ...] = ()
    #: The open mode of a child, given the parent URL and the option name.
    child_mode: Callable[[StoreURL, str], OpenMode] | None = None
    #: A one-line hint shown when a URL of this backend names something that is not its store
    #: (e.g. "a legacy THGBot directory: open it as thgbot:///PATH"); see :meth:`hint`.
    hint_for: Callable[[StoreURL], str | None] | None = None
    #: Checks a URL's form and option values without opening or creating anything, raising
    #: :class:`~tributestore.errors.ConfigError` naming what is wrong (``tributestore config``
    #: shows it); a ``"module:function"`` string is imported on first use.  Options the backend
    #: does not know and the children of a composite are checked by the registry itself.
    check_url: Callable[[StoreURL], None] | str | None = None

    def hint(self, url: StoreURL) -> str | None:
        """What the user probably meant, when ``url`` points at something this backend can read."""
        return self.hint_for(url) if self.hint_for is not None else None


ChangeKind = Literal["created", "updated", "deleted"]


@dataclass(frozen=True)
class TributeChange:
    """One tribute a transaction changed: its document before and after (``None``: absent)."""

    guild_id: int
    tribute_id: str
    before: TributeBundle | None
    after: TributeBundle | None

    @property
    def kind(self) -> ChangeKind:
        if self.before is None:
            return "created"
        return "deleted" if self.after is None else "updated"


@dataclass(frozen=True)
class Changes:
    """What one committed transaction changed, in the order first touched."""

    tributes: tuple[TributeChange, ...] = ()
    #: Guild rows written (created or replaced), by id.
    guilds: Mapping[int, Guild] = field(default_factory=dict)


@hookspec
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    """Register storage backends.

    Call ``register(BackendSpec(...))`` once per backend the plugin provides.
    A scheme claimed by two plugins is an error naming both.
    """


@hookspec
def tributestore_store_opened(store: TributeStore) -> None:
    """A store was opened (by ``open_store`` or the registry), before the caller gets it.

    Raising refuses the open: the store is closed and the error reaches the caller.
    """


@hookspec
def tributestore_transaction_committed(store: TributeStore, changes: Changes) -> None:
    """A transaction of ``store`` committed; ``changes`` lists every tribute it changed.

    Called once per outermost transaction, after the commit, in the writing
    thread; a transaction that changed nothing is not reported.  The data is
    already committed: an error raised here is logged (logger ``tributestore``)
    and kept in ``store.warnings``, it does not undo the write.  Keep it quick:
    the writer waits for it.
    """


@hookspec
def tributestore_check(store: TributeStore) -> list[str]:
    """Extra integrity checks for ``store.check()`` (and ``tributestore check``).

    Return the problems found, each a line naming where; an empty list when
    sound.  Every plugin's list is added to the backend's own.
    """
    return []


@hookspec
def tributestore_register_commands(cli: click.Group) -> None:
    """Add commands to the ``tributestore`` command line (``@cli.command()``).

    A command raises :class:`~tributestore.errors.TributeStoreError` for what
    the user got wrong; the CLI turns it into a one-line message and an exit code.
    """
