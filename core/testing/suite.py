"""Abstract fixtures and test mixins: the behaviour every backend must show.

Each ``*Tests`` class is a mixin of tests over the ``store`` fixture;
:class:`ConformanceSuite` combines them all.  The only fixture a backend must
provide is ``store_url``; ``store`` opens it through :func:`open_store` (so
plugin discovery is exercised too) and ``reopen`` opens a second handle on the
same data, to prove that what was written was really stored.

The tests use only public names: the store's API, and ``store.backend``
through the contract of :mod:`tributestore.backend` (:class:`ContractTests`),
optional capabilities such as tombstones tested only where the backend offers
them.  :class:`ChangeTests` watches the backend through a store with its own
plugin manager, so it needs no plugin installed.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .. import hookspecs
from ..backend import Backend, TombstoneListing, Tombstones
from ..config import open_store
from ..errors import (
    AlreadyExistsError,
    CapacityError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    StoreNotFoundError,
)
from ..hookspecs import PROJECT_NAME, Changes, hookimpl
from ..models import MAX_ITEM_LENGTH, Counts, FileInfo, ItemHit
from ..plugins import PluginHooks
from ..store import TributeStore
from ..urls import parse_store_url

GUILD = 111111111111111111
OTHER_GUILD = 222222222222222222
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24

Reopen = Callable[[], TributeStore]


class StoreFixtures:
    """Abstract fixtures: a backend's test class provides ``store_url``."""

    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError("a backend's test class must provide the store_url fixture")

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[TributeStore]:
        with open_store(store_url) as opened:
            yield opened

    @pytest.fixture
    def reopen(self, store_url: str) -> Iterator[Reopen]:
        opened: list[TributeStore] = []

        def _reopen() -> TributeStore:
            opened.append(open_store(store_url))
            return opened[-1]

        yield _reopen
        for handle in opened:
            handle.close()


class GuildTests(StoreFixtures):
    def test_put_and_get_guild(self, store: TributeStore, reopen: Reopen) -> None:
        store.put_guild(GUILD, log_channel_id=5, category_id=6)
        guild = reopen().get_guild(GUILD)
        assert (guild.log_channel_id, guild.category_id) == (5, 6)

    def test_put_guild_replaces_settings(self, store: TributeStore) -> None:
        store.put_guild(GUILD, log_channel_id=5)
        store.put_guild(GUILD, category_id=7)
        guild = store.get_guild(GUILD)
        assert (guild.log_channel_id, guild.category_id) == (None, 7)

    def test_missing_guild(self, store: TributeStore) -> None:
        with pytest.raises(NotFoundError, match=str(GUILD)):
            store.get_guild(GUILD)

    def test_creating_a_tribute_creates_its_guild(self, store: TributeStore) -> None:
        store.create_tribute(OTHER_GUILD, "D1F")
        store.create_tribute(GUILD, "D1F")
        assert [g.guild_id for g in store.list_guilds()] == [GUILD, OTHER_GUILD]

    @pytest.mark.parametrize("bad", [-1, "123", 2**63, True, None])
    def test_bad_guild_id_rejected(self, store: TributeStore, bad: object) -> None:
        with pytest.raises(InvalidInputError, match="guild_id"):
            store.put_guild(bad)  # type: ignore[arg-type]
        assert store.list_guilds() == []


class TributeTests(StoreFixtures):
    def test_create_and_get(self, store: TributeStore, reopen: Reopen) -> None:
        created = store.create_tribute(
            GUILD,
            "d1f",
            name="Katniss",
            user_id=123456789012345678,
            user_mention="<@123456789012345678>",
            face_claim_url="https://example.org/k.png",
            prompt_channel_id=987654321098765432,
        )
        assert created.tribute_id == "D1F"
        assert created.created_at is not None and created.created_at == created.updated_at
        assert reopen().get_tribute(GUILD, "D1F") == created

    def test_ids_are_case_insensitive(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D2M", name="Peeta")
        assert store.get_tribute(GUILD, " d2m ").name == "Peeta"
        assert store.has_tribute(GUILD, "d2m")

    def test_duplicate_refused(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F", name="first")
        with pytest.raises(AlreadyExistsError, match="D1F"):
            store.create_tribute(GUILD, "d1f", name="second")
        assert store.get_tribute(GUILD, "D1F").name == "first"

    def test_missing_tribute(self, store: TributeStore) -> None:
        with pytest.raises(NotFoundError, match="D9F"):
            store.get_tribute(GUILD, "D9F")
        assert not store.has_tribute(GUILD, "D9F")

    @pytest.mark.parametrize(
        ("fields", "field_name"),
        [
            ({"tribute_id": "../../etc/passwd"}, "tribute_id"),
            ({"tribute_id": "/abs"}, "tribute_id"),
            ({"tribute_id": "D1F\x00"}, "tribute_id"),
            ({"tribute_id": "D1F'; DROP TABLE tributes; --"}, "tribute_id"),
            ({"tribute_id": ""}, "tribute_id"),
            ({"tribute_id": 5}, "tribute_id"),
            ({"user_id": "not a number"}, "user_id"),
            ({"user_id": -3}, "user_id"),
            ({"name": 42}, "name"),
            ({"colour": "red"}, "colour"),
            ({"created_at": "2020-01-01"}, "created_at"),  # a string or a number is no datetime
            ({"updated_at": 1_700_000_000}, "updated_at"),
        ],
    )
    def test_bad_input_rejected_before_writing(
        self, store: TributeStore, fields: dict[str, object], field_name: str
    ) -> None:
        arguments: dict[str, object] = {"tribute_id": "D1F", **fields}
        tribute_id = arguments.pop("tribute_id")
        with pytest.raises(InvalidInputError, match=field_name) as raised:
            store.create_tribute(GUILD, tribute_id, **arguments)  # type: ignore[arg-type]
        assert "\n" not in str(raised.value)
        assert store.counts() == Counts()

    def test_sql_and_path_fragments_are_stored_literally(self, store: TributeStore, reopen: Reopen) -> None:
        name = "Robert'); DROP TABLE tributes;-- ../../etc/passwd %_*"
        store.create_tribute(GUILD, "D1F", name=name, user_mention="<@1> \" ' \\")
        again = reopen().get_tribute(GUILD, "D1F")
        assert again.name == name and again.user_mention == "<@1> \" ' \\"

    def test_update(self, store: TributeStore, reopen: Reopen) -> None:
        created = store.create_tribute(GUILD, "D1F", name="old")
        updated = store.update_tribute(GUILD, "D1F", name="new", user_id=7)
        assert updated.name == "new" and updated.user_id == 7
        assert updated.created_at == created.created_at
        assert updated.updated_at is not None and created.updated_at is not None
        assert updated.updated_at >= created.updated_at
        assert reopen().get_tribute(GUILD, "D1F") == updated

    def test_update_refuses_identity_and_bad_values(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F", name="kept")
        with pytest.raises(InvalidInputError, match="tribute_id"):
            store.update_tribute(GUILD, "D1F", tribute_id="D2F")
        with pytest.raises(InvalidInputError, match="user_id"):
            store.update_tribute(GUILD, "D1F", user_id="x")
        with pytest.raises(NotFoundError):
            store.update_tribute(GUILD, "D2F", name="x")
        assert store.get_tribute(GUILD, "D1F").name == "kept"

    def test_delete_removes_everything_it_owns(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F")
        store.add_item(GUILD, "D1F", "Knife")
        store.add_item(GUILD, "D1F", "Rope", equipped=True)
        store.add_file(GUILD, "D1F", "face.png", PNG)
        store.set_prompt(GUILD, "D1F", "hello", files=["face.png"])
        store.create_tribute(GUILD, "D2F")
        store.delete_tribute(GUILD, "D1F")
        again = reopen()
        assert not again.has_tribute(GUILD, "D1F")
        assert again.counts() == Counts(guilds=1, tributes=1)
        assert again.search_items("knife") == []
        again.create_tribute(GUILD, "D1F")
        assert again.get_inventory(GUILD, "D1F").items == []
        assert again.list_files(GUILD, "D1F") == []
        with pytest.raises(NotFoundError):
            again.get_prompt(GUILD, "D1F")

    def test_delete_missing(self, store: TributeStore) -> None:
        with pytest.raises(NotFoundError, match="D1F"):
            store.delete_tribute(GUILD, "D1F")

    def test_guilds_are_isolated(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F", name="mine")
        store.create_tribute(OTHER_GUILD, "D1F", name="theirs")
        store.add_item(OTHER_GUILD, "D1F", "Secret map")
        store.set_prompt(OTHER_GUILD, "D1F", "secret")
        store.add_file(OTHER_GUILD, "D1F", "secret.png", PNG)
        assert store.get_tribute(GUILD, "D1F").name == "mine"
        assert store.get_inventory(GUILD, "D1F").items == []
        assert store.list_files(GUILD, "D1F") == []
        assert store.search_items("secret", guild_id=GUILD) == []
        with pytest.raises(NotFoundError):
            store.get_prompt(GUILD, "D1F")
        with pytest.raises(NotFoundError):
            store.read_file(GUILD, "D1F", "secret.png")
        store.delete_tribute(GUILD, "D1F")
        assert store.get_tribute(OTHER_GUILD, "D1F").name == "theirs"
        assert [t.tribute_id for t in store.list_tributes(GUILD)] == []

    def test_list_and_iterate_in_order(self, store: TributeStore) -> None:
        for guild, tribute in [(OTHER_GUILD, "A1"), (GUILD, "D2F"), (GUILD, "D10F"), (GUILD, "D1F")]:
            store.create_tribute(guild, tribute)
        assert [t.tribute_id for t in store.list_tributes(GUILD)] == ["D10F", "D1F", "D2F"]
        assert [(t.guild_id, t.tribute_id) for t in store.iter_tributes()] == [
            (GUILD, "D10F"),
            (GUILD, "D1F"),
            (GUILD, "D2F"),
            (OTHER_GUILD, "A1"),
        ]
        assert [t.tribute_id for t in store.iter_tributes(OTHER_GUILD)] == ["A1"]


class InventoryTests(StoreFixtures):
    @pytest.fixture
    def tribute(self, store: TributeStore) -> str:
        store.create_tribute(GUILD, "D1F")
        return "D1F"

    def test_default_inventory(self, store: TributeStore, tribute: str) -> None:
        inventory = store.get_inventory(GUILD, tribute)
        assert (inventory.capacity, inventory.equipped_capacity) == (10, 5)
        assert inventory.items == [] and inventory.equipped == []

    def test_add_numbers_in_order(self, store: TributeStore, tribute: str, reopen: Reopen) -> None:
        for item in ["Meat (2/2 uses.)", "Canteen", "Knife"]:
            store.add_item(GUILD, tribute, item)
        inventory = reopen().get_inventory(GUILD, tribute)
        assert inventory.numbered() == {1: "Meat (2/2 uses.)", 2: "Canteen", 3: "Knife"}

    def test_capacity_is_enforced_unless_forced(self, store: TributeStore, tribute: str) -> None:
        store.set_capacity(GUILD, tribute, capacity=2)
        store.add_item(GUILD, tribute, "a")
        store.add_item(GUILD, tribute, "b")
        with pytest.raises(CapacityError, match="2/2"):
            store.add_item(GUILD, tribute, "c")
        store.add_item(GUILD, tribute, "c", force=True)
        assert store.get_inventory(GUILD, tribute).items == ["a", "b", "c"]

    def test_remove_renumbers(self, store: TributeStore, tribute: str, reopen: Reopen) -> None:
        for item in ["a", "b", "c", "d"]:
            store.add_item(GUILD, tribute, item)
        assert store.remove_item(GUILD, tribute, 2) == "b"
        assert reopen().get_inventory(GUILD, tribute).numbered() == {1: "a", 2: "c", 3: "d"}

    @pytest.mark.parametrize("number", [0, 3, -1])
    def test_remove_missing_number(self, store: TributeStore, tribute: str, number: int) -> None:
        store.add_item(GUILD, tribute, "a")
        store.add_item(GUILD, tribute, "b")
        with pytest.raises(NotFoundError, match=str(number)):
            store.remove_item(GUILD, tribute, number)
        assert store.get_inventory(GUILD, tribute).items == ["a", "b"]

    def test_equip_and_unequip(self, store: TributeStore, tribute: str, reopen: Reopen) -> None:
        for item in ["Knife", "Rope", "Bow"]:
            store.add_item(GUILD, tribute, item)
        store.equip_item(GUILD, tribute, 3)
        store.equip_item(GUILD, tribute, 1)
        inventory = reopen().get_inventory(GUILD, tribute)
        assert inventory.items == ["Rope"] and inventory.equipped == ["Bow", "Knife"]
        store.unequip_item(GUILD, tribute, 1)
        inventory = store.get_inventory(GUILD, tribute)
        assert inventory.items == ["Rope", "Bow"] and inventory.equipped == ["Knife"]
        assert store.remove_item(GUILD, tribute, 1, slot="equipped") == "Knife"

    def test_equipped_capacity(self, store: TributeStore, tribute: str) -> None:
        store.set_capacity(GUILD, tribute, equipped_capacity=1)
        store.add_item(GUILD, tribute, "a")
        store.add_item(GUILD, tribute, "b")
        store.equip_item(GUILD, tribute, 1)
        with pytest.raises(CapacityError, match="equipped"):
            store.equip_item(GUILD, tribute, 1)
        assert store.get_inventory(GUILD, tribute).items == ["b"]

    def test_set_capacity_and_clear(self, store: TributeStore, tribute: str, reopen: Reopen) -> None:
        store.add_item(GUILD, tribute, "a")
        store.add_item(GUILD, tribute, "b", equipped=True)
        store.set_capacity(GUILD, tribute, capacity=20, equipped_capacity=0)
        inventory = reopen().get_inventory(GUILD, tribute)
        assert (inventory.capacity, inventory.equipped_capacity) == (20, 0)
        assert inventory.equipped == ["b"]  # kept although over the new capacity
        store.clear_inventory(GUILD, tribute, equipped=False)
        assert store.get_inventory(GUILD, tribute).equipped == ["b"]
        store.clear_inventory(GUILD, tribute)
        inventory = store.get_inventory(GUILD, tribute)
        assert inventory.items == [] and inventory.equipped == [] and inventory.capacity == 20

    @pytest.mark.parametrize(
        ("call", "field_name"),
        [
            (lambda s: s.set_capacity(GUILD, "D1F", capacity=-1), "capacity"),
            (lambda s: s.set_capacity(GUILD, "D1F", equipped_capacity="5"), "equipped_capacity"),
            (lambda s: s.add_item(GUILD, "D1F", ""), "items"),
            (lambda s: s.add_item(GUILD, "D1F", "nul\x00"), "items"),
            (lambda s: s.add_item(GUILD, "D1F", 5), "items"),
            (lambda s: s.add_item(GUILD, "D1F", "x" * (MAX_ITEM_LENGTH + 1)), "items"),
            (lambda s: s.remove_item(GUILD, "D1F", "1"), "number"),
            # A yes/no argument is True or False: "no" or "False" would do the opposite of what it says.
            (lambda s: s.add_item(GUILD, "D1F", "x", equipped="no"), "equipped"),
            (lambda s: s.add_item(GUILD, "D1F", "x", force="False"), "force"),
            (lambda s: s.add_item(GUILD, "D1F", "x", force=1), "force"),
            (lambda s: s.clear_inventory(GUILD, "D1F", equipped="False"), "equipped"),
        ],
    )
    def test_bad_input_leaves_inventory_unchanged(
        self, store: TributeStore, tribute: str, call: Callable[[TributeStore], object], field_name: str
    ) -> None:
        store.add_item(GUILD, tribute, "kept")
        before = store.get_inventory(GUILD, tribute)
        with pytest.raises(InvalidInputError, match=field_name):
            call(store)
        assert store.get_inventory(GUILD, tribute) == before

    def test_inventory_of_missing_tribute(self, store: TributeStore) -> None:
        with pytest.raises(NotFoundError, match="D7M"):
            store.add_item(GUILD, "D7M", "a")
        assert store.counts() == Counts()


class PromptTests(StoreFixtures):
    def test_set_get_replace_delete(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D7F")
        first = store.set_prompt(GUILD, "d7f", "Run!", channel_id=1395951855535788202)
        again = reopen().get_prompt(GUILD, "D7F")
        assert again == first and again.channel_id == 1395951855535788202
        second = store.set_prompt(GUILD, "D7F", "Hide!\n\n...", files=["a.png", "SPOILER_b c.png"])
        assert second.created_at == first.created_at and second.channel_id is None
        assert reopen().get_prompt(GUILD, "D7F").files == ["a.png", "SPOILER_b c.png"]
        store.delete_prompt(GUILD, "D7F")
        with pytest.raises(NotFoundError, match="D7F"):
            reopen().get_prompt(GUILD, "D7F")
        assert store.has_tribute(GUILD, "D7F")

    def test_prompt_bad_input(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D7F")
        with pytest.raises(InvalidInputError, match="channel_id"):
            store.set_prompt(GUILD, "D7F", "x", channel_id="123")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="files"):
            store.set_prompt(GUILD, "D7F", "x", files=["../../etc/passwd"])
        with pytest.raises(NotFoundError):
            store.get_prompt(GUILD, "D7F")
        with pytest.raises(NotFoundError):
            store.set_prompt(GUILD, "D8F", "x")
        with pytest.raises(NotFoundError):
            store.delete_prompt(GUILD, "D7F")


class FileTests(StoreFixtures):
    def test_add_read_list_delete(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F")
        info = store.add_file(GUILD, "D1F", "SPOILER_D1F face.png", PNG, kind="prompt_image")
        assert info.size == len(PNG) and info.sha256 == hashlib.sha256(PNG).hexdigest()
        assert info.media_type == "image/png" and info.kind == "prompt_image"
        store.add_file(GUILD, "D1F", "a.mp3", b"ID3audio")
        again = reopen()
        assert [f.name for f in again.list_files(GUILD, "D1F")] == ["SPOILER_D1F face.png", "a.mp3"]
        assert again.read_file(GUILD, "D1F", "SPOILER_D1F face.png") == PNG
        assert again.get_file(GUILD, "D1F", "SPOILER_D1F face.png") == info
        store.delete_file(GUILD, "D1F", "a.mp3")
        with pytest.raises(NotFoundError, match=r"a\.mp3"):
            reopen().read_file(GUILD, "D1F", "a.mp3")
        assert store.counts().files == 1

    def test_existing_name_needs_replace(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F")
        store.add_file(GUILD, "D1F", "f.bin", b"one")
        with pytest.raises(AlreadyExistsError, match=r"f\.bin"):
            store.add_file(GUILD, "D1F", "f.bin", b"two")
        assert store.read_file(GUILD, "D1F", "f.bin") == b"one"
        store.add_file(GUILD, "D1F", "f.bin", b"two", replace=True)
        assert store.read_file(GUILD, "D1F", "f.bin") == b"two"
        assert store.get_file(GUILD, "D1F", "f.bin").size == 3

    def test_replaced_file_has_the_new_bytes_after_reopen(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F")
        store.add_file(GUILD, "D1F", "f.bin", b"first version")
        store.add_file(GUILD, "D1F", "kept.png", PNG)
        new = store.add_file(GUILD, "D1F", "f.bin", b"second, longer version", replace=True)
        again = reopen()
        assert again.read_file(GUILD, "D1F", "f.bin") == b"second, longer version"
        assert again.get_file(GUILD, "D1F", "f.bin") == new
        assert new.sha256 == hashlib.sha256(b"second, longer version").hexdigest()
        assert again.read_file(GUILD, "D1F", "kept.png") == PNG
        assert again.counts().files == 2
        assert again.check() == []

    def test_deleted_file_name_can_be_used_again(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F")
        store.add_file(GUILD, "D1F", "f.bin", b"old")
        store.delete_file(GUILD, "D1F", "f.bin")
        store.add_file(GUILD, "D1F", "f.bin", b"new bytes")
        assert reopen().read_file(GUILD, "D1F", "f.bin") == b"new bytes"
        store.delete_file(GUILD, "D1F", "f.bin")
        with pytest.raises(NotFoundError, match=r"f\.bin"):
            store.delete_file(GUILD, "D1F", "f.bin")
        assert reopen().counts().files == 0

    def test_shared_bytes_survive_deleting_one_owner(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F")
        store.create_tribute(OTHER_GUILD, "D1F")
        store.add_file(GUILD, "D1F", "same.png", PNG)
        store.add_file(GUILD, "D1F", "copy.png", PNG)
        store.add_file(OTHER_GUILD, "D1F", "same.png", PNG)
        store.delete_tribute(GUILD, "D1F")
        assert reopen().read_file(OTHER_GUILD, "D1F", "same.png") == PNG

    def test_empty_file(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F")
        store.add_file(GUILD, "D1F", "empty.txt", b"")
        assert store.read_file(GUILD, "D1F", "empty.txt") == b""

    @pytest.mark.parametrize(
        "name", ["../../etc/passwd", "/etc/passwd", "a/b.png", "..", ".", "nul\x00.png", "", " x", "a\\b"]
    )
    def test_unsafe_names_rejected(self, store: TributeStore, name: str) -> None:
        store.create_tribute(GUILD, "D1F")
        with pytest.raises(InvalidInputError, match="name"):
            store.add_file(GUILD, "D1F", name, b"x")
        with pytest.raises((InvalidInputError, NotFoundError)):
            store.read_file(GUILD, "D1F", name)
        assert store.counts().files == 0

    def test_replace_must_be_true_or_false(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F")
        store.add_file(GUILD, "D1F", "a.png", b"original")
        with pytest.raises(InvalidInputError, match="replace"):
            store.add_file(GUILD, "D1F", "a.png", b"new", replace="no")  # type: ignore[arg-type]
        assert store.read_file(GUILD, "D1F", "a.png") == b"original"

    def test_file_of_missing_tribute(self, store: TributeStore) -> None:
        with pytest.raises(NotFoundError, match="D1F"):
            store.add_file(GUILD, "D1F", "a.png", PNG)
        store.create_tribute(GUILD, "D1F")
        with pytest.raises(InvalidInputError, match="bytes"):
            store.add_file(GUILD, "D1F", "a", "text")  # type: ignore[arg-type]


class SearchTests(StoreFixtures):
    @pytest.fixture
    def filled(self, store: TributeStore) -> TributeStore:
        store.create_tribute(GUILD, "D1F")
        store.create_tribute(GUILD, "D2M")
        store.create_tribute(OTHER_GUILD, "D1F")
        for item in ["Meat (2/2 uses.)", "Hunting KNIFE", "Canteen"]:
            store.add_item(GUILD, "D1F", item)
        store.add_item(GUILD, "D1F", "Throwing knives", equipped=True)
        store.add_item(GUILD, "D2M", "Straße map")
        store.add_item(GUILD, "D2M", '100% cotton_shirt "lucky" \'o')
        store.add_item(OTHER_GUILD, "D1F", "Pocket knife")
        return store

    def test_case_insensitive_substring(self, filled: TributeStore) -> None:
        hits = filled.search_items("KNI", guild_id=GUILD)
        assert [(h.tribute_id, h.slot, h.number, h.item) for h in hits] == [
            ("D1F", "items", 2, "Hunting KNIFE"),
            ("D1F", "equipped", 1, "Throwing knives"),
        ]

    def test_all_guilds(self, filled: TributeStore) -> None:
        hits = filled.search_items("knife")
        assert [(h.guild_id, h.item) for h in hits] == [
            (GUILD, "Hunting KNIFE"),
            (OTHER_GUILD, "Pocket knife"),
        ]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("%", ['100% cotton_shirt "lucky" \'o']),
            ("_", ['100% cotton_shirt "lucky" \'o']),
            ('"lucky"', ['100% cotton_shirt "lucky" \'o']),
            ("'o", ['100% cotton_shirt "lucky" \'o']),
            ("e", ["Meat (2/2 uses.)", "Hunting KNIFE", "Canteen", "Throwing knives", "Straße map"]),
            ("STRASSE", ["Straße map"]),
            ("2/2 uses.)", ["Meat (2/2 uses.)"]),
            ("*", []),
            ("zz", []),
            ("AND OR NOT", []),
            ("nothing like this at all", []),
        ],
    )
    def test_literal_queries(self, filled: TributeStore, query: str, expected: list[str]) -> None:
        assert [h.item for h in filled.search_items(query, guild_id=GUILD)] == expected

    def test_search_follows_changes(self, filled: TributeStore) -> None:
        filled.remove_item(GUILD, "D1F", 2)
        filled.delete_tribute(GUILD, "D2M")
        assert [h.item for h in filled.search_items("knife", guild_id=GUILD)] == []
        assert [h.number for h in filled.search_items("canteen", guild_id=GUILD)] == [2]

    @pytest.mark.parametrize("query", ["", "   ", None, "a\x00"])
    def test_bad_query(self, filled: TributeStore, query: object) -> None:
        with pytest.raises(InvalidInputError, match="query"):
            filled.search_items(query)  # type: ignore[arg-type]

    @pytest.mark.parametrize("query", ["e", "kn", "knife", "%", "zz", "nothing like this at all"])
    @pytest.mark.parametrize("limit", [1, 3, 50])
    @pytest.mark.parametrize("guild_id", [None, GUILD])
    def test_pages_join_up_to_the_whole_result(
        self, filled: TributeStore, query: str, limit: int, guild_id: int | None
    ) -> None:
        whole = filled.search_items(query, guild_id)
        pages: list[list[ItemHit]] = []
        after = None
        for _ in range(len(whole) + 2):  # hits out of order could page forever: bounded
            page = filled.search_items(query, guild_id, limit=limit, after=after)
            assert len(page) <= limit
            if not page:
                break
            pages.append(page)
            after = page[-1]
        else:
            pytest.fail(f"pages of {query!r} never end: hits not in the order of search_items()")
        assert [hit for page in pages for hit in page] == whole
        assert all(len(page) == limit for page in pages[:-1])

    def test_a_page_continues_after_a_hit_that_was_removed(self, filled: TributeStore) -> None:
        first = filled.search_items("e", guild_id=GUILD, limit=2)
        filled.remove_item(GUILD, "D1F", 2)  # "Hunting KNIFE", the last hit of the first page
        rest = filled.search_items("e", guild_id=GUILD, after=first[-1])
        assert [(h.tribute_id, h.slot, h.item) for h in rest] == [
            ("D1F", "equipped", "Throwing knives"),
            ("D2M", "items", "Straße map"),
        ]

    def test_after_without_limit_is_every_later_hit(self, filled: TributeStore) -> None:
        whole = filled.search_items("e")
        assert filled.search_items("e", after=whole[0]) == whole[1:]
        assert filled.search_items("e", after=whole[-1]) == []

    @pytest.mark.parametrize("limit", [0, -1, True, 2.5, "10"])
    def test_bad_limit(self, filled: TributeStore, limit: object) -> None:
        with pytest.raises(InvalidInputError, match="limit"):
            filled.search_items("e", limit=limit)  # type: ignore[arg-type]

    def test_a_page_larger_than_any_database_takes_is_every_hit(self, filled: TributeStore) -> None:
        assert filled.search_items("e", limit=2**63) == filled.search_items("e")

    @pytest.mark.parametrize("query", ["a" * 49_999, "%" * 25_000, "\u00df" * 20_000])
    def test_a_query_longer_than_any_item_finds_nothing(self, filled: TributeStore, query: str) -> None:
        assert filled.search_items(query) == []
        assert filled.search_items(query, limit=5) == []

    def test_bad_after(self, filled: TributeStore) -> None:
        with pytest.raises(InvalidInputError, match="after"):
            filled.search_items("e", after=("D1F", 2))  # type: ignore[arg-type]


class TransactionTests(StoreFixtures):
    def test_failed_transaction_writes_nothing(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F")
        with pytest.raises(RuntimeError), store.transaction():
            store.add_item(GUILD, "D1F", "lost")
            store.create_tribute(GUILD, "D2F")
            store.set_prompt(GUILD, "D1F", "lost")
            store.add_file(GUILD, "D1F", "lost.png", PNG)
            raise RuntimeError("boom")
        for handle in (store, reopen()):
            assert handle.get_inventory(GUILD, "D1F").items == []
            assert not handle.has_tribute(GUILD, "D2F")
            assert handle.list_files(GUILD, "D1F") == []
            assert handle.counts() == Counts(guilds=1, tributes=1)

    def test_a_failed_transaction_leaves_no_guild_it_created(
        self, store: TributeStore, reopen: Reopen
    ) -> None:
        store.create_tribute(GUILD, "D1F")
        with pytest.raises(RuntimeError), store.transaction():
            store.create_tribute(OTHER_GUILD, "D2F")  # creates guild OTHER_GUILD in passing
            raise RuntimeError("boom")
        for handle in (store, reopen()):
            assert [g.guild_id for g in handle.list_guilds()] == [GUILD]
            assert handle.counts() == Counts(guilds=1, tributes=1)

    def test_writers_of_threads_and_handles_wait_for_each_other(
        self, store: TributeStore, reopen: Reopen
    ) -> None:
        """The contract's "writers of other threads and processes wait": read-modify-writes of
        four threads on two handles lose nothing (a backend that lets them overlap loses items)."""
        store.create_tribute(GUILD, "D1F")
        handles = [store, reopen()]
        errors: list[BaseException] = []

        def add(handle: TributeStore, worker: int) -> None:
            try:
                for n in range(25):
                    handle.add_item(GUILD, "D1F", f"w{worker}-{n}", force=True)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=add, args=(handles[w % 2], w)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        expected = sorted(f"w{w}-{n}" for w in range(4) for n in range(25))
        for handle in (store, reopen()):
            assert sorted(handle.get_inventory(GUILD, "D1F").items) == expected

    def test_a_caught_nested_failure_is_undone_alone(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F")
        with store.transaction():
            store.add_item(GUILD, "D1F", "kept")
            with pytest.raises(RuntimeError), store.transaction():
                store.add_item(GUILD, "D1F", "undone")
                store.create_tribute(GUILD, "D2F")
                store.add_file(GUILD, "D1F", "undone.png", PNG)
                raise RuntimeError("inner block only")
            store.set_prompt(GUILD, "D1F", "kept too")
        for handle in (store, reopen()):
            assert handle.get_inventory(GUILD, "D1F").items == ["kept"]
            assert not handle.has_tribute(GUILD, "D2F")
            assert handle.list_files(GUILD, "D1F") == []
            assert handle.get_prompt(GUILD, "D1F").message == "kept too"
        assert store.check() == []

    def test_failed_transaction_restores_a_deleted_tribute_and_its_files(
        self, store: TributeStore, reopen: Reopen
    ) -> None:
        store.create_tribute(GUILD, "D1F", name="K")
        store.add_item(GUILD, "D1F", "Knife")
        store.add_file(GUILD, "D1F", "face.png", PNG)
        store.set_prompt(GUILD, "D1F", "go", files=["face.png"])
        before = store.export_tribute(GUILD, "D1F")
        with pytest.raises(RuntimeError), store.transaction():
            store.delete_tribute(GUILD, "D1F")
            store.create_tribute(GUILD, "D1F", name="impostor")
            store.add_file(GUILD, "D1F", "face.png", b"other bytes")
            raise RuntimeError("boom")
        for handle in (store, reopen()):
            assert handle.export_tribute(GUILD, "D1F") == before
            assert handle.read_file(GUILD, "D1F", "face.png") == PNG
            assert handle.check() == []

    def test_failed_transaction_keeps_replaced_and_deleted_files(
        self, store: TributeStore, reopen: Reopen
    ) -> None:
        store.create_tribute(GUILD, "D1F")
        store.add_file(GUILD, "D1F", "a.bin", b"one")
        store.add_file(GUILD, "D1F", "b.bin", b"two")
        with pytest.raises(RuntimeError), store.transaction():
            store.add_file(GUILD, "D1F", "a.bin", b"replaced", replace=True)
            store.delete_file(GUILD, "D1F", "b.bin")
            raise RuntimeError("boom")
        for handle in (store, reopen()):
            assert handle.read_file(GUILD, "D1F", "a.bin") == b"one"
            assert handle.read_file(GUILD, "D1F", "b.bin") == b"two"
            assert handle.counts().files == 2

    def test_snapshot_is_reentrant_and_joins_a_transaction(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F")
        with store.snapshot(), store.snapshot():
            assert store.get_inventory(GUILD, "D1F").items == []
        with store.transaction():
            store.add_item(GUILD, "D1F", "a")
            with store.snapshot():
                assert store.get_inventory(GUILD, "D1F").items == ["a"]
                assert [h.item for h in store.search_items("a", guild_id=GUILD)] == ["a"]
        assert store.get_inventory(GUILD, "D1F").items == ["a"]

    def test_transaction_commits_all(self, store: TributeStore, reopen: Reopen) -> None:
        with store.transaction():
            store.create_tribute(GUILD, "D1F")
            with store.transaction():
                store.add_item(GUILD, "D1F", "a")
            store.add_item(GUILD, "D1F", "b")
            assert store.get_inventory(GUILD, "D1F").items == ["a", "b"]
        assert reopen().get_inventory(GUILD, "D1F").items == ["a", "b"]

    def test_failed_operation_inside_transaction_keeps_earlier_writes_until_rollback(
        self, store: TributeStore
    ) -> None:
        store.create_tribute(GUILD, "D1F")
        with store.transaction():
            store.add_item(GUILD, "D1F", "a")
            with pytest.raises(NotFoundError):
                store.add_item(GUILD, "D9F", "b")
        assert store.get_inventory(GUILD, "D1F").items == ["a"]


class BundleTests(StoreFixtures):
    def _fill(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F", name="K", face_claim_url="https://x/y.png")
        store.add_item(GUILD, "D1F", "Knife")
        store.add_item(GUILD, "D1F", "Bow", equipped=True)
        store.set_capacity(GUILD, "D1F", capacity=12)
        store.add_file(GUILD, "D1F", "p.png", PNG, kind="prompt_image")
        store.set_prompt(GUILD, "D1F", "go", channel_id=5, files=["p.png", "missing.png"])

    def test_export_import_round_trip(self, store: TributeStore, reopen: Reopen) -> None:
        self._fill(store)
        bundle = store.export_tribute(GUILD, "D1F")
        data = {f.name: store.read_file(GUILD, "D1F", f.name) for f in bundle.files}
        store.delete_tribute(GUILD, "D1F")
        assert store.import_tribute(bundle, data)
        again = reopen()
        assert again.export_tribute(GUILD, "D1F") == bundle
        assert again.read_file(GUILD, "D1F", "p.png") == PNG
        assert list(again.iter_bundles()) == [bundle]

    def test_conflicts(self, store: TributeStore) -> None:
        self._fill(store)
        bundle = store.export_tribute(GUILD, "D1F")

        def read(info: FileInfo) -> bytes:
            return store.read_file(info.guild_id, info.tribute_id, info.name)

        data = {f.name: read(f) for f in bundle.files}
        with pytest.raises(AlreadyExistsError):
            store.import_tribute(bundle, data)
        assert store.import_tribute(bundle, data, on_conflict="skip") is False
        store.add_item(GUILD, "D1F", "extra")
        assert store.import_tribute(bundle, data, on_conflict="overwrite") is True
        assert store.export_tribute(GUILD, "D1F") == bundle

    def test_import_checks_bytes_and_ownership(self, store: TributeStore) -> None:
        self._fill(store)
        bundle = store.export_tribute(GUILD, "D1F")
        store.delete_tribute(GUILD, "D1F")
        with pytest.raises(InvalidInputError, match=r"p\.png"):
            store.import_tribute(bundle, {"p.png": b"tampered"})
        assert not store.has_tribute(GUILD, "D1F")
        stolen = bundle.model_copy(update={"inventory": bundle.inventory.model_copy(update={"guild_id": 9})})
        with pytest.raises(InvalidInputError, match="guild"):
            store.import_tribute(stolen, {"p.png": PNG})
        twice = bundle.model_copy(update={"files": [*bundle.files, *bundle.files]})
        with pytest.raises(InvalidInputError, match=r"'p\.png' listed twice"):
            store.import_tribute(twice, {"p.png": PNG})
        with pytest.raises(InvalidInputError, match=r"'p\.png' listed twice"):
            store.import_many([twice], {"p.png": PNG})
        assert store.counts().tributes == 0
        assert store.check() == []

    def test_import_refuses_what_is_not_a_bundle_or_its_bytes(self, store: TributeStore) -> None:
        """Every bad argument is an :class:`InvalidInputError` naming it, and nothing is written."""
        self._fill(store)
        bundle = store.export_tribute(GUILD, "D1F")
        store.delete_tribute(GUILD, "D1F")
        calls: list[tuple[Callable[[], object], str]] = [
            (lambda: store.import_tribute({"a": 1}, {}), "TributeBundle"),  # type: ignore[arg-type]
            (lambda: store.import_many([{"a": 1}], {}), "TributeBundle"),  # type: ignore[list-item]
            (lambda: store.import_many(None, {}), "bundles"),  # type: ignore[arg-type]
            (lambda: store.import_tribute(bundle, {}), r"'p\.png'.*no bytes given"),
            (lambda: store.import_tribute(bundle, {"p.png": "text"}), "must be bytes"),  # type: ignore[dict-item]
            (lambda: store.import_tribute(bundle, {"p.png": PNG}, on_conflict="bogus"), "on_conflict"),  # type: ignore[arg-type]
            (lambda: store.read_bundle_file(None), "FileInfo"),  # type: ignore[arg-type]
            (lambda: store.bulk_import("many"), "count"),  # type: ignore[arg-type]
        ]
        for call, message in calls:
            with pytest.raises(InvalidInputError, match=message):
                call()
        assert store.counts().tributes == 0

    def test_export_from_one_handle_imports_through_another(
        self, store: TributeStore, reopen: Reopen
    ) -> None:
        self._fill(store)
        other = reopen()
        bundle = other.export_tribute(GUILD, "D1F")
        data = {info.name: other.read_bundle_file(info) for info in bundle.files}
        store.delete_tribute(GUILD, "D1F")
        store.import_tribute(bundle, data)
        assert reopen().export_tribute(GUILD, "D1F") == bundle
        assert reopen().read_file(GUILD, "D1F", "p.png") == PNG

    def test_iter_bundles_and_read_bundle_file(self, store: TributeStore) -> None:
        self._fill(store)
        store.create_tribute(OTHER_GUILD, "A1")
        bundles = list(store.iter_bundles())
        assert [b.tribute.key for b in bundles] == [(GUILD, "D1F"), (OTHER_GUILD, "A1")]
        assert bundles[0] == store.export_tribute(GUILD, "D1F")
        assert [store.read_bundle_file(info) for info in bundles[0].files] == [PNG]
        assert [b.tribute.key for b in store.iter_bundles(OTHER_GUILD)] == [(OTHER_GUILD, "A1")]

    def test_import_many_round_trip(self, store: TributeStore, reopen: Reopen) -> None:
        self._fill(store)
        store.create_tribute(OTHER_GUILD, "A1", name="other")
        store.add_file(OTHER_GUILD, "A1", "a.mp3", b"ID3audio")
        bundles = list(store.iter_bundles())
        data = {
            (i.guild_id, i.tribute_id, i.name): store.read_bundle_file(i) for b in bundles for i in b.files
        }
        store.delete_tribute(GUILD, "D1F")
        store.add_item(OTHER_GUILD, "A1", "overwritten")
        store.import_many(bundles, lambda info: data[(info.guild_id, info.tribute_id, info.name)])
        again = reopen()
        assert list(again.iter_bundles()) == bundles
        assert again.read_file(OTHER_GUILD, "A1", "a.mp3") == b"ID3audio"
        assert again.read_file(GUILD, "D1F", "p.png") == PNG
        assert again.check() == []

    def test_import_many_is_one_transaction(self, store: TributeStore, reopen: Reopen) -> None:
        self._fill(store)
        store.create_tribute(OTHER_GUILD, "A1")
        bundles = list(store.iter_bundles())
        store.add_item(GUILD, "D1F", "kept")
        store.delete_tribute(OTHER_GUILD, "A1")
        with pytest.raises(InvalidInputError, match=r"p\.png"):
            store.import_many(bundles, {"p.png": b"tampered"})
        again = reopen()
        assert again.get_inventory(GUILD, "D1F").items == ["Knife", "kept"]
        assert not again.has_tribute(OTHER_GUILD, "A1")

    def test_counts(self, store: TributeStore) -> None:
        self._fill(store)
        store.create_tribute(OTHER_GUILD, "A1")
        assert store.counts() == Counts(guilds=2, tributes=2, items=1, equipped=1, prompts=1, files=1)


class ContractTests(StoreFixtures):
    """What :mod:`tributestore.backend` promises, seen through ``store.backend``."""

    def test_backend_satisfies_the_public_contract(self, store: TributeStore) -> None:
        backend = store.backend
        assert isinstance(backend, Backend)
        assert isinstance(backend.url, str) and store.url == backend.url
        assert backend.read_only is False and store.read_only is False
        assert isinstance(backend.warnings, Sequence)
        assert isinstance(backend.ephemeral, bool)
        assert backend.created is None or isinstance(backend.created, str)
        details = store.details()
        assert all(isinstance(k, str) and isinstance(v, int) for k, v in details.items())

    def test_absent_things_are_none(self, store: TributeStore) -> None:
        backend = store.backend
        assert backend.get_guild(GUILD) is None
        assert backend.get_tribute(GUILD, "D1F") is None
        assert backend.load(GUILD, "D1F") is None
        assert list(backend.iter_tributes(None)) == [] and list(backend.iter_documents(GUILD)) == []
        assert backend.counts() == Counts()

    def test_documents_read_back_as_saved(self, store: TributeStore, reopen: Reopen) -> None:
        store.create_tribute(GUILD, "D1F", name="K")
        store.add_item(GUILD, "D1F", "Knife")
        store.add_file(GUILD, "D1F", "p.png", PNG)
        store.set_prompt(GUILD, "D1F", "go", files=["p.png"])
        store.create_tribute(OTHER_GUILD, "A1")
        exported = [store.export_tribute(GUILD, "D1F"), store.export_tribute(OTHER_GUILD, "A1")]
        backend = reopen().backend
        assert [backend.load(*b.tribute.key) for b in exported] == exported
        assert list(backend.iter_documents(None)) == exported
        assert list(backend.iter_tributes(None)) == [b.tribute for b in exported]
        assert backend.get_tribute(GUILD, "D1F") == exported[0].tribute
        assert backend.read_file(exported[0].files[0]) == PNG

    def test_a_sound_store_checks_clean(self, store: TributeStore, reopen: Reopen) -> None:
        assert store.check() == []
        store.create_tribute(GUILD, "D1F")
        store.add_item(GUILD, "D1F", "Knife", equipped=True)
        store.add_file(GUILD, "D1F", "p.png", PNG)
        store.add_file(GUILD, "D1F", "q.png", PNG)
        store.set_prompt(GUILD, "D1F", "go", files=["p.png", "q.png"])
        store.create_tribute(GUILD, "D2F")
        store.add_file(GUILD, "D2F", "p.png", b"other")
        store.delete_file(GUILD, "D1F", "q.png")
        store.delete_tribute(GUILD, "D2F")
        assert store.check() == []
        assert reopen().check() == []

    def test_present_tells_which_tributes_exist(self, store: TributeStore) -> None:
        store.create_tribute(GUILD, "D1F")
        store.create_tribute(OTHER_GUILD, "D2F")
        asked = [(GUILD, "D1F"), (GUILD, "d2f"), (OTHER_GUILD, "D2F"), (OTHER_GUILD, "D1F"), (GUILD, "D9M")]
        assert store.present(asked) == {(GUILD, "D1F"), (OTHER_GUILD, "D2F")}
        assert store.present([]) == set()
        with store.transaction():  # this thread's own writes are seen
            store.create_tribute(GUILD, "D3M")
            store.delete_tribute(GUILD, "D1F")
            assert store.present([(GUILD, "D3M"), (GUILD, "D1F")]) == {(GUILD, "D3M")}

    def test_what_a_read_returns_is_the_callers_own(self, store: TributeStore, reopen: Reopen) -> None:
        """Changing a returned model changes nothing stored (a backend handing out its own
        objects let a caller add items past every check)."""
        store.create_tribute(GUILD, "D1F", name="Glimmer")
        store.add_item(GUILD, "D1F", "Rope")
        store.get_inventory(GUILD, "D1F").items.append("Stolen sword")
        store.export_tribute(GUILD, "D1F").inventory.items.append("Stolen bow")
        next(iter(store.iter_bundles())).inventory.equipped.append("Stolen shield")
        for handle in (store, reopen()):
            assert handle.get_inventory(GUILD, "D1F").items == ["Rope"]
            assert handle.get_inventory(GUILD, "D1F").equipped == []
            assert handle.search_items("stolen") == []

    @pytest.mark.parametrize(
        "text", ["Ame\u0301lie", "cafe\u0301", "\u212b", "\ufb01re", "e\u0301\u0301", "\u1e9b\u0323"]
    )
    def test_text_is_kept_exactly_as_given(self, store: TributeStore, reopen: Reopen, text: str) -> None:
        """No Unicode normalisation: decomposed and compatibility characters come back as given."""
        store.create_tribute(GUILD, "D1F", name=text)
        store.add_item(GUILD, "D1F", text)
        store.set_prompt(GUILD, "D1F", text)
        store.add_file(GUILD, "D1F", text + ".png", PNG)
        for handle in (store, reopen()):
            assert handle.get_tribute(GUILD, "D1F").name == text
            assert handle.get_inventory(GUILD, "D1F").items == [text]
            assert handle.get_prompt(GUILD, "D1F").message == text
            assert [f.name for f in handle.list_files(GUILD, "D1F")] == [text + ".png"]
            assert [hit.item for hit in handle.search_items(text)] == [text]

    def test_close_is_idempotent(self, reopen: Reopen) -> None:
        handle = reopen()
        handle.close()
        handle.close()

    def test_a_closed_store_raises_storage_error_for_reads_writes_and_check(self, reopen: Reopen) -> None:
        """After ``close()`` every call raises :class:`StorageError`; ``check()`` too (a closed
        handle is the caller's mistake, not a problem of the data to list)."""
        handle = reopen()
        handle.create_tribute(GUILD, "D1F")
        handle.close()
        calls: list[Callable[[], object]] = [
            lambda: handle.get_tribute(GUILD, "D1F"),
            lambda: list(handle.iter_tributes()),
            lambda: handle.add_item(GUILD, "D1F", "Rope"),
            handle.counts,
            handle.check,
        ]
        for call in calls:
            with pytest.raises(StorageError):
                call()

    def test_tombstones_when_offered(self, store: TributeStore, reopen: Reopen) -> None:
        backend = store.backend
        if not isinstance(backend, Tombstones):
            assert not store.supports_tombstones
            assert store.tombstone_count() == 0 and not store.is_tombstoned(GUILD, "D1F")
            return
        assert store.supports_tombstones and store.tombstone_count() == 0
        with pytest.raises(RuntimeError), store.transaction():
            backend.put_tombstone(GUILD, "D1F", "legacy-1")
            raise RuntimeError("boom")
        assert store.tombstone_count() == 0 and not store.has_origin_tombstone("legacy-1")
        with store.transaction():
            backend.put_tombstone(GUILD, "D1F", "legacy-1")
            backend.put_tombstone(GUILD, "D2F", None)
        again = reopen()
        assert again.tombstone_count() == 2
        if isinstance(again.backend, TombstoneListing):  # listed, so a copy carries them
            assert again.list_tombstones() == [(GUILD, "D1F", "legacy-1"), (GUILD, "D2F", None)]
        else:
            assert again.list_tombstones() is None
        assert again.is_tombstoned(GUILD, "D1F") and again.is_tombstoned(GUILD, "D2F")
        assert again.is_tombstoned(OTHER_GUILD, "X", origin_key="legacy-1")
        assert not again.is_tombstoned(GUILD, "D3F") and not again.has_origin_tombstone("legacy-2")


class _ChangeRecorder:
    """A plugin object recording ``tributestore_transaction_committed`` calls."""

    def __init__(self) -> None:
        self.seen: list[Changes] = []

    @hookimpl
    def tributestore_transaction_committed(self, store: TributeStore, changes: Changes) -> None:
        self.seen.append(changes)


class ChangeTests(StoreFixtures):
    """The ``transaction_committed`` hook reports what the backend really holds, before and after."""

    @pytest.fixture
    def watched(self, store: TributeStore) -> tuple[TributeStore, list[Changes]]:
        recorder = _ChangeRecorder()
        manager = pluggy.PluginManager(PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        manager.register(recorder)
        return TributeStore(store.backend, hooks=PluginHooks(manager)), recorder.seen

    def test_each_change_holds_the_documents_before_and_after(
        self, watched: tuple[TributeStore, list[Changes]]
    ) -> None:
        store, seen = watched
        store.create_tribute(GUILD, "D1F")
        created = store.export_tribute(GUILD, "D1F")
        store.add_item(GUILD, "D1F", "Knife")
        store.add_file(GUILD, "D1F", "p.png", PNG)
        final = store.export_tribute(GUILD, "D1F")
        store.delete_tribute(GUILD, "D1F")
        changes = [c.tributes for c in seen]
        assert [[(t.kind, t.guild_id, t.tribute_id) for t in c] for c in changes] == [
            [("created", GUILD, "D1F")],
            [("updated", GUILD, "D1F")],
            [("updated", GUILD, "D1F")],
            [("deleted", GUILD, "D1F")],
        ]
        assert changes[0][0].before is None and changes[0][0].after == created
        assert changes[1][0].before == created
        assert changes[1][0].after is not None and changes[1][0].after.inventory.items == ["Knife"]
        assert changes[2][0].before == changes[1][0].after and changes[2][0].after == final
        assert changes[3][0].before == final and changes[3][0].after is None
        assert dict(seen[0].guilds).keys() == {GUILD}

    def test_one_report_per_outermost_transaction_and_none_for_failures(
        self, watched: tuple[TributeStore, list[Changes]]
    ) -> None:
        store, seen = watched
        store.create_tribute(GUILD, "D1F")
        seen.clear()
        with store.transaction():
            store.add_item(GUILD, "D1F", "a")
            store.create_tribute(GUILD, "D2F")
            with store.transaction():
                store.add_item(GUILD, "D1F", "b")
        assert len(seen) == 1
        d1f, d2f = seen[0].tributes
        assert (d1f.kind, d2f.kind) == ("updated", "created")
        assert d1f.before is not None and d1f.before.inventory.items == []
        assert d1f.after == store.export_tribute(GUILD, "D1F")
        with pytest.raises(RuntimeError), store.transaction():
            store.add_item(GUILD, "D1F", "lost")
            raise RuntimeError("boom")
        with pytest.raises(NotFoundError):
            store.add_item(GUILD, "D9F", "x")
        with store.transaction():
            store.get_inventory(GUILD, "D1F")
        assert len(seen) == 1


_ids = st.from_regex(r"[A-Z0-9][A-Z0-9_-]{0,10}", fullmatch=True)
_text = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
_items = st.lists(_text.filter(lambda s: s.strip() != ""), max_size=12)
_snowflakes = st.integers(min_value=0, max_value=2**63 - 1)
_times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1))


class PropertyTests(StoreFixtures):
    @settings(
        max_examples=25,
        deadline=None,
        # One mixin method runs for every backend class, hence differing executors;
        # each example cleans up after itself, hence the function-scoped fixtures are safe.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        guild_id=_snowflakes,
        tribute_id=_ids,
        name=st.none() | _text,
        user_id=st.none() | _snowflakes,
        items=_items,
        equipped=_items,
        capacity=st.integers(min_value=0, max_value=1000),
        message=_text,
        created_at=_times,
        data=st.binary(max_size=200),
    )
    def test_round_trip(
        self,
        store: TributeStore,
        reopen: Reopen,
        guild_id: int,
        tribute_id: str,
        name: str | None,
        user_id: int | None,
        items: list[str],
        equipped: list[str],
        capacity: int,
        message: str,
        created_at: datetime,
        data: bytes,
    ) -> None:
        store.create_tribute(guild_id, tribute_id, name=name, user_id=user_id, created_at=created_at)
        try:
            store.set_capacity(guild_id, tribute_id, capacity=capacity)
            for item in items:
                store.add_item(guild_id, tribute_id, item, force=True)
            for item in equipped:
                store.add_item(guild_id, tribute_id, item, equipped=True, force=True)
            store.add_file(guild_id, tribute_id, "blob.bin", data)
            store.set_prompt(guild_id, tribute_id, message, files=["blob.bin"])
            expected = store.export_tribute(guild_id, tribute_id)
            again = reopen()
            assert again.export_tribute(guild_id, tribute_id) == expected
            assert expected.inventory.items == items and expected.inventory.equipped == equipped
            assert expected.tribute.name == name
            assert again.read_file(guild_id, tribute_id, "blob.bin") == data
            for position, item in enumerate(items, start=1):
                hits = again.search_items(item, guild_id=guild_id)
                assert any(h.slot == "items" and h.number == position for h in hits)
        finally:
            store.delete_tribute(guild_id, tribute_id)


def _files_near(store_url: str) -> list[str] | None:
    """Every path under the nearest existing folder of a URL naming a local path (``None``
    for one that names none, a server's database)."""
    try:
        path = parse_store_url(store_url).local_path()
    except Exception:  # noqa: BLE001 - a URL of no local path
        return None
    if not Path(parse_store_url(store_url).path).is_absolute():  # never a walk of the working directory
        return None
    top = path if path.is_dir() else path.parent
    while not top.exists() and top != top.parent:
        top = top.parent
    return sorted(str(p) for p in top.rglob("*")) if top != top.parent else None


class OpenModeTests(StoreFixtures):
    """Reading never creates: ``mode="read"`` refuses a store that does not exist yet."""

    def test_read_mode_refuses_a_store_that_does_not_exist(self, store_url: str) -> None:
        before = _files_near(store_url)
        with pytest.raises(StoreNotFoundError):
            open_store(store_url, mode="read")
        with pytest.raises(StoreNotFoundError):  # and the refusal created nothing
            open_store(store_url, mode="read")
        assert _files_near(store_url) == before, "a refused read-mode open created files"

    def test_write_mode_creates_then_read_mode_opens(self, store_url: str) -> None:
        with open_store(store_url) as created:
            created.create_tribute(GUILD, "D1F")
            assert created.created is not None
        with open_store(store_url, mode="read") as opened:
            assert opened.has_tribute(GUILD, "D1F")
            assert opened.created is None


class ConformanceSuite(
    OpenModeTests,
    ContractTests,
    GuildTests,
    TributeTests,
    InventoryTests,
    PromptTests,
    FileTests,
    SearchTests,
    TransactionTests,
    BundleTests,
    ChangeTests,
    PropertyTests,
):
    """Every conformance test; subclass it and provide ``store_url``."""
