"""The :class:`TributeStore` users hold: the domain rules, over a :class:`~tributestore.backend.Backend`.

The public methods (``create_tribute``, ``add_item``, ``set_prompt``, ...)
hold the domain rules once, here: validation, normalised ids, numbering,
capacities, timestamps, "not found" errors and read-only refusal.  The store
talks to its backend only through the public contract of
:mod:`tributestore.backend`: each write loads the tribute's whole document,
changes it and saves it, inside one backend transaction, so a
read-modify-write is never torn and never loses an update, and a document
backend reads and writes the tribute's file once.

Every public read that returns more than one part runs inside
:meth:`TributeStore.snapshot`, so it observes one committed state.  A store
object may be shared by threads (see the README).  Plugins see every
committed change through the ``tributestore_transaction_committed`` hook.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import mimetypes
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import ValidationError

from .backend import (
    Backend,
    BulkImport,
    DeferredIndex,
    FileData,
    ForeignSource,
    HeldDocuments,
    KeyPresence,
    PagedSearch,
    SharedStreamCheck,
    Tombstone,
    TombstoneListing,
    Tombstones,
    WholeSnapshot,
)
from .errors import (
    AlreadyExistsError,
    CapacityError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyStoreError,
    StorageError,
)
from .hookspecs import Changes, TributeChange
from .models import (
    MAX_ITEM_LENGTH,
    Counts,
    FileInfo,
    Guild,
    HitPosition,
    Inventory,
    ItemHit,
    Prompt,
    Slot,
    Tribute,
    TributeBundle,
    check_file_name,
    check_guild_id,
    check_text,
    check_tribute_id,
    describe_validation_error,
    shown,
    utcnow,
    validated,
)

if TYPE_CHECKING:
    from .plugins import PluginHooks
    from .urls import StoreURL

T = TypeVar("T")
OnConflict = Literal["fail", "skip", "overwrite"]
Key = tuple[int, str]

log = logging.getLogger("tributestore")

#: The longest text an item's ``casefold()`` can be (a character folds to at most three).
MAX_FOLDED_ITEM_LENGTH = 3 * MAX_ITEM_LENGTH
#: A page larger than this is every hit (PostgreSQL's LIMIT parameter is a 32-bit int here).
MAX_PAGE = 2**31 - 1
#: Tribute fields ``update_tribute`` may not change.
_FIXED_TRIBUTE_FIELDS = frozenset({"guild_id", "tribute_id", "created_at", "updated_at"})


class _Pending(threading.local):
    """This thread's open transaction: its depth and what it changed so far."""

    def __init__(self) -> None:
        self.depth = 0
        self.tributes: dict[Key, TributeChange] = {}
        self.guilds: dict[int, Guild] = {}


class TributeStore:
    """A place tributes live, over one backend; closed with :meth:`close`."""

    def __init__(self, backend: Backend, *, hooks: PluginHooks | None = None) -> None:
        self.backend = backend
        self.hooks = hooks
        self._pending = _Pending()
        self._hook_warnings: list[str] = []
        #: The parsed URL the store was opened from (set by the registry; ``None`` when built
        #: directly): where it is, for a backup's manifest.
        self.opened_url: StoreURL | None = None

    # ------------------------------------------------------------------ life
    @property
    def url(self) -> str:
        """The URL this store was opened with (for messages; no password)."""
        return self.backend.url

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (e.g. a legacy THGBot directory)."""
        return self.backend.read_only

    @property
    def warnings(self) -> list[str]:
        """Problems noticed while reading (each naming file and key), then failed change hooks."""
        return [*self.backend.warnings, *self._hook_warnings]

    @property
    def created(self) -> str | None:
        """Where opening this store created it; ``None`` when it already existed."""
        return self.backend.created

    @property
    def ephemeral(self) -> bool:
        """Whether the data lives only as long as the process (``sqlite:///:memory:``)."""
        return self.backend.ephemeral

    def close(self) -> None:
        """Release connections, locks and handles. Idempotent."""
        self.backend.close()

    def __enter__(self) -> TributeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TributeStore {self.url} ({type(self.backend).__name__})>"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all happen or none. Re-entrant: a nested call joins the outer one.

        When the outermost block commits, plugins get what it changed
        (``tributestore_transaction_committed``).
        """
        pending = self._pending
        outermost = pending.depth == 0
        if outermost:
            pending.tributes, pending.guilds = {}, {}
        # A nested block that fails is undone by the backend (a savepoint) even when the caller
        # catches the error: what it recorded is forgotten with it.
        saved = (dict(pending.tributes), dict(pending.guilds)) if not outermost else None
        pending.depth += 1
        try:
            with self.backend.transaction():
                yield
        except BaseException:
            if saved is not None:
                pending.tributes, pending.guilds = saved
            raise
        finally:
            pending.depth -= 1
        if outermost:
            # A write that changed nothing (an empty inventory cleared, a tribute created and
            # deleted again) is not a change.
            tributes = tuple(c for c in pending.tributes.values() if c.before != c.after)
            guilds = dict(pending.guilds)
            pending.tributes, pending.guilds = {}, {}
            if tributes or guilds:
                self._report(Changes(tributes, guilds))

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads of this thread inside the block see one committed state of the whole store.

        SQL backends hold one read transaction (the whole store as of its start);
        the JSON backend holds its writers off for the block (no commit lands inside
        it).  Re-entrant; inside a transaction it joins the transaction.  Keep it
        short: it is for one multi-part read, not for holding a view open.
        """
        backend = self.backend
        if isinstance(backend, WholeSnapshot):
            return backend.whole_snapshot()
        return backend.snapshot()

    def _consistent(self, read: Callable[[], T]) -> T:
        """One read of several parts of one tribute: the backend's own (per document) snapshot."""
        with self.backend.snapshot():
            return read()

    # ---------------------------------------------------------- change hooks
    @property
    def _reporting(self) -> bool:
        return self.hooks is not None and self.hooks.wants_changes

    def _record(self, key: Key, before: TributeBundle | None, after: TributeBundle | None) -> None:
        if not self._reporting:
            return
        earlier = self._pending.tributes.get(key)
        first = earlier.before if earlier is not None else before
        self._pending.tributes[key] = TributeChange(key[0], key[1], first, after)

    def _report(self, changes: Changes) -> None:
        assert self.hooks is not None
        for failure in self.hooks.transaction_committed(self, changes):  # committed already: said
            message = f"a transaction_committed hook failed after the commit: {failure}"
            log.warning("%s (%s)", message, self.url)
            self._hook_warnings.append(message)

    # ---------------------------------------------------------------- stats
    def counts(self) -> Counts:
        """How many guilds, tributes, items, equipped items, prompts and files."""
        return self._returned(self.backend.counts(), Counts, "counts()")

    def _returned(self, value: object, kind: type[T], call: str) -> T:
        """``value`` when the backend returned a ``kind``; otherwise a plugin's bug, said as its own
        (it was an internal error naming a module of tributestore)."""
        if not isinstance(value, kind):
            raise StorageError(
                f"store {self.url}: its backend's {call} returned {type(value).__name__}, not a "
                f"{kind.__name__} (a bug of the backend's plugin: report it there)"
            )
        return value

    def check(self) -> list[str]:
        """Integrity problems found (the backend's own, then every plugin's); empty when sound."""
        problems = list(self.backend.check())
        if self.hooks is not None:
            problems.extend(self.hooks.extra_checks(self))
        return problems

    def details(self) -> dict[str, int]:
        """Backend-specific figures shown by ``tributestore stats`` (e.g. fallback-only tributes)."""
        return self.backend.details()

    # ------------------------------------------------------------ capabilities
    @property
    def supports_tombstones(self) -> bool:
        """Whether the backend records tombstones (it can serve as a composite's primary)."""
        return isinstance(self.backend, Tombstones)

    def tombstone_count(self) -> int:
        """How many tombstones the backend holds (0 when it records none)."""
        return self.backend.count_tombstones() if isinstance(self.backend, Tombstones) else 0

    def is_tombstoned(self, guild_id: int, tribute_id: str, origin_key: str | None = None) -> bool:
        """Whether this store (a composite's primary) records the tribute as deleted from its
        fallback, by (guild, id) or by the fallback record's ``origin_key``."""
        backend = self.backend
        if not isinstance(backend, Tombstones):
            return False
        if backend.has_tombstone(guild_id, tribute_id):
            return True
        return origin_key is not None and backend.has_origin_tombstone(origin_key)

    def list_tombstones(self) -> list[Tombstone] | None:
        """Every tombstone, (guild_id, tribute_id, origin_key), by key; ``None`` when the backend
        records none it can list (then :meth:`tombstone_count` says whether it holds some)."""
        backend = self.backend
        if not isinstance(backend, TombstoneListing) or not isinstance(backend, Tombstones):
            return None
        return list(backend.iter_tombstones())

    def carry_tombstones(self, tombstones: Sequence[Tombstone]) -> int:
        """Record tombstones another store holds (the copier carries them), in one transaction;
        how many were new here.  :class:`StorageError` when the backend records none."""
        backend = self.backend
        if not isinstance(backend, Tombstones):
            raise StorageError(f"store {self.url} cannot record tombstones")
        self._writable()
        added = 0
        with self.transaction():
            for guild_id, tribute_id, origin_key in tombstones:
                gid, tid = check_guild_id(guild_id), check_tribute_id(tribute_id)
                known = backend.has_tombstone(gid, tid) and (
                    origin_key is None or backend.has_origin_tombstone(origin_key)
                )
                if not known:
                    backend.put_tombstone(gid, tid, origin_key)
                    added += 1
        return added

    def has_origin_tombstone(self, origin_key: str) -> bool:
        """Whether a tombstone names the fallback record ``origin_key`` (whatever guild it had)."""
        backend = self.backend
        return isinstance(backend, Tombstones) and backend.has_origin_tombstone(origin_key)

    def origin_key(self, guild_id: int, tribute_id: str) -> str | None:
        """The key this store's raw data names the tribute by, when it does not depend on the
        guild (a legacy THGBot id); ``None``: (guild, id) is the identity."""
        backend = self.backend
        return backend.origin_key(guild_id, tribute_id) if isinstance(backend, ForeignSource) else None

    def independent_check(self, destination: TributeStore) -> list[str] | None:
        """For a store read from another program's raw files (a legacy THGBot directory): every
        record of those files missing in ``destination``, found by a reader that shares nothing
        with this store's own interpretation.  ``None``: not such a store.
        """
        backend = self.backend
        return backend.independent_check(destination) if isinstance(backend, ForeignSource) else None

    def independent_checker(self, destination: TributeStore) -> AbstractContextManager[HeldDocuments] | None:
        """:meth:`independent_check` given the destination's documents by the caller, who streams
        them anyway (``hold`` each, then ``finish``); ``None`` when the backend cannot take them so
        (then call :meth:`independent_check`)."""
        backend = self.backend
        if isinstance(backend, ForeignSource) and isinstance(backend, SharedStreamCheck):
            return backend.independent_checker(destination)
        return None

    # --------------------------------------------------------------- helpers
    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"store {self.url} is read-only")

    def _load(self, guild_id: object, tribute_id: object) -> TributeBundle:
        gid, tid = check_guild_id(guild_id), check_tribute_id(tribute_id)
        document = self.backend.load(gid, tid)
        if document is None:
            raise NotFoundError(f"tribute {tid} not found in guild {gid}")
        return self._returned(document, TributeBundle, "load()")

    def _save(
        self,
        before: TributeBundle | None,
        after: TributeBundle,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        self.backend.save(after, files or {}, before)
        self._record(after.tribute.key, before, after)

    def _ensure_guild(self, guild_id: int) -> None:
        if self.backend.get_guild(guild_id) is None:
            guild = Guild(guild_id=guild_id)
            self.backend.put_guild(guild)
            if self._reporting:
                self._pending.guilds[guild_id] = guild

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild_id: int, **settings: Any) -> Guild:
        """Create or replace a guild and its settings (log_channel_id, category_id, ...)."""
        guild = validated(Guild, settings, guild_id=guild_id)
        self._writable()
        with self.transaction():
            self.backend.put_guild(guild)
            if self._reporting:
                self._pending.guilds[guild.guild_id] = guild
        return guild

    def get_guild(self, guild_id: int) -> Guild:
        gid = check_guild_id(guild_id)
        guild = self.backend.get_guild(gid)
        if guild is None:
            raise NotFoundError(f"guild {gid} not found")
        return guild

    def list_guilds(self) -> list[Guild]:
        return self._consistent(self.backend.list_guilds)

    # -------------------------------------------------------------- tributes
    def create_tribute(self, guild_id: int, tribute_id: str, /, **fields: Any) -> Tribute:
        """Create a tribute (and its guild if new) with an empty inventory."""
        for stamp in ("created_at", "updated_at"):  # a datetime: a string or a number is not read as one
            if fields.get(stamp) is not None and not isinstance(fields[stamp], datetime):
                raise InvalidInputError(
                    f"invalid Tribute: {stamp}: must be a datetime or None (got {shown(fields[stamp])})"
                )
        now = utcnow()
        fields.setdefault("created_at", now)
        fields.setdefault("updated_at", fields["created_at"])
        tribute = validated(Tribute, fields, guild_id=guild_id, tribute_id=tribute_id)
        self._writable()
        with self.transaction():
            if self.backend.get_tribute(*tribute.key) is not None:
                raise AlreadyExistsError(
                    f"tribute {tribute.tribute_id} already exists in guild {tribute.guild_id}"
                )
            self._ensure_guild(tribute.guild_id)
            inventory = Inventory(guild_id=tribute.guild_id, tribute_id=tribute.tribute_id)
            self._save(None, TributeBundle(tribute=tribute, inventory=inventory))
        return tribute

    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute:
        gid, tid = check_guild_id(guild_id), check_tribute_id(tribute_id)
        tribute = self.backend.get_tribute(gid, tid)
        if tribute is None:
            raise NotFoundError(f"tribute {tid} not found in guild {gid}")
        return tribute

    def has_tribute(self, guild_id: int, tribute_id: str) -> bool:
        return self.backend.get_tribute(check_guild_id(guild_id), check_tribute_id(tribute_id)) is not None

    def present(self, keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which of the (guild_id, tribute_id) ``keys`` exist (one lookup where the backend offers
        it, else one each); the ids as given, normalised."""
        checked = [(check_guild_id(gid), check_tribute_id(tid)) for gid, tid in keys]
        backend = self.backend
        if isinstance(backend, KeyPresence):
            return backend.present(checked)
        return {key for key in checked if backend.get_tribute(*key) is not None}

    def update_tribute(self, guild_id: int, tribute_id: str, /, **changes: Any) -> Tribute:
        """Change a tribute's fields (name, user_id, face_claim_url, ...)."""
        fixed = sorted(_FIXED_TRIBUTE_FIELDS & changes.keys())
        if fixed:
            raise InvalidInputError(f"invalid Tribute: {', '.join(fixed)} cannot be changed")
        self._writable()
        with self.transaction():
            before = self._load(guild_id, tribute_id)
            data = before.tribute.model_dump()
            data.update(changes, updated_at=utcnow())
            tribute = validated(Tribute, data)
            self._save(before, before.model_copy(update={"tribute": tribute}))
        return tribute

    def delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        """Delete a tribute and everything it owns."""
        self._writable()
        with self.transaction():
            before = self._load(guild_id, tribute_id)
            self.backend.delete(*before.tribute.key)
            self._record(before.tribute.key, before, None)

    def list_tributes(self, guild_id: int) -> list[Tribute]:
        gid = check_guild_id(guild_id)
        return self._consistent(lambda: list(self.backend.iter_tributes(gid)))

    def iter_tributes(self, guild_id: int | None = None) -> Iterator[Tribute]:
        """Every tribute (of one guild, or of all), streaming, ordered by guild then id."""
        return self.backend.iter_tributes(None if guild_id is None else check_guild_id(guild_id))

    # ------------------------------------------------------------- inventory
    def get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        return self._load(guild_id, tribute_id).inventory

    def _change_inventory(
        self, guild_id: int, tribute_id: str, change: Callable[[Inventory], object]
    ) -> Inventory:
        self._writable()
        with self.transaction():
            before = self._load(guild_id, tribute_id)
            candidate = before.inventory.model_copy(deep=True)
            try:
                change(candidate)
            except ValidationError as error:  # an assignment such as capacity=-1
                raise InvalidInputError(describe_validation_error(error, "Inventory")) from None
            new = validated(Inventory, dict(candidate))
            self._save(before, before.model_copy(update={"inventory": new}))
        return new

    def add_item(
        self,
        guild_id: int,
        tribute_id: str,
        item: str,
        *,
        equipped: bool = False,
        force: bool = False,
    ) -> Inventory:
        """Append an item (numbered n+1); refuses past capacity unless ``force``."""
        equipped, force = check_flag(equipped, "equipped"), check_flag(force, "force")

        def add(inventory: Inventory) -> None:
            slot: Slot = "equipped" if equipped else "items"
            limit = inventory.equipped_capacity if equipped else inventory.capacity
            entries: list[str] = getattr(inventory, slot)
            if len(entries) >= limit and not force:
                raise CapacityError(
                    f"{slot} of tribute {inventory.tribute_id} is full ({len(entries)}/{limit})"
                )
            entries.append(item)

        return self._change_inventory(guild_id, tribute_id, add)

    def remove_item(self, guild_id: int, tribute_id: str, number: int, *, slot: Slot = "items") -> str:
        """Remove item ``number`` (1-based); the following items are renumbered."""
        slot = check_slot(slot)
        removed: list[str] = []

        def remove(inventory: Inventory) -> None:
            removed.append(_pop(inventory, slot, number))

        self._change_inventory(guild_id, tribute_id, remove)
        return removed[0]

    def equip_item(self, guild_id: int, tribute_id: str, number: int) -> Inventory:
        """Move item ``number`` to the end of the equipped items."""

        def equip(inventory: Inventory) -> None:
            if len(inventory.equipped) >= inventory.equipped_capacity:
                raise CapacityError(
                    f"equipped of tribute {inventory.tribute_id} is full "
                    f"({len(inventory.equipped)}/{inventory.equipped_capacity})"
                )
            inventory.equipped.append(_pop(inventory, "items", number))

        return self._change_inventory(guild_id, tribute_id, equip)

    def unequip_item(self, guild_id: int, tribute_id: str, number: int) -> Inventory:
        """Move equipped item ``number`` back to the end of the items (capacity is soft here)."""

        def unequip(inventory: Inventory) -> None:
            inventory.items.append(_pop(inventory, "equipped", number))

        return self._change_inventory(guild_id, tribute_id, unequip)

    def set_capacity(
        self,
        guild_id: int,
        tribute_id: str,
        capacity: int | None = None,
        equipped_capacity: int | None = None,
    ) -> Inventory:
        """Change either capacity; items already held are kept even when over it."""

        def set_(inventory: Inventory) -> None:
            if capacity is not None:
                inventory.capacity = capacity
            if equipped_capacity is not None:
                inventory.equipped_capacity = equipped_capacity

        return self._change_inventory(guild_id, tribute_id, set_)

    def clear_inventory(self, guild_id: int, tribute_id: str, *, equipped: bool = True) -> Inventory:
        """Remove every item (and equipped item unless ``equipped=False``)."""
        equipped = check_flag(equipped, "equipped")

        def clear(inventory: Inventory) -> None:
            inventory.items = []
            if equipped:
                inventory.equipped = []

        return self._change_inventory(guild_id, tribute_id, clear)

    def search_items(
        self,
        query: str,
        guild_id: int | None = None,
        *,
        limit: int | None = None,
        after: ItemHit | None = None,
    ) -> list[ItemHit]:
        """Items and equipped items containing ``query``, case-insensitively (``casefold``).

        Hits come in a stable order: guild, tribute, items before equipped, number.
        ``limit`` returns at most that many (one page); ``after``, the last hit of
        the previous page, continues from there.  Without them, every hit.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"invalid search: query must be non-empty text (got {shown(query)})")
        check_text(query, "search query")
        gid = None if guild_id is None else check_guild_id(guild_id)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInputError(
                f"invalid search: limit must be a positive int or None (got {shown(limit)})"
            )
        if after is not None and not isinstance(after, ItemHit):
            raise InvalidInputError(f"invalid search: after must be an ItemHit or None (got {shown(after)})")
        folded = query.casefold()
        if len(folded) > MAX_FOLDED_ITEM_LENGTH:  # no item can hold it (a database may refuse it)
            return []
        limit = None if limit is None else min(limit, MAX_PAGE)  # "at most": any larger is all
        position = None if after is None else after.position
        backend = self.backend
        if limit is not None and isinstance(backend, PagedSearch):
            return self._consistent(lambda: backend.search_page(folded, gid, position, limit))
        return self._consistent(lambda: _page(backend.search_items(folded, gid), position, limit))

    # ---------------------------------------------------------------- prompt
    def set_prompt(
        self,
        guild_id: int,
        tribute_id: str,
        message: str,
        *,
        channel_id: int | None = None,
        files: list[str] | tuple[str, ...] = (),
    ) -> Prompt:
        """Create or replace the tribute's prompt (created_at kept on replace)."""
        names = _file_names(files)
        self._writable()
        with self.transaction():
            before = self._load(guild_id, tribute_id)
            tribute, old = before.tribute, before.prompt
            now = utcnow()
            prompt = validated(
                Prompt,
                guild_id=tribute.guild_id,
                tribute_id=tribute.tribute_id,
                message=message,
                channel_id=channel_id,
                files=names,
                created_at=old.created_at if old else now,
                updated_at=now,
            )
            self._save(before, before.model_copy(update={"prompt": prompt}))
        return prompt

    def get_prompt(self, guild_id: int, tribute_id: str) -> Prompt:
        return _require_prompt(self._load(guild_id, tribute_id))

    def delete_prompt(self, guild_id: int, tribute_id: str) -> None:
        self._writable()
        with self.transaction():
            before = self._load(guild_id, tribute_id)
            _require_prompt(before)
            self._save(before, before.model_copy(update={"prompt": None}))

    # ----------------------------------------------------------------- files
    def add_file(
        self,
        guild_id: int,
        tribute_id: str,
        name: str,
        data: bytes,
        *,
        kind: str = "attachment",
        media_type: str | None = None,
        replace: bool = False,
    ) -> FileInfo:
        """Store a file owned by the tribute; refuses an existing name unless ``replace``."""
        name = check_file_name(name)
        replace = check_flag(replace, "replace")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError(f"invalid file {name!r}: data must be bytes (got {type(data).__name__})")
        data = bytes(data)
        self._writable()
        with self.transaction():
            before = self._load(guild_id, tribute_id)
            tribute = before.tribute
            if not replace and _find_file(before, name) is not None:
                raise AlreadyExistsError(
                    f"file {name!r} already exists for tribute {tribute.tribute_id} "
                    f"in guild {tribute.guild_id}"
                )
            info = validated(
                FileInfo,
                guild_id=tribute.guild_id,
                tribute_id=tribute.tribute_id,
                name=name,
                kind=kind,
                media_type=media_type or guess_media_type(name),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                created_at=utcnow(),
            )
            files = sorted([*(f for f in before.files if f.name != name), info], key=lambda f: f.name)
            self._save(before, before.model_copy(update={"files": files}), {name: data})
        return info

    def get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo:
        return _require_file(self._load(guild_id, tribute_id), check_file_name(name))

    def read_file(self, guild_id: int, tribute_id: str, name: str) -> bytes:
        name = check_file_name(name)
        with self.backend.snapshot():
            return self.backend.read_file(_require_file(self._load(guild_id, tribute_id), name))

    def list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        return list(self._load(guild_id, tribute_id).files)

    def delete_file(self, guild_id: int, tribute_id: str, name: str) -> None:
        name = check_file_name(name)
        self._writable()
        with self.transaction():
            before = self._load(guild_id, tribute_id)
            _require_file(before, name)
            files = [f for f in before.files if f.name != name]
            self._save(before, before.model_copy(update={"files": files}))

    # ------------------------------------------------------------ whole-store
    def export_tribute(self, guild_id: int, tribute_id: str) -> TributeBundle:
        """Everything the tribute owns (file bytes via :meth:`read_file`), as one committed state."""
        return self._load(guild_id, tribute_id)

    def iter_bundles(self, guild_id: int | None = None) -> Iterator[TributeBundle]:
        """Every tribute with all it owns, streaming (for the copier).

        Each bundle is one committed state of its tribute; the iteration as a
        whole is not one snapshot, so a long copy never holds writers off.
        """
        documents = self.backend.iter_documents(None if guild_id is None else check_guild_id(guild_id))
        return (self._returned(document, TributeBundle, "iter_documents()") for document in documents)

    def read_bundle_file(self, info: FileInfo) -> bytes:
        """The bytes of a file whose metadata came from :meth:`iter_bundles` or :meth:`export_tribute`."""
        if not isinstance(info, FileInfo):
            raise InvalidInputError(f"invalid file: must be a FileInfo (got {shown(info)})")
        return self.backend.read_file(info)

    def import_tribute(
        self, bundle: TributeBundle, file_data: FileData, *, on_conflict: OnConflict = "fail"
    ) -> bool:
        """Write a whole tribute exactly as given (timestamps kept), in one transaction.

        ``file_data`` gives each file's bytes, by name or by a callable; their
        size and sha256 must match the metadata.  With an existing tribute:
        ``fail`` raises, ``skip`` leaves it, ``overwrite`` replaces it whole.
        Returns whether anything was written.
        """
        if on_conflict not in ("fail", "skip", "overwrite"):
            raise InvalidInputError(
                f"invalid on_conflict: must be 'fail', 'skip' or 'overwrite' (got {shown(on_conflict)})"
            )
        bundle = check_bundle(bundle)
        key = bundle.tribute.key
        self._writable()
        with self.transaction():
            before = self.backend.load(*key)
            if before is not None:
                if on_conflict == "skip":
                    return False
                if on_conflict != "overwrite":
                    raise AlreadyExistsError(f"tribute {key[1]} already exists in guild {key[0]}")
            self._ensure_guild(key[0])
            files = {info.name: file_bytes(info, file_data) for info in bundle.files}
            # A replace writes every file again: ``previous`` would let a backend keep old bytes.
            self.backend.save(bundle, files, None)
            self._record(key, before, bundle)
        return True

    def bulk_import(self, tributes: int) -> AbstractContextManager[None]:
        """Wrap the :meth:`import_many` calls of one large import of about ``tributes``
        tributes: a backend offering :class:`DeferredIndex` may then build its search index
        once at the end instead of row by row (searches stay correct meanwhile)."""
        if isinstance(tributes, bool) or not isinstance(tributes, int) or tributes < 0:
            raise InvalidInputError(f"invalid bulk import: tributes must be a count (got {shown(tributes)})")
        self._writable()
        if isinstance(self.backend, DeferredIndex):
            return self.backend.bulk_import(tributes)
        return nullcontext()

    def import_many(self, bundles: Sequence[TributeBundle], file_data: FileData) -> None:
        """``import_tribute(bundle, file_data, on_conflict="overwrite")`` for each bundle, in one
        transaction: the copier's bulk path (one batch write where the backend offers it)."""
        if isinstance(bundles, str | bytes | dict) or not isinstance(bundles, Iterable):
            raise InvalidInputError(
                f"invalid import: bundles must be a list of TributeBundle (got {shown(bundles)})"
            )
        checked = [check_bundle(bundle) for bundle in bundles]
        self._writable()
        backend = self.backend
        with self.transaction():
            for guild_id in sorted({bundle.tribute.guild_id for bundle in checked}):
                self._ensure_guild(guild_id)
            if self._reporting:
                for bundle in checked:
                    self._record(bundle.tribute.key, backend.load(*bundle.tribute.key), bundle)
            if isinstance(backend, BulkImport):
                backend.import_documents(checked, lambda info: file_bytes(info, file_data))
                return
            for bundle in checked:
                files = {info.name: file_bytes(info, file_data) for info in bundle.files}
                backend.save(bundle, files, None)


def check_bundle(bundle: TributeBundle) -> TributeBundle:
    """The bundle validated, every part owned by its tribute (else :class:`InvalidInputError`)."""
    if not isinstance(bundle, TributeBundle):
        raise InvalidInputError(f"invalid TributeBundle: got {shown(bundle)}")
    bundle = validated(TributeBundle, bundle.model_dump())
    tribute = bundle.tribute
    owner = (tribute.guild_id, tribute.tribute_id)
    parts: list[Inventory | Prompt | FileInfo] = [bundle.inventory, *bundle.files]
    if bundle.prompt is not None:
        parts.append(bundle.prompt)
    names = [info.name for info in bundle.files]
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise InvalidInputError(
            f"invalid TributeBundle: file name(s) {', '.join(map(repr, twice))} listed twice "
            f"in the bundle of {owner[1]} in guild {owner[0]}"
        )
    for part in parts:
        if (part.guild_id, part.tribute_id) != owner:
            raise InvalidInputError(
                f"invalid TributeBundle: {type(part).__name__} of {part.tribute_id} "
                f"in guild {part.guild_id} inside the bundle of {owner[1]} in guild {owner[0]}"
            )
    return bundle


def bytes_match(info: FileInfo, data: bytes) -> bool:
    """Whether ``data`` has the size and sha256 that ``info`` records."""
    return len(data) == info.size and hashlib.sha256(data).hexdigest() == info.sha256


def file_bytes(info: FileInfo, file_data: FileData) -> bytes:
    """The bytes ``file_data`` gives for ``info``, checked against its size and sha256."""
    try:
        given: object = file_data(info) if callable(file_data) else file_data[info.name]
    except KeyError:
        raise InvalidInputError(
            f"invalid file {info.name!r} of tribute {info.tribute_id}: no bytes given for it"
        ) from None
    if not isinstance(given, bytes | bytearray | memoryview):
        raise InvalidInputError(
            f"invalid file {info.name!r} of tribute {info.tribute_id}: its data must be bytes "
            f"(got {type(given).__name__})"
        )
    data = bytes(given)
    if not bytes_match(info, data):
        raise InvalidInputError(
            f"invalid file {info.name!r} of tribute {info.tribute_id}: bytes do not match its size/sha256"
        )
    return data


def _page(hits: Iterator[ItemHit], after: HitPosition | None, limit: int | None) -> list[ItemHit]:
    """The hits after ``after`` (all when ``None``), at most ``limit`` of them."""
    if after is not None:
        hits = itertools.dropwhile(lambda hit: hit.position <= after, hits)
    return list(hits if limit is None else itertools.islice(hits, limit))


def _find_file(document: TributeBundle, name: str) -> FileInfo | None:
    return next((info for info in document.files if info.name == name), None)


def _require_prompt(document: TributeBundle) -> Prompt:
    if document.prompt is None:
        tribute = document.tribute
        raise NotFoundError(f"tribute {tribute.tribute_id} in guild {tribute.guild_id} has no prompt")
    return document.prompt


def _require_file(document: TributeBundle, name: str) -> FileInfo:
    info = _find_file(document, name)
    if info is None:
        tribute = document.tribute
        raise NotFoundError(
            f"file {name!r} not found for tribute {tribute.tribute_id} in guild {tribute.guild_id}"
        )
    return info


def _file_names(files: object) -> list[object]:
    """``set_prompt``'s ``files``: a list or tuple of names (a lone string is no list of names)."""
    if isinstance(files, str | bytes) or not isinstance(files, list | tuple):
        raise InvalidInputError(f"invalid Prompt: files must be a list of file names (got {shown(files)})")
    return list(files)


def check_flag(value: object, name: str) -> bool:
    """A yes/no argument: ``True`` or ``False`` only (``"no"`` is not false, and would not do
    what it says)."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"invalid {name}: must be True or False (got {shown(value)})")
    return value


def check_slot(slot: object) -> Slot:
    if slot == "items":
        return "items"
    if slot == "equipped":
        return "equipped"
    raise InvalidInputError(f"invalid slot: must be 'items' or 'equipped' (got {shown(slot)})")


def _pop(inventory: Inventory, slot: Slot, number: int) -> str:
    entries: list[str] = getattr(inventory, slot)
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidInputError(f"invalid item number: must be an int (got {shown(number)})")
    if not 1 <= number <= len(entries):
        raise NotFoundError(
            f"{slot} of tribute {inventory.tribute_id} has no item {shown(number)} (it holds {len(entries)})"
        )
    return entries.pop(number - 1)


def guess_media_type(name: str) -> str:
    """The media type a file name suggests (``application/octet-stream`` when unknown)."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
