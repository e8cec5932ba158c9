"""The public backend contract: what a storage plugin implements.

A backend stores **whole tribute documents**: a :class:`~tributestore.models.TributeBundle`
(the tribute, its inventory, its prompt and the metadata of its files) plus
the bytes of those files, and the guild rows.  It knows nothing of the
domain rules (numbering, capacities, validation, "not found" messages):
:class:`~tributestore.store.TributeStore`, the class users hold, keeps those
in one place and talks to a backend only through the methods below.  Every
public write of the store is one :meth:`Backend.load` and one
:meth:`Backend.save` (or :meth:`Backend.delete`) of the tribute's document
inside one :meth:`Backend.transaction`, so a document backend (one file or
one record per tribute) reads and writes it once.

A plugin returns a :class:`Backend` from the opener it registers (see
:class:`~tributestore.hookspecs.BackendSpec`).  Optional capabilities are
separate small protocols; the store detects them with ``isinstance``
(they are ``runtime_checkable``) and falls back to the plain contract when a
backend does not offer them:

- :class:`BulkImport`: write many documents at once (the copier's fast path);
- :class:`DeferredIndex`: build the search index once, after a large bulk import;
- :class:`PagedSearch`: one page of search hits, answered by an index (a bot shows one page);
- :class:`Tombstones`: record deletions of a fallback's tributes (needed to
  serve as a composite's primary); :class:`TombstoneListing`: list them, so a
  copy of the store carries them;
- :class:`KeyPresence`: which of many tributes exist, in one lookup;
- :class:`WholeSnapshot`: a backend whose snapshots are per document can also
  hold one state of the whole store (the JSON backend, by holding its writers off);
- :class:`ForeignSource`: a read-only view of another program's files (a
  legacy THGBot directory) with its own record keys and an independent check;
- :class:`SharedStreamCheck`: a foreign source whose independent check takes the
  destination's documents from the copier's verification instead of reading them again;
- :class:`TransitionWindow`: a primary-in-front-of-fallback backend that can
  close its window.

Everything here is public: a backend never needs an ``_``-prefixed name of
tributestore.

Rules every method keeps (the shipped conformance suite, ``tributestore.testing``,
tests each): every model returned is the caller's own (a fresh object: changing it
changes nothing stored); text comes back exactly as given (no Unicode
normalisation); ids and names are ordered by code point (Python's ``str`` order);
a transaction's writes are all undone when it fails, a guild row it created
included; writers of every thread and process wait for each other; after
:meth:`Backend.close` every call raises :class:`~tributestore.errors.StorageError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .models import Counts, FileInfo, Guild, HitPosition, ItemHit, Tribute, TributeBundle

if TYPE_CHECKING:
    from .copier import Progress
    from .store import TributeStore

#: The bytes of files being written, by file name, or a callable giving them for a file's metadata.
FileData = Mapping[str, bytes] | Callable[[FileInfo], bytes]


@runtime_checkable
class Backend(Protocol):
    """What every storage backend implements (see the module documentation).

    Arguments are already validated by the store (ids normalised, documents
    checked, every part of a document owned by its tribute), so a backend
    stores and returns them as given.  Errors of the storage itself are raised
    as :class:`~tributestore.errors.StorageError` (or a subclass), never as a
    raw driver or ``OSError``; a read-only backend refuses writes with
    :class:`~tributestore.errors.ReadOnlyStoreError`.
    """

    @property
    def url(self) -> str:
        """The URL it was opened with, safe to show (no password)."""

    @property
    def read_only(self) -> bool:
        """Whether every write is refused (a legacy THGBot directory)."""

    @property
    def warnings(self) -> Sequence[str]:
        """Problems noticed while reading (legacy data repaired on load, ...), each naming file and key."""

    @property
    def created(self) -> str | None:
        """Where opening it created the store (an absolute path or a server location); ``None`` when
        it already existed.  Only a backend opened in ``write`` mode may create anything."""

    @property
    def ephemeral(self) -> bool:
        """Whether the data lives only as long as the process (``sqlite:///:memory:``)."""

    def close(self) -> None:
        """Release connections, locks and handles.  Idempotent.  Afterwards every call raises
        :class:`~tributestore.errors.StorageError`, ``check()`` included."""

    def transaction(self) -> AbstractContextManager[None]:
        """All writes of the block happen or none does; writers of other threads and processes
        wait.  Re-entrant: a nested block (same thread) joins the outer one, and a nested block
        that raises is undone alone (a savepoint), even when its caller catches the error and
        the outer block goes on to commit."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads of this thread inside the block see one committed state (of the whole store for
        SQL, of each document for a document store).  Re-entrant; joins a transaction."""

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild: Guild) -> None:
        """Insert or replace a guild row."""

    def get_guild(self, guild_id: int) -> Guild | None:
        """The guild row, ``None`` when absent."""

    def list_guilds(self) -> list[Guild]:
        """Every guild, ordered by id."""

    # ------------------------------------------------------------- documents
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        """The tribute alone (cheaper than :meth:`load` where the backend can), ``None`` when absent."""

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        """The tribute's whole document (file metadata, not bytes), ``None`` when absent."""

    def save(
        self,
        document: TributeBundle,
        files: Mapping[str, bytes],
        previous: TributeBundle | None,
    ) -> None:
        """Create or replace the tribute's whole document.  Its guild exists.

        ``files`` holds the bytes of every file of ``document.files`` that is
        new or replaced; a file of the document not named there keeps the
        bytes already stored; a stored file the document no longer lists is
        deleted with its bytes.  ``previous`` is the document exactly as
        :meth:`load` returned it earlier in the same transaction, or ``None``
        when the caller did not load it (a new tribute, or a blind replace):
        a backend may use it to write only what changed, and must then find
        the stored state itself when it is ``None``.
        """

    def delete(self, guild_id: int, tribute_id: str) -> None:
        """Delete the tribute's document and everything it owns (file bytes included).  It exists."""

    def read_file(self, info: FileInfo) -> bytes:
        """The bytes of a file whose metadata came from :meth:`load` (or :meth:`iter_documents`)."""

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        """Tributes of one guild, or of all, ordered by (guild_id, tribute_id); streaming."""

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        """Whole documents in the same order; each one a committed state of its tribute (the
        iteration as a whole need not be one snapshot, so a long copy never holds writers off)."""

    # ------------------------------------------------------------- whole store
    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        """Items and equipped items whose ``casefold()`` contains ``folded_query`` (already folded).

        Ordered by guild_id, tribute_id, then "items" before "equipped", then number.
        """

    def counts(self) -> Counts:
        """How many guilds, tributes, items, equipped items, prompts and files."""

    def check(self) -> list[str]:
        """Integrity problems found (orphans, bad schema version, ...), each naming where; empty
        when sound.  Must not raise for damage: damage is what it reports."""

    def details(self) -> dict[str, int]:
        """Backend-specific figures shown by ``tributestore stats``."""


# --------------------------------------------------------------------------- capabilities
@runtime_checkable
class BulkImport(Protocol):
    """A backend that writes many whole documents at once, faster than one :meth:`Backend.save` each."""

    def import_documents(self, documents: Sequence[TributeBundle], file_data: FileData) -> None:
        """Create or replace each document whole (its guild exists), all in one transaction.

        ``file_data`` gives each file's bytes (already checked against its
        size and sha256 by the store when it is a callable the store made).
        """


@runtime_checkable
class DeferredIndex(Protocol):
    """A :class:`BulkImport` backend that can build its search index once, after a large import,
    instead of row by row (much faster; searches stay correct meanwhile, by a scan)."""

    def bulk_import(self, tributes: int) -> AbstractContextManager[None]:
        """Around the :meth:`BulkImport.import_documents` batches of one import of about
        ``tributes`` tributes (each batch its own transaction).

        The backend decides whether deferring pays.  While the index is deferred the
        store stays honest for every process: a marker committed with the first batch
        says so, searches do not trust the missing index, ``check`` reports it, and an
        import killed before the end leaves the marker for the next open to rebuild.
        Leaving the block normally (or by an ``Exception``) builds the index.
        """


@runtime_checkable
class PagedSearch(Protocol):
    """A backend that answers one page of a search without producing every hit first."""

    def search_page(
        self, folded_query: str, guild_id: int | None, after: HitPosition | None, limit: int
    ) -> list[ItemHit]:
        """At most ``limit`` hits of :meth:`Backend.search_items`, in its order, each sorting
        strictly after ``after`` (an :attr:`ItemHit.position`; ``None``: from the first)."""


@runtime_checkable
class Tombstones(Protocol):
    """A backend that records deletions of a fallback's tributes, so it can be a composite's primary.

    A tombstone says "the fallback's copy of this tribute was deleted"; it is
    written in the same transaction as the deletion.  Tombstones are never
    cleared: a tribute created again lives in the primary, which is read first.
    """

    def put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None) -> None:
        """Record that the fallback's copy is deleted; ``origin_key`` also names it by the
        fallback's own key (see :meth:`ForeignSource.origin_key`)."""

    def has_tombstone(self, guild_id: int, tribute_id: str) -> bool: ...

    def has_origin_tombstone(self, origin_key: str) -> bool:
        """Whether a tombstone names the fallback record ``origin_key`` (whatever guild it had)."""

    def count_tombstones(self) -> int: ...


@runtime_checkable
class KeyPresence(Protocol):
    """A backend that tells which of many tributes exist in one lookup (the copier asks for each
    batch, under its write lock, which tributes another writer created since its plan)."""

    def present(self, keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
        """The (guild_id, tribute_id) of ``keys`` that this backend holds (as this thread sees it)."""


@runtime_checkable
class WholeSnapshot(Protocol):
    """A backend whose plain :meth:`Backend.snapshot` is per document, and that can also hold
    one committed state of the whole store (what ``store.snapshot()`` gives its caller)."""

    def whole_snapshot(self) -> AbstractContextManager[None]:
        """Reads of this thread inside the block see one committed state of the whole store:
        no commit of any writer lands inside it (keep it short).  Re-entrant; joins a transaction."""


#: A tombstone: (guild_id, tribute_id, origin_key).
Tombstone = tuple[int, str, str | None]


@runtime_checkable
class TombstoneListing(Protocol):
    """A :class:`Tombstones` backend that can list them, so a copy of the store carries them (a
    primary moved to another store mid-window must not let the fallback's deleted tributes back)."""

    def iter_tombstones(self) -> Iterator[Tombstone]:
        """Every tombstone as (guild_id, tribute_id, origin_key), by (guild_id, tribute_id)."""


@runtime_checkable
class ForeignSource(Protocol):
    """A read-only backend over another program's raw files (a legacy THGBot directory)."""

    def origin_key(self, guild_id: int, tribute_id: str) -> str | None:
        """The key the raw data names the tribute by when it does not depend on the guild (a legacy
        THGBot id, global across guilds); ``None``: (guild, id) is the identity."""

    def independent_check(self, destination: TributeStore) -> list[str]:
        """Every record of the raw files missing in ``destination``, found by a reader that shares
        nothing with this backend's own interpretation of them."""


class HeldDocuments(Protocol):
    """An independent check being given the destination's documents (see :class:`SharedStreamCheck`)."""

    def hold(self, bundle: TributeBundle) -> None:
        """One document of the destination; every one is given once."""

    def finish(self) -> list[str]:
        """Every record of the raw files missing among the documents given."""


@runtime_checkable
class SharedStreamCheck(Protocol):
    """A :class:`ForeignSource` whose independent check takes the destination's documents from
    the caller (the copier's verification streams them anyway) instead of reading them again."""

    def independent_checker(self, destination: TributeStore) -> AbstractContextManager[HeldDocuments]:
        """The check of ``destination`` (its scratch state lives as long as the block)."""


@dataclass
class WindowReport:
    """What closing a transition window did."""

    #: Fallback-only tributes copied into the primary now.
    promoted: int
    #: Fallback tributes deleted during the window (tombstoned): they stay deleted.
    deleted: int
    #: Fallback tributes in neither state (empty when the fallback is no longer needed).
    left: list[tuple[int, str]]
    #: The primary's and the fallback's URLs (for the message telling what to configure next).
    primary: str = ""
    fallback: str = ""


@runtime_checkable
class TransitionWindow(Protocol):
    """A backend in front of a fallback (the composite) whose window can be closed."""

    def finish_window(self, progress: Progress | None = None) -> WindowReport:
        """Copy every fallback-only tribute into the primary; report what is left.  ``progress``
        (default silent) hears of each phase and its total, and advances per tribute."""
