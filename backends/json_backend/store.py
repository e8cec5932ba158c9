"""The ``json`` backend: one JSON file per tribute, content-addressed blobs, journaled commits.

:class:`JsonBackend` implements :class:`tributestore.backend.Backend` and
:class:`tributestore.backend.Tombstones`.  Each tribute is one document file
(tribute, inventory, prompt and file list; see documents.py), so
:meth:`JsonBackend.load` reads it once and :meth:`JsonBackend.save` writes it
once: every public write of the store reads and writes the tribute's file once.

Writes happen only inside :meth:`JsonBackend.transaction`, which holds the
store-wide ``.lock`` (a :class:`~tributestore.fairlock.FairLock`: writers of
every process and thread queue in arrival order and give up with
``LockTimeoutError`` after ``lock_timeout``) and buffers every change as
``path -> new bytes`` (``None`` for a deletion); reads inside the transaction
see the buffer, and each tribute document is read from disk at most once (the
lock keeps it still).  On success the buffer is committed through a journal
(journal.py), which a crash leaves to be rolled back or forward on next use.

Reads outside a transaction take no lock: every file is replaced atomically,
and :meth:`JsonBackend.snapshot` reads each document once, so a multi-part read
of one tribute is one committed state.  Reads spanning several tributes
(guild listings, search, counts, ``check``, and tribute listings inside a
snapshot) are validated against ``.generation``, a counter each commit makes
odd before it touches any file and even when done (a seqlock): a read that
overlapped a commit is run again, and after a few tries under the lock.  Inside
a snapshot such a read shows every tribute the snapshot already read as it read
it (one deleted since included), and the snapshot keeps the documents the read
found first, so no tribute is seen in two states within one snapshot.  A
blob a commit removed while :meth:`JsonBackend.read_file` was between the
document and the blob is read again from the new document.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from typing import TypeVar

from tributestore.errors import (
    CorruptDataError,
    LockTimeoutError,
    NotFoundError,
    ReadOnlyStoreError,
    StorageError,
    StoreNotFoundError,
    TributeStoreError,
)
from tributestore.fairlock import FairLock
from tributestore.models import Counts, FileInfo, Guild, ItemHit, Slot, Tribute, TributeBundle, utcnow
from tributestore.store import bytes_match
from tributestore.urls import StoreURL

from . import documents
from .atomic import TEMP_SUFFIX, atomic_write
from .check import Checker
from .journal import Change, Journal
from .layout import (
    LOCK_NAME,
    MARKER_NAME,
    ORIGINS_DIR,
    TOMBSTONES_DIR,
    TRIBUTE_ID_RE,
    TRIBUTE_SUFFIX,
    Layout,
    list_dir,
)

__all__ = ["JsonBackend", "open_json_store"]

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT = 60.0
#: Lock-free tries of a read spanning several tributes before it runs under the lock.
READ_TRIES = 8
#: Tries of ``check`` (a long walk) before it runs under the lock.
CHECK_TRIES = 3


class _Undo(Enum):
    ABSENT = 0


class _TxState(threading.local):
    """Per-thread transaction state (the buffer is only visible to its own thread)."""

    def __init__(self) -> None:
        self.depth = 0
        self.buffer: dict[Path, Change] = {}
        #: One undo map per nested transaction level (savepoints).
        self.undo: list[dict[Path, Change | _Undo]] = []
        #: Tribute files read from disk by this transaction (``None``: absent); the lock keeps
        #: them still, so each is read once.  Bytes, not documents: every load parses its own copy.
        self.read: dict[Path, bytes | None] = {}

    def reset(self, depth: int) -> None:
        self.depth, self.buffer, self.undo, self.read = depth, {}, [], {}


class _SnapState(threading.local):
    """Per-thread snapshot: each tribute document read once while ``depth > 0``."""

    def __init__(self) -> None:
        self.depth = 0
        self.docs: dict[Path, TributeBundle | None] = {}
        #: Inside a whole-store snapshot that holds the writers' lock (no commit can land).
        self.locked = False
        #: Inside a validated multi-tribute read (nested ones just run).
        self.validating = False


def open_json_store(url: StoreURL) -> JsonBackend:
    """Open a JSON store directory.

    In ``read`` mode the directory must already be a store (its marker file);
    nothing is created, no lock file written.  In ``write`` mode a missing or
    empty directory becomes a new store (unless ``?create=false``); a directory
    holding anything else is refused.
    """
    path = url.local_path()
    timeout = url.seconds("timeout", DEFAULT_LOCK_TIMEOUT)
    lock_timeout = url.seconds("lock_timeout", timeout)
    create, read_only = url.flag("create", True), url.flag("read_only", False)
    if url.must_exist:
        if not _exists_on_disk(path):
            raise url.missing("no JSON store", path)
        if not _is_file(path / MARKER_NAME):
            raise StoreNotFoundError(
                f"store {url.display!r}: {path.absolute()} is not a tributestore JSON store "
                f"(no {MARKER_NAME}); nothing was created"
            )
    return JsonBackend(
        path,
        url=url.display,
        create=create and not url.must_exist,
        read_only=read_only,
        lock_timeout=lock_timeout,
    )


class JsonBackend:
    """A tribute store kept as a directory of JSON files (see the module docstring)."""

    ephemeral = False

    def __init__(
        self,
        path: Path,
        *,
        url: str = "",
        create: bool = True,
        read_only: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.url = url or f"json:///{path}"
        self.read_only = read_only
        self.warnings: Sequence[str] = ()
        self.created: str | None = None
        self._closed = False
        self._lock_timeout = lock_timeout
        _make_root(path, create=create and not read_only)
        self._layout = Layout(path)
        self._journal = Journal(self._layout)
        if create and not read_only and not _exists_on_disk(self._layout.marker):
            # Refused before the lock: a directory that is not a store gets no .lock file.
            self._refuse_foreign_directory()
        self._tx = _TxState()
        self._snap = _SnapState()
        self._lock = FairLock(self._layout.lock, what=f"store {self.url}")
        self._recover(create=create)

    @property
    def root(self) -> Path:
        """The store's directory (symlinks resolved)."""
        return self._layout.root

    def __repr__(self) -> str:
        return f"<JsonBackend {self.url}>"

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"store {self.url} is closed")

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"store {self.url} is read-only")

    def _recover(self, *, create: bool) -> None:
        layout = self._layout
        if self.read_only or (_exists_on_disk(layout.marker) and not self._journal.needs_recovery()):
            # Nothing to set up or recover: opening needs no lock (so it never waits for a writer).
            self._check_marker(create=False)
            return
        if _exists_on_disk(layout.marker):
            # A journal or temporaries: a crash's leftovers, or a live writer's commit. Recover
            # only when no writer holds the lock (a live one finishes its own commit): never wait.
            with self._lock.try_hold() as held:
                if held:
                    self._journal.replay()
            self._check_marker(create=False)
            return
        with self._locked():
            self._journal.replay()
            self._check_marker(create=create)

    def _check_marker(self, *, create: bool) -> None:
        marker = self._layout.marker
        raw = self._read_disk(marker)
        if raw is not None:
            documents.check_marker(marker, raw)
            return
        if not create:
            raise StorageError(f"{self.root} is not a tributestore JSON store (no {MARKER_NAME})")
        self._refuse_foreign_directory()
        try:
            atomic_write(marker, documents.marker_bytes())
        except OSError as error:
            raise StorageError(f"cannot write {marker}: {error.strerror}") from None
        self.created = str(self.root.absolute())

    def _refuse_foreign_directory(self) -> None:
        """Refuse to turn a directory holding anything else into a store."""
        try:
            entries = os.listdir(self.root)
        except OSError as error:
            raise StorageError(f"cannot list {self.root}: {error.strerror}") from None
        leftovers = [
            entry
            for entry in entries
            if not entry.startswith(LOCK_NAME) and not (entry.startswith(".") and entry.endswith(TEMP_SUFFIX))
        ]
        if leftovers:
            raise StorageError(
                f"{self.root.absolute()} is not empty and is not a tributestore JSON store "
                f"(no {MARKER_NAME}); found {sorted(leftovers)[0]!r}"
            )

    # --------------------------------------------------------- transactions
    def _locked(self) -> AbstractContextManager[None]:
        """The store-wide write lock, in arrival order among all writers (FairLock)."""
        return self._lock.hold(self._lock_timeout)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._check_open()
        state = self._tx
        if state.depth > 0:
            yield from self._nested(state)
            return
        if self.read_only:  # nothing can be written: no lock, no commit
            state.reset(1)
            try:
                yield
            finally:
                state.reset(0)
            return
        with nullcontext() if self._snap.locked else self._locked():  # a whole snapshot holds it
            self._journal.replay()
            state.reset(1)
            try:
                yield
                buffer = state.buffer
                state.reset(0)
                if buffer:
                    self._journal.commit(buffer)
            finally:
                state.reset(0)

    def _nested(self, state: _TxState) -> Iterator[None]:
        state.depth += 1
        state.undo.append({})
        try:
            yield
        except BaseException:
            for path, old in state.undo[-1].items():
                if old is _Undo.ABSENT:
                    state.buffer.pop(path, None)
                else:
                    state.buffer[path] = old
            raise
        else:
            if len(state.undo) > 1:
                outer = state.undo[-2]
                for path, old in state.undo[-1].items():
                    outer.setdefault(path, old)
        finally:
            state.undo.pop()
            state.depth -= 1

    # ------------------------------------------------------------ snapshots
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Each tribute document is read once inside the block (one committed state per tribute)."""
        self._check_open()
        snap = self._snap
        if snap.depth == 0:
            snap.docs = {}
        snap.depth += 1
        try:
            yield
        finally:
            snap.depth -= 1
            if snap.depth == 0:
                snap.docs = {}

    @contextmanager
    def whole_snapshot(self) -> Iterator[None]:
        """One committed state of the whole store for the block: it holds the writers' lock
        (in their queue), so no commit lands inside it; a transaction of this thread joins it.
        A store whose lock cannot be taken (read-only files) is read per document, as before."""
        self._check_open()
        snap = self._snap
        if self._tx.depth or snap.locked:
            with self.snapshot():
                yield
            return
        with self._writers_held() as held:
            snap.locked = held
            try:
                with self.snapshot():
                    yield
            finally:
                snap.locked = False

    @contextmanager
    def _writers_held(self) -> Iterator[bool]:
        """The writers' lock for the block (a crash's interrupted commit replayed first); ``False``
        when it cannot be taken here (read-only files: the block reads as is).  A wait past the
        lock's timeout raises."""
        lock = self._locked()
        try:
            lock.__enter__()
        except LockTimeoutError:
            raise
        except StorageError:
            held = False
        else:
            held = True
        if not held:
            yield False
            return
        try:
            if not self.read_only:
                self._journal.replay()  # a commit a crash interrupted
            yield True
        finally:
            lock.__exit__(None, None, None)

    @contextmanager
    def _fresh_view(self, *, inherit: bool = False) -> Iterator[dict[Path, TributeBundle | None]]:
        """A snapshot of its own: every document read again from disk.

        With ``inherit``, inside an outer snapshot, the view starts from the documents that
        snapshot already read (so a multi-tribute read shows each of them in the state the
        snapshot shows) and reads only the others; it yields the documents it read new, for
        the caller to merge into the outer snapshot once the read is validated.
        """
        snap = self._snap
        saved = snap.depth, snap.docs
        inherited = dict(snap.docs) if inherit and snap.depth else {}
        snap.depth, snap.docs = 1, dict(inherited)
        read_new: dict[Path, TributeBundle | None] = {}
        try:
            yield read_new
            read_new.update((path, doc) for path, doc in snap.docs.items() if path not in inherited)
        finally:
            snap.depth, snap.docs = saved

    def _read_in_view(self, read: Callable[[], T]) -> T:
        """``read`` in a fresh view that keeps the outer snapshot's documents; the documents read
        new join the outer snapshot (call it only once the read is known to be one state)."""
        with self._fresh_view(inherit=True) as read_new:
            result = read()
        self._keep_in_snapshot(read_new)
        return result

    def _consistent(self, read: Callable[[], T], *, tries: int = READ_TRIES) -> T:
        """Run ``read`` on one committed state of the whole store (seqlock, then the lock)."""
        self._check_open()
        snap = self._snap
        if self._tx.depth or snap.validating or snap.locked:  # the lock is held, or an outer read validates
            return read()
        snap.validating = True
        try:
            return self._validated(read, tries)
        finally:
            snap.validating = False

    def _validated(self, read: Callable[[], T], tries: int) -> T:
        pause = 0.001
        for _ in range(tries):
            before = self._journal.generation()
            if before % 2:  # a commit is touching files: it takes milliseconds
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
                continue
            try:
                with self._fresh_view(inherit=True) as read_new:
                    result = read()
            except TributeStoreError:
                if self._journal.generation() == before:
                    raise
                continue
            if self._journal.generation() == before:
                self._keep_in_snapshot(read_new)
                return result
        with self._writers_held():  # or, where it cannot be taken (read-only files), as is
            return self._read_in_view(read)

    def _keep_in_snapshot(self, read_new: Mapping[Path, TributeBundle | None]) -> None:
        """Documents a validated read found join the outer snapshot (if any): read once, seen once."""
        snap = self._snap
        if snap.depth:
            for path, document in read_new.items():
                snap.docs.setdefault(path, document)

    # ----------------------------------------------------------- raw access
    def _read_disk(self, path: Path) -> bytes | None:
        try:
            with open(self._layout.inside(path), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error.strerror}") from None

    def _read(self, path: Path) -> bytes | None:
        """The bytes of ``path`` as this thread sees them (its transaction buffer first)."""
        self._check_open()
        state = self._tx
        if state.depth and path in state.buffer:
            return state.buffer[path]
        return self._read_disk(path)

    def _exists(self, path: Path) -> bool:
        state = self._tx
        if state.depth and path in state.buffer:
            return state.buffer[path] is not None
        return _is_file(path)

    def _write(self, path: Path, data: Change) -> None:
        state = self._tx
        if not state.depth:
            raise StorageError(f"internal error: write to {path} outside a transaction")
        self._layout.inside(path)
        if state.undo:
            state.undo[-1].setdefault(path, state.buffer.get(path, _Undo.ABSENT))
        state.buffer[path] = data

    def _list_names(self, directory: Path) -> set[str]:
        """Names of the entries of ``directory`` as this thread sees them."""
        names = list_dir(directory)
        state = self._tx
        if state.depth:
            for path, data in state.buffer.items():
                if data is None:
                    if path.parent == directory:
                        names.discard(path.name)
                elif directory in path.parents:
                    names.add(path.relative_to(directory).parts[0])
        return {name for name in names if not name.startswith(".")}

    # ------------------------------------------------------------- documents
    def _load_doc(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        path = self._layout.tribute_file(guild_id, tribute_id)
        memo = self._snap.docs if self._snap.depth and not self._tx.depth else None
        if memo is not None and path in memo:
            return memo[path]  # inside a snapshot: the document as first read
        raw = self._read_document(path)
        document = None if raw is None else documents.parse_tribute(path, raw, guild_id, tribute_id)
        if memo is not None:
            memo[path] = document
        return document

    def _read_document(self, path: Path) -> bytes | None:
        """A tribute file's bytes as this thread sees them; a transaction reads each from disk once."""
        state = self._tx
        if not state.depth or path in state.buffer:
            return self._read(path)
        if path not in state.read:
            state.read[path] = self._read(path)
        return state.read[path]

    def _snapshot_docs(self) -> list[TributeBundle]:
        """The documents this thread's snapshot holds (none in a transaction or outside a snapshot)."""
        snap = self._snap
        if not snap.depth or self._tx.depth:
            return []
        return [document for document in snap.docs.values() if document is not None]

    def _guild_ids(self) -> list[int]:
        names = self._list_names(self._layout.guilds)
        ids = {int(name) for name in names if name.isdigit() and str(int(name)) == name}
        ids.update(document.tribute.guild_id for document in self._snapshot_docs())
        return sorted(ids)

    def _tribute_ids(self, guild_id: int) -> list[str]:
        ids = set()
        for name in self._list_names(self._layout.tributes_dir(guild_id)):
            tribute_id = name.removesuffix(TRIBUTE_SUFFIX)
            if name.endswith(TRIBUTE_SUFFIX) and TRIBUTE_ID_RE.match(tribute_id):
                ids.add(tribute_id)
        # A tribute the snapshot read is listed, as the snapshot shows it, even if deleted since.
        ids.update(d.tribute.tribute_id for d in self._snapshot_docs() if d.tribute.guild_id == guild_id)
        return sorted(ids)

    def _iter_docs(self, guild_id: int | None) -> Iterator[TributeBundle]:
        for gid in self._guild_ids() if guild_id is None else [guild_id]:
            for tid in self._tribute_ids(gid):
                document = self._load_doc(gid, tid)
                if document is not None:  # deleted meanwhile by another process
                    yield document

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild: Guild) -> None:
        self._writable()
        with self.transaction():
            self._write(self._layout.guild_file(guild.guild_id), documents.guild_bytes(guild))

    def get_guild(self, guild_id: int) -> Guild | None:
        path = self._layout.guild_file(guild_id)
        raw = self._read(path)
        return None if raw is None else documents.parse_guild(path, raw, guild_id)

    def list_guilds(self) -> list[Guild]:
        return self._consistent(self._list_guilds)

    def _list_guilds(self) -> list[Guild]:
        guilds = (self.get_guild(guild_id) for guild_id in self._guild_ids())
        return [guild for guild in guilds if guild is not None]

    # -------------------------------------------------------------- tributes
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        document = self._load_doc(guild_id, tribute_id)
        return None if document is None else document.tribute

    def present(self, keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
        self._check_open()
        return {key for key in keys if self._exists(self._layout.tribute_file(*key))}

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        return self._load_doc(guild_id, tribute_id)

    def save(
        self, document: TributeBundle, files: Mapping[str, bytes], previous: TributeBundle | None
    ) -> None:
        self._writable()
        key = document.tribute.key
        path = self._layout.tribute_file(*key)
        with self.transaction():
            stored = previous if previous is not None else self._load_doc(*key)
            self._store_files(document, files, [] if stored is None else stored.files)
            self._write(path, documents.tribute_bytes(document))

    def delete(self, guild_id: int, tribute_id: str) -> None:
        self._writable()
        path = self._layout.tribute_file(guild_id, tribute_id)
        with self.transaction():
            document = self._load_doc(guild_id, tribute_id)
            if document is None:
                return
            for info in document.files:
                self._drop_ref(info)
            self._write(path, None)

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        """Streaming; inside a snapshot, the listing is one committed state of the store."""
        snap = self._snap
        if snap.depth and not snap.validating and not self._tx.depth:
            yield from self._consistent(lambda: [doc.tribute for doc in self._iter_docs(guild_id)])
            return
        for document in self._iter_docs(guild_id):
            yield document.tribute

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        """Each document from one read of its file (a tribute deleted meanwhile is skipped)."""
        return self._iter_docs(guild_id)

    # ----------------------------------------------------------------- files
    def _store_files(self, document: TributeBundle, files: Mapping[str, bytes], old: list[FileInfo]) -> None:
        """Add the references (and blobs) of the document's new files, drop those of the files gone."""
        before = {info.name: info for info in old}
        for info in document.files:
            data = files.get(info.name)
            if data is not None:
                self._add_ref(info, data)
                continue
            kept = before.get(info.name)
            if kept is None or kept.sha256 != info.sha256:
                raise StorageError(
                    f"internal error: no bytes given for the new file {info.name!r} of tribute "
                    f"{info.tribute_id} in guild {info.guild_id} (store {self.url})"
                )
        listed = {(info.name, info.sha256) for info in document.files}
        for info in old:
            if (info.name, info.sha256) not in listed:
                self._drop_ref(info)

    def _add_ref(self, info: FileInfo, data: bytes) -> None:
        layout = self._layout
        blob = layout.blob_file(info.sha256)
        if not self._exists(blob) or (blob not in self._tx.buffer and _stat_check(blob, _size) != len(data)):
            self._write(blob, data)  # new, or (re)heal a blob found damaged on disk
        ref = layout.ref_file(info.sha256, info.guild_id, info.tribute_id, info.name)
        self._write(ref, documents.ref_bytes(info))

    def _drop_ref(self, info: FileInfo) -> None:
        layout = self._layout
        self._write(layout.ref_file(info.sha256, info.guild_id, info.tribute_id, info.name), None)
        if not self._list_names(layout.refs_dir(info.sha256)):
            self._write(layout.blob_file(info.sha256), None)

    def read_file(self, info: FileInfo) -> bytes:
        """The file's bytes.  When a commit replaced or deleted the file after ``info`` was read
        (its blob is gone), the owner's document is read again: the bytes of the file of that
        name it lists now are returned, and :class:`NotFoundError` is raised when it lists none."""
        current = info
        for _ in range(READ_TRIES):
            blob = self._layout.blob_file(current.sha256)
            data = self._read(blob)
            if data is not None:
                if not bytes_match(current, data):
                    raise CorruptDataError(f"{blob}: contents do not match sha256 {current.sha256}")
                return data
            again = self._listed_now(current)
            if again == current:  # the document still names it: really missing
                break
            current = again
        raise CorruptDataError(
            f"{self._layout.blob_file(current.sha256)}: missing (bytes of file {current.name!r} of "
            f"tribute {current.tribute_id} in guild {current.guild_id})"
        )

    def _listed_now(self, info: FileInfo) -> FileInfo:
        """The file of ``info``'s name as its owner's document lists it now (past any snapshot)."""
        with self._fresh_view():
            document = self._load_doc(info.guild_id, info.tribute_id)
        found = None if document is None else next((f for f in document.files if f.name == info.name), None)
        if found is None:
            raise NotFoundError(
                f"file {info.name!r} of tribute {info.tribute_id} in guild {info.guild_id} "
                "was deleted while it was being read"
            )
        return found

    # ------------------------------------------------------------ whole store
    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        return iter(self._consistent(lambda: list(self._search(folded_query, guild_id))))

    def _search(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        for document in self._iter_docs(guild_id):
            inventory = document.inventory
            slots: tuple[tuple[Slot, list[str]], ...] = (
                ("items", inventory.items),
                ("equipped", inventory.equipped),
            )
            for slot, entries in slots:
                for number, item in enumerate(entries, start=1):
                    if folded_query in item.casefold():
                        yield ItemHit(
                            guild_id=inventory.guild_id,
                            tribute_id=inventory.tribute_id,
                            slot=slot,
                            number=number,
                            item=item,
                        )

    def counts(self) -> Counts:
        return self._consistent(self._counts)

    def _counts(self) -> Counts:
        counts = Counts()
        for guild_id in self._guild_ids():
            if self._exists(self._layout.guild_file(guild_id)):
                counts.guilds += 1
            for document in self._iter_docs(guild_id):
                counts.tributes += 1
                counts.items += len(document.inventory.items)
                counts.equipped += len(document.inventory.equipped)
                counts.prompts += document.prompt is not None
                counts.files += len(document.files)
        return counts

    def check(self) -> list[str]:
        """Walk the whole tree and describe every inconsistency found (empty when sound).

        The walk is validated like any multi-tribute read: one that overlapped a
        commit (whose journal, temporaries and half-renamed files are work in
        flight, not damage) runs again, and after a few tries under the lock.
        """
        return self._consistent(lambda: Checker(self._layout).run(), tries=CHECK_TRIES)

    def details(self) -> dict[str, int]:
        return {}

    # ------------------------------------------------------------ tombstones
    def put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None) -> None:
        self._writable()
        layout = self._layout
        record = documents.tombstone_bytes(utcnow().isoformat(), origin_key)
        with self.transaction():
            path = layout.tombstone_file(guild_id, tribute_id)
            if not self._exists(path):
                self._write(path, record)
            if origin_key is not None:
                origin = layout.origin_tombstone_file(origin_key)
                if not self._exists(origin):
                    self._write(origin, record)

    def has_tombstone(self, guild_id: int, tribute_id: str) -> bool:
        return self._exists(self._layout.tombstone_file(guild_id, tribute_id))

    def has_origin_tombstone(self, origin_key: str) -> bool:
        return self._exists(self._layout.origin_tombstone_file(origin_key))

    def iter_tombstones(self) -> Iterator[tuple[int, str, str | None]]:
        return iter(self._consistent(self._list_tombstones))

    def _list_tombstones(self) -> list[tuple[int, str, str | None]]:
        top = self._layout.root / TOMBSTONES_DIR
        found: list[tuple[int, str, str | None]] = []
        for guild in self._list_names(top):
            if guild == ORIGINS_DIR or not guild.isdecimal():
                continue
            for tribute_id in self._list_names(top / guild):
                path = self._layout.tombstone_file(int(guild), tribute_id)
                raw = self._read(path)
                if raw is not None:
                    found.append((int(guild), tribute_id, documents.tombstone_origin(path, raw)))
        return sorted(found, key=lambda entry: (entry[0], entry[1]))

    def count_tombstones(self) -> int:
        """Tombstones by (guild, tribute) as this thread sees them (its transaction's included;
        hidden names, such as another commit's temporaries, are not tombstones)."""
        return self._consistent(self._count_tombstones)

    def _count_tombstones(self) -> int:
        top = self._layout.root / TOMBSTONES_DIR
        guilds = [name for name in self._list_names(top) if name != ORIGINS_DIR]
        return sum(len(self._list_names(top / name)) for name in guilds)


def _make_root(path: Path, *, create: bool) -> None:
    """Create the store's directory when allowed; refuse a missing one or a file otherwise."""
    if _exists_on_disk(path):
        if not _is_dir(path):
            raise StorageError(f"JSON store path {path.absolute()} is not a directory")
        return
    if not create:
        raise StorageError(f"JSON store directory {path.absolute()} does not exist")
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        pass
    except OSError as error:
        raise StorageError(f"cannot create JSON store directory {path}: {error.strerror}") from None


def _exists_on_disk(path: Path) -> bool:
    """``path.exists()``, an error other than "no such file" being a :class:`StorageError`."""
    return _stat_check(path, Path.exists)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, an error other than "no such file" being a :class:`StorageError`."""
    return _stat_check(path, Path.is_file)


def _is_dir(path: Path) -> bool:
    return _stat_check(path, Path.is_dir)


def _size(path: Path) -> int:
    return path.stat().st_size


def _stat_check(path: Path, check: Callable[[Path], T]) -> T:
    try:
        return check(path)
    except OSError as error:  # permission denied on the path or a directory above it, I/O error
        raise StorageError(f"cannot access {path.absolute()}: {error.strerror}") from None
