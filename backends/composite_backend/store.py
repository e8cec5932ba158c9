"""The ``composite`` backend: a primary store in front of a fallback, for the transition window.

- Reads ask the primary, then the fallback; listings, searches and counts merge
  both, the primary winning.
- Every write goes to the primary.  Saving a tribute that exists only in the
  fallback first copies it up whole (its guild settings and the bytes of every
  file it keeps), inside the same primary transaction, so nothing of the
  fallback is lost or split.
- Deleting a tribute that the fallback holds records a tombstone in the
  primary (same transaction), so the fallback copy never reappears.  When the
  fallback is a :class:`~tributestore.backend.ForeignSource` (a legacy THGBot
  directory) the tombstone also names the record by its origin key, so it stays
  deleted when a later read of the raw data infers another guild for it.
- ``promote_on_read=true``: reading a fallback-only tribute copies it up, so
  the window closes by itself.
- ``dual_write=true``: after each primary transaction's writes, every tribute
  touched is mirrored to the fallback (which must be writable).  A mirror
  failure with ``fallback_errors=fail`` (the default) raises and rolls the
  primary transaction back; with ``fallback_errors=warn`` the primary keeps
  the write and the failure is recorded in :attr:`CompositeBackend.warnings`
  (the fallback is then stale for that tribute until ``tributestore copy``
  repairs it).

The two children are plain :class:`~tributestore.backend.Backend` objects,
opened by the registry from the URL's ``primary`` and ``fallback`` options;
the composite uses only their public contract, and the primary must offer the
:class:`~tributestore.backend.Tombstones` capability.

URL: ``composite:?primary=sqlite:///thg.db&fallback=thgbot:///config`` or, in
TOML, ``[store]`` with ``url = "composite:"``, ``primary = ...``, ``fallback = ...``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol, TypeVar

from tributestore.backend import (
    Backend,
    ForeignSource,
    Tombstones,
    TransitionWindow,
    WholeSnapshot,
    WindowReport,
)
from tributestore.copier import Progress, SilentProgress
from tributestore.errors import ConfigError
from tributestore.models import Counts, FileInfo, Guild, ItemHit, Tribute, TributeBundle
from tributestore.store import file_bytes
from tributestore.urls import StoreURL

from .options import CompositeOptions

Key = tuple[int, str]
T = TypeVar("T")
_SLOT_ORDER = {"items": 0, "equipped": 1}


class TombstoneBackend(Backend, Tombstones, Protocol):
    """A backend that records tombstones: what a composite's primary must be."""


class _Pending(threading.local):
    """This thread's open transaction: its depth and the keys it wrote (tribute id "" for a guild row)."""

    def __init__(self) -> None:
        self.depth = 0
        self.touched: set[Key] = set()


class CompositeBackend:
    """Primary-then-fallback backend; see the module documentation."""

    def __init__(
        self, url: str, primary: Backend, fallback: Backend, options: CompositeOptions | None = None
    ) -> None:
        options = options or CompositeOptions()
        if not isinstance(primary, Tombstones):
            raise ConfigError(
                f"composite store {url}: primary {primary.url} cannot record tombstones "
                "(use an sqlite or json primary)"
            )
        if options.dual_write and fallback.read_only:
            raise ConfigError(
                f"composite store {url}: dual_write needs a writable fallback, {fallback.url} is read-only"
            )
        self.url = url
        self.primary: TombstoneBackend = primary
        self.fallback = fallback
        self.options = options
        self.read_only = primary.read_only
        #: Where opening the composite created its primary (else its fallback); ``None``: neither.
        self.created: str | None = primary.created or fallback.created
        #: All writes go to the primary: they last only as long as it does.
        self.ephemeral = primary.ephemeral
        #: The fallback's and primary's load warnings, then dual-write failures as they happen.
        self.warnings: list[str] = [*fallback.warnings, *primary.warnings]
        self._pending = _Pending()

    def close(self) -> None:
        try:
            self.primary.close()
        finally:
            self.fallback.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One committed state of the primary and one of the fallback for the block's reads."""
        with self.primary.snapshot(), self.fallback.snapshot():
            yield

    @contextmanager
    def whole_snapshot(self) -> Iterator[None]:
        """The whole-store snapshot of each child that offers one, else its own snapshot."""
        with _whole(self.primary), _whole(self.fallback):
            yield

    # ------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A primary transaction; with ``dual_write``, the outermost one mirrors what it wrote."""
        pending = self._pending
        outermost = pending.depth == 0
        if outermost:
            pending.touched = set()
        pending.depth += 1
        try:
            with self.primary.transaction():
                yield
                if outermost and self.options.dual_write and pending.touched:
                    self._mirror(sorted(pending.touched))
        finally:
            pending.depth -= 1

    def _mirror(self, keys: list[Key]) -> None:
        """Make the fallback's copy of each touched guild and tribute equal to the primary's.

        With ``fallback_errors=fail`` every key is mirrored in one fallback transaction,
        so a failure leaves the fallback untouched while the primary rolls back; with
        ``warn`` each key is mirrored on its own and a failure is recorded.
        """
        if self.options.fallback_errors == "fail":
            with self.fallback.transaction():
                for key in keys:
                    self._mirror_one(*key)
            return
        for guild_id, tribute_id in keys:
            try:
                with self.fallback.transaction():
                    self._mirror_one(guild_id, tribute_id)
            except Exception as error:  # noqa: BLE001 - the documented warn policy
                what = f"tribute {tribute_id} in guild {guild_id}" if tribute_id else f"guild {guild_id}"
                self.warnings.append(f"dual write to {self.fallback.url} failed for {what}: {error}")

    def _mirror_one(self, guild_id: int, tribute_id: str) -> None:
        guild = self.primary.get_guild(guild_id)
        if guild is not None and guild != self.fallback.get_guild(guild_id):
            self.fallback.put_guild(guild)
        if not tribute_id:
            return
        document = self.primary.load(guild_id, tribute_id)
        stale = self.fallback.load(guild_id, tribute_id)
        if document is None:
            if stale is not None:
                self.fallback.delete(guild_id, tribute_id)
            return
        kept = stale.files if stale is not None else []
        changed = [info for info in document.files if info not in kept]
        self.fallback.save(document, {f.name: file_bytes(f, self.primary.read_file) for f in changed}, stale)

    # ------------------------------------------------------------ ownership
    def _origin_key(self, guild_id: int, tribute_id: str) -> str | None:
        fallback = self.fallback
        return fallback.origin_key(guild_id, tribute_id) if isinstance(fallback, ForeignSource) else None

    def _tombstoned(self, guild_id: int, tribute_id: str) -> bool:
        """Whether the primary records the fallback's copy as deleted (by key or by origin key)."""
        if self.primary.has_tombstone(guild_id, tribute_id):
            return True
        origin = self._origin_key(guild_id, tribute_id)
        return origin is not None and self.primary.has_origin_tombstone(origin)

    def _in_fallback(self, guild_id: int, tribute_id: str) -> Tribute | None:
        """The fallback's tribute, unless the primary has tombstoned it."""
        if self._tombstoned(guild_id, tribute_id):
            return None
        return self.fallback.get_tribute(guild_id, tribute_id)

    def _fallback_only(self, guild_id: int, tribute_id: str) -> bool:
        """Whether the tribute lives only in the fallback: the primary lacks it and no tombstone hides it."""
        return self.primary.get_tribute(guild_id, tribute_id) is None and not self._tombstoned(
            guild_id, tribute_id
        )

    def _merged(self, primary: Iterator[T], fallback: Iterator[T], key: Callable[[T], Key]) -> Iterator[T]:
        """Two streams ordered by ``key``, merged in that order: every primary item, and each
        fallback item whose key the primary lacks and no tombstone hides."""
        tagged = heapq.merge(
            ((key(item), 0, item) for item in primary),
            ((key(item), 1, item) for item in fallback),
            key=lambda entry: entry[:2],
        )
        for found, group in itertools.groupby(tagged, key=lambda entry: entry[0]):
            _, source, item = next(group)
            if source == 0 or not self._tombstoned(*found):
                yield item

    # ------------------------------------------------------------ copy-up
    def _ensure_primary_guild(self, guild_id: int) -> None:
        """The guild row in the primary, with the fallback's settings when only the fallback has it."""
        if self.primary.get_guild(guild_id) is None:
            self.primary.put_guild(self.fallback.get_guild(guild_id) or Guild(guild_id=guild_id))

    def _copy_up(self, document: TributeBundle, files: Mapping[str, bytes]) -> None:
        """Write ``document`` into the primary whole: with its guild's settings, and the bytes of
        every file not given in ``files`` read from the fallback, which holds it unchanged."""
        self._ensure_primary_guild(document.tribute.guild_id)
        data = {
            info.name: files[info.name] if info.name in files else file_bytes(info, self.fallback.read_file)
            for info in document.files
        }
        self.primary.save(document, data, None)

    def _promote(self, document: TributeBundle) -> bool:
        """Copy a fallback document up, unless the primary has the tribute by now; whether it did."""
        with self.primary.transaction():
            if self.primary.get_tribute(*document.tribute.key) is not None:
                return False
            self._copy_up(document, {})
            return True

    @property
    def _promoting(self) -> bool:
        """Whether reading a fallback-only tribute copies it up (``promote_on_read``, writable)."""
        return self.options.promote_on_read and not self.read_only

    def _from_fallback(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        """The fallback's document unless tombstoned; copied up first with ``promote_on_read``."""
        if self._tombstoned(guild_id, tribute_id):
            return None
        document = self.fallback.load(guild_id, tribute_id)
        if document is not None and self._promoting:
            self._promote(document)
        return document

    def promote_all(self, progress: Progress | None = None) -> int:
        """Copy every fallback-only tribute up; returns how many were copied.  ``progress``
        advances by one per fallback tribute."""
        promoted = 0
        for document in self.fallback.iter_documents(None):
            if not self._tombstoned(*document.tribute.key) and self._promote(document):
                promoted += 1
            if progress is not None:
                progress.advance()
        return promoted

    def finish_window(self, progress: Progress | None = None) -> WindowReport:
        """End the transition window: copy every fallback-only tribute up, never a deleted one.

        Afterwards every record of the fallback is in the primary or tombstoned
        (``left`` lists any that is not: then the fallback is still needed).  ``progress``
        hears of two passes over the fallback's tributes: ``moving``, then ``checking``.
        """
        progress = progress or SilentProgress()
        total = self.fallback.counts().tributes
        progress.start("moving", total)
        promoted = self.promote_all(progress)
        progress.start("checking", total)
        deleted, left = 0, []
        for tribute in self.fallback.iter_tributes(None):
            if self._tombstoned(*tribute.key):
                deleted += 1
            elif self.primary.get_tribute(*tribute.key) is None:
                left.append(tribute.key)
            progress.advance()
        return WindowReport(
            promoted=promoted,
            deleted=deleted,
            left=left,
            primary=self.primary.url,
            fallback=self.fallback.url,
        )

    # ------------------------------------------------------------ guilds
    def put_guild(self, guild: Guild) -> None:
        with self.transaction():
            self.primary.put_guild(guild)
            self._pending.touched.add((guild.guild_id, ""))

    def get_guild(self, guild_id: int) -> Guild | None:
        guild = self.primary.get_guild(guild_id)
        return guild if guild is not None else self.fallback.get_guild(guild_id)

    def list_guilds(self) -> list[Guild]:
        merged = {g.guild_id: g for g in self.fallback.list_guilds()}
        merged.update({g.guild_id: g for g in self.primary.list_guilds()})
        return [merged[key] for key in sorted(merged)]

    # ------------------------------------------------------------ documents
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        found = self.primary.get_tribute(guild_id, tribute_id)
        if found is not None:
            return found
        if self._promoting:
            document = self._from_fallback(guild_id, tribute_id)
            return document.tribute if document is not None else None
        return self._in_fallback(guild_id, tribute_id)

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        document = self.primary.load(guild_id, tribute_id)
        return document if document is not None else self._from_fallback(guild_id, tribute_id)

    def save(
        self, document: TributeBundle, files: Mapping[str, bytes], previous: TributeBundle | None
    ) -> None:
        """Into the primary; a tribute only the fallback holds is copied up whole with the change.

        ``previous`` came from :meth:`load`, which asks the primary first: when the primary holds
        the tribute it is the primary's document.
        """
        key = document.tribute.key
        with self.transaction():
            if self.primary.get_tribute(*key) is not None:
                self.primary.save(document, files, previous)
            elif self._in_fallback(*key) is not None:
                self._copy_up(document, files)
            else:  # a new tribute (or one re-created after a delete)
                self._ensure_primary_guild(key[0])
                self.primary.save(document, files, None)
            self._pending.touched.add(key)

    def delete(self, guild_id: int, tribute_id: str) -> None:
        """From the primary; a copy the fallback holds is tombstoned in the same transaction."""
        with self.transaction():
            if self._in_fallback(guild_id, tribute_id) is not None:
                self.primary.put_tombstone(guild_id, tribute_id, self._origin_key(guild_id, tribute_id))
            if self.primary.get_tribute(guild_id, tribute_id) is not None:
                self.primary.delete(guild_id, tribute_id)
            self._pending.touched.add((guild_id, tribute_id))

    def read_file(self, info: FileInfo) -> bytes:
        in_primary = self.primary.get_tribute(info.guild_id, info.tribute_id) is not None
        return (self.primary if in_primary else self.fallback).read_file(info)

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        return self._merged(
            self.primary.iter_tributes(guild_id), self.fallback.iter_tributes(guild_id), lambda t: t.key
        )

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        return self._merged(
            self.primary.iter_documents(guild_id),
            self.fallback.iter_documents(guild_id),
            lambda document: document.tribute.key,
        )

    # ------------------------------------------------------------ whole store
    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        hits = self.fallback.search_items(folded_query, guild_id)
        return heapq.merge(
            self.primary.search_items(folded_query, guild_id),
            (hit for hit in hits if self._fallback_only(hit.guild_id, hit.tribute_id)),
            key=lambda h: (h.guild_id, h.tribute_id, _SLOT_ORDER[h.slot], h.number),
        )

    def counts(self) -> Counts:
        total = self.primary.counts().model_dump()
        total["guilds"] = len(self.list_guilds())
        for document in self.fallback.iter_documents(None):
            if self._fallback_only(*document.tribute.key):
                total["tributes"] += 1
                total["items"] += len(document.inventory.items)
                total["equipped"] += len(document.inventory.equipped)
                total["prompts"] += document.prompt is not None
                total["files"] += len(document.files)
        return Counts(**total)

    def details(self) -> dict[str, int]:
        return {
            "tributes only in the fallback": sum(
                1 for t in self.fallback.iter_tributes(None) if self._fallback_only(*t.key)
            ),
            "tombstones (deleted, hidden in the fallback)": self.primary.count_tombstones(),
        }

    def check(self) -> list[str]:
        return [f"primary: {p}" for p in self.primary.check()] + [
            f"fallback: {p}" for p in self.fallback.check()
        ]


def open_composite(url: StoreURL, children: Mapping[str, Backend]) -> CompositeBackend:
    """Open ``composite:?primary=URL&fallback=URL[&promote_on_read=1&dual_write=1]``.

    The registry has opened the children already (see ``options.child_mode``): the
    fallback first, in ``read`` mode unless ``dual_write`` writes to it, then the
    primary in the composite's own mode.
    """
    primary, fallback = children["primary"], children["fallback"]
    described = f"composite:?primary={primary.url}&fallback={fallback.url}"
    return CompositeBackend(described, primary, fallback, CompositeOptions.of(url))


if TYPE_CHECKING:  # mypy checks that the composite meets the contract and offers its capability
    _contract: type[Backend] = CompositeBackend
    _capability: type[TransitionWindow] = CompositeBackend


def _whole(backend: Backend) -> AbstractContextManager[None]:
    return backend.whole_snapshot() if isinstance(backend, WholeSnapshot) else backend.snapshot()
