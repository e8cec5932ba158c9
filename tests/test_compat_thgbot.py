"""tributestore.compat.thgbot against a reference model of THGBot's documented behaviour.

``Reference`` re-implements THGBot's ``SQLDatabase`` and ``StorageManager``
(branch ``tributecentric``) from their method docs and code, in plain dicts,
with the documented differences applied (README "THGBot compatibility"):
items renumbered by position, ``clear_inventory`` of the branch head, an
inventory per tribute, ``update_tribute`` applying ``face_claim_url`` and
``prompt_channel_id``, non-blank items, results ordered by tribute id.  The
same seeded random call sequences run against it and the adapter (on sqlite,
json and composite stores) and every return value or error class must match;
integer ids must correspond one to one.
"""

from __future__ import annotations

import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers import local_store_url

from tributestore import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    TributeStore,
    TributeStoreError,
    open_store,
)
from tributestore.compat.thgbot import (
    NO_GUILD,
    AmbiguousTributeError,
    SQLDatabase,
    StorageManager,
    TributeExistsError,
)

GUILD = 1395951775160340551
OTHER = 1288877766655544433
BACKENDS = [pytest.param(name, marks=pytest.mark.backend(name)) for name in ("sqlite", "json", "composite")]
SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"

Row = dict[str, Any]


store_url = local_store_url


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TributeStore]:
    with open_store(store_url(request.param, tmp_path)) as opened:
        yield opened


# ------------------------------------------------------------------ reference

_ID = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")


def _norm(tribute_id: str) -> str | None:
    tid = "_".join(tribute_id.strip().upper().split(" "))
    return tid if _ID.match(tid) else None


def _number(value: object) -> int | None:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or str(int(text)) != text or int(text) < 1:
        return None
    return int(text)


def _blank(item: str) -> bool:
    return not item.strip()


class Reference:
    """THGBot's two classes over one state (the adapter shares one store between them)."""

    def __init__(self, guild_id: int) -> None:
        self.guild_id = guild_id
        self.tributes: dict[str, Row] = {}
        self.inventories: dict[str, Row] = {}
        self.prompts: dict[str, Row] = {}
        self.files: dict[str, dict[str, Row]] = {}
        self._ids: dict[tuple[str, ...], int] = {}

    def _id(self, *key: str) -> int:
        return self._ids.setdefault(key, len(self._ids) + 1)

    def _t(self, tribute_id: str) -> str | None:
        tid = _norm(tribute_id)
        return tid if tid in self.tributes else None

    # SQLDatabase -------------------------------------------------------
    def create_tribute(self, tribute_id: str, tribute_name: str, user_id: int, user_mention: str) -> Row:
        tid = _norm(tribute_id)
        if tid is None:
            raise InvalidInputError(tribute_id)
        if tid in self.tributes:
            raise TributeExistsError(tid)
        row = {
            "id": self._id("tribute", tid),
            "tribute_id": tid,
            "tribute_name": tribute_name,
            "user_id": user_id,
            "user_mention": user_mention,
            "guild_id": self.guild_id,
            "created_at": int(time.time()),
            "face_claim_url": None,
            "prompt_channel_id": None,
        }
        self.tributes[tid] = row
        self.inventories[tid] = {"capacity": 10, "items": [], "equipped_capacity": 5, "equipped": []}
        self.files[tid] = {}
        return dict(row)

    def get_tribute(self, tribute_id: str) -> Row | None:
        tid = self._t(tribute_id)
        return None if tid is None else dict(self.tributes[tid])

    def get_all_tributes(self) -> list[Row]:
        return [dict(self.tributes[tid]) for tid in sorted(self.tributes)]

    def update_tribute(self, tribute_id: str, **kwargs: Any) -> Row | None:
        tid = self._t(tribute_id)
        if tid is None:
            return None
        allowed = {"tribute_name", "user_mention", "face_claim_url", "prompt_channel_id"}
        self.tributes[tid].update({k: v for k, v in kwargs.items() if k in allowed})
        return dict(self.tributes[tid])

    def delete_tribute(self, tribute_id: str) -> bool:
        tid = self._t(tribute_id)
        if tid is None:
            return False
        for table in (self.tributes, self.inventories, self.prompts, self.files):
            table.pop(tid, None)
        return True

    def _inv_row(self, tid: str) -> Row:
        return {
            "id": self._id("inventory", tid),
            "tribute_id": tid,
            "capacity": self.inventories[tid]["capacity"],
            "created_at": "",
            "updated_at": "",
        }

    def get_tribute_full(self, tribute_id: str) -> Row | None:
        tid = self._t(tribute_id)
        if tid is None:
            return None
        row = dict(self.tributes[tid])
        row["inventory"] = self._inv_row(tid)
        row["inventory"]["items"] = _numbered(self.inventories[tid]["items"])
        row["prompt"] = self.sql_get_prompt(tid)
        row["files"] = self.get_files(tid)
        return row

    def sql_create_inventory(self, tribute_id: str, capacity: int = 10) -> Row:
        tid = self._t(tribute_id)
        if tid is None:
            raise NotFoundError(tribute_id)
        self.inventories[tid]["capacity"] = capacity
        return self._inv_row(tid)

    def sql_get_inventory(self, tribute_id: str) -> Row | None:
        tid = self._t(tribute_id)
        return None if tid is None else self._inv_row(tid)

    def get_inventory_items(self, tribute_id: str) -> list[Row]:
        tid = self._t(tribute_id)
        if tid is None:
            return []
        items = self.inventories[tid]["items"]
        return [{"item_number": n, "item_name": item} for n, item in enumerate(items, 1)]

    def sql_add_inventory_item(self, tribute_id: str, item_name: str) -> int:
        tid = self._t(tribute_id)
        if tid is None:
            raise NotFoundError(tribute_id)
        if _blank(item_name):
            raise InvalidInputError(item_name)
        self.inventories[tid]["items"].append(item_name)
        return len(self.inventories[tid]["items"])

    def _remove(self, tribute_id: str, slot: str, number: object) -> str | None:
        tid = self._t(tribute_id)
        n = _number(number)
        if tid is None or n is None or n > len(self.inventories[tid][slot]):
            return None
        entries: list[str] = self.inventories[tid][slot]
        return entries.pop(n - 1)  # renumbered by position (THGBot: by string keys)

    def sql_remove_inventory_item(self, tribute_id: str, item_number: object) -> bool:
        return self._remove(tribute_id, "items", item_number) is not None

    def sql_clear_inventory(self, tribute_id: str) -> bool:
        tid = self._t(tribute_id)
        if tid is None:
            return False
        self.inventories[tid]["items"] = []
        return True

    def _hits(self, query: str) -> list[tuple[str, int, str]]:
        return [
            (tid, n, item)
            for tid in sorted(self.inventories)
            for n, item in enumerate(self.inventories[tid]["items"], 1)
            if query.lower() in item.lower()
        ]

    def sql_search_inventory_items(self, item_name: str) -> list[Row]:
        return [
            {
                "tribute_id": tid,
                "tribute_name": self.tributes[tid]["tribute_name"],
                "user_mention": self.tributes[tid]["user_mention"],
                "item_number": n,
                "item_name": item,
            }
            for tid, n, item in self._hits(item_name)
        ]

    def sql_create_prompt(self, tribute_id: str, message: str, channel_id: int) -> Row:
        tid = self._t(tribute_id)
        if tid is None:
            raise NotFoundError(tribute_id)
        if tid in self.prompts:
            raise TributeExistsError(tid)
        self.prompts[tid] = {
            "id": self._id("prompt", tid),
            "tribute_id": tid,
            "message": message,
            "channel_id": channel_id,
            "created_at": int(time.time()),
        }
        return dict(self.prompts[tid])

    def sql_get_prompt(self, tribute_id: str) -> Row | None:
        tid = self._t(tribute_id)
        return dict(self.prompts[tid]) if tid in self.prompts else None

    def sql_get_all_prompts(self) -> list[Row]:
        return [dict(self.prompts[tid]) for tid in sorted(self.prompts)]

    def sql_update_prompt(self, tribute_id: str, **kwargs: Any) -> Row | None:
        tid = self._t(tribute_id)
        if tid not in self.prompts:
            return None
        self.prompts[tid].update({k: v for k, v in kwargs.items() if k in ("message", "channel_id")})
        return dict(self.prompts[tid])

    def sql_delete_prompt(self, tribute_id: str) -> bool:
        tid = self._t(tribute_id)
        return tid in self.prompts and self.prompts.pop(tid) is not None

    def sql_delete_all_prompts(self) -> int:
        count = len(self.prompts)
        self.prompts.clear()
        return count

    def add_file(self, tribute_id: str, file_type: str | None, file_path: Path) -> Row:
        tid = self._t(tribute_id)
        if tid is None:
            raise NotFoundError(tribute_id)
        kind = file_type or "attachment"
        self.files[tid][file_path.name] = {
            "id": self._id("file", tid, file_path.name),
            "tribute_id": tid,
            "file_type": kind,
            "file_path": file_path.name,
            "created_at": int(time.time()),
        }
        return dict(self.files[tid][file_path.name])

    def get_files(self, tribute_id: str, file_type: str | None = None) -> list[Row]:
        tid = self._t(tribute_id)
        if tid is None:
            return []
        rows = [self.files[tid][name] for name in sorted(self.files[tid])]
        return [dict(r) for r in rows if not file_type or r["file_type"] == file_type]

    def delete_file(self, file_id: int) -> bool:
        for files in self.files.values():
            for name, row in list(files.items()):
                if row["id"] == file_id:
                    del files[name]
                    return True
        return False

    # StorageManager ----------------------------------------------------
    def get_inventory(self, tribute_id: str) -> Row | None:
        tid = self._t(tribute_id)
        if tid is None:
            return None
        inv = self.inventories[tid]
        return {
            "capacity": inv["capacity"],
            "items": _numbered(inv["items"]),
            "equipped_capacity": inv["equipped_capacity"],
            "equipped": _numbered(inv["equipped"]),
        }

    def create_inventory(self, tribute_id: str, capacity: int = 10, equipped_capacity: int = 5) -> bool:
        tid = self._t(tribute_id)
        if tid is None:
            return False
        self.inventories[tid].update(capacity=capacity, equipped_capacity=equipped_capacity)
        return True

    def add_inventory_item(self, tribute_id: str, item_name: str) -> bool:
        tid = self._t(tribute_id)
        if tid is None or _blank(item_name):
            return False
        self.inventories[tid]["items"].append(item_name)
        return True

    def remove_inventory_item(self, tribute_id: str, item_number: object) -> bool:
        return self._remove(tribute_id, "items", item_number) is not None

    def clear_inventory(self, tribute_id: str) -> bool:
        tid = self._t(tribute_id)
        if tid is None:
            return False
        self.inventories[tid].update(items=[], equipped=[])
        return True

    def delete_inventory(self, tribute_id: str) -> bool:
        tid = self._t(tribute_id)
        if tid is None:
            return False
        self.inventories[tid] = {"capacity": 10, "items": [], "equipped_capacity": 5, "equipped": []}
        return True

    def equip_item(self, tribute_id: str, item_number: object) -> bool:
        tid, n = self._t(tribute_id), _number(item_number)
        if tid is None or n is None:
            return False
        inv = self.inventories[tid]
        if n > len(inv["items"]) or len(inv["equipped"]) >= inv["equipped_capacity"]:
            return False
        inv["equipped"].append(inv["items"].pop(n - 1))
        return True

    def unequip_item(self, tribute_id: str, item_number: object) -> bool:
        tid, n = self._t(tribute_id), _number(item_number)
        if tid is None or n is None:
            return False
        inv = self.inventories[tid]
        if n > len(inv["equipped"]) or len(inv["items"]) >= inv["capacity"]:
            return False
        inv["items"].append(inv["equipped"].pop(n - 1))
        return True

    def add_equipped_item(self, tribute_id: str, item_name: str) -> bool:
        tid = self._t(tribute_id)
        if tid is None or _blank(item_name):
            return False
        inv = self.inventories[tid]
        if len(inv["equipped"]) >= inv["equipped_capacity"]:
            return False
        inv["equipped"].append(item_name)
        return True

    def search_inventory_items(self, item_name: str) -> list[Row]:
        return [{"tribute_id": t, "item_number": n, "item_name": i} for t, n, i in self._hits(item_name)]

    def get_prompt(self, tribute_id: str) -> Row | None:
        row = self.sql_get_prompt(tribute_id)
        return (
            None if row is None else {"message": row["message"], "channel": row["channel_id"], "image": None}
        )

    def get_all_prompts(self) -> dict[str, Row]:
        return {
            r["tribute_id"]: {"message": r["message"], "channel": r["channel_id"]}
            for r in self.sql_get_all_prompts()
        }

    def create_prompt(self, tribute_id: str, message: str, channel_id: int) -> bool:
        tid = self._t(tribute_id)
        if tid is None or tid in self.prompts:
            return False
        self.sql_create_prompt(tid, message, channel_id)
        return True

    def update_prompt(self, tribute_id: str, **kwargs: Any) -> bool:
        return self.sql_update_prompt(tribute_id, **kwargs) is not None

    def delete_prompt(self, tribute_id: str) -> bool:
        return self.sql_delete_prompt(tribute_id)

    def delete_all_prompts(self) -> bool:
        self.sql_delete_all_prompts()
        return True


def _numbered(entries: list[str]) -> dict[str, str]:
    return {str(n): item for n, item in enumerate(entries, 1)}


# -------------------------------------------------------------- comparison


class Ids:
    """Adapter ids and reference ids must correspond one to one."""

    def __init__(self) -> None:
        self.to_ref: dict[int, int] = {}
        self.to_adapter: dict[int, int] = {}

    def pair(self, adapter_id: int, ref_id: int) -> None:
        assert self.to_ref.setdefault(adapter_id, ref_id) == ref_id, "one adapter id, two meanings"
        assert self.to_adapter.setdefault(ref_id, adapter_id) == adapter_id, "one meaning, two ids"


def _masked(value: Any) -> Any:
    """``created_at``/``updated_at`` replaced by their type (clocks differ by a second)."""
    if isinstance(value, dict):
        return {
            k: type(v).__name__ if k in ("created_at", "updated_at") else _masked(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _pair_ids(ids: Ids, got: Any, want: Any) -> None:
    if isinstance(got, dict) and isinstance(want, dict):
        if isinstance(got.get("id"), int) and isinstance(want.get("id"), int):
            ids.pair(got["id"], want["id"])
        for key in got.keys() & want.keys():
            _pair_ids(ids, got[key], want[key])
    elif isinstance(got, list) and isinstance(want, list):
        for g, w in zip(got, want, strict=False):
            _pair_ids(ids, g, w)


def _mapped(ids: Ids, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ids.to_ref.get(v, v) if k == "id" else _mapped(ids, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mapped(ids, v) for v in value]
    return value


def _outcome(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return ("ok", call(*args, **kwargs))
    except TributeStoreError as error:
        kind = type(error)
        # both sides name the class THGBot's callers can catch
        for base in (TributeExistsError, NotFoundError, InvalidInputError, AlreadyExistsError):
            if issubclass(kind, base):
                return ("error", base.__name__)
        return ("error", kind.__name__)


# ----------------------------------------------------------------- driver

TRIBUTE_IDS = ["D1F", "d1m", "D2F", "D10F", "d12m", "D3F ", "!!", ""]
ITEMS = ["Meat (2/2 uses.)", "Canteen", "knife", "Hunting KNIFE", "Rope", "meat pie", "", "   ", "Item10"]
NUMBERS: list[object] = [0, 1, 2, 3, 5, 10, 11, -1, "1", "2", "01", "x", True]
QUERIES = ["meat", "KNIFE", "e", "zzz", "", " ", "10"]


def _operations(rng: random.Random, files_dir: Path, ref: Reference, ids: Ids) -> list[tuple[str, Any]]:
    """(method, (args, kwargs)) of one random call on "db" or "sm"."""
    tid = rng.choice(TRIBUTE_IDS) if rng.random() < 0.15 else rng.choice(TRIBUTE_IDS[:4])
    item = rng.choice(ITEMS)
    number = rng.choice(NUMBERS)
    query = rng.choice(QUERIES)
    message = rng.choice(["Run!", "The arena opens.", "Hide"])
    channel = rng.choice([None, 111, 222])
    capacity = rng.choice([0, 1, 2, 3, 10])
    name = rng.choice(["D1F_1.png", "face.jpg", "b.mp3"])
    path = files_dir / name
    known_files = [ids.to_adapter.get(row["id"], 0) for fs in ref.files.values() for row in fs.values()]
    file_id = rng.choice([*known_files, 424242]) if known_files else 424242
    create: tuple[str, Any] = ("db.create_tribute", ((tid, rng.choice(["Kat", "Peeta"]), 42, "<@42>"), {}))
    if len(ref.tributes) < 3 and rng.random() < 0.3:
        return [create]
    add: tuple[str, Any] = ("sm.add_inventory_item", ((tid, item), {}))
    return [
        create,
        *[add] * 6,
        ("db.get_tribute", ((tid,), {})),
        ("db.get_all_tributes", ((), {})),
        ("db.update_tribute", ((tid,), {"tribute_name": "New", "face_claim_url": "https://x/y.png", "x": 1})),
        ("db.update_tribute", ((tid,), {"user_mention": "<@7>", "prompt_channel_id": channel})),
        ("db.delete_tribute", ((tid,), {})),
        ("db.get_tribute_full", ((tid,), {})),
        ("db.create_inventory", ((tid, capacity), {})),
        ("db.get_inventory", ((tid,), {})),
        ("db.get_inventory_items", ((tid,), {})),
        ("db.add_inventory_item", ((tid, item), {})),
        ("db.remove_inventory_item", ((tid, number), {})),
        ("db.clear_inventory", ((tid,), {})),
        ("db.search_inventory_items", ((query,), {})),
        ("db.create_prompt", ((tid, message, channel), {})),
        ("db.get_prompt", ((tid,), {})),
        ("db.get_all_prompts", ((), {})),
        ("db.update_prompt", ((tid,), {"message": message})),
        ("db.update_prompt", ((tid,), {"channel_id": channel, "other": 3})),
        ("db.delete_prompt", ((tid,), {})),
        ("db.delete_all_prompts", ((), {})),
        ("db.add_file", ((tid, rng.choice([None, "prompt_image", "face_claim"]), path), {})),
        ("db.get_files", ((tid,), {})),
        ("db.get_files", ((tid, "prompt_image"), {})),
        ("db.delete_file", ((file_id,), {})),
        ("sm.get_inventory", ((tid,), {})),
        ("sm.create_inventory", ((tid, capacity, rng.choice([0, 1, 2, 5])), {})),
        ("sm.remove_inventory_item", ((tid, number), {})),
        ("sm.clear_inventory", ((tid,), {})),
        ("sm.delete_inventory", ((tid,), {})),
        ("sm.equip_item", ((tid, number), {})),
        ("sm.equip_item", ((tid, number), {})),
        ("sm.unequip_item", ((tid, number), {})),
        ("sm.add_equipped_item", ((tid, item), {})),
        ("sm.search_inventory_items", ((query,), {})),
        ("sm.get_prompt", ((tid,), {})),
        ("sm.get_all_prompts", ((), {})),
        ("sm.create_prompt", ((tid, message, channel), {})),
        ("sm.update_prompt", ((tid,), {"message": message, "channel_id": channel})),
        ("sm.delete_prompt", ((tid,), {})),
        ("sm.delete_all_prompts", ((), {})),
    ]


#: Reference method for an adapter method where both classes share a name.
_REF_NAME = {
    f"db.{n}": f"sql_{n}"
    for n in (
        "create_inventory",
        "get_inventory",
        "add_inventory_item",
        "remove_inventory_item",
        "clear_inventory",
        "search_inventory_items",
        "create_prompt",
        "get_prompt",
        "get_all_prompts",
        "update_prompt",
        "delete_prompt",
        "delete_all_prompts",
    )
}


@pytest.mark.parametrize("seed", range(4))
def test_random_call_sequences_match_the_reference(store: TributeStore, tmp_path: Path, seed: int) -> None:
    files_dir = tmp_path / "uploads"
    files_dir.mkdir()
    for name in ("D1F_1.png", "face.jpg", "b.mp3"):
        (files_dir / name).write_bytes(name.encode() * 3)
    db = SQLDatabase("thgbot.db", store=store, guild_id=GUILD)
    sm = StorageManager(db)
    ref, ids = Reference(GUILD), Ids()
    rng = random.Random(seed)
    for step in range(400):
        method, (args, kwargs) = rng.choice(_operations(rng, files_dir, ref, ids))
        owner, name = method.split(".")
        adapter = getattr(db if owner == "db" else sm, name)
        reference = getattr(ref, _REF_NAME.get(method, name))
        ref_args = (ids.to_ref.get(args[0], args[0]),) if name == "delete_file" else args
        got, want = _outcome(adapter, *args, **kwargs), _outcome(reference, *ref_args, **kwargs)
        if got[0] == want[0] == "ok":
            _pair_ids(ids, got[1], want[1])
        assert (got[0], _masked(_mapped(ids, got[1]))) == (want[0], _masked(want[1])), (
            f"step {step}: {method}{args}{kwargs}"
        )
    # the end state, read through the other class too
    for tid in TRIBUTE_IDS:
        full, ref_full = db.get_tribute_full(tid), ref.get_tribute_full(tid)
        _pair_ids(ids, full, ref_full)
        assert _masked(_mapped(ids, full)) == _masked(ref_full)


# ------------------------------------------------------------ targeted cases


@pytest.mark.parametrize("backend", BACKENDS)
def test_removing_item_one_of_ten_keeps_positional_order(tmp_path: Path, backend: str) -> None:
    with open_store(store_url(backend, tmp_path)) as opened:
        db = SQLDatabase(store=opened)
        sm = StorageManager(db)
        db.create_tribute("D1F", "Glimmer", 1, "<@1>", guild_id=GUILD)
        for n in range(1, 11):
            assert sm.add_inventory_item("D1F", f"item {n}")
        assert sm.remove_inventory_item("D1F", "1")
        inventory = sm.get_inventory("D1F")
        assert inventory is not None
        # THGBot sorted the keys as strings: "10" < "2", so item 10 became item 1.
        assert inventory["items"] == {str(n - 1): f"item {n}" for n in range(2, 11)}
        assert db.add_inventory_item("d1f", "item 11") == 10


def test_tribute_ids_resolve_in_the_scope_or_across_unique_guilds(store: TributeStore) -> None:
    store.create_tribute(GUILD, "D1F", name="Glimmer")
    store.create_tribute(OTHER, "D2M", name="Cato")
    anywhere, here = SQLDatabase(store=store), SQLDatabase(store=store, guild_id=GUILD)
    row = anywhere.get_tribute("d2m")
    assert row is not None and row["guild_id"] == OTHER
    assert here.get_tribute("D2M") is None and here.get_tribute("D1F") is not None
    assert [r["tribute_id"] for r in anywhere.get_all_tributes()] == ["D1F", "D2M"]
    assert [r["tribute_id"] for r in here.get_all_tributes()] == ["D1F"]
    assert [r["tribute_id"] for r in here.get_all_tributes(guild_id=OTHER)] == ["D2M"]
    # the scoped adapter creates in its own guild; THGBot's ids stay unique when unscoped
    here.create_tribute("D2M", "Other Cato", 2, "<@2>")
    with pytest.raises(TributeExistsError, match="UNIQUE constraint failed"):
        anywhere.create_tribute("D1F", "Again", 3, "<@3>", guild_id=OTHER)
    with pytest.raises(InvalidInputError, match="scoped to guild"):
        here.create_tribute("D9F", "Elsewhere", 3, "<@3>", guild_id=OTHER)
    # now D2M is in two guilds: by id alone it is ambiguous, an error and never a guess
    with pytest.raises(AmbiguousTributeError, match="several guilds"):
        anywhere.get_tribute("D2M")
    with pytest.raises(AmbiguousTributeError):
        StorageManager(anywhere).add_inventory_item("D2M", "Sword")
    assert StorageManager(here).add_inventory_item("D2M", "Sword")
    assert store.get_inventory(GUILD, "D2M").items == ["Sword"]
    assert store.get_inventory(OTHER, "D2M").items == []


def test_tribute_without_guild_and_guild_moves(store: TributeStore, tmp_path: Path) -> None:
    db = SQLDatabase(store=store)
    row = db.create_tribute("D4F", "Foxface", 5, "<@5>", created_at=1_700_000_000)
    assert row["guild_id"] is None and row["created_at"] == 1_700_000_000
    assert store.has_tribute(NO_GUILD, "D4F")
    upload = tmp_path / "fox.png"
    upload.write_bytes(b"\x89PNG fox")
    file_row = db.add_file("D4F", "face_claim", str(upload))
    db.create_prompt("D4F", "Run", 9)
    StorageManager(db).add_inventory_item("D4F", "Berries")
    moved = db.update_tribute("D4F", guild_id=GUILD, tribute_name="Finch")
    assert moved is not None and moved["guild_id"] == GUILD and moved["tribute_name"] == "Finch"
    assert not store.has_tribute(NO_GUILD, "D4F")
    full = db.get_tribute_full("D4F")
    assert full is not None
    assert full["inventory"]["items"] == {"1": "Berries"}
    assert full["prompt"]["message"] == "Run"
    assert [f["file_path"] for f in full["files"]] == ["fox.png"]
    assert full["files"][0]["id"] != file_row["id"]  # a file id names guild, tribute and name
    assert db.read_file(full["files"][0]["id"]) == b"\x89PNG fox"


@pytest.mark.parametrize("backend", BACKENDS)
def test_file_ids_are_stable_across_reopening(tmp_path: Path, backend: str) -> None:
    url = store_url(backend, tmp_path)
    upload = tmp_path / "D1F_1700000000.png"
    upload.write_bytes(b"png bytes")
    with open_store(url) as opened:
        db = SQLDatabase(store=opened, guild_id=GUILD)
        db.create_tribute("D1F", "Glimmer", 1, "<@1>")
        added = db.add_file("D1F", "prompt_image", upload)
        assert added["file_path"] == upload.name and added["file_type"] == "prompt_image"
        with pytest.raises(InvalidInputError, match="cannot read"):
            db.add_file("D1F", None, tmp_path / "missing.png")
        with pytest.raises(NotFoundError):
            db.add_file("D99M", None, upload)
    upload.unlink()  # the bytes live in the store now
    with open_store(url) as opened:
        db = SQLDatabase(store=opened, guild_id=GUILD)
        assert [f["id"] for f in db.get_files("D1F")] == [added["id"]]
        assert db.read_file(added["id"]) == b"png bytes"
        assert db.delete_file(added["id"]) and not db.delete_file(added["id"])
        assert db.get_files("D1F") == [] and db.read_file(added["id"]) is None


@pytest.mark.backend("composite")
def test_legacy_data_through_the_composite(tmp_path: Path) -> None:
    with resources.as_file(SAMPLE) as sample:
        legacy = shutil.copytree(sample, tmp_path / "legacy")
    primary = quote(f"sqlite:///{tmp_path}/window.db", safe="")
    fallback = quote(f"thgbot:///{legacy}", safe="")
    with open_store(f"thgbot:///{legacy}") as source:
        legacy_inventory = source.get_inventory(GUILD, "D1F")
        legacy_prompt = source.get_prompt(GUILD, "D1F")
    with open_store(f"composite:?primary={primary}&fallback={fallback}") as opened:
        sm = StorageManager(SQLDatabase(store=opened, guild_id=GUILD))
        inventory = sm.get_inventory("d1f")
        assert inventory == {
            "capacity": legacy_inventory.capacity,
            "items": {str(n): item for n, item in enumerate(legacy_inventory.items, 1)},
            "equipped_capacity": legacy_inventory.equipped_capacity,
            "equipped": {str(n): item for n, item in enumerate(legacy_inventory.equipped, 1)},
        }
        assert (
            len(legacy_inventory.items) >= 1
            and len(legacy_inventory.equipped) < legacy_inventory.equipped_capacity
        )
        assert sm.equip_item("D1F", 1)
        equipped = sm.get_inventory("D1F")["equipped"]  # type: ignore[index]
        assert equipped[str(len(legacy_inventory.equipped) + 1)] == legacy_inventory.items[0]
        assert sm.get_prompt("D1F") == {
            "message": legacy_prompt.message,
            "channel": legacy_prompt.channel_id,
            "image": None,
        }
        assert "D1F" in sm.get_all_prompts()
        # guildless legacy tributes live in guild 0 and are reported without a guild
        row = SQLDatabase(store=opened).get_tribute("OLD1")
        assert row is not None and row["guild_id"] is None


def test_transaction_groups_calls(store: TributeStore) -> None:
    db = SQLDatabase(store=store, guild_id=GUILD)
    db.create_tribute("D1F", "Glimmer", 1, "<@1>")
    with pytest.raises(RuntimeError), db.transaction():
        db.add_inventory_item("D1F", "Rope")
        raise RuntimeError("abandon")
    assert db.get_inventory_items("D1F") == []


def test_bad_input_from_a_bot_is_false_or_a_tributestore_error(store: TributeStore, tmp_path: Path) -> None:
    """What a user types reaches these calls: thousands of digits as an item number name no item
    (not Python's int() digit limit); an impossible timestamp or a missing path is an input error."""
    db = SQLDatabase(store=store, guild_id=GUILD)
    manager = StorageManager(db)
    db.create_tribute("D1F", "Katniss", 42, "<@42>")
    manager.add_inventory_item("D1F", "Meat")
    huge = "9" * 5000
    assert manager.remove_inventory_item("D1F", huge) is False
    assert manager.equip_item("D1F", 10**5000) is False
    assert db.remove_inventory_item("D1F", huge) is False
    for created_at in (10**20, -(10**13)):
        with pytest.raises(InvalidInputError, match="created_at"):
            db.create_tribute("X1", "n", 1, "m", created_at=created_at)
    with pytest.raises(InvalidInputError, match="file_path"):
        db.add_file("D1F", "prompt_image", None)  # type: ignore[arg-type]
    assert store.get_inventory(GUILD, "D1F").items == ["Meat"] and not store.has_tribute(GUILD, "X1")


@pytest.mark.parametrize("store", ["thgbot.db", Path("thgbot.db"), 5])
def test_a_path_given_where_a_store_goes_is_refused_at_once(tmp_path: Path, store: object) -> None:
    """THGBot's SQLDatabase took a database path: a port passing one to the adapters is told at
    construction, not by an AttributeError at the first call."""
    for make in (lambda: SQLDatabase(store=store), lambda: StorageManager(store)):  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="needs a store opened with open_store"):
            make()
    assert list(tmp_path.iterdir()) == []
