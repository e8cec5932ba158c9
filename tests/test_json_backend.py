"""The ``json`` backend on real files: layout, journal recovery, blobs, path safety, locking."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import multiprocessing.synchronize
import os
from contextlib import suppress
from pathlib import Path

import pytest

from tributestore import open_store
from tributestore.backends.json_backend import atomic
from tributestore.backends.json_backend.layout import Layout
from tributestore.backends.json_backend.store import JsonStore
from tributestore.errors import (
    CorruptDataError,
    NotFoundError,
    SchemaVersionError,
    StorageError,
    TributeStoreError,
)

#: Selected by the tox factor json (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("json")

GUILD = 111111111111111111
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def url_of(path: Path, **options: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"json:///{path}" + (f"?{query}" if query else "")


def open_json(path: Path, **options: str) -> JsonStore:
    store = open_store(url_of(path, **options))
    assert isinstance(store, JsonStore)
    return store


def blob_path(root: Path, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return root / "blobs" / sha[:2] / sha


def test_layout_and_persistence(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with open_json(root) as store:
        store.create_tribute(GUILD, "d1f", name="Katniss")
        store.add_item(GUILD, "D1F", "Bow")
        store.add_file(GUILD, "D1F", "face.png", PNG)
        store.set_prompt(GUILD, "D1F", "go", files=["face.png"])
    marker = json.loads((root / "tributestore.json").read_text())
    assert marker == {"format": "tributestore-json", "schema_version": 1}
    document = json.loads((root / "guilds" / str(GUILD) / "tributes" / "D1F.json").read_text())
    assert set(document) == {"schema_version", "tribute", "inventory", "prompt", "files"}
    assert document["inventory"]["items"] == ["Bow"]
    assert (root / "guilds" / str(GUILD) / "guild.json").is_file()
    assert blob_path(root, PNG).read_bytes() == PNG
    assert not (root / "journal.json").exists()
    with open_json(root) as again:
        assert again.get_tribute(GUILD, "D1F").name == "Katniss"
        assert again.read_file(GUILD, "D1F", "face.png") == PNG
        assert again.get_prompt(GUILD, "D1F").files == ["face.png"]
        assert again.check() == []


def test_commit_crash_after_journal_is_rolled_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    real_replace = os.replace
    calls = {"n": 0}

    def crashing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # 2 journal writes + 1 rename done, then "power loss"
            raise OSError(5, "simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(StorageError, match="journal"):
        store.add_file(GUILD, "D1F", "a.png", PNG)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (root / "journal.json").exists()
    with open_json(root) as again:  # opening replays the journal
        assert not (root / "journal.json").exists()
        assert again.read_file(GUILD, "D1F", "a.png") == PNG
        assert again.check() == []


def test_crash_while_preparing_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    real_write = atomic.write_fsync
    calls = {"n": 0}

    def crashing_write(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr("tributestore.backends.json_backend.store.write_fsync", crashing_write)
    with pytest.raises(StorageError, match="cannot commit"):
        store.add_file(GUILD, "D1F", "a.png", PNG)
    monkeypatch.undo()
    assert not (root / "journal.json").exists()
    assert store.list_files(GUILD, "D1F") == []
    assert store.check() == []  # no temporaries, no orphan blobs left behind


def test_leftover_prepare_journal_is_rolled_back_on_open(tmp_path: Path) -> None:
    root = tmp_path / "store"
    open_json(root).create_tribute(GUILD, "D1F")
    tmp = root / "guilds" / str(GUILD) / "tributes" / ".D1F.json.x.tmp"
    tmp.write_text("half")
    journal = {"state": "prepare", "txid": "x", "temps": [Layout(root).rel(tmp)]}
    (root / "journal.json").write_text(json.dumps(journal))
    with open_json(root) as store:
        assert not tmp.exists() and not (root / "journal.json").exists()
        assert store.has_tribute(GUILD, "D1F")


def test_rolled_back_prepare_leaves_no_empty_guild_directory(tmp_path: Path) -> None:
    """A kill while a new guild's files were being prepared: the rollback removes its directories."""
    root = tmp_path / "store"
    open_json(root).create_tribute(GUILD, "D1F")
    new_guild = root / "guilds" / "4242"
    (new_guild / "tributes").mkdir(parents=True)
    tmp = new_guild / ".guild.json.x.tmp"
    tmp.write_text("half")
    journal = {
        "state": "prepare",
        "txid": "x",
        "temps": [Layout(root).rel(tmp), Layout(root).rel(new_guild / "tributes" / ".A.json.x.tmp")],
    }
    (root / "journal.json").write_text(json.dumps(journal))
    with open_json(root) as store:
        assert not new_guild.exists()
        assert store.check() == []
        assert store.has_tribute(GUILD, "D1F")


def test_transaction_is_all_or_nothing_and_savepoints(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    with pytest.raises(RuntimeError), store.transaction():
        store.add_item(GUILD, "D1F", "lost")
        store.add_file(GUILD, "D1F", "lost.png", PNG)
        raise RuntimeError("boom")
    assert not (root / "blobs").exists() or not any((root / "blobs").rglob("*"))
    with store.transaction():
        store.add_item(GUILD, "D1F", "kept")
        with pytest.raises(NotFoundError), store.transaction():
            store.add_item(GUILD, "D1F", "inner, rolled back")
            store.get_tribute(GUILD, "NOPE")
        assert store.get_inventory(GUILD, "D1F").items == ["kept"]
    assert open_json(root).get_inventory(GUILD, "D1F").items == ["kept"]


def test_blob_reference_counting(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    for tribute in ("D1F", "D1M"):
        store.create_tribute(GUILD, tribute)
        store.add_file(GUILD, tribute, "same.png", PNG)
    blob = blob_path(root, PNG)
    refs = blob.with_name(blob.name + ".refs")
    assert len(list(refs.iterdir())) == 2
    store.delete_tribute(GUILD, "D1F")
    assert blob.exists() and len(list(refs.iterdir())) == 1
    assert store.read_file(GUILD, "D1M", "same.png") == PNG
    store.add_file(GUILD, "D1M", "same.png", b"new bytes", replace=True)
    assert not blob.exists() and not refs.exists()
    assert store.read_file(GUILD, "D1M", "same.png") == b"new bytes"
    store.delete_file(GUILD, "D1M", "same.png")
    assert not blob_path(root, b"new bytes").exists()
    assert store.check() == []


def test_a_write_touches_only_its_tribute(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    for number in range(5):
        store.create_tribute(GUILD, f"D{number}F")
    tributes = root / "guilds" / str(GUILD) / "tributes"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tributes.iterdir()}
    store.add_item(GUILD, "D3F", "Knife")
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tributes.iterdir()}
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == ["D3F.json"]


def test_path_escapes_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    layout = Layout(root)
    with pytest.raises(StorageError):
        layout.tribute_file(GUILD, "../../etc")
    with pytest.raises(StorageError):
        layout.blob_file("../" * 10)
    with pytest.raises(StorageError):
        layout.from_rel("../outside.json")
    with pytest.raises(StorageError):
        layout.inside(tmp_path / "elsewhere")
    # A symlink planted inside the store that points outside it is refused too.
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "guilds").mkdir(exist_ok=True)
    (root / "guilds" / str(GUILD)).symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="outside the store"):
        store.create_tribute(GUILD, "D1F")
    assert list(outside.iterdir()) == []


def test_journal_naming_paths_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    open_json(root).close()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    journal = {"state": "commit", "txid": "x", "renames": [], "deletes": ["../victim.txt"]}
    (root / "journal.json").write_text(json.dumps(journal))
    with pytest.raises(StorageError):
        open_json(root)
    assert victim.read_text() == "keep me"


def test_corrupt_and_newer_files(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    path = root / "guilds" / str(GUILD) / "tributes" / "D1F.json"
    path.write_text("{ not json")
    with pytest.raises(CorruptDataError, match=r"D1F\.json"):
        store.get_tribute(GUILD, "D1F")
    assert any("D1F.json" in problem for problem in store.check())
    path.write_text(json.dumps({"schema_version": 99, "tribute": {}}))
    with pytest.raises(SchemaVersionError, match=r"D1F\.json"):
        store.get_tribute(GUILD, "D1F")
    (root / "tributestore.json").write_text(json.dumps({"format": "tributestore-json", "schema_version": 2}))
    with pytest.raises(SchemaVersionError, match=r"tributestore\.json"):
        open_json(root)


def test_check_finds_problems(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    store.create_tribute(GUILD, "D2F")
    store.add_file(GUILD, "D1F", "a.png", PNG)
    store.add_file(GUILD, "D2F", "b.bin", b"bbb")
    blob_path(root, PNG).write_bytes(b"tampered")
    blob_path(root, b"bbb").unlink()
    tributes = root / "guilds" / str(GUILD) / "tributes"
    (tributes / "D2F.json").rename(tributes / "D3F.json")
    problems = "\n".join(store.check())
    assert "do not match" in problems
    assert "does not exist" in problems  # refs of the removed blob
    assert "D3F.json" in problems  # file name disagrees with content


def test_refuses_foreign_directories_and_create_false(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_json(tmp_path / "missing", create="false")
    assert not (tmp_path / "missing").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("hello")
    with pytest.raises(StorageError, match="not empty"):
        open_json(foreign)
    empty = tmp_path / "empty"
    empty.mkdir()
    open_json(empty).close()
    assert (empty / "tributestore.json").is_file()


def test_legacy_directory_is_never_turned_into_a_store(tmp_path: Path) -> None:
    legacy = tmp_path / "thgbot"
    (legacy / "inventories").mkdir(parents=True)
    (legacy / "inventories" / "inventories.json").write_text("{}")
    with suppress(TributeStoreError):  # whatever the legacy reader thinks of this minimal directory
        open_store(url_of(legacy)).close()
    assert not (legacy / "tributestore.json").exists()


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    store = open_json(tmp_path / "store")
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.create_tribute(GUILD, "D1F")


def _hold_lock(
    url: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event
) -> None:
    store = open_store(url)
    with store.transaction():
        store.create_tribute(GUILD, "HOLDER")
        ready.set()
        release.wait(30)
    store.close()


def _add_items(url: str, tribute: str, count: int) -> None:
    store = open_store(url)
    for number in range(count):
        store.add_item(GUILD, tribute, f"item {number}", force=True)
    store.close()


def test_lock_excludes_other_processes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    open_json(root).close()
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(url_of(root), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        waiter = open_json(root, lock_timeout="0.3")
        with pytest.raises(StorageError, match="locked"):
            waiter.create_tribute(GUILD, "WAITER")
        assert not waiter.has_tribute(GUILD, "HOLDER")  # not committed yet
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0
    assert waiter.has_tribute(GUILD, "HOLDER")
    waiter.create_tribute(GUILD, "WAITER")


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    root = tmp_path / "store"
    open_json(root).create_tribute(GUILD, "D1F")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_items, args=(url_of(root), "D1F", 15)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with open_json(root) as store:
        assert len(store.get_inventory(GUILD, "D1F").items) == 45
        assert store.check() == []
