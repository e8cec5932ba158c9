"""A third-party tributestore backend, written as an outside developer would write one.

It keeps everything in process memory, under the name given in the URL
(``memory://NAME``), so two opens of one URL in a process share the data.  It
exists to prove that entry-point discovery works and that a backend which is
not part of tributestore passes the shipped conformance suite unchanged, using
only the public contract of :mod:`tributestore.backend`: whole tribute
documents, transactions that roll back, snapshots, and the optional
:class:`~tributestore.backend.Tombstones` capability (so it can serve as a
composite's primary).  No ``_``-prefixed name of tributestore is used here (nor
any of its own: ``grep -n "\\b_[a-z]" -r src`` finds nothing).

Isolation: one re-entrant lock per named database.  A transaction holds it
from start to commit and keeps, for a rollback, a shallow copy of the tables
taken when it started (stored documents are never mutated in place: they are
copied on the way in and on the way out); a snapshot holds it too, so a reader
sees one committed state and never a writer's half-done transaction.

The hooks a plugin can implement besides backends live in
:mod:`tributestore_memory.hooks`, declared as a second entry point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from tributestore import BackendSpec, ConfigError, StorageError, StoreURL, hookimpl
from tributestore.backend import Backend
from tributestore.models import Counts, FileInfo, Guild, ItemHit, Slot, Tribute, TributeBundle
from tributestore.store import bytes_match

Key = tuple[int, str]

__all__ = ["Database", "MemoryBackend", "Tables", "open_memory", "tributestore_register_backends"]


@dataclass
class Tables:
    """One database's content.  Values are replaced, never changed in place."""

    guilds: dict[int, Guild] = field(default_factory=dict)
    documents: dict[Key, TributeBundle] = field(default_factory=dict)
    #: File bytes of each tribute, by file name.
    blobs: dict[Key, dict[str, bytes]] = field(default_factory=dict)
    #: Tombstoned tributes and the fallback's own key for each (``None``: none given).
    tombstones: dict[Key, str | None] = field(default_factory=dict)

    def copy(self) -> Tables:
        return Tables(dict(self.guilds), dict(self.documents), dict(self.blobs), dict(self.tombstones))


class Depth(threading.local):
    """This thread's nesting of transactions and snapshots on one database."""

    def __init__(self) -> None:
        self.transactions = 0
        self.snapshots = 0


@dataclass
class Database:
    """A named in-memory database, shared by every backend opened on its name in this process."""

    name: str
    tables: Tables = field(default_factory=Tables)
    lock: threading.RLock = field(default_factory=threading.RLock)
    depth: Depth = field(default_factory=Depth)


DATABASES: dict[str, Database] = {}
DATABASES_LOCK = threading.Lock()


class MemoryBackend:
    """The :class:`~tributestore.backend.Backend` (and :class:`~tributestore.backend.Tombstones`)."""

    read_only = False
    ephemeral = True

    def __init__(self, url: StoreURL) -> None:
        self.url: str = url.display
        self.warnings: Sequence[str] = []
        self.created: str | None = None
        self.closed = False
        name = url.netloc + url.path
        if not name:
            raise ConfigError(f"store URL {url.display!r} names no in-memory store (memory://NAME)")
        with DATABASES_LOCK:
            database = DATABASES.get(name)
            if database is None:
                if url.must_exist:  # read mode: never create
                    raise url.missing(f"no in-memory store named {name!r} in this process")
                database = DATABASES[name] = Database(name)
                self.created = f"process memory ({name})"
        self.database = database

    def __repr__(self) -> str:
        return f"<MemoryBackend {self.database.name!r}>"

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        self.closed = True

    def tables(self) -> Tables:
        """The live tables (call with the lock held)."""
        if self.closed:
            raise StorageError(f"memory store {self.database.name!r} is closed")
        return self.database.tables

    @contextmanager
    def transaction(self) -> Iterator[None]:
        database = self.database
        with database.lock:
            # Every level keeps a copy: a nested block that fails is undone alone (a savepoint),
            # even when its caller catches the error and the outer block goes on.
            saved = self.tables().copy()
            database.depth.transactions += 1
            try:
                yield
            except BaseException:
                database.tables = saved
                raise
            finally:
                database.depth.transactions -= 1

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        # Holding the lock keeps writers out: the block reads one committed state (or, inside a
        # transaction of this thread, that transaction's own state).
        with self.database.lock:
            yield

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild: Guild) -> None:
        with self.database.lock:
            self.tables().guilds[guild.guild_id] = guild.model_copy(deep=True)

    def get_guild(self, guild_id: int) -> Guild | None:
        with self.database.lock:
            guild = self.tables().guilds.get(guild_id)
        return None if guild is None else guild.model_copy(deep=True)

    def list_guilds(self) -> list[Guild]:
        with self.database.lock:
            guilds = self.tables().guilds
            return [guilds[guild_id].model_copy(deep=True) for guild_id in sorted(guilds)]

    # ------------------------------------------------------------- documents
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        with self.database.lock:
            document = self.tables().documents.get((guild_id, tribute_id))
        return None if document is None else document.tribute.model_copy(deep=True)

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        with self.database.lock:
            document = self.tables().documents.get((guild_id, tribute_id))
        return None if document is None else document.model_copy(deep=True)

    def save(
        self,
        document: TributeBundle,
        files: Mapping[str, bytes],
        previous: TributeBundle | None,
    ) -> None:
        # ``previous`` would only save work; the stored bytes are at hand anyway.
        key = document.tribute.key
        with self.database.lock:
            tables = self.tables()
            if document.tribute.guild_id not in tables.guilds:
                raise StorageError(f"memory store {self.database.name!r}: guild {key[0]} does not exist")
            stored = tables.blobs.get(key, {})
            blobs: dict[str, bytes] = {}
            for info in document.files:
                if info.name in files:
                    blobs[info.name] = bytes(files[info.name])
                elif info.name in stored:
                    blobs[info.name] = stored[info.name]
                else:
                    raise StorageError(
                        f"memory store {self.database.name!r}: no bytes given for new file {info.name!r} "
                        f"of tribute {key[1]} in guild {key[0]}"
                    )
            tables.documents[key] = document.model_copy(deep=True)
            tables.blobs[key] = blobs

    def delete(self, guild_id: int, tribute_id: str) -> None:
        with self.database.lock:
            tables = self.tables()
            tables.documents.pop((guild_id, tribute_id), None)
            tables.blobs.pop((guild_id, tribute_id), None)

    def read_file(self, info: FileInfo) -> bytes:
        with self.database.lock:
            data = self.tables().blobs.get((info.guild_id, info.tribute_id), {}).get(info.name)
        if data is None:
            raise StorageError(
                f"memory store {self.database.name!r}: no bytes for file {info.name!r} "
                f"of tribute {info.tribute_id} in guild {info.guild_id}"
            )
        return data

    def keys(self, guild_id: int | None) -> list[Key]:
        """The tributes' keys in order, of one guild or of all."""
        with self.database.lock:
            documents = self.tables().documents
            return sorted(key for key in documents if guild_id is None or key[0] == guild_id)

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        for key in self.keys(guild_id):
            tribute = self.get_tribute(*key)
            if tribute is not None:  # deleted since the keys were listed
                yield tribute

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        for key in self.keys(guild_id):
            document = self.load(*key)
            if document is not None:
                yield document

    # ------------------------------------------------------------- whole store
    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        with self.database.lock:
            documents = self.tables().documents
            found = [documents[key].inventory for key in self.keys(guild_id)]
        for inventory in found:
            slots: tuple[Slot, ...] = ("items", "equipped")
            for slot in slots:
                for number, item in inventory.numbered(slot).items():
                    if folded_query in item.casefold():
                        yield ItemHit(
                            guild_id=inventory.guild_id,
                            tribute_id=inventory.tribute_id,
                            slot=slot,
                            number=number,
                            item=item,
                        )

    def counts(self) -> Counts:
        with self.database.lock:
            tables = self.tables()
            documents = list(tables.documents.values())
            guilds = len(tables.guilds)
        return Counts(
            guilds=guilds,
            tributes=len(documents),
            items=sum(len(d.inventory.items) for d in documents),
            equipped=sum(len(d.inventory.equipped) for d in documents),
            prompts=sum(1 for d in documents if d.prompt is not None),
            files=sum(len(d.files) for d in documents),
        )

    def check(self) -> list[str]:
        problems: list[str] = []
        with self.database.lock:
            tables = self.tables()
            for key, document in sorted(tables.documents.items()):
                where = f"memory store {self.database.name!r}, tribute {key[1]} in guild {key[0]}"
                if key[0] not in tables.guilds:
                    problems.append(f"{where}: its guild is missing")
                blobs = tables.blobs.get(key, {})
                for info in document.files:
                    data = blobs.get(info.name)
                    if data is None:
                        problems.append(f"{where}: file {info.name!r} has no bytes")
                    elif not bytes_match(info, data):
                        problems.append(f"{where}: file {info.name!r} does not match its size/sha256")
                listed = {info.name for info in document.files}
                problems.extend(
                    f"{where}: bytes of unlisted file {name!r}" for name in sorted(set(blobs) - listed)
                )
            problems.extend(
                f"memory store {self.database.name!r}: bytes of files of missing tribute {key[1]} "
                f"in guild {key[0]}"
                for key in sorted(set(tables.blobs) - set(tables.documents))
            )
        return problems

    def details(self) -> dict[str, int]:
        with self.database.lock:
            return {"tombstones": len(self.tables().tombstones)}

    # ------------------------------------------------------------ tombstones
    def put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None) -> None:
        with self.database.lock:
            self.tables().tombstones[(guild_id, tribute_id)] = origin_key

    def has_tombstone(self, guild_id: int, tribute_id: str) -> bool:
        with self.database.lock:
            return (guild_id, tribute_id) in self.tables().tombstones

    def has_origin_tombstone(self, origin_key: str) -> bool:
        with self.database.lock:
            return origin_key in self.tables().tombstones.values()

    def count_tombstones(self) -> int:
        with self.database.lock:
            return len(self.tables().tombstones)


def open_memory(url: StoreURL) -> Backend:
    """The opener registered for ``memory://NAME``."""
    return MemoryBackend(url)


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="memory",
            schemes=("memory",),
            opener=open_memory,
            summary="in-process memory (third-party test plugin)",
            example="memory://scratch",
            options=(),
        )
    )
