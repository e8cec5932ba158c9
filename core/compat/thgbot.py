"""THGBot's storage API (``SQLDatabase`` and ``StorageManager``) on any tributestore store.

THGBot (branch ``tributecentric``) talks to storage through two synchronous
classes keyed by ``tribute_id`` alone: ``database.SQLDatabase`` (tributes,
prompts, files) and ``storage.StorageManager`` (inventories, prompt
pass-throughs).  This module offers classes of the same names, methods,
parameters and return values, backed by a :class:`~tributestore.TributeStore`
(the configured one, :func:`~tributestore.open_store`, unless one is given),
so a deployment switches storage by changing two imports::

    from tributestore.compat.thgbot import SQLDatabase      # was: from database import SQLDatabase
    from tributestore.compat.thgbot import StorageManager   # was: from storage import StorageManager

Tribute ids: tributestore keeps tributes per guild, THGBot names them by id
alone.  An adapter built with ``guild_id=G`` looks every id up in guild G
only; without it an id resolves across all guilds when exactly one guild
holds it, and an id held by several guilds raises
:class:`AmbiguousTributeError` (never a guess).  Ids are case-insensitive
(``d1f`` is ``D1F``); a malformed id is simply "not found".

Integer ids (the ``id`` key of every row, ``add_file``'s result,
``delete_file``'s argument) are derived from what they name (guild, tribute
id, file name) with a hash, so they are stable across restarts, processes and
backends without any extra table; they are positive and below 2**53.

Where THGBot's own code is wrong, the adapter does the right thing (each
difference is listed in the README, "THGBot compatibility"): items are
renumbered by position (THGBot sorts the keys as strings, so after removing
item 1 of ten, item 10 became item 1), ``clear_inventory`` follows the branch
head (items and equipped items cleared, capacities kept), an inventory is the
tribute's (no orphan inventories), and ``update_tribute`` also applies
``face_claim_url`` and ``prompt_channel_id``, which THGBot's own
``/edit-tribute`` passes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ..config import open_store
from ..errors import (
    AlreadyExistsError,
    CapacityError,
    InvalidInputError,
    NotFoundError,
)
from ..models import (
    DEFAULT_CAPACITY,
    DEFAULT_EQUIPPED_CAPACITY,
    FileInfo,
    Inventory,
    Prompt,
    Tribute,
    TributeBundle,
    check_file_name,
    check_guild_id,
    check_tribute_id,
    shown,
)
from ..store import TributeStore

__all__ = [
    "NO_GUILD",
    "AmbiguousTributeError",
    "SQLDatabase",
    "StorageManager",
    "TributeExistsError",
    "stable_id",
]

#: The guild a tribute created with ``guild_id=None`` lives in (reported back as ``None``).
NO_GUILD = 0

Row = dict[str, Any]
T = TypeVar("T")


class AmbiguousTributeError(InvalidInputError):
    """A tribute id given without a guild names tributes of several guilds."""


class TributeExistsError(AlreadyExistsError):
    """THGBot's ``UNIQUE constraint failed`` (its bot code matches that text in the message)."""


def stable_id(*parts: object) -> int:
    """A positive integer below 2**53 derived from ``parts``: the same parts, the same id."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) or 1


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _sql_time(moment: datetime | None) -> str | None:
    """SQLite's ``CURRENT_TIMESTAMP`` text (UTC), as THGBot's inventories table holds it."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


#: Larger than any inventory can hold (a number past it names no item, whatever its digits).
MAX_ITEM_NUMBER = 2**31 - 1


def _item_number(value: object) -> int | None:
    """THGBot looks items up by ``str(item_number)``: 3 and "3" name item 3, "03" and "x" nothing,
    nor does a number longer than any inventory could be (a user may type thousands of digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1 <= value <= MAX_ITEM_NUMBER else None
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ITEM_NUMBER)):
        return None
    number = int(text)
    return number if str(number) == text and 1 <= number <= MAX_ITEM_NUMBER else None


def _numbered(entries: list[str]) -> dict[str, str]:
    return {str(number): item for number, item in enumerate(entries, start=1)}


class _Adapter:
    """The store, the optional guild scope and tribute-id resolution shared by both classes."""

    def __init__(self, store: TributeStore | None, guild_id: int | None) -> None:
        if store is not None and not isinstance(store, TributeStore):
            raise InvalidInputError(
                f"{type(self).__name__} needs a store opened with open_store(), or none for the "
                f"configured one (got {str(store)[:60]!r}, a {type(store).__name__}); a path such as "
                "THGBot's 'thgbot.db' is not a store: name it in the configuration (README: Configuration)"
            )
        self.store: TributeStore = open_store() if store is None else store
        self.guild_id: int | None = None if guild_id is None else check_guild_id(guild_id)

    def _guilds(self) -> list[int]:
        if self.guild_id is not None:
            return [self.guild_id]
        return [guild.guild_id for guild in self.store.list_guilds()]

    def _locate(self, tribute_id: object) -> Tribute | None:
        """The tribute ``tribute_id`` names in the adapter's scope; None when there is none."""
        try:
            tid = check_tribute_id(tribute_id)
        except InvalidInputError:
            return None
        found = [t for gid in self._guilds() if (t := self._get(gid, tid)) is not None]
        if len(found) > 1:
            guilds = ", ".join(str(t.guild_id) for t in found)
            raise AmbiguousTributeError(
                f"tribute id {tid} exists in several guilds ({guilds}); "
                "give the adapter a guild_id to choose one"
            )
        return found[0] if found else None

    def _get(self, guild_id: int, tribute_id: str) -> Tribute | None:
        try:
            return self.store.get_tribute(guild_id, tribute_id)
        except NotFoundError:
            return None

    def _require(self, tribute_id: object) -> Tribute:
        tribute = self._locate(tribute_id)
        if tribute is None:
            raise NotFoundError(f"tribute {tribute_id!r} not found")
        return tribute

    def _inventory(self, tribute_id: object) -> Inventory | None:
        tribute = self._locate(tribute_id)
        return None if tribute is None else self.store.get_inventory(*tribute.key)

    def _tributes(self, guild_id: int | None = None) -> list[Tribute]:
        """Tributes of ``guild_id`` (or of the scope), ordered by tribute id like THGBot's SQL."""
        guilds = self._guilds() if guild_id is None else [check_guild_id(guild_id)]
        tributes = [t for gid in guilds for t in self.store.iter_tributes(gid)]
        return sorted(tributes, key=lambda t: (t.tribute_id, t.guild_id))

    def _prompts(self, guild_id: int | None = None) -> list[Prompt]:
        prompts = []
        for tribute in self._tributes(guild_id):
            try:
                prompts.append(self.store.get_prompt(*tribute.key))
            except NotFoundError:
                continue
        return prompts

    def _files(self, guild_id: int | None = None) -> Iterator[FileInfo]:
        for tribute in self._tributes(guild_id):
            yield from self.store.list_files(*tribute.key)

    def _find_file(self, file_id: object) -> FileInfo | None:
        if isinstance(file_id, bool) or not isinstance(file_id, int):
            return None
        return next((info for info in self._files() if _file_row(info)["id"] == file_id), None)

    def _search(self, query: str) -> list[tuple[Tribute, int, str]]:
        """(tribute, number, item) of every (unequipped) item containing ``query``, any case."""
        if not isinstance(query, str):
            raise InvalidInputError(f"invalid search: query must be text (got {query!r})")
        hits: list[tuple[Tribute, int, str]] = []
        if query.strip() and "\x00" not in query:
            tributes: dict[tuple[int, str], Tribute] = {}
            for hit in self.store.search_items(query, self.guild_id):
                if hit.slot != "items":
                    continue
                key = (hit.guild_id, hit.tribute_id)
                if key not in tributes:
                    tributes[key] = self.store.get_tribute(*key)
                hits.append((tributes[key], hit.number, hit.item))
        else:  # tributestore refuses blank queries; THGBot's substring test matches them
            folded = query.casefold()
            for tribute in self._tributes():
                inventory = self.store.get_inventory(*tribute.key)
                for number, item in inventory.numbered().items():
                    if folded in item.casefold():
                        hits.append((tribute, number, item))
        return sorted(hits, key=lambda hit: (hit[0].tribute_id, hit[0].guild_id, hit[1]))

    def close(self) -> None:
        """Close the store."""
        self.store.close()


# ---------------------------------------------------------------- row shapes


def _guild_out(guild_id: int) -> int | None:
    return None if guild_id == NO_GUILD else guild_id


def _tribute_row(tribute: Tribute) -> Row:
    return {
        "id": stable_id("tribute", tribute.guild_id, tribute.tribute_id),
        "tribute_id": tribute.tribute_id,
        "tribute_name": tribute.name,
        "user_id": tribute.user_id,
        "user_mention": tribute.user_mention,
        "guild_id": _guild_out(tribute.guild_id),
        "created_at": _epoch(tribute.created_at),
        "face_claim_url": tribute.face_claim_url,
        "prompt_channel_id": tribute.prompt_channel_id,
    }


def _inventory_row(tribute: Tribute, inventory: Inventory) -> Row:
    return {
        "id": stable_id("inventory", tribute.guild_id, tribute.tribute_id),
        "tribute_id": tribute.tribute_id,
        "capacity": inventory.capacity,
        "created_at": _sql_time(tribute.created_at),
        "updated_at": _sql_time(tribute.updated_at),
    }


def _prompt_row(prompt: Prompt) -> Row:
    return {
        "id": stable_id("prompt", prompt.guild_id, prompt.tribute_id),
        "tribute_id": prompt.tribute_id,
        "message": prompt.message,
        "channel_id": prompt.channel_id,
        "created_at": _epoch(prompt.created_at),
    }


def _file_row(info: FileInfo) -> Row:
    return {
        "id": stable_id("file", info.guild_id, info.tribute_id, info.name),
        "tribute_id": info.tribute_id,
        "file_type": info.kind,
        "file_path": info.name,
        "created_at": _epoch(info.created_at),
    }


def _inventory_json(inventory: Inventory) -> Row:
    """An inventory as THGBot's ``inventories.json`` holds it."""
    return {
        "capacity": inventory.capacity,
        "items": _numbered(inventory.items),
        "equipped_capacity": inventory.equipped_capacity,
        "equipped": _numbered(inventory.equipped),
    }


class SQLDatabase(_Adapter):
    """THGBot's ``database.SQLDatabase`` (tributes, SQL inventories, prompts, files) on a store.

    ``db_path`` is accepted for compatibility and ignored: the store is ``store``
    if given, else the configured one (``open_store()``: ``TRIBUTESTORE_URL``,
    ``tributestore.toml``, ...).  ``guild_id`` scopes every id lookup to one
    guild (see the module documentation).  Calls are synchronous and safe from
    several threads, like THGBot's.  Errors THGBot got from sqlite3 (a missing
    tribute behind a foreign key, a duplicate) are tributestore errors here:
    :class:`~tributestore.NotFoundError`, :class:`TributeExistsError` (whose
    message starts with THGBot's ``UNIQUE constraint failed``).
    """

    def __init__(
        self,
        db_path: str | None = None,
        *,
        store: TributeStore | None = None,
        guild_id: int | None = None,
    ) -> None:
        super().__init__(store, guild_id)
        self.db_path = db_path

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls: all happen or none (the store's transaction; yields no connection)."""
        with self.store.transaction():
            yield

    def init_schema(self) -> None:
        """Nothing to do: every backend creates and migrates its own schema."""

    def close_connection(self) -> None:
        """Nothing to do: the store manages its connections (``close()`` closes the store)."""

    # ------------------------------------------------------------ tributes
    def create_tribute(
        self,
        tribute_id: str,
        tribute_name: str,
        user_id: int,
        user_mention: str,
        guild_id: int | None = None,
        created_at: int | None = None,
        face_claim_url: str | None = None,
        prompt_channel_id: int | None = None,
    ) -> Row:
        """Create a tribute; returns its row. ``created_at`` is Unix seconds (default: now)."""
        if guild_id is None:
            gid = NO_GUILD if self.guild_id is None else self.guild_id
        elif self.guild_id is not None and guild_id != self.guild_id:
            raise InvalidInputError(
                f"invalid guild_id: this adapter is scoped to guild {self.guild_id} (got {guild_id!r})"
            )
        else:
            gid = guild_id
        fields: dict[str, Any] = {
            "name": tribute_name,
            "user_id": user_id,
            "user_mention": user_mention,
            "face_claim_url": face_claim_url,
            "prompt_channel_id": prompt_channel_id,
        }
        if created_at is not None:
            if isinstance(created_at, bool) or not isinstance(created_at, int):
                raise InvalidInputError(f"invalid created_at: must be Unix seconds (got {created_at!r})")
            try:
                fields["created_at"] = datetime.fromtimestamp(created_at, UTC)
            except (OverflowError, OSError, ValueError):
                raise InvalidInputError(
                    f"invalid created_at: {shown(created_at)} Unix seconds is not a date"
                ) from None
        with self.store.transaction():
            existing = self._locate(tribute_id) if self.guild_id is None else None
            try:
                if existing is not None:  # THGBot's ids are unique across guilds
                    raise AlreadyExistsError(f"in guild {existing.guild_id}")
                tribute = self.store.create_tribute(gid, tribute_id, **fields)
            except AlreadyExistsError as error:
                raise TributeExistsError(
                    f"UNIQUE constraint failed: tributes.tribute_id (tribute {tribute_id!r} exists: {error})"
                ) from None
        return _tribute_row(tribute)

    def get_tribute(self, tribute_id: str) -> Row | None:
        tribute = self._locate(tribute_id)
        return None if tribute is None else _tribute_row(tribute)

    def get_all_tributes(self, guild_id: int | None = None) -> list[Row]:
        """Tributes of ``guild_id`` (or of the adapter's scope), ordered by tribute id."""
        return [_tribute_row(t) for t in self._tributes(guild_id or None)]

    def update_tribute(self, tribute_id: str, **kwargs: Any) -> Row | None:
        """Change ``tribute_name``, ``user_mention``, ``face_claim_url``, ``prompt_channel_id`` or
        ``guild_id`` (moves the tribute with all it owns); other keys are ignored, as in THGBot.
        Returns the row, or None when there is no such tribute."""
        names = {
            "tribute_name": "name",
            "user_mention": "user_mention",
            "face_claim_url": "face_claim_url",
            "prompt_channel_id": "prompt_channel_id",
        }
        changes = {names[key]: value for key, value in kwargs.items() if key in names}
        with self.store.transaction():
            tribute = self._locate(tribute_id)
            if tribute is None:
                return None
            if "guild_id" in kwargs:
                target = NO_GUILD if kwargs["guild_id"] is None else check_guild_id(kwargs["guild_id"])
                if target != tribute.guild_id:
                    tribute = self._move(tribute, target)
            if changes:
                tribute = self.store.update_tribute(*tribute.key, **changes)
        return _tribute_row(tribute)

    def _move(self, tribute: Tribute, guild_id: int) -> Tribute:
        """Move a tribute and all it owns to another guild (inside the caller's transaction)."""
        if self.store.has_tribute(guild_id, tribute.tribute_id):
            raise TributeExistsError(
                "UNIQUE constraint failed: tributes.tribute_id "
                f"({tribute.tribute_id} exists in guild {guild_id})"
            )
        bundle = self.store.export_tribute(*tribute.key)
        data = {info.name: self.store.read_file(*tribute.key, info.name) for info in bundle.files}
        where = {"guild_id": guild_id}
        moved = TributeBundle(
            tribute=bundle.tribute.model_copy(update=where),
            inventory=bundle.inventory.model_copy(update=where),
            prompt=None if bundle.prompt is None else bundle.prompt.model_copy(update=where),
            files=[info.model_copy(update=where) for info in bundle.files],
        )
        self.store.import_tribute(moved, data)
        self.store.delete_tribute(*tribute.key)
        return moved.tribute

    def delete_tribute(self, tribute_id: str) -> bool:
        """Delete a tribute with its inventory, prompt and files; False when there is none."""
        with self.store.transaction():
            tribute = self._locate(tribute_id)
            if tribute is None:
                return False
            self.store.delete_tribute(*tribute.key)
        return True

    def get_tribute_full(self, tribute_id: str) -> Row | None:
        """The tribute row with ``inventory`` (row + ``items``), ``prompt`` and ``files``."""
        tribute = self._locate(tribute_id)
        if tribute is None:
            return None
        bundle = self.store.export_tribute(*tribute.key)
        result = _tribute_row(bundle.tribute)
        result["inventory"] = _inventory_row(bundle.tribute, bundle.inventory)
        result["inventory"]["items"] = _numbered(bundle.inventory.items)
        result["prompt"] = None if bundle.prompt is None else _prompt_row(bundle.prompt)
        result["files"] = [_file_row(info) for info in bundle.files]
        return result

    # ----------------------------------------------------------- inventory
    def create_inventory(self, tribute_id: str, capacity: int = DEFAULT_CAPACITY) -> Row:
        """Set the capacity of the tribute's inventory (every tribute has one); returns its row."""
        with self.store.transaction():
            tribute = self._require(tribute_id)
            inventory = self.store.set_capacity(*tribute.key, capacity=capacity)
        return _inventory_row(tribute, inventory)

    def get_inventory(self, tribute_id: str) -> Row | None:
        tribute = self._locate(tribute_id)
        if tribute is None:
            return None
        return _inventory_row(tribute, self.store.get_inventory(*tribute.key))

    def get_inventory_items(self, tribute_id: str) -> list[Row]:
        inventory = self._inventory(tribute_id)
        if inventory is None:
            return []
        return [{"item_number": n, "item_name": item} for n, item in inventory.numbered().items()]

    def add_inventory_item(self, tribute_id: str, item_name: str) -> int:
        """Append an item (capacity is soft, as in THGBot); returns its number."""
        with self.store.transaction():
            tribute = self._require(tribute_id)
            inventory = self.store.add_item(*tribute.key, item_name, force=True)
        return len(inventory.items)

    def remove_inventory_item(self, tribute_id: str, item_number: int) -> bool:
        """Remove an item; the following ones move up by one. False when there is no such item."""
        number = _item_number(item_number)
        with self.store.transaction():
            inventory = self._inventory(tribute_id)
            if inventory is None or number is None or number > len(inventory.items):
                return False
            self.store.remove_item(inventory.guild_id, inventory.tribute_id, number)
        return True

    def clear_inventory(self, tribute_id: str) -> bool:
        """Remove every (unequipped) item; False when there is no such tribute."""
        with self.store.transaction():
            tribute = self._locate(tribute_id)
            if tribute is None:
                return False
            self.store.clear_inventory(*tribute.key, equipped=False)
        return True

    def search_inventory_items(self, item_name: str) -> list[Row]:
        """Items containing ``item_name`` (any case), ordered by tribute id and item number."""
        return [
            {
                "tribute_id": tribute.tribute_id,
                "tribute_name": tribute.name,
                "user_mention": tribute.user_mention,
                "item_number": number,
                "item_name": item,
            }
            for tribute, number, item in self._search(item_name)
        ]

    # -------------------------------------------------------------- prompts
    def create_prompt(self, tribute_id: str, message: str, channel_id: int | None) -> Row:
        """Create the tribute's prompt (one per tribute: a second raises TributeExistsError)."""
        with self.store.transaction():
            tribute = self._require(tribute_id)
            try:
                self.store.get_prompt(*tribute.key)
            except NotFoundError:
                prompt = self.store.set_prompt(*tribute.key, message, channel_id=channel_id)
            else:
                raise TributeExistsError(
                    "UNIQUE constraint failed: prompts.tribute_id "
                    f"(tribute {tribute.tribute_id} has a prompt)"
                )
        return _prompt_row(prompt)

    def get_prompt(self, tribute_id: str) -> Row | None:
        prompt = self._prompt(tribute_id)
        return None if prompt is None else _prompt_row(prompt)

    def _prompt(self, tribute_id: object) -> Prompt | None:
        tribute = self._locate(tribute_id)
        if tribute is None:
            return None
        try:
            return self.store.get_prompt(*tribute.key)
        except NotFoundError:
            return None

    def get_all_prompts(self, guild_id: int | None = None) -> list[Row]:
        return [_prompt_row(prompt) for prompt in self._prompts(guild_id or None)]

    def update_prompt(self, tribute_id: str, **kwargs: Any) -> Row | None:
        """Change ``message`` and/or ``channel_id`` (other keys ignored); None when no prompt."""
        with self.store.transaction():
            prompt = self._prompt(tribute_id)
            if prompt is None:
                return None
            if "message" in kwargs or "channel_id" in kwargs:
                prompt = self.store.set_prompt(
                    prompt.guild_id,
                    prompt.tribute_id,
                    kwargs.get("message", prompt.message),
                    channel_id=kwargs.get("channel_id", prompt.channel_id),
                    files=prompt.files,
                )
        return _prompt_row(prompt)

    def delete_prompt(self, tribute_id: str) -> bool:
        with self.store.transaction():
            prompt = self._prompt(tribute_id)
            if prompt is None:
                return False
            self.store.delete_prompt(prompt.guild_id, prompt.tribute_id)
        return True

    def delete_all_prompts(self) -> int:
        """Delete every prompt of the scope (all guilds when unscoped); returns how many."""
        with self.store.transaction():
            prompts = self._prompts()
            for prompt in prompts:
                self.store.delete_prompt(prompt.guild_id, prompt.tribute_id)
        return len(prompts)

    # ---------------------------------------------------------------- files
    def add_file(self, tribute_id: str, file_type: str | None, file_path: str | Path) -> Row:
        """Read the file at ``file_path`` into the store as a file of the tribute; returns its row.

        The row's ``file_path`` is the stored name (the path's last part); a file
        of the same name replaces the earlier one and keeps its ``id``.
        ``file_type`` must be like ``prompt_image`` (None: ``attachment``).
        """
        if not isinstance(file_path, str | os.PathLike):
            raise InvalidInputError(f"invalid file_path: must be a path (got {shown(file_path)})")
        path = Path(file_path)
        name = check_file_name(path.name)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise InvalidInputError(
                f"invalid file_path: cannot read {str(path)!r}: {error.strerror}"
            ) from None
        with self.store.transaction():
            tribute = self._require(tribute_id)
            info = self.store.add_file(*tribute.key, name, data, kind=file_type or "attachment", replace=True)
        return _file_row(info)

    def get_files(self, tribute_id: str, file_type: str | None = None) -> list[Row]:
        """The tribute's files (of one ``file_type`` if given), ordered by name."""
        tribute = self._locate(tribute_id)
        if tribute is None:
            return []
        files = self.store.list_files(*tribute.key)
        return [_file_row(info) for info in files if not file_type or info.kind == file_type]

    def delete_file(self, file_id: int) -> bool:
        """Delete the file with this id; False when there is none."""
        with self.store.transaction():
            info = self._find_file(file_id)
            if info is None:
                return False
            self.store.delete_file(info.guild_id, info.tribute_id, info.name)
        return True

    def read_file(self, file_id: int) -> bytes | None:
        """The bytes of the file with this id (not in THGBot, which kept only paths)."""
        info = self._find_file(file_id)
        return None if info is None else self.store.read_file(info.guild_id, info.tribute_id, info.name)


def _false_on_refusal(call: Callable[[], T], default: T) -> T:
    """THGBot's StorageManager returns False/None instead of raising; so do we for refusals.

    An ambiguous id still raises (never a guess), as do storage failures
    (I/O, read-only store), which THGBot only logged.
    """
    try:
        return call()
    except AmbiguousTributeError:
        raise
    except (InvalidInputError, NotFoundError, CapacityError, AlreadyExistsError):
        return default


class StorageManager(_Adapter):
    """THGBot's ``storage.StorageManager`` (inventories, prompt pass-throughs) on a store.

    Built like THGBot's, from an :class:`SQLDatabase` (sharing its store and
    guild scope); or from a store, or from nothing (the configured store).
    Inventories are the tributes' own: every tribute has one, an id with no
    tribute has none (THGBot's JSON file could hold orphans).  Methods return
    False (or None) where THGBot's did on refusal: unknown tribute or item,
    full equipped section, bad input.
    """

    def __init__(
        self,
        db: SQLDatabase | TributeStore | None = None,
        *,
        guild_id: int | None = None,
    ) -> None:
        if isinstance(db, SQLDatabase):
            super().__init__(db.store, db.guild_id if guild_id is None else guild_id)
        else:
            super().__init__(db, guild_id)
        #: Kept for compatibility; the composite backend does the fallback reads now.
        self.fallback_mode = True

    def disable_fallback(self) -> None:
        self.fallback_mode = False

    def enable_fallback(self) -> None:
        self.fallback_mode = True

    # ----------------------------------------------------------- inventory
    def get_inventory(self, tribute_id: str) -> Row | None:
        """``{"capacity", "items": {"1": ...}, "equipped_capacity", "equipped": {...}}`` or None."""
        inventory = self._inventory(tribute_id)
        return None if inventory is None else _inventory_json(inventory)

    def create_inventory(
        self,
        tribute_id: str,
        capacity: int = DEFAULT_CAPACITY,
        equipped_capacity: int = DEFAULT_EQUIPPED_CAPACITY,
    ) -> bool:
        """Set both capacities (items kept); False when there is no such tribute."""

        def create() -> bool:
            with self.store.transaction():
                tribute = self._require(tribute_id)
                self.store.set_capacity(*tribute.key, capacity, equipped_capacity)
            return True

        return _false_on_refusal(create, False)

    def _change(self, tribute_id: str, change: Callable[[Inventory], bool]) -> bool:
        """Run ``change`` on the current inventory inside one transaction (False: refused)."""

        def run() -> bool:
            with self.store.transaction():
                inventory = self._inventory(tribute_id)
                return inventory is not None and change(inventory)

        return _false_on_refusal(run, False)

    def add_inventory_item(self, tribute_id: str, item_name: str) -> bool:
        """Append an item (no capacity check, as in THGBot)."""
        return self._change(
            tribute_id, lambda inv: bool(self.store.add_item(*_key(inv), item_name, force=True))
        )

    def remove_inventory_item(self, tribute_id: str, item_number: int | str) -> bool:
        """Remove an item; the following ones move up by one (by position)."""
        number = _item_number(item_number)

        def remove(inv: Inventory) -> bool:
            if number is None or number > len(inv.items):
                return False
            self.store.remove_item(*_key(inv), number)
            return True

        return self._change(tribute_id, remove)

    def clear_inventory(self, tribute_id: str) -> bool:
        """Remove every item and equipped item; capacities are kept."""
        return self._change(tribute_id, lambda inv: bool(self.store.clear_inventory(*_key(inv))))

    def delete_inventory(self, tribute_id: str) -> bool:
        """Empty the inventory and reset both capacities (the inventory goes with its tribute)."""

        def delete(inv: Inventory) -> bool:
            self.store.clear_inventory(*_key(inv))
            self.store.set_capacity(*_key(inv), DEFAULT_CAPACITY, DEFAULT_EQUIPPED_CAPACITY)
            return True

        return self._change(tribute_id, delete)

    def equip_item(self, tribute_id: str, item_number: int | str) -> bool:
        """Move an item to the end of the equipped section; False if none or it is full."""
        number = _item_number(item_number)

        def equip(inv: Inventory) -> bool:
            if number is None or number > len(inv.items) or len(inv.equipped) >= inv.equipped_capacity:
                return False
            self.store.equip_item(*_key(inv), number)
            return True

        return self._change(tribute_id, equip)

    def unequip_item(self, tribute_id: str, item_number: int | str) -> bool:
        """Move an equipped item to the end of the items; False if none or the items are full."""
        number = _item_number(item_number)

        def unequip(inv: Inventory) -> bool:
            if number is None or number > len(inv.equipped) or len(inv.items) >= inv.capacity:
                return False
            self.store.unequip_item(*_key(inv), number)
            return True

        return self._change(tribute_id, unequip)

    def add_equipped_item(self, tribute_id: str, item_name: str) -> bool:
        """Append an item to the equipped section; False when it is full."""
        return self._change(
            tribute_id, lambda inv: bool(self.store.add_item(*_key(inv), item_name, equipped=True))
        )

    def search_inventory_items(self, item_name: str) -> list[Row]:
        """``[{"tribute_id", "item_number", "item_name"}]`` of items containing ``item_name``."""
        return [
            {"tribute_id": tribute.tribute_id, "item_number": number, "item_name": item}
            for tribute, number, item in self._search(item_name)
        ]

    # -------------------------------------------------------------- prompts
    def _db(self) -> SQLDatabase:
        return SQLDatabase(store=self.store, guild_id=self.guild_id)

    def get_prompt(self, tribute_id: str) -> Row | None:
        """``{"message", "channel", "image": None}`` or None."""
        row = self._db().get_prompt(tribute_id)
        if row is None:
            return None
        return {"message": row["message"], "channel": row["channel_id"], "image": None}

    def get_all_prompts(self, guild_id: int | None = None) -> dict[str, Row]:
        """``{tribute_id: {"message", "channel"}}``, ordered by tribute id."""
        return {
            row["tribute_id"]: {"message": row["message"], "channel": row["channel_id"]}
            for row in self._db().get_all_prompts(guild_id)
        }

    def create_prompt(self, tribute_id: str, message: str, channel_id: int | None) -> bool:
        return _false_on_refusal(
            lambda: bool(self._db().create_prompt(tribute_id, message, channel_id)), False
        )

    def update_prompt(self, tribute_id: str, **kwargs: Any) -> bool:
        """Change ``message``/``channel_id``; False when the tribute has no prompt."""
        return _false_on_refusal(lambda: self._db().update_prompt(tribute_id, **kwargs) is not None, False)

    def delete_prompt(self, tribute_id: str) -> bool:
        return _false_on_refusal(lambda: self._db().delete_prompt(tribute_id), False)

    def delete_all_prompts(self) -> bool:
        self._db().delete_all_prompts()
        return True


def _key(inventory: Inventory) -> tuple[int, str]:
    return (inventory.guild_id, inventory.tribute_id)
