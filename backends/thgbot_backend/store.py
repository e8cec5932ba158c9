"""A legacy THGBot data directory as a read-only :class:`~tributestore.backend.Backend`.

The ``thgbot`` plugin's opener (:func:`open_thgbot_backend`, URL
``thgbot:///path/to/config``) reads and checks the whole directory at open
(see :mod:`.reader` for every decision taken); the backend then answers from
memory, reading file bytes from disk on demand (and checking them against the
sha256 taken at open).  Problems that lose nothing are listed in
:attr:`ThgbotBackend.warnings`, each naming the file and key.  Every write
raises :class:`~tributestore.errors.ReadOnlyStoreError`.

It also offers the :class:`~tributestore.backend.ForeignSource` capability:
the bot's own key of each record (:meth:`ThgbotBackend.origin_key`) and an
independent check of a migration against the raw files (:mod:`.presence`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tributestore.errors import LegacyFormatError, ReadOnlyStoreError, StorageError, StoreNotFoundError
from tributestore.models import Counts, FileInfo, Guild, Inventory, ItemHit, Tribute, TributeBundle
from tributestore.store import TributeStore
from tributestore.urls import StoreURL

from .reader import (
    CONFIGS,
    DATABASE,
    INVENTORIES,
    PROMPTS,
    URL_OPTIONS,
    LegacyData,
    LegacyFile,
    TributeKey,
    options_from_url,
    read_legacy_dir,
)

if TYPE_CHECKING:
    from tributestore.plugins import PluginHooks

#: URL options only a legacy directory understands (guild assignment, long items).
LEGACY_OPTIONS = URL_OPTIONS

#: Origin keys of legacy records (see :meth:`ThgbotBackend.origin_key`) start with this.
ORIGIN_PREFIX = "thgbot-legacy:"

#: The file that marks a directory of the tributestore JSON layout (never a legacy one).
NEW_LAYOUT_MARKER = "tributestore.json"
#: Any of these makes a directory a legacy THGBot one.
LEGACY_MARKERS = (INVENTORIES, PROMPTS, *CONFIGS, DATABASE)

__all__ = [
    "LEGACY_OPTIONS",
    "ORIGIN_PREFIX",
    "ThgbotBackend",
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
    return ThgbotBackend(url.display, root, read_legacy_dir(root, options_from_url(url)))


def open_legacy_store(url: StoreURL, *, hooks: PluginHooks | None = None) -> TributeStore:
    """The legacy directory ``url`` names as a read-only :class:`TributeStore` (tests, scripts)."""
    return TributeStore(open_thgbot_backend(url), hooks=hooks)


class ThgbotBackend:
    """A legacy THGBot directory, read at open; every write raises :class:`ReadOnlyStoreError`.

    Implements :class:`~tributestore.backend.Backend` and
    :class:`~tributestore.backend.ForeignSource`.
    """

    read_only = True
    created: str | None = None
    ephemeral = False

    def __init__(self, url: str, root: Path, data: LegacyData) -> None:
        self.url = url
        #: The legacy data directory.
        self.root = root
        self.data = data
        #: Recoverable oddities met while reading, sorted; each names the file and key.
        self.warnings: Sequence[str] = list(data.warnings)
        #: The warnings the operator must act on (``check`` lists them): tributes with no
        #: known guild, versions kept as ``legacy_conflict``/``legacy_original`` files, cut items.
        self.problems: list[str] = list(data.problems)
        #: The other warnings: informational, nothing lost.
        self.notes: list[str] = sorted(set(data.warnings) - set(data.problems))

    def __repr__(self) -> str:
        return f"<ThgbotBackend {self.url}>"

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        """Nothing to release: the directory was read at open."""

    def transaction(self) -> AbstractContextManager[None]:
        """A no-op block (every write inside it is refused anyway)."""
        return nullcontext()

    def snapshot(self) -> AbstractContextManager[None]:
        """A no-op block: the data was read once, at open, and never changes."""
        return nullcontext()

    def _refuse(self) -> NoReturn:
        raise ReadOnlyStoreError(f"store {self.url} is read-only (a legacy THGBot directory)")

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild: Guild) -> None:
        self._refuse()

    def get_guild(self, guild_id: int) -> Guild | None:
        guild = self.data.guilds.get(guild_id)
        return None if guild is None else guild.model_copy()

    def list_guilds(self) -> list[Guild]:
        return [self.data.guilds[gid].model_copy() for gid in sorted(self.data.guilds)]

    # ------------------------------------------------------------- documents
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        tribute = self.data.tributes.get((guild_id, tribute_id))
        return None if tribute is None else tribute.model_copy()

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        tribute = self.data.tributes.get((guild_id, tribute_id))
        return None if tribute is None else self._document(tribute)

    def _document(self, tribute: Tribute) -> TributeBundle:
        key = tribute.key
        inventory = self.data.inventories.get(key)
        prompt = self.data.prompts.get(key)
        owned = self._owned(key)
        # Copies the caller may change: new lists of the (immutable) strings and models.
        return TributeBundle(
            tribute=tribute.model_copy(),
            inventory=(
                Inventory(guild_id=key[0], tribute_id=key[1])
                if inventory is None
                else inventory.model_copy(
                    update={"items": list(inventory.items), "equipped": list(inventory.equipped)}
                )
            ),
            prompt=None if prompt is None else prompt.model_copy(update={"files": list(prompt.files)}),
            files=[owned[name].info.model_copy() for name in sorted(owned)],
        )

    def save(
        self,
        document: TributeBundle,
        files: Mapping[str, bytes],
        previous: TributeBundle | None,
    ) -> None:
        self._refuse()

    def delete(self, guild_id: int, tribute_id: str) -> None:
        self._refuse()

    def _owned(self, key: TributeKey) -> dict[str, LegacyFile]:
        return self.data.files.get(key, {})

    def read_file(self, info: FileInfo) -> bytes:
        entry = self._owned((info.guild_id, info.tribute_id)).get(info.name)
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

    def _keys(self, guild_id: int | None) -> list[TributeKey]:
        return sorted(key for key in self.data.tributes if guild_id is None or key[0] == guild_id)

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        for key in self._keys(guild_id):
            yield self.data.tributes[key].model_copy()

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        for key in self._keys(guild_id):
            yield self._document(self.data.tributes[key])

    # ------------------------------------------------------------- whole store
    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        for key in self._keys(guild_id):
            inventory = self.data.inventories.get(key)
            if inventory is None:
                continue
            for slot in ("items", "equipped"):
                for number, item in inventory.numbered(slot).items():
                    if folded_query in item.casefold():
                        yield ItemHit(guild_id=key[0], tribute_id=key[1], slot=slot, number=number, item=item)

    def counts(self) -> Counts:
        inventories = self.data.inventories.values()
        return Counts(
            guilds=len(self.data.guilds),
            tributes=len(self.data.tributes),
            items=sum(len(inventory.items) for inventory in inventories),
            equipped=sum(len(inventory.equipped) for inventory in inventories),
            prompts=len(self.data.prompts),
            files=sum(len(owned) for owned in self.data.files.values()),
        )

    def check(self) -> list[str]:
        """The reading's problems (see :attr:`problems`); the informational :attr:`notes` are not."""
        return list(self.problems)

    def details(self) -> dict[str, int]:
        """For ``tributestore stats``: what the reading could not settle on its own."""
        return {
            "unassigned_tributes": len(self.data.unassigned),
            "kept_versions": self.data.kept_versions,
            "unreferenced_files": self.data.unreferenced_files,
            "legacy_problems": len(self.problems),
            "legacy_notes": len(self.notes),
        }

    # --------------------------------------------------------- ForeignSource
    def origin_key(self, guild_id: int, tribute_id: str) -> str | None:
        """The bot's own key for the tribute: its id, global across guilds in the legacy files."""
        if (guild_id, tribute_id) not in self.data.tributes:
            return None
        return f"{ORIGIN_PREFIX}{tribute_id}"

    def independent_check(self, destination: TributeStore) -> list[str]:
        """Every item, prompt text and image of the raw files missing in ``destination``."""
        from .presence import check_presence  # local: only copy and verify need it

        return check_presence(self.root, destination)
