"""The ``json`` backend: one JSON file per tribute, content-addressed blobs, journaled commits.

Writes happen only inside :meth:`JsonStore.transaction`, which holds the
store-wide ``.lock`` (an ``flock``, behind a fair queue, so it excludes other
processes too) and buffers every change as ``path -> new bytes`` (or ``None``
for a deletion); reads inside the transaction see the buffer.  On success the
buffer is committed with a journal:

1. ``journal.json`` (state ``prepare``) lists the temporary files about to be written;
2. every new file is written whole beside its target, fsync'd, directories fsync'd;
3. ``journal.json`` (state ``commit``) lists the renames and deletions;
4. they are applied, then the journal is removed.

A crash before step 3 leaves a ``prepare`` journal, whose temporaries are
removed on the next open or transaction (rolled back); a crash after it
leaves a ``commit`` journal, which is replayed (rolled forward).

The lock is a :class:`~tributestore.fairlock.FairLock`: writers of every
process and thread queue in arrival order (``.lock.queue``), blocking in the
kernel, and give up with ``LockTimeoutError`` after ``lock_timeout``.

Reads outside a transaction take no lock: every file is replaced atomically.
One tribute (document, inventory, prompt, file list) is one file, and
:meth:`JsonStore.snapshot` reads each document once, so a multi-part read of
one tribute is one committed state.  Reads spanning several files of several
tributes (listings, search, counts, ``check``) are validated against
``.generation``, a counter each commit makes odd before it touches any file
and even when done (a seqlock): a read that overlapped a commit is run again,
and after a few tries under the lock.  A blob a commit removed while
``read_file`` was between the document and the blob is read again from the
new document.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tributestore.errors import (
    ConfigError,
    CorruptDataError,
    LockTimeoutError,
    NotFoundError,
    SchemaVersionError,
    StorageError,
    StoreNotFoundError,
    TributeStoreError,
)
from tributestore.fairlock import FairLock
from tributestore.models import (
    Counts,
    FileInfo,
    Guild,
    Inventory,
    ItemHit,
    Prompt,
    Slot,
    Tribute,
    TributeBundle,
    check_guild_id,
    describe_validation_error,
    utcnow,
)
from tributestore.store import T, TributeStore, bytes_match
from tributestore.urls import StoreURL

from .atomic import TEMP_SUFFIX, atomic_write, fsync_dir, make_dirs, remove_empty_dirs, write_fsync
from .layout import (
    FORMAT_NAME,
    GUILD_FILE,
    JOURNAL_NAME,
    LOCK_NAME,
    MARKER_NAME,
    ORIGINS_DIR,
    REFS_SUFFIX,
    SCHEMA_VERSION,
    SHA_RE,
    TOMBSTONES_DIR,
    TRIBUTE_ID_RE,
    TRIBUTE_SUFFIX,
    Layout,
    ref_name,
)

__all__ = ["JsonStore", "open_json_store"]

DEFAULT_LOCK_TIMEOUT = 60.0
#: Lock-free tries of a read spanning several tributes before it runs under the lock.
READ_TRIES = 8
#: Tries of ``check`` (a long walk) before it runs under the lock.
CHECK_TRIES = 3

M = TypeVar("M", bound=BaseModel)


class _Undo(Enum):
    ABSENT = 0


#: A buffered change: new bytes, or ``None`` for a deletion.
Change = bytes | None


class _TxState(threading.local):
    """Per-thread transaction state (the buffer is only visible to its own thread)."""

    def __init__(self) -> None:
        self.depth = 0
        self.buffer: dict[Path, Change] = {}
        #: One undo map per nested transaction level (savepoints).
        self.undo: list[dict[Path, Change | _Undo]] = []


class _SnapState(threading.local):
    """Per-thread snapshot: each tribute document read once while ``depth > 0``."""

    def __init__(self) -> None:
        self.depth = 0
        self.docs: dict[Path, _TributeDoc | None] = {}


@dataclass
class _TributeDoc:
    tribute: Tribute
    inventory: Inventory
    prompt: Prompt | None = None
    files: list[FileInfo] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tribute": self.tribute.model_dump(mode="json"),
            "inventory": self.inventory.model_dump(mode="json"),
            "prompt": None if self.prompt is None else self.prompt.model_dump(mode="json"),
            "files": [info.model_dump(mode="json") for info in sorted(self.files, key=_file_key)],
        }


def _file_key(info: FileInfo) -> str:
    return info.name


def _encode(document: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False)
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them as \\u escapes
        return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def open_json_store(url: StoreURL) -> TributeStore:
    """Open a JSON store directory, or a legacy THGBot one (read-only).

    In ``read`` mode the directory must already be a store (its marker file)
    or a legacy THGBot directory; nothing is created, no lock file written.
    In ``write`` mode a missing or empty directory becomes a new store
    (unless ``?create=false``).
    """
    from .legacy import LEGACY_OPTIONS, looks_like_legacy, open_legacy_store  # local: the reader is large

    path = url.local_path()
    timeout = url.seconds("timeout", DEFAULT_LOCK_TIMEOUT)
    lock_timeout = url.seconds("lock_timeout", timeout)
    create, read_only = url.flag("create", True), url.flag("read_only", False)
    if looks_like_legacy(path):
        return open_legacy_store(url)
    if url.must_exist:
        if not path.exists():
            raise url.missing("no JSON store or legacy THGBot directory", path)
        if not (path / MARKER_NAME).is_file():
            raise StoreNotFoundError(
                f"store {url.display!r}: {path.absolute()} is neither a tributestore JSON store "
                f"(no {MARKER_NAME}) nor a legacy THGBot data directory; nothing was created"
            )
    legacy_only = sorted(set(url.options) & set(LEGACY_OPTIONS))
    if legacy_only:
        what = "is not one" if path.exists() else "does not exist"
        raise ConfigError(
            f"store URL {url.display!r}: option {legacy_only[0]!r} applies to a legacy THGBot data "
            f"directory, and {path.absolute()} {what}"
        )
    return JsonStore(
        path,
        url=url.display,
        create=create and not url.must_exist,
        read_only=read_only,
        lock_timeout=lock_timeout,
    )


class JsonStore(TributeStore):
    """A tribute store kept as a directory of JSON files (see the module docstring)."""

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
        self._closed = False
        self._lock_timeout = lock_timeout
        if not path.exists():
            if not create or read_only:
                raise StorageError(f"JSON store directory {path.absolute()} does not exist")
            try:
                path.mkdir(parents=True)
            except FileExistsError:
                pass
            except OSError as error:
                raise StorageError(f"cannot create JSON store directory {path}: {error.strerror}") from None
        elif not path.is_dir():
            raise StorageError(f"JSON store path {path.absolute()} is not a directory")
        self._layout = Layout(path)
        if create and not read_only and not self._layout.marker.exists():
            # Refused before the lock: a directory that is not a store gets no .lock file.
            self._refuse_foreign_directory()
        self._tx = _TxState()
        self._snap = _SnapState()
        self._lock = FairLock(self._layout.lock, what=f"store {self.url}")
        if read_only or (
            self._layout.marker.exists()
            and not self._layout.journal.exists()
            and not self._root_temps()
            and self._generation() % 2 == 0
        ):
            # Nothing to set up or recover: opening needs no lock (so it never waits for a writer).
            self._check_marker(create=False)
            return
        if self._layout.marker.exists():
            # A journal or temporaries: a crash's leftovers, or a live writer's commit. Recover
            # only when no writer holds the lock (a live one finishes its own commit): never wait.
            with self._lock.try_hold() as held:
                if held:
                    self._replay_journal()
            self._check_marker(create=False)
            return
        with self._locked():
            self._replay_journal()
            self._check_marker(create=create)

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"store {self.url} is closed")

    @property
    def root(self) -> Path:
        return self._layout.root

    def _check_marker(self, *, create: bool) -> None:
        marker = self._layout.marker
        raw = self._read_disk(marker)
        if raw is None:
            if not create:
                raise StorageError(f"{self.root} is not a tributestore JSON store (no {MARKER_NAME})")
            self._refuse_foreign_directory()
            try:
                atomic_write(marker, _encode({"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION}))
            except OSError as error:
                raise StorageError(f"cannot write {marker}: {error.strerror}") from None
            self.created = str(self.root.absolute())
            return
        document = self._parse_json(marker, raw)
        if document.get("format") != FORMAT_NAME:
            raise CorruptDataError(
                f"{marker}: format is {document.get('format')!r}, expected {FORMAT_NAME!r}"
            )
        self._check_version(marker, document)

    def _refuse_foreign_directory(self) -> None:
        """Refuse to turn a directory holding anything else into a store."""
        leftovers = [
            entry
            for entry in os.listdir(self.root)
            if not entry.startswith(LOCK_NAME) and not (entry.startswith(".") and entry.endswith(TEMP_SUFFIX))
        ]
        if leftovers:
            raise StorageError(
                f"{self.root.absolute()} is not empty and is not a tributestore JSON store "
                f"(no {MARKER_NAME}); found {sorted(leftovers)[0]!r}"
            )

    def _check_version(self, path: Path, document: dict[str, Any]) -> None:
        version = document.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CorruptDataError(f"{path}: schema_version must be a positive int (got {version!r})")
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{path}: schema_version {version} is newer than this tributestore supports "
                f"({SCHEMA_VERSION}); upgrade tributestore"
            )

    # --------------------------------------------------------------- locking
    def _locked(self) -> AbstractContextManager[None]:
        """The store-wide write lock, in arrival order among all writers (FairLock)."""
        return self._lock.hold(self._lock_timeout)

    # ------------------------------------------------------------ generation
    def _generation(self) -> int:
        """The commit counter (0 when never written): odd while a commit is touching files."""
        try:
            with open(self._layout.generation, "rb") as handle:
                raw = handle.read(32)
        except FileNotFoundError:
            return 0
        except OSError as error:
            raise StorageError(f"cannot read {self._layout.generation}: {error.strerror}") from None
        try:
            return int(raw.split(b"\n", 1)[0] or b"0")
        except ValueError:
            return -1  # torn or damaged: odd, never equal to a value read before

    def _set_generation(self, *, busy: bool) -> None:
        """Make the counter odd (``busy``: a commit starts touching files) or even (done); lock held.

        Not fsync'd: it only tells concurrent readers that something changed.
        """
        current = max(self._generation(), 0)
        if busy:
            new = current + (1 if current % 2 == 0 else 2)
        elif current % 2:
            new = current + 1
        else:
            return
        fd = os.open(self._layout.generation, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"%019d\n" % new, 0)
        finally:
            os.close(fd)

    # -------------------------------------------------------------- snapshots
    def snapshot(self) -> AbstractContextManager[None]:
        return self._snapshot()

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
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

    def _consistent(self, read: Callable[[], T], *, tries: int = READ_TRIES) -> T:
        """Run ``read`` on one committed state of the whole store (seqlock, then the lock)."""
        self._check_open()
        if self._tx.depth or self._snap.depth:  # the lock is held, or an outer read validates
            return read()
        pause = 0.001
        for _ in range(tries):
            before = self._generation()
            if before % 2:  # a commit is touching files: it takes milliseconds
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
                continue
            try:
                with self.snapshot():
                    result = read()
            except TributeStoreError:
                if self._generation() == before:
                    raise
                continue
            if self._generation() == before:
                return result
        try:
            lock = self._locked()
            lock.__enter__()
        except LockTimeoutError:
            raise
        except StorageError:  # the lock cannot be taken here (read-only files): read as is
            with self.snapshot():
                return read()
        try:
            if not self.read_only:
                self._replay_journal()  # a commit a crash interrupted
            with self.snapshot():
                return read()
        finally:
            lock.__exit__(None, None, None)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._check_open()
        state = self._tx
        if state.depth > 0:
            yield from self._nested(state)
            return
        if self.read_only:  # nothing can be written: no lock, no commit
            state.depth, state.buffer, state.undo = 1, {}, []
            try:
                yield
            finally:
                state.depth, state.buffer, state.undo = 0, {}, []
            return
        with self._locked():
            self._replay_journal()
            state.depth, state.buffer, state.undo = 1, {}, []
            try:
                yield
                buffer = state.buffer
                state.depth, state.buffer = 0, {}
                if buffer:
                    self._commit(buffer)
            finally:
                state.depth, state.buffer, state.undo = 0, {}, []

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
        return path.is_file()

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
        try:
            names = set(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        except OSError as error:
            raise StorageError(f"cannot list {directory}: {error.strerror}") from None
        state = self._tx
        if state.depth:
            for path, data in state.buffer.items():
                if data is None:
                    if path.parent == directory:
                        names.discard(path.name)
                elif directory in path.parents:
                    names.add(path.relative_to(directory).parts[0])
        return {name for name in names if not name.startswith(".")}

    def _parse_json(self, path: Path, raw: bytes) -> dict[str, Any]:
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, a number too long, too deep
            raise CorruptDataError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(document, dict):
            raise CorruptDataError(f"{path}: expected a JSON object, got {type(document).__name__}")
        return document

    def _model(self, path: Path, model: type[M], value: object, what: str) -> M:
        try:
            return model.model_validate(value)
        except ValidationError as error:
            raise CorruptDataError(f"{path}: {describe_validation_error(error, what)}") from None

    # ---------------------------------------------------------------- commit
    def _commit(self, buffer: dict[Path, Change]) -> None:
        layout = self._layout
        txid = uuid.uuid4().hex
        writes = sorted(
            ((path, data) for path, data in buffer.items() if data is not None),
            key=lambda entry: (layout.kind_rank(entry[0]), str(entry[0])),
        )
        deletes = sorted(
            (path for path, data in buffer.items() if data is None),
            key=lambda path: (-layout.kind_rank(path), str(path)),
        )
        renames = [(path.parent / f".{path.name}.{txid}{TEMP_SUFFIX}", path) for path, _ in writes]
        try:
            self._set_generation(busy=True)  # lock-free readers overlapping from here on read again
            atomic_write(
                layout.journal,
                _encode({"state": "prepare", "txid": txid, "temps": [layout.rel(t) for t, _ in renames]}),
            )
        except OSError as error:
            raise StorageError(f"cannot write {layout.journal}: {error.strerror}") from None
        try:
            dirs: set[Path] = set()
            for (tmp, target), (_, data) in zip(renames, writes, strict=True):
                if target.parent not in dirs:
                    make_dirs(target.parent)
                    dirs.add(target.parent)
                write_fsync(tmp, data)
            for directory in dirs:
                fsync_dir(directory)
            atomic_write(
                layout.journal,
                _encode(
                    {
                        "state": "commit",
                        "txid": txid,
                        "renames": [[layout.rel(t), layout.rel(p)] for t, p in renames],
                        "deletes": [layout.rel(p) for p in deletes],
                    }
                ),
            )
        except OSError as error:
            self._replay_journal()  # rolls the prepared temporaries back
            raise StorageError(f"cannot commit to {self.root}: {error}") from None
        try:
            self._apply(renames, deletes)
        except OSError as error:
            raise StorageError(
                f"commit to {self.root} interrupted ({error}); it will be completed from "
                f"{JOURNAL_NAME} when the store is next used"
            ) from None

    def _apply(self, renames: list[tuple[Path, Path]], deletes: list[Path]) -> None:
        dirs: set[Path] = set()
        for tmp, target in renames:
            if tmp.exists():
                make_dirs(target.parent)
                os.replace(tmp, target)
                dirs.add(target.parent)
        for path in deletes:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            dirs.add(path.parent)
        for directory in dirs:
            fsync_dir(directory)
        self._layout.journal.unlink()
        fsync_dir(self.root)
        for path in deletes:
            remove_empty_dirs(path.parent, self.root)
        self._set_generation(busy=False)

    def _root_temps(self) -> list[Path]:
        """Temporaries of :func:`atomic_write` (journal, marker) a crash left in the root.

        The journal does not list them (they are written before it exists, or are it).
        """
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return [self.root / n for n in names if n.startswith(".") and n.endswith(TEMP_SUFFIX)]

    def _replay_journal(self) -> None:
        """Finish (or undo) a commit a crash interrupted; caller holds the lock."""
        layout = self._layout
        for temp in self._root_temps():  # only a lock holder writes them: these are dead
            with suppress(FileNotFoundError):
                temp.unlink()
        raw = self._read_disk(layout.journal)
        if raw is None:
            if self._generation() % 2:  # a crash between the journal's removal and this
                with suppress(OSError):
                    self._set_generation(busy=False)
            return
        journal = self._parse_json(layout.journal, raw)
        state = journal.get("state")
        try:
            if state == "prepare":
                temps = [layout.from_rel(rel) for rel in journal.get("temps", [])]
                for temp in temps:
                    with suppress(FileNotFoundError):
                        temp.unlink()
                # The commit may have created directories for its files (a new guild's):
                # remove those left empty, or check() would see a guild with no guild.json.
                for temp in temps:
                    remove_empty_dirs(temp.parent, self.root)
                layout.journal.unlink()
                fsync_dir(self.root)
                self._set_generation(busy=False)
            elif state == "commit":
                renames = [(layout.from_rel(t), layout.from_rel(p)) for t, p in journal.get("renames", [])]
                deletes = [layout.from_rel(p) for p in journal.get("deletes", [])]
                self._apply(renames, deletes)
            else:
                raise CorruptDataError(f"{layout.journal}: unknown state {state!r}")
        except (TypeError, ValueError) as error:
            raise CorruptDataError(f"{layout.journal}: malformed journal ({error})") from None
        except OSError as error:
            raise StorageError(f"cannot replay {layout.journal}: {error}") from None

    # ------------------------------------------------------------- documents
    def _load_doc(self, guild_id: int, tribute_id: str) -> _TributeDoc | None:
        path = self._layout.tribute_file(guild_id, tribute_id)
        memo = self._snap.docs if self._snap.depth and not self._tx.depth else None
        if memo is not None and path in memo:
            return memo[path]  # inside a snapshot: the document as first read
        raw = self._read(path)
        doc = None if raw is None else self._parse_doc(path, raw, guild_id, tribute_id)
        if memo is not None:
            memo[path] = doc
        return doc

    def _parse_doc(self, path: Path, raw: bytes, guild_id: int, tribute_id: str) -> _TributeDoc:
        document = self._parse_json(path, raw)
        self._check_version(path, document)
        tribute = self._model(path, Tribute, document.get("tribute"), "tribute")
        inventory_data = document.get("inventory")
        inventory = (
            Inventory(guild_id=guild_id, tribute_id=tribute_id)
            if inventory_data is None
            else self._model(path, Inventory, inventory_data, "inventory")
        )
        prompt_data = document.get("prompt")
        prompt = None if prompt_data is None else self._model(path, Prompt, prompt_data, "prompt")
        files_data = document.get("files") or []
        if not isinstance(files_data, list):
            raise CorruptDataError(f"{path}: files must be a list")
        files = [self._model(path, FileInfo, item, "file") for item in files_data]
        owner = (guild_id, tribute_id)
        for part in (tribute, inventory, prompt, *files):
            if part is not None and (part.guild_id, part.tribute_id) != owner:
                raise CorruptDataError(
                    f"{path}: holds {type(part).__name__} of tribute {part.tribute_id} in guild "
                    f"{part.guild_id}, but its name says tribute {tribute_id} in guild {guild_id}"
                )
        return _TributeDoc(tribute, inventory, prompt, files)

    def _require_doc(self, guild_id: int, tribute_id: str) -> _TributeDoc:
        doc = self._load_doc(guild_id, tribute_id)
        if doc is None:
            raise NotFoundError(f"tribute {tribute_id} not found in guild {guild_id}")
        return doc

    def _save_doc(self, doc: _TributeDoc) -> None:
        path = self._layout.tribute_file(doc.tribute.guild_id, doc.tribute.tribute_id)
        self._write(path, _encode(doc.dump()))

    def _guild_ids(self) -> list[int]:
        ids = []
        for name in self._list_names(self._layout.guilds):
            if name.isdigit() and str(int(name)) == name:
                ids.append(int(name))
        return sorted(ids)

    def _tribute_ids(self, guild_id: int) -> list[str]:
        ids = []
        for name in self._list_names(self._layout.tributes_dir(guild_id)):
            if name.endswith(TRIBUTE_SUFFIX):
                tribute_id = name.removesuffix(TRIBUTE_SUFFIX)
                if TRIBUTE_ID_RE.match(tribute_id):
                    ids.append(tribute_id)
        return sorted(ids)

    def _iter_docs(self, guild_id: int | None) -> Iterator[_TributeDoc]:
        guild_ids = self._guild_ids() if guild_id is None else [guild_id]
        for gid in guild_ids:
            for tid in self._tribute_ids(gid):
                doc = self._load_doc(gid, tid)
                if doc is not None:  # deleted meanwhile by another process
                    yield doc

    # ---------------------------------------------------------------- guilds
    def _put_guild(self, guild: Guild) -> None:
        document = {"schema_version": SCHEMA_VERSION, "guild": guild.model_dump(mode="json")}
        self._write(self._layout.guild_file(guild.guild_id), _encode(document))

    def _get_guild(self, guild_id: int) -> Guild | None:
        path = self._layout.guild_file(guild_id)
        raw = self._read(path)
        if raw is None:
            return None
        document = self._parse_json(path, raw)
        self._check_version(path, document)
        guild = self._model(path, Guild, document.get("guild"), "guild")
        if guild.guild_id != guild_id:
            raise CorruptDataError(f"{path}: holds guild {guild.guild_id}, but its directory says {guild_id}")
        return guild

    def _list_guilds(self) -> list[Guild]:
        guilds = []
        for guild_id in self._guild_ids():
            guild = self._get_guild(guild_id)
            if guild is not None:
                guilds.append(guild)
        return guilds

    # -------------------------------------------------------------- tributes
    def _get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        doc = self._load_doc(guild_id, tribute_id)
        return None if doc is None else doc.tribute

    def _insert_tribute(self, tribute: Tribute) -> None:
        inventory = Inventory(guild_id=tribute.guild_id, tribute_id=tribute.tribute_id)
        self._save_doc(_TributeDoc(tribute, inventory))

    def _update_tribute(self, tribute: Tribute) -> None:
        doc = self._require_doc(tribute.guild_id, tribute.tribute_id)
        doc.tribute = tribute
        self._save_doc(doc)

    def _delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        doc = self._load_doc(guild_id, tribute_id)
        if doc is None:
            return
        for info in doc.files:
            self._drop_ref(info)
        self._write(self._layout.tribute_file(guild_id, tribute_id), None)

    def _iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        for doc in self._iter_docs(guild_id):
            yield doc.tribute

    # ------------------------------------------------------------- inventory
    def _get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        return self._require_doc(guild_id, tribute_id).inventory

    def _save_inventory(self, inventory: Inventory) -> None:
        doc = self._require_doc(inventory.guild_id, inventory.tribute_id)
        doc.inventory = inventory
        self._save_doc(doc)

    def _search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        for doc in self._iter_docs(guild_id):
            inventory = doc.inventory
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

    # ---------------------------------------------------------------- prompt
    def _get_prompt(self, guild_id: int, tribute_id: str) -> Prompt | None:
        doc = self._load_doc(guild_id, tribute_id)
        return None if doc is None else doc.prompt

    def _save_prompt(self, prompt: Prompt) -> None:
        doc = self._require_doc(prompt.guild_id, prompt.tribute_id)
        doc.prompt = prompt
        self._save_doc(doc)

    def _delete_prompt(self, guild_id: int, tribute_id: str) -> None:
        doc = self._load_doc(guild_id, tribute_id)
        if doc is not None and doc.prompt is not None:
            doc.prompt = None
            self._save_doc(doc)

    # ----------------------------------------------------------------- files
    def _add_ref(self, info: FileInfo, data: bytes) -> None:
        layout = self._layout
        blob = layout.blob_file(info.sha256)
        if not self._exists(blob) or (blob not in self._tx.buffer and blob.stat().st_size != len(data)):
            self._write(blob, data)  # new, or (re)heal a blob found damaged on disk
        owner = {"guild_id": info.guild_id, "tribute_id": info.tribute_id, "name": info.name}
        self._write(layout.ref_file(info.sha256, info.guild_id, info.tribute_id, info.name), _encode(owner))

    def _drop_ref(self, info: FileInfo) -> None:
        layout = self._layout
        self._write(layout.ref_file(info.sha256, info.guild_id, info.tribute_id, info.name), None)
        if not self._list_names(layout.refs_dir(info.sha256)):
            self._write(layout.blob_file(info.sha256), None)

    def _save_file(self, info: FileInfo, data: bytes) -> None:
        doc = self._require_doc(info.guild_id, info.tribute_id)
        old = next((f for f in doc.files if f.name == info.name), None)
        self._add_ref(info, data)
        if old is not None and old.sha256 != info.sha256:
            self._drop_ref(old)
        doc.files = [f for f in doc.files if f.name != info.name] + [info]
        self._save_doc(doc)

    def _get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo | None:
        doc = self._load_doc(guild_id, tribute_id)
        if doc is None:
            return None
        return next((f for f in doc.files if f.name == name), None)

    def _read_file(self, info: FileInfo) -> bytes:
        blob = self._layout.blob_file(info.sha256)
        data = self._read(blob)
        if data is None:
            raise CorruptDataError(
                f"{blob}: missing (bytes of file {info.name!r} of tribute {info.tribute_id} "
                f"in guild {info.guild_id})"
            )
        if not bytes_match(info, data):
            raise CorruptDataError(f"{blob}: contents do not match sha256 {info.sha256}")
        return data

    def read_file(self, guild_id: int, tribute_id: str, name: str) -> bytes:
        """The file's bytes; when a commit removed its blob after the document was read
        (the file was replaced or deleted meanwhile), the document is read again."""
        for _ in range(READ_TRIES):
            with self.snapshot():
                info = self.get_file(guild_id, tribute_id, name)
                blob = self._layout.blob_file(info.sha256)
                data = self._read(blob)
            if data is not None:
                if not bytes_match(info, data):
                    raise CorruptDataError(f"{blob}: contents do not match sha256 {info.sha256}")
                return data
            with self.snapshot():
                again = self.get_file(guild_id, tribute_id, name)  # NotFoundError: deleted meanwhile
            if again == info:  # the document still names it: really missing
                break
        return self._read_file(info)

    def _list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        doc = self._load_doc(guild_id, tribute_id)
        return [] if doc is None else sorted(doc.files, key=_file_key)

    def _delete_file(self, guild_id: int, tribute_id: str, name: str) -> None:
        doc = self._load_doc(guild_id, tribute_id)
        if doc is None:
            return
        old = next((f for f in doc.files if f.name == name), None)
        if old is None:
            return
        self._drop_ref(old)
        doc.files = [f for f in doc.files if f.name != name]
        self._save_doc(doc)

    # ------------------------------------------------------------ whole-store
    def iter_bundles(self, guild_id: int | None = None) -> Iterator[TributeBundle]:
        """Every tribute with all it owns, each bundle from one read of its document."""
        gid = None if guild_id is None else check_guild_id(guild_id)
        for doc in self._iter_docs(gid):
            yield TributeBundle(
                tribute=doc.tribute,
                inventory=doc.inventory,
                prompt=doc.prompt,
                files=sorted(doc.files, key=_file_key),
            )

    # ------------------------------------------------------------ tombstones
    supports_tombstones = True

    def _put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None = None) -> None:
        path = self._layout.tombstone_file(guild_id, tribute_id)
        deleted_at = utcnow().isoformat()
        if not self._exists(path):
            self._write(path, _encode({"deleted_at": deleted_at, "origin_key": origin_key}))
        if origin_key is not None:
            origin = self._layout.origin_tombstone_file(origin_key)
            if not self._exists(origin):
                self._write(origin, _encode({"deleted_at": deleted_at, "origin_key": origin_key}))

    def _has_tombstone(self, guild_id: int, tribute_id: str) -> bool:
        return self._exists(self._layout.tombstone_file(guild_id, tribute_id))

    def _has_origin_tombstone(self, origin_key: str) -> bool:
        return self._exists(self._layout.origin_tombstone_file(origin_key))

    def _count_tombstones(self) -> int:
        top = self._layout.root / TOMBSTONES_DIR
        if not top.is_dir():
            return 0
        return sum(
            len(files) for directory, _subdirs, files in os.walk(top) if Path(directory).name != ORIGINS_DIR
        )

    def counts(self) -> Counts:
        return self._consistent(self._counts)

    def _counts(self) -> Counts:
        counts = Counts()
        for guild_id in self._guild_ids():
            if self._exists(self._layout.guild_file(guild_id)):
                counts.guilds += 1
            for doc in self._iter_docs(guild_id):
                counts.tributes += 1
                counts.items += len(doc.inventory.items)
                counts.equipped += len(doc.inventory.equipped)
                counts.prompts += doc.prompt is not None
                counts.files += len(doc.files)
        return counts

    def check(self) -> list[str]:
        """Walk the whole tree and describe every inconsistency found (empty when sound).

        The walk is validated like any multi-tribute read: one that overlapped a
        commit (whose journal, temporaries and half-renamed files are work in
        flight, not damage) runs again, and after a few tries under the lock.
        """
        self._check_open()
        return self._consistent(lambda: _Checker(self).run(), tries=CHECK_TRIES)


class _Checker:
    """The read-only integrity walk behind :meth:`JsonStore.check`."""

    def __init__(self, store: JsonStore) -> None:
        self.store = store
        self.layout = store._layout
        self.problems: list[str] = []
        #: (sha, ref marker name) of every file a tribute lists.
        self.expected_refs: set[tuple[str, str]] = set()

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(f"{self.layout.rel(path)}: {message}")

    def run(self) -> list[str]:
        self.check_marker()
        if self.layout.journal.exists():
            self.problem(self.layout.journal, "an interrupted commit is pending (replayed on next write)")
        self.check_guilds()
        self.check_blobs()
        self.check_leftovers()
        return self.problems

    def check_marker(self) -> None:
        try:
            self.store._check_marker(create=False)
        except StorageError as error:
            self.problems.append(str(error))

    def check_guilds(self) -> None:
        guilds = self.layout.guilds
        if not guilds.is_dir():
            return
        for name in sorted(os.listdir(guilds)):
            path = guilds / name
            if name.startswith("."):
                continue
            if not (name.isdigit() and str(int(name)) == name) or not path.is_dir():
                self.problem(path, "unexpected entry (guild directories are named by guild id)")
                continue
            guild_id = int(name)
            if not (path / GUILD_FILE).is_file():
                self.problem(path / GUILD_FILE, "missing")
            else:
                try:
                    self.store._get_guild(guild_id)
                except StorageError as error:
                    self.problems.append(str(error))
            self.check_tributes(guild_id)

    def check_tributes(self, guild_id: int) -> None:
        directory = self.layout.tributes_dir(guild_id)
        if not directory.is_dir():
            return
        for name in sorted(os.listdir(directory)):
            path = directory / name
            if name.startswith("."):
                continue
            tribute_id = name.removesuffix(TRIBUTE_SUFFIX)
            if not name.endswith(TRIBUTE_SUFFIX) or not TRIBUTE_ID_RE.match(tribute_id):
                self.problem(path, "unexpected entry (tribute files are named <TRIBUTE_ID>.json)")
                continue
            try:
                raw = path.read_bytes()
                doc = self.store._parse_doc(path, raw, guild_id, tribute_id)
            except OSError as error:
                self.problem(path, f"unreadable ({error.strerror})")
                continue
            except StorageError as error:
                self.problems.append(str(error))
                continue
            for info in doc.files:
                self.check_file(path, info)

    def check_file(self, owner: Path, info: FileInfo) -> None:
        blob = self.layout.blob_file(info.sha256)
        marker = ref_name(info.guild_id, info.tribute_id, info.name)
        self.expected_refs.add((info.sha256, marker))
        what = f"file {info.name!r} listed in {self.layout.rel(owner)}"
        try:
            data = blob.read_bytes()
        except FileNotFoundError:
            self.problem(blob, f"missing blob of {what}")
            data = None
        except OSError as error:
            self.problem(blob, f"unreadable blob of {what} ({error.strerror})")
            data = None
        if data is not None and not bytes_match(info, data):
            self.problem(blob, f"blob contents do not match sha256/size of {what}")
        ref = self.layout.refs_dir(info.sha256) / marker
        if not ref.is_file():
            self.problem(ref, f"missing reference marker for {what}")

    def check_blobs(self) -> None:
        blobs = self.layout.blobs
        if not blobs.is_dir():
            return
        for prefix in sorted(os.listdir(blobs)):
            directory = blobs / prefix
            if prefix.startswith("."):
                continue
            if not directory.is_dir() or len(prefix) != 2:
                self.problem(directory, "unexpected entry in blobs/")
                continue
            for name in sorted(self.store._list_names(directory)):  # a concurrent commit may remove it
                if name.startswith("."):
                    continue
                path = directory / name
                sha = name.removesuffix(REFS_SUFFIX)
                if not SHA_RE.match(sha) or sha[:2] != prefix:
                    self.problem(path, "unexpected entry (blobs are named by their sha256)")
                elif name.endswith(REFS_SUFFIX):
                    self.check_refs(path, sha)
                else:
                    self.check_blob(path, sha)

    def check_blob(self, path: Path, sha: str) -> None:
        try:
            data = path.read_bytes()
        except OSError as error:
            self.problem(path, f"unreadable blob ({error.strerror})")
            return
        if hashlib.sha256(data).hexdigest() != sha:
            self.problem(path, "blob contents do not match its sha256 name")
        if not any(True for _ in self.store._list_names(self.layout.refs_dir(sha))):
            self.problem(path, "orphan blob: no file refers to it")

    def check_refs(self, directory: Path, sha: str) -> None:
        markers = [name for name in sorted(self.store._list_names(directory)) if not name.startswith(".")]
        if markers and not self.layout.blob_file(sha).is_file():
            self.problem(directory, "references a blob that does not exist")
        for marker in markers:
            if (sha, marker) not in self.expected_refs:
                self.problem(directory / marker, "dangling reference: no tribute lists this file")

    def check_leftovers(self) -> None:
        for dirpath, _dirnames, filenames in os.walk(self.layout.root):
            for name in filenames:
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    self.problem(Path(dirpath) / name, "leftover temporary file")
