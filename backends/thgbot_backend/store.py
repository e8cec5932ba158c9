"""A legacy THGBot data directory as a read-only :class:`~tributestore.backend.Backend`.

The ``thgbot`` plugin's opener (:func:`open_thgbot_backend`, URL
``thgbot:///path/to/config``) reads and checks the whole directory at open
(see :mod:`.reader` for every decision taken), streaming, into an index kept
in a cache directory and reused while the files are unchanged (see
:mod:`.index`; URL option ``cache=DIR`` or ``cache=off``); the backend then
reads one tribute at a time from the index, and file bytes from disk on demand
(checked against the sha256 taken when the index was built).  Problems that lose nothing are listed in
:attr:`ThgbotBackend.warnings`, each naming the file and key.  Every write
raises :class:`~tributestore.errors.ReadOnlyStoreError`.

It also offers the :class:`~tributestore.backend.ForeignSource` capability:
the bot's own key of each record (:meth:`ThgbotBackend.origin_key`) and an
independent check of a migration against the raw files (:mod:`.presence`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tributestore.errors import LegacyFormatError, ReadOnlyStoreError, StorageError, StoreNotFoundError
from tributestore.models import Counts, FileInfo, Guild, ItemHit, Tribute, TributeBundle
from tributestore.store import TributeStore
from tributestore.urls import StoreURL

from .index import (
    CACHE_ENV,
    IndexWriter,
    LegacyIndex,
    cache_dir,
    fingerprint,
    index_path,
    prune,
    read_meta,
    scratch_db,
    touch,
    writable_dir,
)
from .index import FORMAT as INDEX_FORMAT
from .reader import (
    CONFIGS,
    DATABASE,
    IMAGES,
    INVENTORIES,
    ORPHANS,
    PROMPTS,
    URL_OPTIONS,
    LegacyOptions,
    options_from_url,
    read_legacy_dir,
)

if TYPE_CHECKING:
    from tributestore.backend import HeldDocuments
    from tributestore.plugins import PluginHooks

#: URL options only a legacy directory understands (guild assignment, long items, the index's place).
LEGACY_OPTIONS = URL_OPTIONS

#: Origin keys of legacy records (see :meth:`ThgbotBackend.origin_key`) start with this.
ORIGIN_PREFIX = "thgbot-legacy:"

#: The file that marks a directory of the tributestore JSON layout (never a legacy one).
NEW_LAYOUT_MARKER = "tributestore.json"
#: Any of these makes a directory a legacy THGBot one.
LEGACY_MARKERS = (INVENTORIES, PROMPTS, *CONFIGS, DATABASE)
#: The top-level files the reader reads (their state is part of the index's fingerprint).
READ_FILES = (*CONFIGS, DATABASE, f"{DATABASE}-wal", f"{DATABASE}-journal", INVENTORIES, PROMPTS)

__all__ = [
    "LEGACY_OPTIONS",
    "ORIGIN_PREFIX",
    "ThgbotBackend",
    "load_index",
    "looks_like_legacy",
    "open_legacy_store",
    "open_thgbot_backend",
]


def looks_like_legacy(path: Path) -> bool:
    """Whether ``path`` is a legacy THGBot data directory (and not a tributestore JSON one)."""
    path = Path(path)
    if not path.is_dir() or (path / NEW_LAYOUT_MARKER).exists():
        return False
    return any((path / marker).exists() for marker in LEGACY_MARKERS)


def open_thgbot_backend(url: StoreURL) -> ThgbotBackend:
    """The opener of ``thgbot:`` URLs: read the legacy directory ``url`` names.

    Nothing is ever created or changed.  In either mode a missing directory
    is refused with ``url.missing``; a path that is no directory is a
    :class:`LegacyFormatError`; a directory that holds none of the bot's files
    (or is a tributestore JSON store) is refused, naming what was looked for.
    """
    root = url.local_path()
    if not root.exists():  # in either mode: this backend never creates anything
        raise url.missing("no legacy THGBot data directory", root)
    if not root.is_dir():
        raise LegacyFormatError(f"{root}: not a directory (expected a legacy THGBot data directory)")
    if not looks_like_legacy(root):
        markers = ", ".join(LEGACY_MARKERS)
        if (root / NEW_LAYOUT_MARKER).exists():
            why = f"it is a tributestore JSON store ({NEW_LAYOUT_MARKER})"
        else:
            why = f"it holds none of {markers}"
        raise StoreNotFoundError(
            f"store {url.display!r}: {root.absolute()} is not a legacy THGBot data directory ({why}); "
            "nothing was read"
        )
    options = options_from_url(url)
    return ThgbotBackend(url.display, root, load_index(root, options, url.options.get("cache")))


def load_index(root: Path, options: LegacyOptions, cache: str | None = None) -> LegacyIndex:
    """The index of the legacy directory ``root`` (see :mod:`.index`): reused when its fingerprint
    and content check hold, else built (streaming, in bounded memory) and kept for the next open.

    ``cache`` is the URL option (a directory, or ``off``).  Without a usable cache directory the
    index is a temporary file, deleted at close; a failing cache never fails the read.
    """
    stamp = fingerprint(root, READ_FILES, IMAGES, options)
    directory = cache_dir(cache)
    note = "the URL option cache=off: the index is rebuilt at every open"
    if directory is not None:
        if _inside(directory, root):  # checked before anything is created
            note = f"the cache directory {directory} is inside the legacy directory, where nothing is written"
        else:
            note = writable_dir(directory)
        if not note:
            path = index_path(directory, root, options)
            meta = read_meta(path) if path.is_file() else None
            if meta is not None and meta.get("fingerprint") == stamp:
                try:
                    index = LegacyIndex(path, meta, temporary=False)
                    touch(path)
                    return index
                except sqlite3.Error:
                    pass  # gone or damaged since: rebuilt below
            try:
                return _build(root, options, stamp, directory, path)
            except (OSError, sqlite3.Error) as error:
                note = f"cannot write the index in {directory} ({error})"
        note = (
            f"legacy index: {note}; a temporary index is used, rebuilt at every open "
            f"(set the URL option cache=DIR or {CACHE_ENV} to a writable directory)"
        )
    try:
        return _build(root, options, stamp, Path(tempfile.gettempdir()), None, note)
    except (OSError, sqlite3.Error) as error:
        raise StorageError(f"{root}: cannot build the index of the legacy directory ({error})") from None


def _inside(directory: Path, root: Path) -> bool:
    try:
        return directory.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return True


def _build(
    root: Path, options: LegacyOptions, stamp: str, directory: Path, final: Path | None, note: str = ""
) -> LegacyIndex:
    """Read the directory into a new index file in ``directory``; renamed to ``final`` when given
    (atomically: a concurrent builder's file is replaced whole), else temporary."""
    handle, name = tempfile.mkstemp(prefix=".build-", suffix=".sqlite", dir=directory)
    os.close(handle)
    building = Path(name)
    writer: IndexWriter | None = None
    try:
        writer = IndexWriter(building)
        with scratch_db() as scratch:
            result = read_legacy_dir(root, options, writer, scratch)
        meta: dict[str, Any] = {
            "format": INDEX_FORMAT,
            "fingerprint": stamp,
            "root": str(root.resolve()),
            "warnings": result.warnings,
            "problems": result.problems,
            "unassigned": result.unassigned,
            "kept_versions": result.kept_versions,
            "unreferenced_files": result.unreferenced_files,
        }
        writer.finish(meta)
        checked = read_meta(building)
        if checked is None:
            raise StorageError(f"{building}: the index just built does not pass its content check")
        index = LegacyIndex(building, checked, temporary=final is None, note=note)
        if final is not None:
            os.replace(building, final)
            index.path = final
            prune(directory, time.time())
        return index
    except BaseException:
        if writer is not None:
            writer.abandon()
        with contextlib.suppress(OSError):
            building.unlink()
        raise


def open_legacy_store(url: StoreURL, *, hooks: PluginHooks | None = None) -> TributeStore:
    """The legacy directory ``url`` names as a read-only :class:`TributeStore` (tests, scripts)."""
    return TributeStore(open_thgbot_backend(url), hooks=hooks)


class ThgbotBackend:
    """A legacy THGBot directory, read through its index; every write raises :class:`ReadOnlyStoreError`.

    Implements :class:`~tributestore.backend.Backend` and
    :class:`~tributestore.backend.ForeignSource`.
    """

    read_only = True
    created: str | None = None
    ephemeral = False

    def __init__(self, url: str, root: Path, index: LegacyIndex) -> None:
        self.url = url
        #: The legacy data directory.
        self.root = root
        #: The assembled documents, read lazily (see :mod:`.index`).
        self.index = index
        meta = index.meta
        #: The guilds (few): held.
        self.guilds: dict[int, Guild] = index.guilds()
        warnings: list[str] = list(meta["warnings"])
        if index.note:
            warnings.append(index.note)
        #: Recoverable oddities met while reading, sorted; each names the file and key.
        self.warnings: Sequence[str] = sorted(warnings)
        #: The warnings the operator must act on (``check`` lists them): tributes with no
        #: known guild, versions kept as ``legacy_conflict``/``legacy_original`` files, cut items.
        self.problems: list[str] = list(meta["problems"])
        #: The other warnings: informational, nothing lost.
        self.notes: list[str] = sorted(set(self.warnings) - set(self.problems))

    def __repr__(self) -> str:
        return f"<ThgbotBackend {self.url}>"

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        """Close the index (a temporary one is deleted)."""
        self.index.close()

    def transaction(self) -> AbstractContextManager[None]:
        """A no-op block (every write inside it is refused anyway)."""
        return nullcontext()

    def snapshot(self) -> AbstractContextManager[None]:
        """A no-op block: the index was checked at open and never changes."""
        return nullcontext()

    def _refuse(self) -> NoReturn:
        raise ReadOnlyStoreError(f"store {self.url} is read-only (a legacy THGBot directory)")

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild: Guild) -> None:
        self._refuse()

    def get_guild(self, guild_id: int) -> Guild | None:
        guild = self.guilds.get(guild_id)
        return None if guild is None else guild.model_copy()

    def list_guilds(self) -> list[Guild]:
        return [self.guilds[gid].model_copy() for gid in sorted(self.guilds)]

    # ------------------------------------------------------------- documents
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        return self.index.tribute(guild_id, tribute_id)

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        return self.index.document(guild_id, tribute_id)

    def save(
        self,
        document: TributeBundle,
        files: Mapping[str, bytes],
        previous: TributeBundle | None,
    ) -> None:
        self._refuse()

    def delete(self, guild_id: int, tribute_id: str) -> None:
        self._refuse()

    def read_file(self, info: FileInfo) -> bytes:
        entry = self.index.blob(info.guild_id, info.tribute_id, info.name)
        if entry is None:
            raise StorageError(f"file {info.name!r} of tribute {info.tribute_id} is not in {self.url}")
        sha256, path, content = entry
        if content is not None or path is None:  # a kept version, made at open
            return content or b""
        try:
            data = path.read_bytes()
        except OSError as error:
            raise StorageError(f"{path}: cannot read ({error.strerror or error})") from None
        import hashlib  # local: only file reads need it

        if hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(f"{path}: changed on disk since the legacy directory was opened")
        return data

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        return self.index.tributes(guild_id)

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        return self.index.documents(guild_id)

    # ------------------------------------------------------------- whole store
    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        for gid, tid, items, equipped in self.index.items(guild_id):
            for slot, texts in (("items", items), ("equipped", equipped)):
                for number, item in enumerate(texts, start=1):
                    if folded_query in item.casefold():
                        yield ItemHit(guild_id=gid, tribute_id=tid, slot=slot, number=number, item=item)

    def counts(self) -> Counts:
        return self.index.counts()

    def check(self) -> list[str]:
        """The reading's problems (see :attr:`problems`); the informational :attr:`notes` are not."""
        return list(self.problems)

    def details(self) -> dict[str, int]:
        """For ``tributestore stats``: what the reading could not settle on its own."""
        meta = self.index.meta
        details = {
            "unassigned_tributes": len(meta["unassigned"]),
            "kept_versions": meta["kept_versions"],
            "unreferenced_files": meta["unreferenced_files"],
            "legacy_problems": len(self.problems),
            "legacy_notes": len(self.notes),
        }
        if self.index.temporary:
            details["legacy_index_temporary"] = 1
        return details

    # --------------------------------------------------------- ForeignSource
    def origin_key(self, guild_id: int, tribute_id: str) -> str | None:
        """The bot's own key for the tribute: its id, global across guilds in the legacy files.
        ``LEGACY_FILES`` (the unreferenced files of one guild folder) has none: one per guild,
        so deleting one guild's must not hide another's."""
        if tribute_id == ORPHANS or not self.index.has(guild_id, tribute_id):
            return None
        return f"{ORIGIN_PREFIX}{tribute_id}"

    def independent_check(self, destination: TributeStore) -> list[str]:
        """Every item, prompt text and image of the raw files missing in ``destination``."""
        from .presence import check_presence  # local: only copy and verify need it

        return check_presence(self.root, destination)

    def independent_checker(self, destination: TributeStore) -> AbstractContextManager[HeldDocuments]:
        """:meth:`independent_check` taking the destination's documents from the caller."""
        from .presence import presence_check

        return presence_check(self.root, destination)
