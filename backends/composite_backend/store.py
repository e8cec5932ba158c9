"""The ``composite`` backend: a primary store in front of a fallback, for the transition window.

- Reads ask the primary, then the fallback; listings and searches merge both,
  the primary winning.
- Every write goes to the primary.  A write touching a tribute that exists
  only in the fallback first copies that whole tribute (with its guild
  settings and file bytes) up into the primary, inside the same primary
  transaction, so nothing of the fallback is lost or split.
- Deleting a tribute that the fallback holds records a tombstone in the
  primary (same transaction), so the fallback copy never reappears.
- ``promote_on_read=true``: reading a fallback-only tribute copies it up, so
  the window closes by itself.
- ``dual_write=true``: after each primary transaction's writes, every tribute
  touched is mirrored to the fallback (which must be writable).  A mirror
  failure with ``fallback_errors=fail`` (the default) raises and rolls the
  primary transaction back; with ``fallback_errors=warn`` the primary keeps
  the write and the failure is recorded in :attr:`warnings` (the fallback is
  then stale for that tribute until ``tributestore copy`` repairs it).

URL: ``composite:?primary=sqlite:///thg.db&fallback=json:///config`` or, in
TOML, ``[store]`` with ``url = "composite:"``, ``primary = ...``, ``fallback = ...``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from tributestore.errors import ConfigError, NotFoundError
from tributestore.models import Counts, FileInfo, Guild, Inventory, ItemHit, Prompt, Tribute
from tributestore.store import TributeStore
from tributestore.urls import StoreURL, parse_store_url

Key = tuple[int, str]
_SLOT_ORDER = {"items": 0, "equipped": 1}


@dataclass
class WindowReport:
    """What :meth:`CompositeStore.finish_window` did."""

    #: Fallback-only tributes copied into the primary now.
    promoted: int
    #: Fallback tributes deleted during the window (tombstoned): they stay deleted.
    deleted: int
    #: Fallback tributes in neither state (empty when the fallback is no longer needed).
    left: list[Key]


class CompositeStore(TributeStore):
    """Primary-then-fallback store; see the module documentation."""

    def __init__(
        self,
        url: str,
        primary: TributeStore,
        fallback: TributeStore,
        *,
        promote_on_read: bool = False,
        dual_write: bool = False,
        fallback_errors: Literal["fail", "warn"] = "fail",
    ) -> None:
        if not primary.supports_tombstones:
            raise ConfigError(
                f"composite store {url}: primary {primary.url} cannot record tombstones "
                "(use an sqlite or json primary)"
            )
        if dual_write and fallback.read_only:
            raise ConfigError(
                f"composite store {url}: dual_write needs a writable fallback, {fallback.url} is read-only"
            )
        self.url = url
        self.primary = primary
        self.fallback = fallback
        self.read_only = primary.read_only
        self.promote_on_read = promote_on_read
        self.dual_write = dual_write
        self.fallback_errors = fallback_errors
        #: The fallback's and primary's load warnings, then dual-write failures as they happen.
        self.warnings: list[str] = [*fallback.warnings, *primary.warnings]
        self._local = threading.local()

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One committed state of the primary and one of the fallback for the block's reads."""
        with self.primary.snapshot(), self.fallback.snapshot():
            yield

    # ------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.touched = set()
        self._local.depth = depth + 1
        try:
            with self.primary.transaction():
                yield
                if depth == 0 and self.dual_write and self._local.touched:
                    self._mirror(sorted(self._local.touched))
        finally:
            self._local.depth = depth

    def _touch(self, guild_id: int, tribute_id: str) -> None:
        """Note a tribute (or, with tribute_id "", a guild row) written in this transaction."""
        touched = getattr(self._local, "touched", None)
        if touched is not None:
            touched.add((guild_id, tribute_id))

    def _mirror(self, keys: list[Key]) -> None:
        """Make the fallback's copy of each touched guild and tribute equal to the primary's.

        With ``fallback_errors=fail`` every key is mirrored in one fallback transaction,
        so a failure leaves the fallback untouched while the primary rolls back; with
        ``warn`` each key is mirrored on its own and a failure is recorded.
        """
        if self.fallback_errors == "fail":
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
        guild = self.primary._get_guild(guild_id)
        if guild is not None:
            self.fallback._put_guild(guild)
        if not tribute_id:
            return
        if self.primary._get_tribute(guild_id, tribute_id) is None:
            if self.fallback._get_tribute(guild_id, tribute_id) is not None:
                self.fallback._delete_tribute(guild_id, tribute_id)
            return
        bundle = self.primary.export_tribute(guild_id, tribute_id)
        self.fallback.import_tribute(bundle, self.primary._read_file, on_conflict="overwrite")

    # ------------------------------------------------------------ ownership
    def _tombstoned(self, guild_id: int, tribute_id: str) -> bool:
        """Whether the primary records the fallback's copy as deleted (by key or by origin key)."""
        return self.primary.is_tombstoned(
            guild_id, tribute_id, self.fallback.origin_key(guild_id, tribute_id)
        )

    def _in_fallback(self, guild_id: int, tribute_id: str) -> Tribute | None:
        """The fallback's tribute, unless the primary has tombstoned it."""
        if self._tombstoned(guild_id, tribute_id):
            return None
        return self.fallback._get_tribute(guild_id, tribute_id)

    def _owner(self, guild_id: int, tribute_id: str) -> TributeStore:
        just_found = getattr(self._local, "just_found", None)
        self._local.just_found = None  # used once: the very next read after _get_tribute
        if just_found == (guild_id, tribute_id):
            return self.primary  # a tribute in the primary stays there (the primary is read first)
        if self.primary._get_tribute(guild_id, tribute_id) is not None:
            return self.primary
        if self._in_fallback(guild_id, tribute_id) is not None:
            return self.fallback
        raise NotFoundError(f"tribute {tribute_id} not found in guild {guild_id}")

    def _ensure_primary_guild(self, guild_id: int) -> None:
        if self.primary._get_guild(guild_id) is None:
            self.primary._put_guild(self.fallback._get_guild(guild_id) or Guild(guild_id=guild_id))

    def _promote(self, guild_id: int, tribute_id: str) -> None:
        """Copy a fallback-only tribute whole into the primary (no-op when the primary has it)."""
        with self.primary.transaction():
            if self.primary._get_tribute(guild_id, tribute_id) is not None:
                return
            if self._in_fallback(guild_id, tribute_id) is None:
                return
            bundle = self.fallback.export_tribute(guild_id, tribute_id)
            self._ensure_primary_guild(guild_id)
            self.primary.import_tribute(bundle, self.fallback._read_file)

    def promote_all(self) -> int:
        """Copy every fallback-only tribute up; returns how many were copied."""
        keys = [(t.guild_id, t.tribute_id) for t in self._fallback_only()]
        for key in keys:
            self._promote(*key)
        return len(keys)

    def finish_window(self) -> WindowReport:
        """End the transition window: copy every fallback-only tribute up, never a deleted one.

        Afterwards every record of the fallback is in the primary or tombstoned
        (``left`` lists any that is not: then the fallback is still needed).
        """
        promoted = self.promote_all()
        deleted, left = 0, []
        for tribute in self.fallback._iter_tributes(None):
            if self._tombstoned(*tribute.key):
                deleted += 1
            elif self.primary._get_tribute(*tribute.key) is None:
                left.append(tribute.key)
        return WindowReport(promoted=promoted, deleted=deleted, left=left)

    def _fallback_only(self, guild_id: int | None = None) -> Iterator[Tribute]:
        for tribute in self.fallback._iter_tributes(guild_id):
            key = (tribute.guild_id, tribute.tribute_id)
            if self.primary._get_tribute(*key) is None and not self._tombstoned(*key):
                yield tribute

    # ------------------------------------------------------------ guilds
    def _put_guild(self, guild: Guild) -> None:
        self.primary._put_guild(guild)
        self._touch(guild.guild_id, "")

    def _get_guild(self, guild_id: int) -> Guild | None:
        return self.primary._get_guild(guild_id) or self.fallback._get_guild(guild_id)

    def _list_guilds(self) -> list[Guild]:
        merged = {g.guild_id: g for g in self.fallback._list_guilds()}
        merged.update({g.guild_id: g for g in self.primary._list_guilds()})
        return [merged[key] for key in sorted(merged)]

    # ------------------------------------------------------------ tributes
    def _get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        self._local.just_found = None
        found = self.primary._get_tribute(guild_id, tribute_id)
        if found is not None:
            # The base class reads the tribute, then what it owns: _owner need not ask again.
            self._local.just_found = (guild_id, tribute_id)
            return found
        found = self._in_fallback(guild_id, tribute_id)
        if found is not None and self.promote_on_read and not self.read_only:
            self._promote(guild_id, tribute_id)
        return found

    def _insert_tribute(self, tribute: Tribute) -> None:
        self._ensure_primary_guild(tribute.guild_id)
        self.primary._insert_tribute(tribute)
        self._touch(tribute.guild_id, tribute.tribute_id)

    def _update_tribute(self, tribute: Tribute) -> None:
        self._promote(tribute.guild_id, tribute.tribute_id)
        self.primary._update_tribute(tribute)
        self._touch(tribute.guild_id, tribute.tribute_id)

    def _delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        self._local.just_found = None
        if self.fallback._get_tribute(guild_id, tribute_id) is not None:
            self.primary._put_tombstone(guild_id, tribute_id, self.fallback.origin_key(guild_id, tribute_id))
        if self.primary._get_tribute(guild_id, tribute_id) is not None:
            self.primary._delete_tribute(guild_id, tribute_id)
        self._touch(guild_id, tribute_id)

    def _iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        primary = self.primary._iter_tributes(guild_id)
        fallback = self.fallback._iter_tributes(guild_id)
        left, right = next(primary, None), next(fallback, None)
        while left is not None or right is not None:
            if right is None or (left is not None and left.key <= right.key):
                assert left is not None
                if right is not None and left.key == right.key:
                    right = next(fallback, None)
                yield left
                left = next(primary, None)
            else:
                if not self._tombstoned(*right.key):
                    yield right
                right = next(fallback, None)

    # ------------------------------------------------------------ owned rows
    def _get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        return self._owner(guild_id, tribute_id)._get_inventory(guild_id, tribute_id)

    def _save_inventory(self, inventory: Inventory) -> None:
        self._promote(inventory.guild_id, inventory.tribute_id)
        self.primary._save_inventory(inventory)
        self._touch(inventory.guild_id, inventory.tribute_id)

    def _get_prompt(self, guild_id: int, tribute_id: str) -> Prompt | None:
        return self._owner(guild_id, tribute_id)._get_prompt(guild_id, tribute_id)

    def _save_prompt(self, prompt: Prompt) -> None:
        self._promote(prompt.guild_id, prompt.tribute_id)
        self.primary._save_prompt(prompt)
        self._touch(prompt.guild_id, prompt.tribute_id)

    def _delete_prompt(self, guild_id: int, tribute_id: str) -> None:
        self._promote(guild_id, tribute_id)
        self.primary._delete_prompt(guild_id, tribute_id)
        self._touch(guild_id, tribute_id)

    def _save_file(self, info: FileInfo, data: bytes) -> None:
        self._promote(info.guild_id, info.tribute_id)
        self.primary._save_file(info, data)
        self._touch(info.guild_id, info.tribute_id)

    def _get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo | None:
        return self._owner(guild_id, tribute_id)._get_file(guild_id, tribute_id, name)

    def _read_file(self, info: FileInfo) -> bytes:
        return self._owner(info.guild_id, info.tribute_id)._read_file(info)

    def _list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        return self._owner(guild_id, tribute_id)._list_files(guild_id, tribute_id)

    def _delete_file(self, guild_id: int, tribute_id: str, name: str) -> None:
        self._promote(guild_id, tribute_id)
        self.primary._delete_file(guild_id, tribute_id, name)
        self._touch(guild_id, tribute_id)

    # ------------------------------------------------------------ whole store
    def _search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        hits = list(self.primary._search_items(folded_query, guild_id))
        for hit in self.fallback._search_items(folded_query, guild_id):
            key = (hit.guild_id, hit.tribute_id)
            if self.primary._get_tribute(*key) is None and not self._tombstoned(*key):
                hits.append(hit)
        hits.sort(key=lambda h: (h.guild_id, h.tribute_id, _SLOT_ORDER[h.slot], h.number))
        return iter(hits)

    def counts(self) -> Counts:
        total = self.primary.counts().model_dump()
        total["guilds"] = len(self._list_guilds())
        for tribute in self._fallback_only():
            inventory = self.fallback._get_inventory(tribute.guild_id, tribute.tribute_id)
            total["tributes"] += 1
            total["items"] += len(inventory.items)
            total["equipped"] += len(inventory.equipped)
            total["prompts"] += self.fallback._get_prompt(tribute.guild_id, tribute.tribute_id) is not None
            total["files"] += len(self.fallback._list_files(tribute.guild_id, tribute.tribute_id))
        return Counts(**total)

    def details(self) -> dict[str, int]:
        return {
            "tributes only in the fallback": sum(1 for _ in self._fallback_only()),
            "tombstones (deleted, hidden in the fallback)": self.primary._count_tombstones(),
        }

    def check(self) -> list[str]:
        return [f"primary: {p}" for p in self.primary.check()] + [
            f"fallback: {p}" for p in self.fallback.check()
        ]


def open_composite_store(url: StoreURL) -> CompositeStore:
    """Open ``composite:?primary=URL&fallback=URL[&promote_on_read=1&dual_write=1]``.

    The primary opens in the composite's own mode (a bot's ``write`` mode may
    create it); the fallback must already exist (``read`` mode) unless
    ``dual_write`` writes to it.
    """
    from tributestore.config import open_url

    urls = {}
    for role in ("primary", "fallback"):
        value = url.option(role)
        if not value:
            raise ConfigError(f"composite store {url.display!r} needs a {role} URL (option {role}=...)")
        urls[role] = parse_store_url(value, url.base_dir)
    errors = url.option("fallback_errors", "fail")
    if errors not in ("fail", "warn"):
        raise ConfigError(
            f"composite store {url.display!r}: fallback_errors must be fail or warn (got {errors!r})"
        )
    dual_write = url.flag("dual_write")
    # The fallback first: a missing one (read mode) is refused before the primary is created.
    fallback = open_url(urls["fallback"], "write" if dual_write and not url.must_exist else "read")
    try:
        primary = open_url(urls["primary"], url.mode)
    except BaseException:
        fallback.close()
        raise
    described = f"composite:?primary={primary.url}&fallback={fallback.url}"
    try:
        return CompositeStore(
            described,
            primary,
            fallback,
            promote_on_read=url.flag("promote_on_read"),
            dual_write=dual_write,
            fallback_errors="warn" if errors == "warn" else "fail",
        )
    except BaseException:
        primary.close()
        fallback.close()
        raise
