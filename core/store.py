"""The :class:`TributeStore` interface every backend implements.

The public methods (``create_tribute``, ``add_item``, ``set_prompt``, ...)
hold the domain rules once, here: validation, normalised ids, numbering,
capacities, timestamps, "not found" errors and read-only refusal.  A backend
implements the small storage primitives (the ``_``-prefixed abstract
methods) and :meth:`transaction`; every public write runs inside one
transaction, so a read-modify-write is never torn and never loses an update.

Every public read that returns more than one row or file runs inside
:meth:`TributeStore.snapshot` (one tribute's parts: ``export_tribute``,
``get_inventory``, ``list_files``, ``read_file``, each bundle of
``iter_bundles``) or :meth:`TributeStore._consistent` (several tributes:
``list_tributes``, ``list_guilds``, ``search_items``), so it observes one
committed state.  A store object may be shared by threads (see the README).
"""

from __future__ import annotations

import hashlib
import mimetypes
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from .errors import (
    AlreadyExistsError,
    CapacityError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyStoreError,
)
from .models import (
    Counts,
    FileInfo,
    Guild,
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

T = TypeVar("T")
OnConflict = Literal["fail", "skip", "overwrite"]
FileData = Mapping[str, bytes] | Callable[[FileInfo], bytes]

#: Tribute fields ``update_tribute`` may not change.
_FIXED_TRIBUTE_FIELDS = frozenset({"guild_id", "tribute_id", "created_at", "updated_at"})


class TributeStore(ABC):
    """A place tributes live: one per backend instance, closed with :meth:`close`."""

    #: The URL this store was opened with (for messages).
    url: str = ""
    #: Whether writes are refused (e.g. a legacy THGBot directory).
    read_only: bool = False
    #: Problems noticed while reading (e.g. legacy data repaired on load), each naming file and key.
    warnings: Sequence[str] = ()
    #: Where opening this store created it (an absolute path or a server location); ``None``
    #: when it already existed. Only a store opened in ``write`` mode is ever created.
    created: str | None = None
    #: Whether the data lives only as long as the process (``sqlite:///:memory:``).
    ephemeral: bool = False

    # ------------------------------------------------------------------ life
    def close(self) -> None:  # noqa: B027 - optional hook for backends
        """Release connections, locks and handles. Idempotent."""

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
        return f"<{type(self).__name__} {self.url}>"

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Group writes: all happen or none. Re-entrant: a nested call joins the outer one."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads of this thread inside the block see one committed state of each tribute.

        SQL backends hold one read transaction (the whole store as of its start);
        the JSON backend reads each tribute document once.  Re-entrant; inside a
        transaction it joins the transaction.  Keep it short: it is for one
        multi-part read, not for holding a view open.
        """
        return nullcontext()

    def _consistent(self, read: Callable[[], T]) -> T:
        """Run ``read`` (which may span several tributes) on one committed state of the store."""
        with self.snapshot():
            return read()

    # ------------------------------------------------------------ primitives
    @abstractmethod
    def _put_guild(self, guild: Guild) -> None:
        """Insert or replace a guild row."""

    @abstractmethod
    def _get_guild(self, guild_id: int) -> Guild | None: ...

    @abstractmethod
    def _list_guilds(self) -> list[Guild]:
        """All guilds, ordered by id."""

    @abstractmethod
    def _get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None: ...

    @abstractmethod
    def _insert_tribute(self, tribute: Tribute) -> None:
        """Store a new tribute (its guild exists, the id is free) with an empty inventory."""

    @abstractmethod
    def _update_tribute(self, tribute: Tribute) -> None:
        """Replace the fields of an existing tribute."""

    @abstractmethod
    def _delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        """Delete a tribute and everything it owns (inventory, prompt, files and their bytes)."""

    @abstractmethod
    def _iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        """Tributes of one guild, or of all, ordered by (guild_id, tribute_id); streaming."""

    @abstractmethod
    def _get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        """The tribute's inventory (the default one when never written); tribute exists."""

    @abstractmethod
    def _save_inventory(self, inventory: Inventory) -> None: ...

    @abstractmethod
    def _get_prompt(self, guild_id: int, tribute_id: str) -> Prompt | None: ...

    @abstractmethod
    def _save_prompt(self, prompt: Prompt) -> None: ...

    @abstractmethod
    def _delete_prompt(self, guild_id: int, tribute_id: str) -> None: ...

    @abstractmethod
    def _save_file(self, info: FileInfo, data: bytes) -> None:
        """Insert or replace a file (metadata and bytes) of an existing tribute."""

    @abstractmethod
    def _get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo | None: ...

    @abstractmethod
    def _read_file(self, info: FileInfo) -> bytes:
        """The bytes of a stored file."""

    @abstractmethod
    def _list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        """The tribute's files, ordered by name."""

    @abstractmethod
    def _delete_file(self, guild_id: int, tribute_id: str, name: str) -> None: ...

    @abstractmethod
    def _search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        """Items and equipped items whose ``casefold()`` contains ``folded_query``.

        Ordered by guild_id, tribute_id, then "items" before "equipped", then number.
        """

    @abstractmethod
    def counts(self) -> Counts:
        """How many guilds, tributes, items, equipped items, prompts and files."""

    def check(self) -> list[str]:
        """Integrity problems found (orphans, bad schema version, ...); empty when sound."""
        return []

    def details(self) -> dict[str, int]:
        """Backend-specific figures shown by ``tributestore stats`` (e.g. fallback-only tributes)."""
        return {}

    # Tombstones: optional primitives a backend provides to serve as a composite primary.
    # A tombstone says "the fallback's copy of this tribute was deleted"; it is written in
    # the same transaction as the deletion.  They are never cleared: a tribute created
    # again lives in the primary, which is always read first.

    #: Whether the four tombstone primitives below are implemented.
    supports_tombstones: bool = False

    def independent_check(self, destination: TributeStore) -> list[str] | None:
        """For a store read from raw files of another program (a legacy THGBot directory):
        every record of those files missing in ``destination``, found by a reader that
        shares nothing with this store's own interpretation.  ``None``: not such a store.
        """
        return None

    def origin_key(self, guild_id: int, tribute_id: str) -> str | None:
        """The key this store's own data names the tribute by, when that key does not depend on
        the guild (a legacy THGBot id, global across guilds); ``None``: (guild, id) is the identity.

        A composite records it in a tombstone, so a deleted legacy record stays deleted even
        when a later read of the legacy data infers another guild for it.
        """
        return None

    def is_tombstoned(self, guild_id: int, tribute_id: str, origin_key: str | None = None) -> bool:
        """Whether this store (a composite's primary) records the tribute as deleted from its
        fallback, by (guild, id) or by the fallback record's ``origin_key``."""
        if not self.supports_tombstones:
            return False
        if self._has_tombstone(guild_id, tribute_id):
            return True
        return origin_key is not None and self._has_origin_tombstone(origin_key)

    def _put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None = None) -> None:
        """Record that the fallback's copy is deleted; ``origin_key`` also names it by the fallback's key."""
        raise NotImplementedError(f"{type(self).__name__} does not record tombstones")

    def _has_tombstone(self, guild_id: int, tribute_id: str) -> bool:
        raise NotImplementedError(f"{type(self).__name__} does not record tombstones")

    def _has_origin_tombstone(self, origin_key: str) -> bool:
        """Whether a tombstone names the fallback record ``origin_key`` (whatever guild it had)."""
        raise NotImplementedError(f"{type(self).__name__} does not record tombstones")

    def _count_tombstones(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not record tombstones")

    # --------------------------------------------------------------- helpers
    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"store {self.url} is read-only")

    def _require_tribute(self, guild_id: object, tribute_id: object) -> Tribute:
        gid, tid = check_guild_id(guild_id), check_tribute_id(tribute_id)
        tribute = self._get_tribute(gid, tid)
        if tribute is None:
            raise NotFoundError(f"tribute {tid} not found in guild {gid}")
        return tribute

    def _ensure_guild(self, guild_id: int) -> None:
        if self._get_guild(guild_id) is None:
            self._put_guild(Guild(guild_id=guild_id))

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild_id: int, **settings: Any) -> Guild:
        """Create or replace a guild and its settings (log_channel_id, category_id, ...)."""
        guild = validated(Guild, settings, guild_id=guild_id)
        self._writable()
        with self.transaction():
            self._put_guild(guild)
        return guild

    def get_guild(self, guild_id: int) -> Guild:
        gid = check_guild_id(guild_id)
        guild = self._get_guild(gid)
        if guild is None:
            raise NotFoundError(f"guild {gid} not found")
        return guild

    def list_guilds(self) -> list[Guild]:
        return self._consistent(self._list_guilds)

    # -------------------------------------------------------------- tributes
    def create_tribute(self, guild_id: int, tribute_id: str, /, **fields: Any) -> Tribute:
        """Create a tribute (and its guild if new) with an empty inventory."""
        now = utcnow()
        fields.setdefault("created_at", now)
        fields.setdefault("updated_at", fields["created_at"])
        tribute = validated(Tribute, fields, guild_id=guild_id, tribute_id=tribute_id)
        self._writable()
        with self.transaction():
            if self._get_tribute(tribute.guild_id, tribute.tribute_id) is not None:
                raise AlreadyExistsError(
                    f"tribute {tribute.tribute_id} already exists in guild {tribute.guild_id}"
                )
            self._ensure_guild(tribute.guild_id)
            self._insert_tribute(tribute)
        return tribute

    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute:
        return self._require_tribute(guild_id, tribute_id)

    def has_tribute(self, guild_id: int, tribute_id: str) -> bool:
        return self._get_tribute(check_guild_id(guild_id), check_tribute_id(tribute_id)) is not None

    def update_tribute(self, guild_id: int, tribute_id: str, /, **changes: Any) -> Tribute:
        """Change a tribute's fields (name, user_id, face_claim_url, ...)."""
        fixed = sorted(_FIXED_TRIBUTE_FIELDS & changes.keys())
        if fixed:
            raise InvalidInputError(f"invalid Tribute: {', '.join(fixed)} cannot be changed")
        self._writable()
        with self.transaction():
            current = self._require_tribute(guild_id, tribute_id)
            data = current.model_dump()
            data.update(changes, updated_at=utcnow())
            tribute = validated(Tribute, data)
            self._update_tribute(tribute)
        return tribute

    def delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        """Delete a tribute and everything it owns."""
        self._writable()
        with self.transaction():
            tribute = self._require_tribute(guild_id, tribute_id)
            self._delete_tribute(tribute.guild_id, tribute.tribute_id)

    def list_tributes(self, guild_id: int) -> list[Tribute]:
        gid = check_guild_id(guild_id)
        return self._consistent(lambda: list(self._iter_tributes(gid)))

    def iter_tributes(self, guild_id: int | None = None) -> Iterator[Tribute]:
        """Every tribute (of one guild, or of all), streaming, ordered by guild then id."""
        return self._iter_tributes(None if guild_id is None else check_guild_id(guild_id))

    # ------------------------------------------------------------- inventory
    def get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        with self.snapshot():
            tribute = self._require_tribute(guild_id, tribute_id)
            return self._get_inventory(tribute.guild_id, tribute.tribute_id)

    def _change_inventory(
        self, guild_id: int, tribute_id: str, change: Callable[[Inventory], object]
    ) -> Inventory:
        self._writable()
        with self.transaction():
            candidate = self.get_inventory(guild_id, tribute_id).model_copy(deep=True)
            try:
                change(candidate)
            except ValidationError as error:  # an assignment such as capacity=-1
                raise InvalidInputError(describe_validation_error(error, "Inventory")) from None
            new = validated(Inventory, dict(candidate))
            self._save_inventory(new)
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

        def clear(inventory: Inventory) -> None:
            inventory.items = []
            if equipped:
                inventory.equipped = []

        return self._change_inventory(guild_id, tribute_id, clear)

    def search_items(self, query: str, guild_id: int | None = None) -> list[ItemHit]:
        """Items and equipped items containing ``query``, case-insensitively (``casefold``)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"invalid search: query must be non-empty text (got {shown(query)})")
        check_text(query, "search query")
        gid = None if guild_id is None else check_guild_id(guild_id)
        folded = query.casefold()
        return self._consistent(lambda: list(self._search_items(folded, gid)))

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
        self._writable()
        with self.transaction():
            tribute = self._require_tribute(guild_id, tribute_id)
            old = self._get_prompt(tribute.guild_id, tribute.tribute_id)
            now = utcnow()
            prompt = validated(
                Prompt,
                guild_id=tribute.guild_id,
                tribute_id=tribute.tribute_id,
                message=message,
                channel_id=channel_id,
                files=_file_names(files),
                created_at=old.created_at if old else now,
                updated_at=now,
            )
            self._save_prompt(prompt)
        return prompt

    def get_prompt(self, guild_id: int, tribute_id: str) -> Prompt:
        with self.snapshot():
            tribute = self._require_tribute(guild_id, tribute_id)
            prompt = self._get_prompt(tribute.guild_id, tribute.tribute_id)
        if prompt is None:
            raise NotFoundError(f"tribute {tribute.tribute_id} in guild {tribute.guild_id} has no prompt")
        return prompt

    def delete_prompt(self, guild_id: int, tribute_id: str) -> None:
        self._writable()
        with self.transaction():
            prompt = self.get_prompt(guild_id, tribute_id)
            self._delete_prompt(prompt.guild_id, prompt.tribute_id)

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
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError(f"invalid file {name!r}: data must be bytes (got {type(data).__name__})")
        data = bytes(data)
        self._writable()
        with self.transaction():
            tribute = self._require_tribute(guild_id, tribute_id)
            if not replace and self._get_file(tribute.guild_id, tribute.tribute_id, name):
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
            self._save_file(info, data)
        return info

    def get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo:
        with self.snapshot():
            tribute = self._require_tribute(guild_id, tribute_id)
            info = self._get_file(tribute.guild_id, tribute.tribute_id, check_file_name(name))
        if info is None:
            raise NotFoundError(
                f"file {name!r} not found for tribute {tribute.tribute_id} in guild {tribute.guild_id}"
            )
        return info

    def read_file(self, guild_id: int, tribute_id: str, name: str) -> bytes:
        with self.snapshot():
            return self._read_file(self.get_file(guild_id, tribute_id, name))

    def list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        with self.snapshot():
            tribute = self._require_tribute(guild_id, tribute_id)
            return self._list_files(tribute.guild_id, tribute.tribute_id)

    def delete_file(self, guild_id: int, tribute_id: str, name: str) -> None:
        self._writable()
        with self.transaction():
            info = self.get_file(guild_id, tribute_id, name)
            self._delete_file(info.guild_id, info.tribute_id, info.name)

    # ------------------------------------------------------------ whole-store
    def export_tribute(self, guild_id: int, tribute_id: str) -> TributeBundle:
        """Everything the tribute owns (file bytes via :meth:`read_file`), as one committed state."""
        with self.snapshot():
            tribute = self._require_tribute(guild_id, tribute_id)
            return self._bundle(tribute)

    def _bundle(self, tribute: Tribute) -> TributeBundle:
        gid, tid = tribute.guild_id, tribute.tribute_id
        return TributeBundle(
            tribute=tribute,
            inventory=self._get_inventory(gid, tid),
            prompt=self._get_prompt(gid, tid),
            files=self._list_files(gid, tid),
        )

    def iter_bundles(self, guild_id: int | None = None) -> Iterator[TributeBundle]:
        """Every tribute with all it owns, streaming (for the copier).

        Each bundle is one committed state of its tribute (read again inside a
        snapshot; a tribute deleted meanwhile is skipped); the iteration as a
        whole is not one snapshot, so a long copy never holds writers off.
        """
        for listed in self.iter_tributes(guild_id):
            with self.snapshot():
                tribute = self._get_tribute(listed.guild_id, listed.tribute_id)
                if tribute is not None:
                    bundle = self._bundle(tribute)
            if tribute is not None:
                yield bundle

    def import_tribute(
        self, bundle: TributeBundle, file_data: FileData, *, on_conflict: OnConflict = "fail"
    ) -> bool:
        """Write a whole tribute exactly as given (timestamps kept), in one transaction.

        ``file_data`` gives each file's bytes, by name or by a callable; their
        size and sha256 must match the metadata.  With an existing tribute:
        ``fail`` raises, ``skip`` leaves it, ``overwrite`` replaces it whole.
        Returns whether anything was written.
        """
        bundle = check_bundle(bundle)
        tribute = bundle.tribute
        owner = (tribute.guild_id, tribute.tribute_id)
        self._writable()
        with self.transaction():
            if self._get_tribute(*owner) is not None:
                if on_conflict == "skip":
                    return False
                if on_conflict != "overwrite":
                    raise AlreadyExistsError(f"tribute {owner[1]} already exists in guild {owner[0]}")
                self._delete_tribute(*owner)
            self._ensure_guild(tribute.guild_id)
            self._insert_tribute(tribute)
            self._save_inventory(bundle.inventory)
            if bundle.prompt is not None:
                self._save_prompt(bundle.prompt)
            for info in bundle.files:
                self._save_file(info, file_bytes(info, file_data))
        return True

    def _import_replacing(self, bundles: Sequence[TributeBundle], file_data: FileData) -> None:
        """``import_tribute(bundle, file_data, on_conflict="overwrite")`` for each bundle, in one
        transaction: the copier's bulk path.

        A backend may write the batch at once; it must keep the same checks
        (:func:`check_bundle` for each bundle, :func:`file_bytes` for each file)
        and result.
        """
        with self.transaction():
            for bundle in bundles:
                self.import_tribute(bundle, file_data, on_conflict="overwrite")


def check_bundle(bundle: TributeBundle) -> TributeBundle:
    """The bundle validated, every part owned by its tribute (else :class:`InvalidInputError`)."""
    bundle = validated(TributeBundle, bundle.model_dump())
    tribute = bundle.tribute
    owner = (tribute.guild_id, tribute.tribute_id)
    parts: list[Inventory | Prompt | FileInfo] = [bundle.inventory, *bundle.files]
    if bundle.prompt is not None:
        parts.append(bundle.prompt)
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
    data = file_data(info) if callable(file_data) else file_data[info.name]
    if not bytes_match(info, data):
        raise InvalidInputError(
            f"invalid file {info.name!r} of tribute {info.tribute_id}: bytes do not match its size/sha256"
        )
    return data


def _file_names(files: object) -> list[object]:
    """``set_prompt``'s ``files``: a list or tuple of names (a lone string is no list of names)."""
    if isinstance(files, str | bytes) or not isinstance(files, list | tuple):
        raise InvalidInputError(f"invalid Prompt: files must be a list of file names (got {shown(files)})")
    return list(files)


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
