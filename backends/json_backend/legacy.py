"""Open a legacy THGBot data directory as a read-only :class:`TributeStore`.

The JSON backend's opener calls :func:`looks_like_legacy` on its directory
and, when true, :func:`open_legacy_store`.  The whole directory is read and
checked at open (see :mod:`.legacy_reader` for every decision taken); the
store then answers from memory, reading file bytes from disk on demand (and
checking them against the sha256 taken at open).  Problems that lose nothing
are listed in :attr:`LegacyStore.warnings`, each naming the file and key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from tributestore.errors import LegacyFormatError, ReadOnlyStoreError, StorageError
from tributestore.models import Counts, FileInfo, Guild, Inventory, ItemHit, Prompt, Tribute
from tributestore.store import TributeStore
from tributestore.urls import StoreURL

from .legacy_reader import (
    CONFIGS,
    DATABASE,
    INVENTORIES,
    PROMPTS,
    LegacyData,
    LegacyFile,
    TributeKey,
    options_from_url,
    read_legacy_dir,
)

#: URL options only a legacy directory understands (guild assignment, long items).
LEGACY_OPTIONS = ("guild", "guild_map", "oversize")

#: Origin keys of legacy records (see :meth:`LegacyStore.origin_key`) start with this.
ORIGIN_PREFIX = "thgbot-legacy:"

#: The file that marks a directory of the new JSON layout.
NEW_LAYOUT_MARKER = "tributestore.json"
#: Any of these makes a directory a legacy THGBot one.
LEGACY_MARKERS = (INVENTORIES, PROMPTS, *CONFIGS, DATABASE)

__all__ = ["LegacyStore", "looks_like_legacy", "open_legacy_store"]


def looks_like_legacy(path: Path) -> bool:
    """Whether ``path`` is a legacy THGBot data directory (and not a new-layout one)."""
    path = Path(path)
    if not path.is_dir() or (path / NEW_LAYOUT_MARKER).exists():
        return False
    return any((path / marker).exists() for marker in LEGACY_MARKERS)


def open_legacy_store(url: StoreURL) -> LegacyStore:
    """Read the legacy directory ``url`` names into a read-only store."""
    root = url.local_path()
    if not root.is_dir():
        raise LegacyFormatError(f"{root}: not a directory (expected a legacy THGBot data directory)")
    return LegacyStore(url.raw, root, read_legacy_dir(root, options_from_url(url)))


class LegacyStore(TributeStore):
    """A legacy THGBot directory, read at open; every write raises :class:`ReadOnlyStoreError`."""

    read_only = True

    def __init__(self, url: str, root: Path, data: LegacyData) -> None:
        self.url = url
        self.root = root
        self._data = data
        #: Recoverable oddities met while reading, sorted; each names the file and key.
        self.warnings: list[str] = list(data.warnings)
        #: The warnings the operator must act on (``check`` lists them): tributes with no
        #: known guild, versions kept as ``legacy_conflict``/``legacy_original`` files, cut items.
        self.problems: list[str] = list(data.problems)
        #: The other warnings: informational, nothing lost.
        self.notes: list[str] = sorted(set(data.warnings) - set(data.problems))

    def check(self) -> list[str]:
        """The reading's problems (see :attr:`problems`); the informational :attr:`notes` are not."""
        return list(self.problems)

    def details(self) -> dict[str, int]:
        """For ``tributestore stats``: what the reading could not settle on its own."""
        return {
            "unassigned_tributes": len(self._data.unassigned),
            "kept_versions": self._data.kept_versions,
            "unreferenced_files": self._data.unreferenced_files,
            "legacy_problems": len(self.problems),
            "legacy_notes": len(self.notes),
        }

    def independent_check(self, destination: TributeStore) -> list[str]:
        """Every item, prompt text and image of the raw files missing in ``destination``."""
        from .legacy_presence import check_presence  # local: only copy and verify need it

        return check_presence(self.root, destination)

    def origin_key(self, guild_id: int, tribute_id: str) -> str | None:
        """The bot's own key for the tribute: its id, global across guilds in the legacy files."""
        if (guild_id, tribute_id) not in self._data.tributes:
            return None
        return f"{ORIGIN_PREFIX}{tribute_id}"

    # ------------------------------------------------------------ plumbing
    def transaction(self) -> AbstractContextManager[None]:
        return nullcontext()

    def _refuse(self) -> None:
        raise ReadOnlyStoreError(f"store {self.url} is read-only (a legacy THGBot directory)")

    # -------------------------------------------------------------- writes
    def _put_guild(self, guild: Guild) -> None:
        self._refuse()

    def _insert_tribute(self, tribute: Tribute) -> None:
        self._refuse()

    def _update_tribute(self, tribute: Tribute) -> None:
        self._refuse()

    def _delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        self._refuse()

    def _save_inventory(self, inventory: Inventory) -> None:
        self._refuse()

    def _save_prompt(self, prompt: Prompt) -> None:
        self._refuse()

    def _delete_prompt(self, guild_id: int, tribute_id: str) -> None:
        self._refuse()

    def _save_file(self, info: FileInfo, data: bytes) -> None:
        self._refuse()

    def _delete_file(self, guild_id: int, tribute_id: str, name: str) -> None:
        self._refuse()

    # --------------------------------------------------------------- reads
    def _get_guild(self, guild_id: int) -> Guild | None:
        guild = self._data.guilds.get(guild_id)
        return None if guild is None else guild.model_copy()

    def _list_guilds(self) -> list[Guild]:
        return [self._data.guilds[gid].model_copy() for gid in sorted(self._data.guilds)]

    def _get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        tribute = self._data.tributes.get((guild_id, tribute_id))
        return None if tribute is None else tribute.model_copy()

    def _keys(self, guild_id: int | None) -> list[TributeKey]:
        return sorted(key for key in self._data.tributes if guild_id is None or key[0] == guild_id)

    def _iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        for key in self._keys(guild_id):
            yield self._data.tributes[key].model_copy()

    def _get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        inventory = self._data.inventories.get((guild_id, tribute_id))
        if inventory is None:
            return Inventory(guild_id=guild_id, tribute_id=tribute_id)
        # A copy the caller may change: new lists of the (immutable) item strings.
        return inventory.model_copy(
            update={"items": list(inventory.items), "equipped": list(inventory.equipped)}
        )

    def _get_prompt(self, guild_id: int, tribute_id: str) -> Prompt | None:
        prompt = self._data.prompts.get((guild_id, tribute_id))
        return None if prompt is None else prompt.model_copy(update={"files": list(prompt.files)})

    def _owned(self, guild_id: int, tribute_id: str) -> dict[str, LegacyFile]:
        return self._data.files.get((guild_id, tribute_id), {})

    def _get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo | None:
        entry = self._owned(guild_id, tribute_id).get(name)
        return None if entry is None else entry.info.model_copy()

    def _read_file(self, info: FileInfo) -> bytes:
        entry = self._owned(info.guild_id, info.tribute_id).get(info.name)
        if entry is None:
            raise StorageError(f"file {info.name!r} of tribute {info.tribute_id} is not in {self.url}")
        if entry.content is not None or entry.path is None:  # a kept version, made at open
            return entry.content or b""
        try:
            data = entry.path.read_bytes()
        except OSError as error:
            raise StorageError(f"{entry.path}: cannot read ({error.strerror or error})") from None
        if hashlib.sha256(data).hexdigest() != entry.info.sha256:
            raise StorageError(f"{entry.path}: changed on disk since the legacy directory was opened")
        return data

    def _list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        owned = self._owned(guild_id, tribute_id)
        return [owned[name].info.model_copy() for name in sorted(owned)]

    def _search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        for key in self._keys(guild_id):
            inventory = self._data.inventories.get(key)
            if inventory is None:
                continue
            for slot in ("items", "equipped"):
                for number, item in inventory.numbered(slot).items():
                    if folded_query in item.casefold():
                        yield ItemHit(guild_id=key[0], tribute_id=key[1], slot=slot, number=number, item=item)

    def counts(self) -> Counts:
        inventories = self._data.inventories.values()
        return Counts(
            guilds=len(self._data.guilds),
            tributes=len(self._data.tributes),
            items=sum(len(inventory.items) for inventory in inventories),
            equipped=sum(len(inventory.equipped) for inventory in inventories),
            prompts=len(self._data.prompts),
            files=sum(len(owned) for owned in self._data.files.values()),
        )
