"""``tributestore.aio``: the store for asyncio code (a discord.py bot, say).

::

    from tributestore.aio import open_async_store

    async with open_async_store() as store:          # the configured store, opened off the loop
        await store.add_item(guild_id, "D1F", "Meat (2/2 uses.)")
        inventory = await store.get_inventory(guild_id, "D1F")

Every public method of :class:`~tributestore.TributeStore` is here under the
same name, with the same parameters, results and errors, as a coroutine;
``iter_tributes`` and ``iter_bundles`` return lists (they are read whole in a
worker thread).  Nothing touches storage on the event loop's thread:

- **Threads.**  Each call runs in a worker thread of the store's own
  executors (the synchronous store is safe to share across threads on every
  backend), so the loop keeps serving events while SQLite waits for a lock or
  the JSON backend fsyncs.
- **Writes are serialised.**  All writes of one :class:`AsyncTributeStore` run,
  one after the other in the order they were called, in its single writer
  thread; reads run beside them in a small pool of reader threads.  (Writes of
  other processes are serialised by the backend's own locking, as for the sync
  store.)
- **Cancellation never leaves a half-written tribute.**  A write is submitted to
  the writer thread when its coroutine starts; from then on it **runs to its
  end even if the awaiting task is cancelled**: the task sees
  :class:`asyncio.CancelledError` at once, the write still completes (commits
  wholly, or fails and rolls back wholly, as the sync call would) in the
  background, and :meth:`AsyncTributeStore.close` waits for it.  A task
  cancelled before its write coroutine started submits nothing.  So a write is
  always all or nothing, never torn by a cancellation.  Reads are abandoned
  on cancellation (the worker finishes the read and the result is dropped).
- **Transactions** (and snapshots) are not an ``async with`` block: holding the store's
  transaction (SQLite's write lock, the JSON store's file lock) open across the
  body's ``await`` points would stall every other write of the bot, and of
  other processes, while the body waits for Discord; and a body cancelled
  half-way would leave the choice between committing half of it or rolling
  back.  Instead, :meth:`AsyncTributeStore.run_in_transaction` takes a plain
  *synchronous* function and runs it whole inside one transaction in the writer
  thread: all its writes happen or none, it is never interleaved with other
  writes of this process, and, like every write, it completes even if the
  awaiting task is cancelled::

      def move(store: TributeStore) -> str:
          item = store.remove_item(gid, "D1F", 2)
          store.add_item(gid, "D2M", item)
          return item

      moved = await store.run_in_transaction(move)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from .config import open_store
from .errors import InvalidInputError, StorageError
from .models import Guild, Tribute, TributeBundle
from .store import TributeStore

__all__ = ["AsyncTributeStore", "StoreClosedError", "open_async_store"]

P = ParamSpec("P")
R = TypeVar("R")

#: Reader threads per store, by default.
DEFAULT_READERS = 4
#: Context-manager methods of TributeStore, not offered here (see run_in_transaction).
_CONTEXT_MANAGERS = frozenset({"transaction", "snapshot"})


class StoreClosedError(StorageError):
    """A call on an :class:`AsyncTributeStore` after ``close()`` (a :class:`StorageError`, as the
    synchronous store's calls after ``close()`` raise)."""


#: The most reader threads an :class:`AsyncTributeStore` takes.
MAX_READERS = 256


def _checked_readers(readers: object) -> int:
    """``readers`` as given, when a whole number of threads from 1 to :data:`MAX_READERS`."""
    if isinstance(readers, bool) or not isinstance(readers, int) or not 1 <= readers <= MAX_READERS:
        raise InvalidInputError(
            f"readers must be a whole number of threads from 1 to {MAX_READERS} "
            f"(got {str(readers)[:40]!r}, a {type(readers).__name__})"
        )
    return readers


def _method(
    sync: Callable[Concatenate[TributeStore, P], R], *, write: bool
) -> Callable[Concatenate[AsyncTributeStore, P], Coroutine[Any, Any, R]]:
    """The coroutine method running ``sync`` (looked up on the wrapped store) in a worker."""
    name = sync.__name__

    async def method(self: AsyncTributeStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = cast(Callable[P, R], getattr(self.sync, name))
        call = functools.partial(bound, *args, **kwargs)
        return await (self._write(call) if write else self._read(call))

    method.__name__ = name
    method.__qualname__ = f"AsyncTributeStore.{name}"
    method.__doc__ = f"Awaitable :meth:`TributeStore.{name}` ({'write' if write else 'read'}).\n\n" + (
        sync.__doc__ or ""
    )
    return method


def _reader(
    sync: Callable[Concatenate[TributeStore, P], R],
) -> Callable[Concatenate[AsyncTributeStore, P], Coroutine[Any, Any, R]]:
    return _method(sync, write=False)


def _writer(
    sync: Callable[Concatenate[TributeStore, P], R],
) -> Callable[Concatenate[AsyncTributeStore, P], Coroutine[Any, Any, R]]:
    return _method(sync, write=True)


class AsyncTributeStore:
    """A :class:`TributeStore` for asyncio; see the module documentation for the guarantees.

    Owns the wrapped store: :meth:`close` (or leaving ``async with``) waits for
    pending writes, stops the worker threads and closes it.
    """

    def __init__(self, store: TributeStore, *, readers: int = DEFAULT_READERS) -> None:
        #: The synchronous store (use it only from worker threads, e.g. in ``run_in_transaction``).
        readers = _checked_readers(readers)
        self.sync = store
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tributestore-writer")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="tributestore-reader")
        self._pending: set[asyncio.Future[Any]] = set()
        self._closed = False

    # ------------------------------------------------------------- plumbing
    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store {self.sync.url} is closed")

    async def _read(self, call: Callable[[], R]) -> R:
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._readers, call)

    async def _write(self, call: Callable[[], R]) -> R:
        self._check_open()
        future = asyncio.get_running_loop().run_in_executor(self._writer, call)
        self._pending.add(future)
        future.add_done_callback(_settle)
        future.add_done_callback(self._pending.discard)
        # shield: cancelling the awaiting task must not cancel a submitted write.
        return await asyncio.shield(future)

    async def run_in_transaction(self, fn: Callable[[TributeStore], R]) -> R:
        """Run ``fn(sync_store)`` inside one transaction in the writer thread; returns its result.

        ``fn`` is synchronous and must not touch the event loop.  All its writes
        happen or none (an exception rolls back and is raised here); it runs to
        its end even if the awaiting task is cancelled.
        """
        if not callable(fn):
            raise InvalidInputError(
                f"run_in_transaction needs a function of the store (got {str(fn)[:40]!r}, "
                f"a {type(fn).__name__})"
            )
        store = self.sync

        def call() -> R:
            with store.transaction():
                return fn(store)

        return await self._write(call)

    # ----------------------------------------------------------------- life
    @property
    def url(self) -> str:
        return self.sync.url

    @property
    def read_only(self) -> bool:
        return self.sync.read_only

    @property
    def warnings(self) -> Any:
        return self.sync.warnings

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Wait for pending writes (even of cancelled tasks), stop the workers, close the store."""
        if self._closed:
            return
        self._closed = True
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.sync.close()

    async def __aenter__(self) -> AsyncTributeStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncTributeStore {self.sync.url}>"

    # -------------------------------------------------------------- methods
    async def put_guild(self, guild_id: int, **settings: Any) -> Guild:
        """Awaitable :meth:`TributeStore.put_guild` (write)."""
        return await self._write(functools.partial(self.sync.put_guild, guild_id, **settings))

    get_guild = _reader(TributeStore.get_guild)
    list_guilds = _reader(TributeStore.list_guilds)

    create_tribute = _writer(TributeStore.create_tribute)
    get_tribute = _reader(TributeStore.get_tribute)
    has_tribute = _reader(TributeStore.has_tribute)
    update_tribute = _writer(TributeStore.update_tribute)
    delete_tribute = _writer(TributeStore.delete_tribute)
    list_tributes = _reader(TributeStore.list_tributes)

    get_inventory = _reader(TributeStore.get_inventory)
    add_item = _writer(TributeStore.add_item)
    remove_item = _writer(TributeStore.remove_item)
    equip_item = _writer(TributeStore.equip_item)
    unequip_item = _writer(TributeStore.unequip_item)
    set_capacity = _writer(TributeStore.set_capacity)
    clear_inventory = _writer(TributeStore.clear_inventory)
    search_items = _reader(TributeStore.search_items)

    set_prompt = _writer(TributeStore.set_prompt)
    get_prompt = _reader(TributeStore.get_prompt)
    delete_prompt = _writer(TributeStore.delete_prompt)

    add_file = _writer(TributeStore.add_file)
    get_file = _reader(TributeStore.get_file)
    read_file = _reader(TributeStore.read_file)
    list_files = _reader(TributeStore.list_files)
    delete_file = _writer(TributeStore.delete_file)

    export_tribute = _reader(TributeStore.export_tribute)
    import_tribute = _writer(TributeStore.import_tribute)
    counts = _reader(TributeStore.counts)
    check = _reader(TributeStore.check)
    details = _reader(TributeStore.details)

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        """Public :class:`TributeStore` methods not wrapped above (added since): run as writes.

        As writes they are serialised with the others and complete even when the
        awaiting task is cancelled: the safe choice for a method of unknown kind.
        """
        if (
            name.startswith("_")
            or name in _CONTEXT_MANAGERS
            or not callable(getattr(TributeStore, name, None))
        ):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

        async def method(*args: Any, **kwargs: Any) -> Any:
            return await self._write(functools.partial(getattr(self.sync, name), *args, **kwargs))

        method.__name__ = name
        return method

    async def iter_tributes(self, guild_id: int | None = None) -> list[Tribute]:
        """Every tribute (of one guild, or of all), ordered by guild then id, read whole."""
        return await self._read(lambda: list(self.sync.iter_tributes(guild_id)))

    async def iter_bundles(self, guild_id: int | None = None) -> list[TributeBundle]:
        """Every tribute with all it owns, read whole (for large stores use the sync copier)."""
        return await self._read(lambda: list(self.sync.iter_bundles(guild_id)))


def _settle(future: asyncio.Future[Any]) -> None:
    """Mark a write's outcome as seen: a cancelled caller no longer awaits it."""
    if not future.cancelled():
        future.exception()


class _Opening:
    """``open_async_store(...)``: awaitable, or an ``async with`` block that closes the store."""

    def __init__(self, url: str | None, config_file: str | Path | None, readers: int) -> None:
        self._args = (url, config_file, readers)
        self._store: AsyncTributeStore | None = None

    async def _open(self) -> AsyncTributeStore:
        url, config_file, readers = self._args
        sync = await asyncio.to_thread(open_store, url, config_file=config_file)
        return AsyncTributeStore(sync, readers=readers)

    def __await__(self) -> Generator[Any, None, AsyncTributeStore]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncTributeStore:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()


def open_async_store(
    url: str | None = None, *, config_file: str | Path | None = None, readers: int = DEFAULT_READERS
) -> _Opening:
    """Open the configured store (rules of :func:`~tributestore.open_store`) for asyncio.

    ``async with open_async_store() as store:`` closes it at the end;
    ``store = await open_async_store()`` leaves closing to ``await store.close()``.
    """
    return _Opening(url, config_file, _checked_readers(readers))  # checked before anything is opened
