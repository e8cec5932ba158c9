"""A third-party tributestore backend, as an outside developer would write one.

It keeps everything in process memory, under the name given in the URL
(``memory://NAME``), so two opens of one URL in a process share the data.
It exists to prove that entry-point discovery works and that a backend which
is not part of tributestore passes the shipped conformance suite unchanged.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tributestore import BackendSpec, StoreURL, TributeStore, hookimpl
from tributestore.models import Counts, FileInfo, Guild, Inventory, ItemHit, Prompt, Tribute

Key = tuple[int, str]


@dataclass
class _Data:
    guilds: dict[int, Guild] = field(default_factory=dict)
    tributes: dict[Key, Tribute] = field(default_factory=dict)
    inventories: dict[Key, Inventory] = field(default_factory=dict)
    prompts: dict[Key, Prompt] = field(default_factory=dict)
    files: dict[Key, dict[str, tuple[FileInfo, bytes]]] = field(default_factory=dict)


_databases: dict[str, _Data] = {}
_lock = threading.RLock()


class MemoryStore(TributeStore):
    def __init__(self, url: StoreURL) -> None:
        self.url = url.raw
        name = url.netloc + url.path
        with _lock:
            if name not in _databases:
                if url.must_exist:  # read mode: never create
                    raise url.missing(f"no in-memory store named {name!r} in this process")
                self.created = f"process memory ({name})"
            self._data = _databases.setdefault(name, _Data())
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with _lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            snapshot = copy.deepcopy(self._data)
            self._depth = 1
            try:
                yield
            except BaseException:
                self._data.__dict__.update(snapshot.__dict__)
                raise
            finally:
                self._depth = 0

    def _put_guild(self, guild: Guild) -> None:
        self._data.guilds[guild.guild_id] = guild

    def _get_guild(self, guild_id: int) -> Guild | None:
        return self._data.guilds.get(guild_id)

    def _list_guilds(self) -> list[Guild]:
        return [self._data.guilds[k] for k in sorted(self._data.guilds)]

    def _get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        return self._data.tributes.get((guild_id, tribute_id))

    def _insert_tribute(self, tribute: Tribute) -> None:
        key = (tribute.guild_id, tribute.tribute_id)
        self._data.tributes[key] = tribute
        self._data.inventories[key] = Inventory(guild_id=key[0], tribute_id=key[1])
        self._data.files[key] = {}

    def _update_tribute(self, tribute: Tribute) -> None:
        self._data.tributes[(tribute.guild_id, tribute.tribute_id)] = tribute

    def _delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        key = (guild_id, tribute_id)
        for table in (self._data.tributes, self._data.inventories, self._data.prompts, self._data.files):
            table.pop(key, None)  # type: ignore[attr-defined]

    def _iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        for key in sorted(self._data.tributes):
            if guild_id is None or key[0] == guild_id:
                yield self._data.tributes[key]

    def _get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        return self._data.inventories[(guild_id, tribute_id)].model_copy(deep=True)

    def _save_inventory(self, inventory: Inventory) -> None:
        self._data.inventories[(inventory.guild_id, inventory.tribute_id)] = inventory

    def _get_prompt(self, guild_id: int, tribute_id: str) -> Prompt | None:
        return self._data.prompts.get((guild_id, tribute_id))

    def _save_prompt(self, prompt: Prompt) -> None:
        self._data.prompts[(prompt.guild_id, prompt.tribute_id)] = prompt

    def _delete_prompt(self, guild_id: int, tribute_id: str) -> None:
        self._data.prompts.pop((guild_id, tribute_id), None)

    def _save_file(self, info: FileInfo, data: bytes) -> None:
        self._data.files[(info.guild_id, info.tribute_id)][info.name] = (info, data)

    def _get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo | None:
        found = self._data.files.get((guild_id, tribute_id), {}).get(name)
        return found[0] if found else None

    def _read_file(self, info: FileInfo) -> bytes:
        return self._data.files[(info.guild_id, info.tribute_id)][info.name][1]

    def _list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        owned = self._data.files.get((guild_id, tribute_id), {})
        return [owned[name][0] for name in sorted(owned)]

    def _delete_file(self, guild_id: int, tribute_id: str, name: str) -> None:
        self._data.files[(guild_id, tribute_id)].pop(name, None)

    def _search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        for key in sorted(self._data.inventories):
            if guild_id is not None and key[0] != guild_id:
                continue
            inventory = self._data.inventories[key]
            for slot in ("items", "equipped"):
                for number, item in inventory.numbered(slot).items():
                    if folded_query in item.casefold():
                        yield ItemHit(guild_id=key[0], tribute_id=key[1], slot=slot, number=number, item=item)

    def counts(self) -> Counts:
        data = self._data
        return Counts(
            guilds=len(data.guilds),
            tributes=len(data.tributes),
            items=sum(len(i.items) for i in data.inventories.values()),
            equipped=sum(len(i.equipped) for i in data.inventories.values()),
            prompts=len(data.prompts),
            files=sum(len(f) for f in data.files.values()),
        )


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="memory",
            schemes=("memory",),
            opener=MemoryStore,
            summary="in-process memory (third-party test plugin)",
            example="memory://scratch",
            options=(),
        )
    )
