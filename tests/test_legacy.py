"""The legacy THGBot reader on real directories: one test per variant of the format notes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tributestore import TributeStore, open_store
from tributestore.backend import Backend, BulkImport, ForeignSource, Tombstones
from tributestore.backends.thgbot_backend.make_sample import (
    G1,
    G2,
    G3,
    TINY_JPEG,
    tiny_png,
    write_sample,
)
from tributestore.backends.thgbot_backend.plugin import sample_directory
from tributestore.backends.thgbot_backend.store import ThgbotBackend, looks_like_legacy, open_legacy_store
from tributestore.errors import (
    LegacyFormatError,
    NotFoundError,
    ReadOnlyStoreError,
    StoreNotFoundError,
    TributeStoreError,
)
from tributestore.urls import parse_store_url

#: Selected by the tox factor json (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("json")

GA = 1395951775160340551
GB = 1402233445566778899
PNG = tiny_png(1, 2, 3)
SAMPLE = Path(str(sample_directory()))


# ---------------------------------------------------------------- helpers
def write(root: Path, rel: str, content: Any) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content, indent=4))
    return path


def make_db(root: Path, script: str, rows: dict[str, list[tuple[Any, ...]]] | None = None) -> Path:
    path = root / "thgbot.db"
    conn = sqlite3.connect(path)
    conn.executescript(script)
    for table, values in (rows or {}).items():
        marks = ", ".join("?" * len(values[0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    conn.commit()
    conn.close()
    return path


TRIBUTES_TABLE = (
    "CREATE TABLE tributes (tribute_id TEXT UNIQUE, tribute_name TEXT, user_id INTEGER, user_mention TEXT,"
    " guild_id INTEGER, created_at INTEGER, face_claim_url TEXT, prompt_channel_id INTEGER);"
)


def open_dir(root: Path) -> TributeStore:
    return open_legacy_store(parse_store_url(f"thgbot:///{root}"))


def legacy(
    root: Path,
    inventories: Any = None,
    prompts: Any = None,
    config: Any = None,
    images: dict[int, dict[str, bytes]] | None = None,
) -> TributeStore:
    if inventories is not None:
        write(root, "inventories/inventories.json", inventories)
    if prompts is not None:
        write(root, "prompts/prompt_info.json", prompts)
    if config is not None:
        write(root, "config/config.json", config)
    for gid, files in (images or {}).items():
        for name, data in files.items():
            write(root, f"prompt_images/{gid}/{name}", data)
    return open_dir(root)


def one_guild() -> dict[str, Any]:
    return {str(GA): {"log_channel_id": None, "category_id": None}}


def fails(root: Path, *parts: str) -> str:
    with pytest.raises(LegacyFormatError) as caught:
        open_dir(root)
    message = str(caught.value)
    for part in parts:
        assert part in message, message
    return message


# ------------------------------------------------------------- detection
@pytest.mark.parametrize(
    "marker",
    [
        "inventories/inventories.json",
        "prompts/prompt_info.json",
        "config/config.json",
        "config.json",
        "thgbot.db",
    ],
)
def test_looks_like_legacy_markers(tmp_path: Path, marker: str) -> None:
    assert not looks_like_legacy(tmp_path)
    write(tmp_path, marker, "{}")
    assert looks_like_legacy(tmp_path)
    write(tmp_path, "tributestore.json", "{}")
    assert not looks_like_legacy(tmp_path)
    assert not looks_like_legacy(tmp_path / "tributestore.json")
    assert not looks_like_legacy(tmp_path / "nowhere")


def test_store_is_read_only(tmp_path: Path) -> None:
    store = legacy(
        tmp_path, inventories={"D1F": {"capacity": 10, "items": {"1": "Knife"}}}, config=one_guild()
    )
    assert store.read_only
    with store.transaction(), store.transaction():
        pass
    attempts = [
        lambda: store.put_guild(GA),
        lambda: store.create_tribute(GA, "D2F"),
        lambda: store.update_tribute(GA, "D1F", name="x"),
        lambda: store.delete_tribute(GA, "D1F"),
        lambda: store.add_item(GA, "D1F", "Rope"),
        lambda: store.remove_item(GA, "D1F", 1),
        lambda: store.set_prompt(GA, "D1F", "hi"),
        lambda: store.add_file(GA, "D1F", "a.png", PNG),
        # the backend itself refuses too, naming its URL, whoever calls it
        lambda: store.backend.save(store.export_tribute(GA, "D1F"), {}, None),
        lambda: store.backend.delete(GA, "D1F"),
        lambda: store.backend.put_guild(store.get_guild(GA)),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            attempt()
    with pytest.raises(ReadOnlyStoreError) as caught:
        store.backend.delete(GA, "D1F")
    assert f"thgbot:///{tmp_path}" in str(caught.value)
    assert store.get_inventory(GA, "D1F").items == ["Knife"]


def test_thgbot_url_opens_it_read_only(tmp_path: Path) -> None:
    write(tmp_path, "inventories/inventories.json", {"D1F": {"capacity": 10, "items": {"1": "Knife"}}})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for mode in ("read", "write"):
        with open_store(f"thgbot:///{tmp_path}", mode=mode) as store:
            assert isinstance(store.backend, ThgbotBackend)
            assert isinstance(store.backend, Backend) and isinstance(store.backend, ForeignSource)
            assert not isinstance(store.backend, Tombstones | BulkImport)
            assert store.origin_key(0, "D1F") == "thgbot-legacy:D1F"
            assert store.origin_key(0, "D2F") is None
            assert store.read_only
            assert store.created is None
            assert store.get_inventory(0, "D1F").items == ["Knife"]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "tributestore.json").exists()


@pytest.mark.parametrize("mode", ["read", "write"])
def test_json_url_of_a_legacy_directory_names_the_thgbot_url(tmp_path: Path, mode: str) -> None:
    """Decision: json:/// no longer opens a legacy directory; the error names the URL that does."""
    root = tmp_path / "config"
    write(root, "inventories/inventories.json", {"D1F": {"capacity": 10, "items": {"1": "Knife"}}})
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(TributeStoreError) as caught:
        open_store(f"json:///{root}", mode=mode)
    message = str(caught.value)
    assert "\n" not in message
    assert f"open it read-only as thgbot:///{root}" in message, message
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing created


def test_hint_keeps_the_legacy_options_and_a_relative_path(tmp_path: Path) -> None:
    from tributestore.backends.thgbot_backend.plugin import hint_for

    write(tmp_path / "config", "config.json", {"guild_id": GA})
    url = parse_store_url("json:///config?guild=5&timeout=3", base_dir=tmp_path)
    assert hint_for(url) == (
        "it is a legacy THGBot data directory: open it read-only as thgbot:///config?guild=5"
    )
    assert hint_for(parse_store_url("thgbot:///config", base_dir=tmp_path)) is None
    assert hint_for(parse_store_url("json:///elsewhere", base_dir=tmp_path)) is None
    write(tmp_path / "config", "tributestore.json", "{}")  # a JSON store is never a legacy one
    assert hint_for(url) is None


def test_not_a_directory(tmp_path: Path) -> None:
    # Missing: StoreNotFoundError in either mode (the backend never creates anything).
    with pytest.raises(StoreNotFoundError, match="does not exist; nothing was created"):
        open_dir(tmp_path / "missing")
    with pytest.raises(StoreNotFoundError, match="does not exist; nothing was created"):
        open_legacy_store(parse_store_url(f"thgbot:///{tmp_path}/missing", mode="write"))
    assert not (tmp_path / "missing").exists()
    write(tmp_path, "file", "x")
    with pytest.raises(LegacyFormatError, match="not a directory"):
        open_legacy_store(parse_store_url(f"thgbot:///{tmp_path}/file", mode="read"))


def test_read_mode_refuses_a_missing_directory_creating_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="nothing was created"):
        open_store(f"thgbot:///{tmp_path}/missing", mode="read")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [{}, {"tributestore.json": "{}", "config.json": "{}"}])
def test_a_directory_without_legacy_files_is_refused(tmp_path: Path, content: dict[str, str]) -> None:
    for rel, text in content.items():
        write(tmp_path, rel, text)
    write(tmp_path, "prompt_images/D1F.png", PNG)
    with pytest.raises(StoreNotFoundError, match="is not a legacy THGBot data directory"):
        open_store(f"thgbot:///{tmp_path}")


# ---------------------------------------------------------------- config
def test_config_per_guild(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        config={
            str(GA): {"log_channel_id": 11, "category_id": None},
            str(GB): {"log_channel_id": None, "category_id": "22", "colour": "red"},
        },
    )
    assert [g.guild_id for g in store.list_guilds()] == [GA, GB]
    assert store.get_guild(GA).log_channel_id == 11
    assert store.get_guild(GB).category_id == 22
    assert any(w.startswith(f'config/config.json ["{GB}"]["colour"]') for w in store.warnings)


def test_config_very_old_flat(tmp_path: Path) -> None:
    write(
        tmp_path,
        "config.json",
        {"log_channel_id": 5, "category_id": None, "guild_id": GA, "gm_id": 7, "admin_id": 8},
    )
    store = open_dir(tmp_path)
    assert store.list_guilds() == [store.get_guild(GA)]
    guild = store.get_guild(GA)
    assert (guild.log_channel_id, guild.category_id, guild.gm_id, guild.admin_id) == (5, None, 7, 8)


def test_config_both_files_merge(tmp_path: Path) -> None:
    write(tmp_path, "config.json", {"log_channel_id": 5, "guild_id": GA, "gm_id": 7})
    write(tmp_path, "config/config.json", {str(GA): {"log_channel_id": 6}, str(GB): {}})
    store = open_dir(tmp_path)
    guild = store.get_guild(GA)
    assert (guild.log_channel_id, guild.gm_id) == (6, 7)
    assert any("config.json" in w and "log_channel_id" in w and "differs" in w for w in store.warnings)
    assert store.get_guild(GB).log_channel_id is None


@pytest.mark.parametrize(
    ("config", "parts"),
    [
        ({"log_channel_id": 5}, ["config.json", "neither"]),
        ([1, 2], ["config.json", "must be a JSON object"]),
        ({str(GA): {"log_channel_id": "general"}}, ["config.json", f'["{GA}"]["log_channel_id"]', "general"]),
        ({"guild_id": None}, ["config.json", '["guild_id"]']),
    ],
)
def test_config_errors(tmp_path: Path, config: Any, parts: list[str]) -> None:
    write(tmp_path, "config/config.json", config)
    fails(tmp_path, *parts)


# ----------------------------------------------------------- inventories
def test_inventory_defaults_when_capacity_and_equipped_missing(tmp_path: Path) -> None:
    store = legacy(tmp_path, inventories={"D1F": {"items": {"1": "Bread"}}}, config=one_guild())
    inventory = store.get_inventory(GA, "D1F")
    assert (inventory.capacity, inventory.equipped_capacity) == (10, 5)
    assert (inventory.items, inventory.equipped) == (["Bread"], [])


def test_inventory_keeps_equipped_and_soft_capacity(tmp_path: Path) -> None:
    items = {str(n): f"Pebble {n}" for n in range(1, 13)}
    store = legacy(
        tmp_path,
        inventories={
            "D1F": {"capacity": 10, "items": items, "equipped_capacity": 2, "equipped": {"1": "Knife"}}
        },
        config=one_guild(),
    )
    inventory = store.get_inventory(GA, "D1F")
    assert len(inventory.items) == 12 and inventory.capacity == 10
    assert (inventory.equipped, inventory.equipped_capacity) == (["Knife"], 2)
    assert store.warnings == []


def test_item_order_is_numeric_and_gaps_renumbered(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={"D2F": {"items": {"10": "ten", "9": "nine", "1": "one", "2": "two", "5": "five"}}},
        config=one_guild(),
    )
    assert store.get_inventory(GA, "D2F").items == ["one", "two", "five", "nine", "ten"]
    assert store.warnings == [
        'inventories/inventories.json ["D2F"]["items"]: item numbers 1, 2, 5, 9, 10 renumbered 1..5'
    ]


def test_no_warning_when_numbered_1_to_n_out_of_order(tmp_path: Path) -> None:
    items = {str(n): f"item {n}" for n in (10, 3, 1, 2, 4, 5, 6, 7, 8, 9)}
    store = legacy(tmp_path, inventories={"D2F": {"items": items}}, config=one_guild())
    assert store.get_inventory(GA, "D2F").items == [f"item {n}" for n in range(1, 11)]
    assert store.warnings == []


def test_non_numeric_item_key_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "inventories/inventories.json", {"d1f": {"items": {"1": "ok", "knife": "Knife"}}})
    fails(tmp_path, "inventories.json", '["d1f"]["items"]["knife"]', "decimal")


def test_case_colliding_keys_are_merged_without_loss(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={
            "d1f": {"capacity": 10, "items": {"1": "Meat", "2": "Canteen"}, "equipped": {"1": "Knife"}},
            "D1f": {"capacity": 14, "items": {"1": "Bow"}},
            "D1F": {
                "capacity": 12,
                "items": {"1": "Rope"},
                "equipped_capacity": 3,
                "equipped": {"1": "Spear"},
            },
        },
        config=one_guild(),
    )
    assert [t.tribute_id for t in store.iter_tributes()] == ["D1F"]
    inventory = store.get_inventory(GA, "D1F")
    # normalised key first, then the others in code-point order ("D1f" < "d1f")
    assert inventory.items == ["Rope", "Bow", "Meat", "Canteen"]
    assert inventory.equipped == ["Spear", "Knife"]
    assert (inventory.capacity, inventory.equipped_capacity) == (14, 5)
    assert len(store.warnings) == 1
    assert store.warnings[0].startswith("inventories/inventories.json [\"D1F\"]: keys 'D1F', 'D1f', 'd1f'")


def test_empty_inventory_and_tribute_known_nowhere_else(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={"D2M": {"capacity": 10, "items": {}, "equipped": {}}, "OLD1": {}},
        config=one_guild(),
    )
    assert [(t.tribute_id, t.name) for t in store.iter_tributes()] == [("D2M", None), ("OLD1", None)]
    assert store.get_inventory(GA, "OLD1").items == []
    with pytest.raises(NotFoundError):
        store.get_prompt(GA, "OLD1")


@pytest.mark.parametrize(
    ("inventories", "parts"),
    [
        ({"D1F": {"items": ["Knife"]}}, ['["D1F"]["items"]', "must be a JSON object", "a list"]),
        ({"D1F": {"capacity": "10"}}, ['["D1F"]["capacity"]', "must be an integer"]),
        ({"D1F": {"capacity": True}}, ['["D1F"]["capacity"]', "must be an integer"]),
        ({"D1F": {"equipped_capacity": -1}}, ['["D1F"]["equipped_capacity"]', "negative"]),
        ({"D1F": {"capacity": 10**9}}, ['["D1F"]', "capacity"]),
        ({"D1F": []}, ['["D1F"]', "an inventory must be a JSON object"]),
        ({"D1F": {"items": {"1": True}}}, ['["D1F"]["items"]["1"]', "must be text"]),
        ({"D1F": {"items": {"1": ["x"]}}}, ['["D1F"]["items"]["1"]', "must be text"]),
        ([], ["inventories.json", "must be a JSON object"]),
    ],
)
def test_inventory_format_errors_name_file_and_key(
    tmp_path: Path, inventories: Any, parts: list[str]
) -> None:
    write(tmp_path, "inventories/inventories.json", inventories)
    fails(tmp_path, "inventories.json", *parts)


@pytest.mark.parametrize(
    ("content", "part"),
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b'{"D1F": {"items": {"1": "Knife"}}', "invalid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
        (b'{"D1F": {}, "D1F": {"items": {}}}', "duplicate key 'D1F'"),
        (b'{"D1F": {"items": {"1": "a", "1": "b"}}}', "json: [\"D1F\"]: duplicate key '1'"),
        (b'{"D2M": {}, "D1F": {"message": "a", "message": "b"}}', "json: [\"D1F\"]: duplicate key 'message'"),
        (b"[" * 100000, "invalid JSON"),
    ],
)
def test_unreadable_json_is_a_legacy_format_error(tmp_path: Path, content: bytes, part: str) -> None:
    write(tmp_path, "inventories/inventories.json", content)
    fails(tmp_path, str(tmp_path / "inventories" / "inventories.json"), part)
    (tmp_path / "inventories" / "inventories.json").unlink()
    write(tmp_path, "prompts/prompt_info.json", content)
    fails(tmp_path, "prompt_info.json", part)


def test_unknown_inventory_field_is_a_warning(tmp_path: Path) -> None:
    store = legacy(tmp_path, inventories={"D1F": {"items": {}, "owner": "me"}}, config=one_guild())
    assert store.warnings == [
        'inventories/inventories.json ["D1F"]["owner"]: unknown inventory field, not migrated'
    ]


# --------------------------------------------------------------- prompts
def test_prompt_matched_by_exact_id_never_by_prefix(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={"D1F": {}, "D10F": {}},
        prompts={"D1": {"message": "for D1"}, "D10F": {"message": "for D10F"}},
        config=one_guild(),
    )
    assert [t.tribute_id for t in store.iter_tributes()] == ["D1", "D10F", "D1F"]
    assert store.get_prompt(GA, "D10F").message == "for D10F"
    assert store.get_prompt(GA, "D1").message == "for D1"
    with pytest.raises(NotFoundError):
        store.get_prompt(GA, "D1F")


@pytest.mark.parametrize(
    ("entry", "channel"),
    [
        ({"channel": "1395951855535788202"}, 1395951855535788202),
        ({"channel": 1395951855535788202}, 1395951855535788202),
        ({"channel": None}, None),
        ({"channel": 0}, None),
        ({"channel": "0"}, None),
        ({"channel": ""}, None),
        ({}, None),
    ],
)
def test_prompt_channel_variants(tmp_path: Path, entry: dict[str, Any], channel: int | None) -> None:
    store = legacy(tmp_path, prompts={"D7F": {"message": "m", **entry}}, config=one_guild())
    assert store.get_prompt(GA, "D7F").channel_id == channel


@pytest.mark.parametrize(
    ("entry", "parts"),
    [
        ({"channel": "general"}, ['["D7F"]["channel"]', "general"]),
        ({"channel": 1.5}, ['["D7F"]["channel"]']),
        ({"channel": -3}, ['["D7F"]["channel"]', "range"]),
        ({"message": 5}, ['["D7F"]["message"]', "must be text"]),
        ({"image": 5}, ['["D7F"]["image"]', "file name or a list"]),
        ({"image": ["a.png", 7]}, ['["D7F"]["image"][1]', "file name"]),
    ],
)
def test_prompt_format_errors(tmp_path: Path, entry: dict[str, Any], parts: list[str]) -> None:
    write(tmp_path, "prompts/prompt_info.json", {"D7F": entry})
    fails(tmp_path, "prompt_info.json", *parts)


def test_prompt_stubs(tmp_path: Path) -> None:
    store = legacy(tmp_path, prompts={"D2M": {}, "D3F": {"message": "\n\n..."}}, config=one_guild())
    stub = store.get_prompt(GA, "D2M")
    assert (stub.message, stub.channel_id, stub.files) == ("", None, [])
    assert store.get_prompt(GA, "D3F").message == "\n\n..."


def test_prompt_free_text_and_long_keys(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        prompts={"EVENT1": {"message": "feast"}, "FEAST_ANNOUNCEMENT": {}, "arena event": {"message": "x"}},
        config=one_guild(),
    )
    assert [t.tribute_id for t in store.iter_tributes()] == ["ARENA_EVENT", "EVENT1", "FEAST_ANNOUNCEMENT"]
    assert store.get_tribute(GA, "EVENT1").name is None


def test_prompt_case_collision_merged(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        prompts={"d5m": {"message": "old", "image": "a.png"}, "D5M": {"message": "new", "channel": "9"}},
        config=one_guild(),
        images={GA: {"a.png": PNG}},
    )
    prompt = store.get_prompt(GA, "D5M")
    assert (prompt.message, prompt.channel_id, prompt.files) == ("new", 9, ["a.png"])
    assert any("keys 'D5M', 'd5m'" in w for w in store.warnings)
    (kept,) = [f for f in store.list_files(GA, "D5M") if f.kind == "legacy_conflict"]
    document = json.loads(store.read_file(GA, "D5M", kept.name))
    assert document["source"] == 'prompts/prompt_info.json ["d5m"]'
    assert document["value"] == {"message": "old", "image": "a.png"}
    assert store.check() == [w for w in store.warnings if kept.name in w]


def test_prompt_image_variants(tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere", "D1F old.png", PNG)
    store = legacy(
        tmp_path,
        prompts={
            "D1F": {
                "image": [
                    "D1F_1770963114.png",
                    str(outside),
                    "/nonexistent/dir/D1F_1.png",
                    "SPOILER_D1F 6f.png",
                ]
            },
            "D1M": {"image": "D1M_1770963055.jpg"},
            "D2M": {"message": "no image"},
        },
        config=one_guild(),
        images={GA: {"D1F_1770963114.png": PNG, "D1M_1770963055.jpg": TINY_JPEG, "SPOILER_D1F 6f.png": PNG}},
    )
    prompt = store.get_prompt(GA, "D1F")
    assert prompt.files == ["D1F_1770963114.png", "D1F old.png", "D1F_1.png", "SPOILER_D1F 6f.png"]
    files = {info.name: info for info in store.list_files(GA, "D1F")}
    assert sorted(files) == ["D1F old.png", "D1F_1770963114.png", "SPOILER_D1F 6f.png"]
    info = files["D1F_1770963114.png"]
    assert (info.kind, info.media_type, info.size) == ("prompt_image", "image/png", len(PNG))
    assert info.sha256 == hashlib.sha256(PNG).hexdigest()
    assert info.created_at == datetime.fromtimestamp(1770963114, UTC)
    assert store.read_file(GA, "D1F", "D1F old.png") == PNG
    assert store.get_prompt(GA, "D1M").files == ["D1M_1770963055.jpg"]
    assert store.get_file(GA, "D1M", "D1M_1770963055.jpg").media_type == "image/jpeg"
    assert store.get_prompt(GA, "D2M").files == []
    assert store.warnings == [
        'prompts/prompt_info.json ["D1F"]["image"][2]: image \'/nonexistent/dir/D1F_1.png\' missing '
        "(looked for /nonexistent/dir/D1F_1.png); name kept in the prompt"
    ]


def test_paths_outside_the_data_directory_are_never_read(tmp_path: Path) -> None:
    secret = write(tmp_path, "secret.png", b"not yours")
    root = tmp_path / "legacy"
    (root / "prompt_images" / str(GA)).mkdir(parents=True)
    (root / "prompt_images" / str(GA) / "D1F_1700000000.png").symlink_to(secret)
    store = legacy(
        root,
        prompts={"D1F": {"image": [str(secret), "/etc/passwd", "D1F_1700000000.png"]}},
        config=one_guild(),
    )
    assert store.list_files(GA, "D1F") == []
    assert store.get_prompt(GA, "D1F").files == ["secret.png", "passwd", "D1F_1700000000.png"]
    outside = [w for w in store.warnings if "outside the data directory" in w]
    assert len(outside) == 4, outside
    assert any(w.startswith("prompt_images/") and "links outside" in w for w in outside)
    assert any(str(secret) in w for w in outside) and any("'/etc/passwd'" in w for w in outside)


def test_absolute_path_from_another_machine_falls_back_to_guild_folder(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        prompts={"D1F": {"image": f"/var/snap/thgbot/common/prompt_images/{GA}/D1F_5.png"}},
        config=one_guild(),
        images={GA: {"D1F_5.png": PNG}},
    )
    assert [f.name for f in store.list_files(GA, "D1F")] == ["D1F_5.png"]
    assert len(store.warnings) == 1 and "using prompt_images" in store.warnings[0]


def test_missing_relative_image_is_a_warning_and_kept(tmp_path: Path) -> None:
    store = legacy(tmp_path, prompts={"D3M": {"message": "x", "image": "D3M_1.png"}}, config=one_guild())
    assert store.get_prompt(GA, "D3M").files == ["D3M_1.png"]
    assert store.list_files(GA, "D3M") == []
    assert store.warnings == [
        f'prompts/prompt_info.json ["D3M"]["image"]: image \'D3M_1.png\' missing '
        f"(looked for prompt_images/{GA}/D3M_1.png); name kept in the prompt"
    ]


# ----------------------------------------------------------- image files
def test_a_symlink_inside_the_directory_is_an_image_of_its_own_name(tmp_path: Path) -> None:
    """The bot opened a symlink like any file and sent it under the link's name: a prompt listing
    an image and a link to it kept one name only (the link vanished from the prompt, no warning);
    a file renamed behind a link of its old name was dropped (its bytes were there already)."""
    folder = tmp_path / "prompt_images" / str(GA)
    folder.mkdir(parents=True)
    (folder / "D1M_1.png").write_bytes(PNG)
    (folder / "D1M_link.png").symlink_to("D1M_1.png")
    (folder / "real_upload.png").write_bytes(TINY_JPEG)
    (folder / "D2M_2.png").symlink_to("real_upload.png")  # renamed, the old name a link
    store = legacy(
        tmp_path,
        prompts={
            "D1M": {"message": "two", "image": ["D1M_1.png", "D1M_link.png"]},
            "D2M": {"message": "one", "image": "D2M_2.png"},
        },
        config=one_guild(),
    )
    assert store.get_prompt(GA, "D1M").files == ["D1M_1.png", "D1M_link.png"]
    assert store.read_file(GA, "D1M", "D1M_link.png") == PNG
    assert store.read_file(GA, "D2M", "D2M_2.png") == TINY_JPEG
    assert store.read_file(GA, "LEGACY_FILES", "real_upload.png") == TINY_JPEG  # every entry kept


def test_unreferenced_images_attach_by_name(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={"D1F": {}, "D10F": {}, "D1": {}},
        config=one_guild(),
        images={
            GA: {
                "D1F_1770963114.webm": b"\x1a\x45\xdf\xa3",
                "SPOILER_D1F 6f_SEVEN.png": PNG,
                "D10F_1771300000.png": PNG,
                "d1_1771300001.mp3": b"ID3",
                "ZZZ_1.png": PNG,
                "D1Fx.png": PNG,
            }
        },
    )
    assert [f.name for f in store.list_files(GA, "D1F")] == [
        "D1F_1770963114.webm",
        "SPOILER_D1F 6f_SEVEN.png",
    ]
    assert [f.name for f in store.list_files(GA, "D10F")] == ["D10F_1771300000.png"]
    assert [f.name for f in store.list_files(GA, "D1")] == ["d1_1771300001.mp3"]
    assert store.get_file(GA, "D1F", "D1F_1770963114.webm").media_type == "video/webm"
    assert all(f.kind == "prompt_image" for f in store.list_files(GA, "D1F"))
    assert [(f.name, f.kind) for f in store.list_files(GA, "LEGACY_FILES")] == [
        ("D1Fx.png", "legacy_unreferenced"),
        ("ZZZ_1.png", "legacy_unreferenced"),
    ]
    assert store.warnings == [
        f"prompt_images/{GA}/{name}: referenced by no tribute, its name names none; "
        f"kept as a file of tribute LEGACY_FILES of guild {GA}"
        for name in ("D1Fx.png", "ZZZ_1.png")
    ]


def test_odd_entries_in_prompt_images(tmp_path: Path) -> None:
    write(tmp_path, "prompt_images/stray.png", PNG)
    write(tmp_path, "prompt_images/old/D1F_1.png", PNG)
    write(tmp_path, f"prompt_images/{GA}/sub/D1F_2.png", PNG)
    store = legacy(tmp_path, inventories={"D1F": {}}, config=one_guild())
    # every file is kept: the single-guild era's loose one and those of folders the bot never made
    assert [f.name for f in store.list_files(GA, "D1F")] == ["D1F_1.png", "D1F_2.png"]
    assert [f.name for f in store.list_files(GA, "LEGACY_FILES")] == ["stray.png"]
    assert [w.split(":")[0] for w in store.warnings] == [
        f"prompt_images/{GA}/sub",
        "prompt_images/old",
        "prompt_images/stray.png",
    ]


# ------------------------------------------------------------ guild rules
def test_guild_assignment_rules(tmp_path: Path) -> None:
    make_db(
        tmp_path,
        TRIBUTES_TABLE,
        {
            "tributes": [
                ("D1F", "A", 1, "<@1>", GB, 1, None, None),
                ("D2F", "B", 2, "<@2>", None, 2, None, None),
            ]
        },
    )
    store = legacy(
        tmp_path,
        inventories={"D1F": {}, "D2F": {}, "D3F": {}, "D4F": {}},
        prompts={"D3F": {"image": "pic.png"}},
        config={str(GA): {}, str(GB): {}},
        images={GA: {"D1F_1.png": PNG, "D2F_1.png": PNG, "pic.png": PNG}},
    )
    placed = {t.tribute_id: t.guild_id for t in store.iter_tributes()}
    # thgbot.db guild > folder of its images > only config guild > 0
    assert placed == {"D1F": GB, "D2F": GA, "D3F": GA, "D4F": 0}
    assert [g.guild_id for g in store.list_guilds()] == [0, GA, GB]
    assert f"prompt_images/{GA}/D1F_1.png: named for tribute D1F of guild {GB}; attached to it" in (
        store.warnings
    )
    (problem,) = store.check()
    assert problem.startswith("guild assignment: 1 tribute(s) have no known guild") and "D4F" in problem
    assert store.details()["unassigned_tributes"] == 1


def test_single_config_guild_takes_unplaced_tributes(tmp_path: Path) -> None:
    store = legacy(tmp_path, inventories={"D4F": {}}, config=one_guild())
    assert store.get_tribute(GA, "D4F").guild_id == GA
    assert store.warnings == []


def test_images_in_two_guild_folders_pick_the_busiest(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={"D1F": {}},
        images={GA: {"D1F_1.png": PNG}, GB: {"D1F_2.png": PNG, "D1F_3.png": PNG}},
    )
    assert store.get_tribute(GB, "D1F").guild_id == GB
    assert len(store.list_files(GB, "D1F")) == 3
    assert any("several guild folders" in w for w in store.warnings)


# -------------------------------------------------------------- thgbot.db
def test_db_tributes_with_mixed_created_at_and_null_guild(tmp_path: Path) -> None:
    make_db(
        tmp_path,
        TRIBUTES_TABLE,
        {
            "tributes": [
                ("D1F", "Glimmer", 101, "<@101>", GA, 1752999000, "https://x.invalid/a.png", 55),
                ("d1m", "Marvel", "102", "<@102>", GA, "2025-07-20 14:03:11", None, 0),
                ("D2F", "Clove", 103, "<@103>", None, "2025-07-21T09:15:00+02:00", None, None),
                ("D2M", "Cato", 104, "<@104>", GA, "1753100000", None, None),
                ("D3F", "Rue", 105, "<@105>", GA, 1753100000123, None, None),
                ("D3M", "Thresh", 106, "<@106>", GA, None, None, None),
            ]
        },
    )
    store = legacy(tmp_path, config=one_guild())
    d1f = store.get_tribute(GA, "D1F")
    assert (d1f.name, d1f.user_id, d1f.user_mention, d1f.face_claim_url, d1f.prompt_channel_id) == (
        "Glimmer",
        101,
        "<@101>",
        "https://x.invalid/a.png",
        55,
    )
    assert d1f.created_at == datetime(2025, 7, 20, 8, 10, tzinfo=UTC)
    d1m = store.get_tribute(GA, "D1M")
    assert (d1m.user_id, d1m.prompt_channel_id) == (102, None)
    assert d1m.created_at == datetime(2025, 7, 20, 14, 3, 11, tzinfo=UTC)
    assert store.get_tribute(GA, "D2F").created_at == datetime(2025, 7, 21, 7, 15, tzinfo=UTC)
    assert store.get_tribute(GA, "D2M").created_at == datetime.fromtimestamp(1753100000, UTC)
    assert store.get_tribute(GA, "D3F").created_at == datetime.fromtimestamp(1753100000.123, UTC)
    assert store.get_tribute(GA, "D3M").created_at is None
    for tribute in store.iter_tributes():
        assert tribute.created_at is None or tribute.created_at.tzinfo == UTC


def test_db_old_schema_reads_only_existing_columns(tmp_path: Path) -> None:
    make_db(
        tmp_path,
        "CREATE TABLE tributes (tribute_id TEXT, tribute_name TEXT, guild_id INTEGER);"
        "CREATE TABLE prompts (tribute_id TEXT, message TEXT);"
        "CREATE TABLE unrelated (x);",
        {"tributes": [("D1F", "Glimmer", GA)], "prompts": [("D1F", "hello")]},
    )
    store = open_dir(tmp_path)
    tribute = store.get_tribute(GA, "D1F")
    assert (tribute.name, tribute.face_claim_url, tribute.created_at) == ("Glimmer", None, None)
    assert store.get_prompt(GA, "D1F").message == "hello"


def test_db_prompts_files_prompt_images_and_leftover_inventories(tmp_path: Path) -> None:
    make_db(
        tmp_path,
        TRIBUTES_TABLE
        + "CREATE TABLE prompts (tribute_id TEXT UNIQUE, message TEXT, channel_id INTEGER, created_at);"
        "CREATE TABLE prompt_images (id INTEGER PRIMARY KEY, prompt_id TEXT, file_path TEXT, created_at);"
        "CREATE TABLE files (id INTEGER PRIMARY KEY, tribute_id TEXT, file_type TEXT, file_path TEXT,"
        " created_at);"
        "CREATE TABLE inventories (tribute_id TEXT, capacity INTEGER);"
        "CREATE TABLE inventory_items (tribute_id TEXT, item_number INTEGER, item_name TEXT);",
        {
            "tributes": [
                ("D1F", "A", 1, "<@1>", GA, 1, None, None),
                ("D6F", "B", 2, "<@2>", GA, 2, None, None),
            ],
            "prompts": [("D1F", "db text", 77, 1770000000), ("D6F", "only in db", 78, "2026-01-01 00:00:00")],
            "prompt_images": [(1, "D6F", f"/old/host/prompt_images/{GA}/D6F_9.png", None)],
            "files": [(1, "D1F", "Face Claim", f"prompt_images/{GA}/face.jpg", 1753000000)],
            "inventories": [("D6F", 6), ("D1F", 10)],
            "inventory_items": [("D6F", 2, "Flint"), ("D6F", 1, "Compass"), ("D1F", 1, "Old")],
        },
    )
    store = legacy(
        tmp_path,
        inventories={"D1F": {"items": {"1": "New"}}},
        prompts={"D1F": {"message": "json text"}},
        config=one_guild(),
        images={GA: {"D6F_9.png": PNG, "face.jpg": TINY_JPEG}},
    )
    d1f = store.get_prompt(GA, "D1F")  # the tribute-centric bot read thgbot.db first
    assert (d1f.message, d1f.channel_id, d1f.created_at) == (
        "db text",
        77,
        datetime.fromtimestamp(1770000000, UTC),
    )
    kept = [f.name for f in store.list_files(GA, "D1F") if f.kind == "legacy_conflict"]
    assert any("json text" in store.read_file(GA, "D1F", name).decode() for name in kept)
    d6f = store.get_prompt(GA, "D6F")
    assert (d6f.message, d6f.channel_id, d6f.files) == ("only in db", 78, ["D6F_9.png"])
    face = store.get_file(GA, "D1F", "face.jpg")
    assert (face.kind, face.media_type) == ("face_claim", "image/jpeg")
    assert store.get_inventory(GA, "D1F").items == ["New"]
    six = store.get_inventory(GA, "D6F")
    assert (six.items, six.capacity) == (["Compass", "Flint"], 6)
    warned = "\n".join(store.warnings)
    assert 'prompts/prompt_info.json ["D1F"]: prompt differs from thgbot.db table prompts row 1' in warned
    assert "thgbot.db table prompt_images row 1: image" in warned
    assert "thgbot.db table inventory_items tribute D6F: inventory known only" in warned
    assert "thgbot.db table inventory_items tribute D1F: leftover database inventory differs" in warned
    assert len(store.check()) == 2  # the two kept versions


def test_references_to_missing_files_are_kept_where_no_prompt_lists_them(tmp_path: Path) -> None:
    """A ``files`` row (the bot's tribute view listed it: "[face_claim] face.png") or a prompt
    image of a tribute without a prompt, naming a file that is not there (a Discord CDN link, a
    lost upload): the reference is kept as a ``legacy_missing`` file of the tribute and the warning
    says so; it vanished while the warning said "name kept in the prompt"."""
    make_db(
        tmp_path,
        TRIBUTES_TABLE
        + "CREATE TABLE prompts (tribute_id TEXT UNIQUE, message TEXT, channel_id INTEGER, created_at);"
        "CREATE TABLE prompt_images (id INTEGER PRIMARY KEY, prompt_id TEXT, file_path TEXT, created_at);"
        "CREATE TABLE files (id INTEGER PRIMARY KEY, tribute_id TEXT, file_type TEXT, file_path TEXT,"
        " created_at);",
        {
            "tributes": [
                ("D1F", "A", 1, "<@1>", GA, 1, None, None),
                ("D6M", "B", 2, "<@2>", GA, 2, None, None),
            ],
            "prompts": [("D1F", "with a prompt", 77, None)],
            "prompt_images": [
                (1, "D1F", f"prompt_images/{GA}/D1F_lost.png", None),
                (2, "D6M", f"prompt_images/{GA}/D6M_lost.png", None),
            ],
            "files": [
                (1, "D6M", "face_claim", "https://cdn.discordapp.com/attachments/1/2/face.png", 1753000000),
                (2, "D1F", "sheet", "/var/snap/thgbot/common/D1F_sheet.png", None),
            ],
        },
    )
    store = legacy(tmp_path, config=one_guild())
    assert store.get_prompt(GA, "D1F").files == ["D1F_lost.png"]  # listed by the prompt: kept there
    kept: dict[str, list[dict[str, Any]]] = {}
    for tid in ("D1F", "D6M"):
        files = store.list_files(GA, tid)
        assert {f.kind for f in files} == {"legacy_missing"}
        kept[tid] = [json.loads(store.read_file(GA, tid, f.name)) for f in files]
    assert {(k["source"], k["reference"], k["file_kind"]) for k in kept["D6M"]} == {
        ("thgbot.db table files row 1", "https://cdn.discordapp.com/attachments/1/2/face.png", "face_claim"),
        ("thgbot.db table prompt_images row 2", f"prompt_images/{GA}/D6M_lost.png", "prompt_image"),
    }
    assert [(k["reference"], k["file_kind"]) for k in kept["D1F"]] == [
        ("/var/snap/thgbot/common/D1F_sheet.png", "sheet")
    ]
    warned = [w for w in store.warnings if "table files" in w or "table prompt_images" in w]
    assert len(warned) == 4
    assert sum("name kept in the prompt" in w for w in warned) == 1  # D1F's prompt image only
    assert sum("the reference kept as file 'legacy-missing-" in w for w in warned) == 3
    assert any("is a web address, not a file of the data directory" in w for w in warned)
    assert not any("attached as files only" in w for w in store.warnings)  # nothing was attached


def test_a_database_capacity_other_than_the_migrated_one_is_kept_and_reported(tmp_path: Path) -> None:
    """The tribute-centric bot's tribute view showed thgbot.db's capacity; inventories.json's is
    migrated (every bot read it for inventory commands), and a database capacity that differs is kept
    as a legacy_conflict file and reported, as differing items are (it was dropped in silence)."""
    make_db(
        tmp_path,
        TRIBUTES_TABLE
        + "CREATE TABLE inventories (tribute_id TEXT, capacity INTEGER, equipped_capacity INTEGER);",
        {
            "tributes": [
                ("D1M", "A", 1, "<@1>", GA, 1, None, None),
                ("D2M", "B", 2, "<@2>", GA, 2, None, None),
            ],
            "inventories": [("D1M", 25, None), ("D2M", 10, 5)],
        },
    )
    store = legacy(
        tmp_path,
        inventories={"D1M": {"capacity": 10, "items": {"1": "Rope"}}, "D2M": {"items": {}}},
        config=one_guild(),
    )
    assert store.get_inventory(GA, "D1M").capacity == 10
    (kept,) = store.list_files(GA, "D1M")
    assert kept.kind == "legacy_conflict"
    assert json.loads(store.read_file(GA, "D1M", kept.name))["value"]["capacity"] == 25
    assert store.list_files(GA, "D2M") == []  # the database says what was migrated (the defaults)
    assert any(
        w.startswith("thgbot.db table inventory_items tribute D1M: leftover database inventory differs")
        for w in store.warnings
    )


def test_text_that_is_not_utf8_in_the_database_is_replaced_and_kept(tmp_path: Path) -> None:
    """SQLite stores whatever bytes it is given: a message, name or item that is not UTF-8 refused
    the whole directory ("not a readable SQLite database"); as documented, each bad byte is stored
    as U+FFFD and the original kept as a legacy_original file, with a warning naming the row."""
    make_db(
        tmp_path,
        TRIBUTES_TABLE + "CREATE TABLE prompts (tribute_id TEXT UNIQUE, message TEXT, channel_id INTEGER);"
        "CREATE TABLE inventory_items (tribute_id TEXT, item_number INTEGER, item_name TEXT);",
    )
    conn = sqlite3.connect(tmp_path / "thgbot.db")
    conn.execute(
        "INSERT INTO tributes (tribute_id, tribute_name, guild_id) VALUES ('D6F', CAST(x'4dff' AS TEXT), ?)",
        (GA,),
    )
    conn.execute("INSERT INTO prompts VALUES ('D6F', CAST(x'466f6720726f6c6c7320ff' AS TEXT), NULL)")
    conn.execute("INSERT INTO inventory_items VALUES ('D6F', 1, CAST(x'526f7065fe' AS TEXT))")
    conn.commit()
    conn.close()
    store = legacy(tmp_path, config=one_guild())
    assert store.get_tribute(GA, "D6F").name == "M\ufffd"
    assert store.get_prompt(GA, "D6F").message == "Fog rolls \ufffd"
    assert store.get_inventory(GA, "D6F").items == ["Rope\ufffd"]
    originals = [f for f in store.list_files(GA, "D6F") if f.kind == "legacy_original"]
    assert len(originals) == 3
    replaced = [w for w in store.warnings if "replaced by U+FFFD" in w]
    assert len(replaced) == 3 and all(w.startswith("thgbot.db table ") for w in replaced)


def test_db_is_opened_read_only(tmp_path: Path) -> None:
    path = make_db(tmp_path, TRIBUTES_TABLE, {"tributes": [("D1F", "A", 1, "<@1>", GA, 1, None, None)]})
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    path.chmod(0o444)
    try:
        store = open_dir(tmp_path)
        assert store.get_tribute(GA, "D1F").name == "A"
    finally:
        path.chmod(0o644)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thgbot.db"]


@pytest.mark.parametrize(
    ("content", "parts"),
    [
        (b"this is not a database at all, just text" * 50, ["thgbot.db", "not a readable SQLite"]),
    ],
)
def test_db_garbage(tmp_path: Path, content: bytes, parts: list[str]) -> None:
    write(tmp_path, "thgbot.db", content)
    fails(tmp_path, *parts)


@pytest.mark.parametrize(
    ("row", "parts"),
    [
        (("D1F", "A", "someone", "<@1>", GA, 1, None, None), ["thgbot.db", "tributes row 1 column user_id"]),
        (("D1F", "A", 1, "<@1>", GA, "last tuesday", None, None), ["tributes row 1 column created_at"]),
        ((None, "A", 1, "<@1>", GA, 1, None, None), ["tributes row 1 column tribute_id"]),
        (("D1F", b"\x00", 1, "<@1>", GA, 1, None, None), ["tributes row 1 column tribute_name"]),
    ],
)
def test_db_bad_values_name_table_row_and_column(
    tmp_path: Path, row: tuple[Any, ...], parts: list[str]
) -> None:
    make_db(tmp_path, TRIBUTES_TABLE, {"tributes": [row]})
    fails(tmp_path, *parts)


def test_db_duplicate_ids_differing_in_case(tmp_path: Path) -> None:
    make_db(
        tmp_path,
        TRIBUTES_TABLE,
        {
            "tributes": [
                ("d1f", "first", 1, "<@1>", GA, 1, None, None),
                ("D1F", "second", 2, "<@2>", GA, 2, None, None),
            ]
        },
    )
    store = open_dir(tmp_path)
    # the bot looked tributes up upper-cased: row 2 ('D1F') wins, row 1 is kept as a file
    tribute = store.get_tribute(GA, "D1F")
    assert (tribute.name, tribute.user_id) == ("second", 2)
    (kept,) = store.list_files(GA, "D1F")
    assert kept.kind == "legacy_conflict"
    document = json.loads(store.read_file(GA, "D1F", kept.name))
    assert document["value"]["tribute_name"] == "first" and document["value"]["user_id"] == 1
    assert (
        store.warnings
        == store.check()
        == [
            "thgbot.db table tributes row 1: tribute 'd1f' (name, user_id, user_mention, created_at) differs "
            "from table tributes row 2, which is migrated (ids differing only in case are one tribute; "
            f"the bot looked up 'D1F'); this one kept as file {kept.name!r} of tribute D1F"
        ]
    )


# ------------------------------------------------------- review findings
def test_twelve_digit_unix_time_in_image_name(tmp_path: Path) -> None:
    # 12 digits: milliseconds (as the reader's timestamp rule says), never a crash
    store = legacy(
        tmp_path,
        inventories={"D1F": {}},
        config=one_guild(),
        images={GA: {"D1F_300000000000.png": PNG, "D1F_999999999999.png": PNG}},
    )
    files = {f.name: f for f in store.list_files(GA, "D1F")}
    assert files["D1F_300000000000.png"].created_at == datetime.fromtimestamp(300000000, UTC)
    assert files["D1F_999999999999.png"].created_at == datetime.fromtimestamp(999999999.999, UTC)


def test_numeric_folder_name_beyond_a_snowflake_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, f"prompt_images/{2**63}/D1F_1.png", PNG)
    write(tmp_path, f"prompt_images/{'9' * 5000}"[:250] + "/D1F_2.png", PNG)
    store = legacy(tmp_path, inventories={"D1F": {}}, config=one_guild())
    assert [f.name for f in store.list_files(GA, "D1F")] == ["D1F_1.png", "D1F_2.png"]
    assert [g.guild_id for g in store.list_guilds()] == [GA]
    assert sorted(store.warnings) == [
        f"prompt_images/{2**63}: folder name is not a guild id; its files are migrated as unreferenced files",
        f"prompt_images/{'9' * 236}: folder name is not a guild id; "
        "its files are migrated as unreferenced files",
    ]


def test_free_text_tribute_keys_get_a_sanitised_id(tmp_path: Path) -> None:
    long_key = "The Feast at the Cornucopia, day " + "9" * 60
    store = legacy(
        tmp_path,
        inventories={
            "Rue's gift": {"items": {"1": "Bread"}},
            "RUE_S_GIFT": {"capacity": 12, "items": {"1": "Knife"}},
            long_key: {},
        },
        prompts={"Day 3: feast": {"message": "Feast at dawn"}, "-- old (2) --": {"message": "x"}},
        config=one_guild(),
    )
    sanitised = "THE_FEAST_AT_THE_CORNUCOPIA_DAY_" + "9" * 60  # 92 characters: cut, with a digest
    long_id = sanitised[:51] + "-" + hashlib.sha256(sanitised.encode()).hexdigest()[:12].upper()
    names = {t.tribute_id: t.name for t in store.iter_tributes()}
    assert names == {
        "DAY_3_FEAST": "Day 3: feast",
        "OLD_2": "-- old (2) --",
        "RUE_S_GIFT": "Rue's gift",
        long_id: long_key,
    }
    # merged exactly like a case collision: the key already normalised first
    rue = store.get_inventory(GA, "RUE_S_GIFT")
    assert (rue.items, rue.capacity) == (["Knife", "Bread"], 12)
    assert store.get_prompt(GA, "DAY_3_FEAST").message == "Feast at dawn"
    assert any(
        w.startswith(
            'inventories/inventories.json ["Rue\'s gift"]: free-text key "Rue\'s gift" migrated as tribute '
            "RUE_S_GIFT "
        )
        for w in store.warnings
    )
    assert any(
        w.startswith('prompts/prompt_info.json ["Day 3: feast"]: free-text key') and "DAY_3_FEAST" in w
        for w in store.warnings
    )
    assert any(w.startswith(f'inventories/inventories.json ["{long_key}"]: ') for w in store.warnings)
    assert any(
        w.startswith('inventories/inventories.json ["RUE_S_GIFT"]: keys \'RUE_S_GIFT\', "Rue\'s gift"')
        for w in store.warnings
    ), store.warnings


def test_long_keys_differing_past_the_cut_stay_two_tributes(tmp_path: Path) -> None:
    """Cut at 64, two long event keys became one tribute (the second prompt only a conflict file);
    the bot showed two."""
    long_key = "THE_VERY_LONG_EVENT_NAME_THAT_GOES_ON_AND_ON_AND_ON_AND_ON_AND_ON_"
    store = legacy(
        tmp_path,
        prompts={long_key + "A": {"message": "prompt A"}, long_key.lower() + "b": {"message": "prompt B"}},
        config=one_guild(),
    )
    tributes = list(store.iter_tributes())
    assert len(tributes) == 2 and all(len(t.tribute_id) == 64 for t in tributes)
    assert sorted(store.get_prompt(*t.key).message for t in tributes) == ["prompt A", "prompt B"]
    assert not any(f.kind == "legacy_conflict" for t in tributes for f in store.list_files(*t.key))


def test_keys_with_nothing_usable_in_an_id_are_kept_under_a_digest_id(tmp_path: Path) -> None:
    """A key with no letter or digit an id may hold ("?!", "🎉", a fullwidth D1F, "") refused the
    whole directory; its tribute is kept as ``KEY-<digest>``, the key as its name, with a warning."""
    wide = "\uff24\uff11\uff26"  # D1F in fullwidth letters
    write(tmp_path, "prompts/prompt_info.json", {"D1F": {}, "?!": {"message": "x"}})
    store = legacy(
        tmp_path,
        inventories={"🎉": {"items": {"1": "Party hat"}}, wide: {"items": {"1": "Wide"}}, "": {}},
        config=one_guild(),
    )
    by_name = {t.name: t for t in store.iter_tributes() if t.tribute_id.startswith("KEY-")}
    assert sorted(by_name) == sorted(["", "?!", wide, "🎉"])
    assert by_name["🎉"].tribute_id == "KEY-6146299CD548"  # stable: the key's sha256
    assert store.get_inventory(GA, by_name["🎉"].tribute_id).items == ["Party hat"]
    assert store.get_inventory(GA, by_name[wide].tribute_id).items == ["Wide"]
    assert store.get_prompt(GA, by_name["?!"].tribute_id).message == "x"
    assert [t.tribute_id for t in store.iter_tributes() if t.tribute_id == "D1F"] == ["D1F"]  # not merged
    warned = [w for w in store.warnings if "holds nothing usable in a tribute id" in w]
    assert len(warned) == 4 and any(w.startswith('prompts/prompt_info.json ["?!"]: ') for w in warned)


def test_database_ids_the_bot_accepted_are_sanitised_not_refused(tmp_path: Path) -> None:
    """THGBot's /create-tribute checked only the length and a digit second: ``D1.F`` is in real
    databases; it refused the whole directory, it is migrated as ``D1_F`` like a JSON key."""
    make_db(
        tmp_path,
        TRIBUTES_TABLE + "CREATE TABLE prompts (tribute_id TEXT UNIQUE, message TEXT, channel_id INTEGER);",
        {"tributes": [("D1.F", "Dotted", 1, "<@1>", GA, 1, None, None)], "prompts": [("D1.F", "hi", None)]},
    )
    store = legacy(tmp_path, inventories={"D1.F": {"items": {"1": "Rope"}}}, config=one_guild())
    assert [(t.tribute_id, t.name) for t in store.iter_tributes()] == [("D1_F", "Dotted")]
    assert store.get_prompt(GA, "D1_F").message == "hi"
    assert store.get_inventory(GA, "D1_F").items == ["Rope"]
    assert any(
        w.startswith(
            "thgbot.db table tributes row 1 column tribute_id: free-text key 'D1.F' migrated as tribute D1_F"
        )
        for w in store.warnings
    ), store.warnings


def test_empty_item_texts_are_skipped_with_a_warning(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={
            "D1F": {"items": {"1": "Knife", "2": "", "3": "  \n", "4": "Rope"}, "equipped": {"1": ""}}
        },
        config=one_guild(),
    )
    inventory = store.get_inventory(GA, "D1F")
    assert (inventory.items, inventory.equipped) == (["Knife", "Rope"], [])
    assert store.warnings == [
        'inventories/inventories.json ["D1F"]["equipped"]["1"]: empty item skipped',
        'inventories/inventories.json ["D1F"]["items"]: item numbers 1, 4 renumbered 1..2',
        'inventories/inventories.json ["D1F"]["items"]["2"]: empty item skipped',
        'inventories/inventories.json ["D1F"]["items"]["3"]: empty item skipped',
    ]


def test_image_names_with_surrounding_white_space(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        prompts={"D1F": {"image": [" D1F_1.png\n", "D1F_2.png "]}},
        config=one_guild(),
        images={GA: {"D1F_1.png": PNG, " D1F_2.png ": PNG}},
    )
    assert store.get_prompt(GA, "D1F").files == ["D1F_1.png", "D1F_2.png"]
    assert [f.name for f in store.list_files(GA, "D1F")] == ["D1F_1.png", "D1F_2.png"]
    assert store.read_file(GA, "D1F", "D1F_2.png") == PNG
    warned = "\n".join(store.warnings)
    assert 'prompts/prompt_info.json ["D1F"]["image"][0]: image name \' D1F_1.png\\n\' has' in warned
    assert f"prompt_images/{GA}/ D1F_2.png : file name has white space" in warned


@pytest.mark.parametrize("name", ["..", "sub/..", "../x.png", "D1F\u0000.png", "\ud800.png", "x" * 300])
def test_unusable_image_reference_is_one_warning(tmp_path: Path, name: str) -> None:
    """Equivalent bad references are handled alike: one warning each, never fatal."""
    write(tmp_path, "prompts/prompt_info.json", {"D1F": {"message": "m", "image": [name, "ok.png"]}})
    store = open_dir(tmp_path)
    assert store.get_prompt(0, "D1F").files in (["ok.png"], ["x.png", "ok.png"])
    mine = [w for w in store.warnings if '["D1F"]["image"][0]' in w]
    assert len(mine) == 1, store.warnings


def test_db_inventory_equipped_capacity_is_used(tmp_path: Path) -> None:
    make_db(
        tmp_path,
        "CREATE TABLE inventories (tribute_id TEXT, capacity INTEGER, equipped_capacity INTEGER);"
        "CREATE TABLE inventory_items (tribute_id TEXT, item_number INTEGER, item_name TEXT);",
        {
            "inventories": [("D6F", 6, 2), ("D7F", None, None), ("D8F", 7, -3)],
            "inventory_items": [("D6F", 1, "Flint"), ("D6F", 2, ""), ("D6F", 3, "Rope")],
        },
    )
    store = legacy(tmp_path, config=one_guild())
    six = store.get_inventory(GA, "D6F")
    assert (six.items, six.capacity, six.equipped_capacity) == (["Flint", "Rope"], 6, 2)
    seven = store.get_inventory(GA, "D7F")
    assert (seven.capacity, seven.equipped_capacity) == (10, 5)
    eight = store.get_inventory(GA, "D8F")
    assert (eight.capacity, eight.equipped_capacity) == (7, 5)
    warned = "\n".join(store.warnings)
    assert "thgbot.db table inventory_items row 2 column item_name: empty item skipped" in warned
    assert "thgbot.db table inventories row 3 column equipped_capacity: -3 is not a capacity" in warned


def test_prompt_case_collision_with_differing_channels_warns(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        prompts={"d5m": {"message": "old", "channel": "8"}, "D5M": {"message": "new", "channel": "9"}},
        config=one_guild(),
    )
    assert store.get_prompt(GA, "D5M").channel_id == 9
    assert 'prompts/prompt_info.json ["d5m"]: prompt differs from prompts/prompt_info.json ["D5M"]' in (
        "\n".join(store.warnings)
    )


# ------------------------------------------------------------ whole store
def test_search_counts_and_bundles(tmp_path: Path) -> None:
    store = legacy(
        tmp_path,
        inventories={
            "D1F": {"items": {"1": "Knife", "2": "Rope"}, "equipped": {"1": "Pocket KNIFE"}},
            "D2F": {},
        },
        prompts={"D1F": {"image": "D1F_1.png"}},
        config=one_guild(),
        images={GA: {"D1F_1.png": PNG}},
    )
    hits = store.search_items("knife")
    assert [(h.tribute_id, h.slot, h.number, h.item) for h in hits] == [
        ("D1F", "items", 1, "Knife"),
        ("D1F", "equipped", 1, "Pocket KNIFE"),
    ]
    counts = store.counts()
    assert (counts.guilds, counts.tributes, counts.items, counts.equipped, counts.prompts, counts.files) == (
        1,
        2,
        2,
        1,
        1,
        1,
    )
    bundle = store.export_tribute(GA, "D1F")
    assert bundle.prompt is not None and bundle.prompt.files == ["D1F_1.png"]
    assert [f.name for f in bundle.files] == ["D1F_1.png"]


# ----------------------------------------------------------------- sample
def test_whole_sample(tmp_path: Path) -> None:
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 200_000
    store = open_dir(SAMPLE)
    counts = store.counts()
    assert (counts.guilds, counts.tributes, counts.items, counts.equipped, counts.prompts, counts.files) == (
        4,
        21,  # 19 + LEGACY_FILES in two guilds
        39,
        6,
        15,
        20,
    )
    assert [g.guild_id for g in store.list_guilds()] == [0, G3, G1, G2]
    assert store.get_guild(G3).gm_id == 301234567890123456  # from the very old flat config.json
    assert store.get_guild(G3).log_channel_id == 1288877766655500002  # per-guild entry beats flat values
    assert store.get_guild(G2).log_channel_id is None
    placed = {t.tribute_id: t.guild_id for t in store.iter_tributes()}
    assert placed["D2F"] == G1  # NULL guild_id in thgbot.db, image in G1's folder
    assert placed["D3F"] == G2  # JSON only, SPOILER_ image in G2's folder
    assert placed["D4F"] == G1  # db id 'd4f', NULL guild, unreferenced image in G1's folder
    assert placed["OLD1"] == placed["FEAST_ANNOUNCEMENT"] == 0
    # class 2: thgbot.db's prompt wins (tribute-centric era), the JSON one is kept as a file
    assert store.get_prompt(G1, "D1F").message == "You wake at the edge of the arena."
    assert store.get_tribute(G1, "D7F").name == "Juniper Moss"  # not the 'd7f' row
    # class 3: the single-guild era's upload, and D5M.png of two guild folders
    assert store.get_prompt(G1, "D7F").files == ["tracker jackers.png"]
    assert store.get_file(G1, "D7F", "tracker jackers.png").size > 0
    assert [f.name for f in store.list_files(G2, "D5M") if f.kind == "prompt_image"] == [
        f"D5M (prompt_images {G2}).png",
        "D5M.png",
    ]
    assert [f.name for f in store.list_files(G1, "LEGACY_FILES")] == ["ZZZ_1770000000.png"]
    # class 4: long texts migrate
    assert len(store.get_prompt(G3, "D12F").message) > 20_000
    assert [len(item) for item in store.get_inventory(G3, "D8M").items][3:] == [2462]
    # class 8: a null item is skipped like an empty one
    assert store.get_inventory(G2, "D6F").items == ["Berries (poison?)", "Lucky charm"]
    assert store.details() == {
        "unassigned_tributes": 2,
        "kept_versions": 3,
        "unreferenced_files": 2,
        "legacy_problems": 4,
        "legacy_notes": 17,
    }
    assert len(store.check()) == 4
    d1f = store.get_inventory(G1, "D1F")
    assert d1f.items == ["Rope", "Sleeping bag", "Meat (2/2 uses.)", "Canteen"]
    assert (d1f.equipped, d1f.capacity, d1f.equipped_capacity) == (["Spear", "Knife"], 12, 5)
    assert store.get_inventory(G1, "D2F").items == [
        "Bandage",
        "Water (1/3 uses.)",
        "Iodine",
        "Wire",
        "Night-vision glasses",
    ]
    assert store.get_inventory(G1, "IVY_ROSE").capacity == 8
    prompt = store.get_prompt(G1, "D1F")
    assert prompt.channel_id == 1395951855535788202
    assert prompt.files == ["D1F_1770963114.png", "D1F_1699999999.png", "D1F_1770963114.mp3"]
    assert [f.name for f in store.list_files(G1, "D1F") if not f.kind.startswith("legacy")] == [
        "D1F_1770963114.mp3",
        "D1F_1770963114.png",
        "D1F_face.jpg",
        "SPOILER_D1F 6f_SEVEN.png",
    ]
    assert store.get_file(G1, "D1F", "D1F_face.jpg").kind == "face_claim"
    assert store.get_prompt(G2, "D3F").message == "\n\n..."
    assert store.get_prompt(G1, "D2M").message == ""
    assert store.get_prompt(G2, "D3M").channel_id is None
    assert [f.name for f in store.list_files(G3, "D10F")] == ["D10F_1771300000.png"]
    assert store.get_prompt(G3, "D11M").files == ["D11M_1771400000.png"]
    assert store.get_tribute(G3, "D8M").created_at == datetime(2025, 7, 28, 8, 30, tzinfo=UTC)
    for info in store.list_files(G2, "EVENT1"):
        assert store.read_file(G2, "EVENT1", info.name)[:4] == b"RIFF"
    # every warning names a file and a key/row/file name, sorted and unique
    assert store.warnings == sorted(set(store.warnings))
    assert len(store.warnings) == 21
    for warning in store.warnings:
        location = warning.split(": ", 1)[0]
        assert location.startswith(
            (
                "inventories/inventories.json ",
                "prompts/prompt_info.json ",
                "thgbot.db table ",
                "prompt_images/",
                "config/config.json ",
                "config.json ",
                "guild assignment",
            )
        ), warning
    assert any(w.startswith('inventories/inventories.json ["D1F"]: keys') for w in store.warnings)
    assert any(w.startswith(f"prompt_images/{G1}/ZZZ_1770000000.png:") for w in store.warnings)


def test_sample_matches_its_generator(tmp_path: Path) -> None:
    write_sample(tmp_path / "fresh")
    fresh, shipped = open_dir(tmp_path / "fresh"), open_dir(SAMPLE)
    assert fresh.warnings == shipped.warnings
    assert list(fresh.iter_bundles()) == list(shipped.iter_bundles())
    assert fresh.list_guilds() == shipped.list_guilds()


def test_reading_thgbot_db_never_touches_the_source(tmp_path: Path) -> None:
    """A WAL-mode database: even a read-only connection would create -wal/-shm beside it."""
    root = tmp_path / "legacy"
    root.mkdir()
    db = root / "thgbot.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE tributes (tribute_id TEXT UNIQUE, tribute_name TEXT, guild_id INTEGER)")
    conn.execute(f"INSERT INTO tributes VALUES ('D1F', 'Katniss', {GA})")
    conn.commit()
    conn.close()
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    store = open_dir(root)
    assert store.get_tribute(GA, "D1F").name == "Katniss"
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before
