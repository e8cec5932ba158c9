"""The ``json`` backend on real files: layout, journal recovery, blobs, path safety, locking,
and how often one write reads and writes its tribute's file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest
from helpers import open_denied

from tributestore import TributeStore, open_store
from tributestore.backend import Backend, BulkImport, ForeignSource, Tombstones
from tributestore.backends.json_backend import atomic, journal
from tributestore.backends.json_backend.layout import Layout
from tributestore.backends.json_backend.store import JsonBackend
from tributestore.errors import (
    CorruptDataError,
    NotFoundError,
    SchemaVersionError,
    StorageError,
    StoreNotFoundError,
)
from tributestore.models import ItemHit

#: Selected by the tox factor json (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("json")

GUILD = 111111111111111111
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def url_of(path: Path, **options: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"json:///{path}" + (f"?{query}" if query else "")


def open_json(path: Path, **options: str) -> TributeStore:
    store = open_store(url_of(path, **options))
    assert isinstance(store.backend, JsonBackend)
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

    monkeypatch.setattr("tributestore.backends.json_backend.journal.write_fsync", crashing_write)
    with pytest.raises(StorageError, match="cannot commit"):
        store.add_file(GUILD, "D1F", "a.png", PNG)
    monkeypatch.undo()
    assert not (root / "journal.json").exists()
    assert store.list_files(GUILD, "D1F") == []
    assert store.check() == []  # no temporaries, no orphan blobs left behind


def test_crash_while_preparing_a_large_commit_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit of many files writes and fsyncs them from several threads: one failing write
    still rolls the whole commit back, once every write under way has ended (no temporary left)."""
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    real_write = atomic.write_fsync
    lock = threading.Lock()
    calls = {"n": 0}

    def crashing_write(path: Path, data: bytes) -> None:
        with lock:
            calls["n"] += 1
            number = calls["n"]
        if number == 5:
            raise OSError(28, "No space left on device")
        if number > 5:
            time.sleep(0.2)  # still writing when the failed write's error reaches the commit
        real_write(path, data)

    monkeypatch.setattr("tributestore.backends.json_backend.journal.write_fsync", crashing_write)
    count = 3 * journal.PARALLEL_FSYNC_MIN
    with pytest.raises(StorageError, match="cannot commit"), store.transaction():
        for number in range(count):
            store.create_tribute(GUILD, f"T{number}", name=f"T{number}")
    monkeypatch.undo()
    assert calls["n"] > 5
    assert not (root / "journal.json").exists()
    assert list(root.rglob(f"*{atomic.TEMP_SUFFIX}")) == []  # no write ended after the roll-back
    assert [t.tribute_id for t in store.list_tributes(GUILD)] == ["D1F"]
    assert store.check() == []  # no temporaries left behind
    with store.transaction():  # and a large commit then goes through whole
        for number in range(count):
            store.create_tribute(GUILD, f"T{number}", name=f"T{number}")
    assert store.counts().tributes == count + 1
    assert store.check() == []


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


def test_legacy_directory_is_refused_never_turned_into_a_store(tmp_path: Path) -> None:
    """json:/// reads no legacy THGBot directory: one clear error, and the registry's hint
    (from the plugin owning legacy directories) names the URL that reads it."""
    sample = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"
    with resources.as_file(sample) as source:
        legacy = Path(shutil.copytree(source, tmp_path / "legacy"))
    before = sorted(path.relative_to(legacy) for path in legacy.rglob("*"))
    with pytest.raises(StorageError, match="is not empty and is not a tributestore JSON store") as written:
        open_store(url_of(legacy))
    with pytest.raises(StoreNotFoundError, match="is not a tributestore JSON store") as read:
        open_store(url_of(legacy), mode="read")
    for error in (written.value, read.value):
        assert "\n" not in str(error) and "thgbot:///" in str(error), error
    assert sorted(path.relative_to(legacy) for path in legacy.rglob("*")) == before  # not even a .lock


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


# ------------------------------------------------------------------ the Backend contract
def test_offers_the_backend_contract_and_tombstones(tmp_path: Path) -> None:
    with open_json(tmp_path / "store") as store:
        backend: Backend = store.backend
        assert isinstance(backend, Backend) and isinstance(backend, Tombstones)
        assert not isinstance(backend, ForeignSource)
        assert not isinstance(backend, BulkImport)  # the store's save-per-document path is as fast
        assert store.supports_tombstones


class FileIO:
    """Real opens, renames and removals of one file, seen through Python's audit events.

    An audit hook cannot be removed: the one installed (on first use) counts
    for whatever path :func:`file_io` watches, and is inert while none is.
    ``os.replace`` raises ``os.rename``, ``Path.unlink`` raises ``os.remove``.
    """

    installed: FileIO | None = None

    def __init__(self) -> None:
        self.path: str | None = None
        self.counts: Counter[str] = Counter()
        sys.addaudithook(self.hook)

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        watched = self.path
        if watched is None or event not in ("open", "os.rename", "os.remove"):
            return
        target = args[1] if event == "os.rename" else args[0]
        if not isinstance(target, str | bytes | os.PathLike) or os.fsdecode(target) != watched:
            return
        if event == "open":
            flags = args[2]
            reading = isinstance(flags, int) and flags & os.O_ACCMODE == os.O_RDONLY
            self.counts["read" if reading else "write"] += 1
        else:
            self.counts["write"] += 1


@contextlib.contextmanager
def file_io(path: Path) -> Iterator[Counter[str]]:
    """How often the block reads (``read``) and writes, renames or removes (``write``) ``path``."""
    if FileIO.installed is None:
        FileIO.installed = FileIO()
    watch = FileIO.installed
    watch.path, watch.counts = str(path), Counter()
    try:
        yield watch.counts
    finally:
        watch.path = None


def filled_store(root: Path) -> tuple[TributeStore, Path]:
    """A store whose D1F holds items, an equipped item, a prompt and a file; D1F's document path."""
    store = open_json(root)
    store.create_tribute(GUILD, "D1F", name="Katniss")
    for item in ("Bow", "Knife", "Rope"):
        store.add_item(GUILD, "D1F", item)
    store.add_item(GUILD, "D1F", "Cloak", equipped=True)
    store.add_file(GUILD, "D1F", "face.png", PNG)
    store.set_prompt(GUILD, "D1F", "Day 0")
    return store, Layout(root).tribute_file(GUILD, "D1F")


WRITES: dict[str, Callable[[TributeStore], object]] = {
    # The four the issue names, then every other write of one tribute.
    "add_item": lambda store: store.add_item(GUILD, "D1F", "Net"),
    "remove_item": lambda store: store.remove_item(GUILD, "D1F", 1),
    "equip_item": lambda store: store.equip_item(GUILD, "D1F", 1),
    "set_prompt": lambda store: store.set_prompt(GUILD, "D1F", "Day 1", files=["face.png"]),
    "unequip_item": lambda store: store.unequip_item(GUILD, "D1F", 1),
    "set_capacity": lambda store: store.set_capacity(GUILD, "D1F", 9),
    "clear_inventory": lambda store: store.clear_inventory(GUILD, "D1F"),
    "update_tribute": lambda store: store.update_tribute(GUILD, "D1F", name="Kat"),
    "add_file": lambda store: store.add_file(GUILD, "D1F", "face.png", b"new", replace=True),
    "delete_file": lambda store: store.delete_file(GUILD, "D1F", "face.png"),
    "delete_prompt": lambda store: store.delete_prompt(GUILD, "D1F"),
    "delete_tribute": lambda store: store.delete_tribute(GUILD, "D1F"),
}


def test_each_write_reads_and_writes_the_tribute_file_once(tmp_path: Path) -> None:
    store, path = filled_store(tmp_path / "store")
    for name in ("add_item", "remove_item", "equip_item", "set_prompt"):
        with file_io(path) as counts:
            WRITES[name](store)
        assert counts == Counter(read=1, write=1), name
    inventory = store.get_inventory(GUILD, "D1F")
    assert (inventory.items, inventory.equipped) == (["Rope", "Net"], ["Cloak", "Knife"])
    assert store.get_prompt(GUILD, "D1F").message == "Day 1"
    assert store.check() == []


@pytest.mark.parametrize("name", sorted(WRITES))
def test_every_tribute_write_reads_and_writes_its_file_once(tmp_path: Path, name: str) -> None:
    store, path = filled_store(tmp_path / "store")
    with file_io(path) as counts:
        WRITES[name](store)
    assert counts == Counter(read=1, write=1)
    assert store.check() == []


def test_creating_reads_once_and_reads_never_write(tmp_path: Path) -> None:
    store, path = filled_store(tmp_path / "store")
    with file_io(Layout(tmp_path / "store").tribute_file(GUILD, "D2F")) as counts:
        store.create_tribute(GUILD, "D2F")
    assert counts == Counter(read=1, write=1)  # the read finds no file
    reads: dict[str, Callable[[], object]] = {
        "get_inventory": lambda: store.get_inventory(GUILD, "D1F"),
        "export_tribute": lambda: store.export_tribute(GUILD, "D1F"),
        "read_file": lambda: store.read_file(GUILD, "D1F", "face.png"),
        "list_files": lambda: store.list_files(GUILD, "D1F"),
        "get_prompt": lambda: store.get_prompt(GUILD, "D1F"),
    }
    for name, read in reads.items():
        with file_io(path) as counts:
            read()
        assert counts == Counter(read=1), name


def test_a_transaction_reads_each_document_once(tmp_path: Path) -> None:
    store, path = filled_store(tmp_path / "store")
    with file_io(path) as counts, store.transaction():
        store.add_item(GUILD, "D1F", "Net")
        store.equip_item(GUILD, "D1F", 1)
        store.set_prompt(GUILD, "D1F", "Day 2")
        assert store.get_inventory(GUILD, "D1F").equipped == ["Cloak", "Bow"]
    assert counts == Counter(read=1, write=1)


def test_a_document_read_once_is_no_shared_object(tmp_path: Path) -> None:
    """Reading once per transaction must not hand out one object: a caller's change to what it
    got is not a write."""
    store, _ = filled_store(tmp_path / "store")
    with store.transaction():
        store.get_inventory(GUILD, "D1F").items.append("not written")
        store.add_item(GUILD, "D1F", "Net")
    assert store.get_inventory(GUILD, "D1F").items == ["Bow", "Knife", "Rope", "Net"]


# ------------------------------------------------------------------ read_file(info)
def test_read_file_of_a_file_replaced_or_deleted_meanwhile(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    info = store.add_file(GUILD, "D1F", "a.png", PNG)
    backend = store.backend
    assert backend.read_file(info) == PNG
    # Replaced after its metadata was read (the old blob is gone): the current bytes.
    store.add_file(GUILD, "D1F", "a.png", b"second", replace=True)
    assert not blob_path(root, PNG).exists()
    assert backend.read_file(info) == b"second"
    with store.snapshot():  # past a snapshot that read the old document
        old = store.get_file(GUILD, "D1F", "a.png")
        store.add_file(GUILD, "D1F", "a.png", b"third", replace=True)
        assert backend.read_file(old) == b"third"
    # Deleted meanwhile: a clear NotFoundError naming the file.
    current = store.get_file(GUILD, "D1F", "a.png")
    store.delete_file(GUILD, "D1F", "a.png")
    with pytest.raises(NotFoundError, match=r"'a\.png' of tribute D1F .*deleted"):
        backend.read_file(current)
    # Listed but its blob really is gone: damage, named.
    info = store.add_file(GUILD, "D1F", "b.png", PNG)
    blob_path(root, PNG).unlink()
    with pytest.raises(CorruptDataError, match=r"missing \(bytes of file 'b\.png'"):
        store.read_file(GUILD, "D1F", "b.png")
    blob_path(root, PNG).write_bytes(b"tampered")
    with pytest.raises(CorruptDataError, match="do not match"):
        backend.read_file(info)


# ------------------------------------------------------------------ save(previous=None)
def test_a_blind_replace_finds_the_stored_document(tmp_path: Path) -> None:
    """``save(document, files, None)`` drops the references of the stored document's files."""
    root = tmp_path / "store"
    store = open_json(root)
    store.create_tribute(GUILD, "D1F")
    store.add_file(GUILD, "D1F", "a.png", PNG)
    store.add_file(GUILD, "D1F", "kept.bin", b"kept")
    bundle = store.export_tribute(GUILD, "D1F")
    replacement = bundle.model_copy(update={"files": [f for f in bundle.files if f.name == "kept.bin"]})
    assert store.import_tribute(replacement, {"kept.bin": b"kept"}, on_conflict="overwrite")
    assert not blob_path(root, PNG).exists()
    assert [f.name for f in store.list_files(GUILD, "D1F")] == ["kept.bin"]
    assert store.check() == []
    with pytest.raises(StorageError, match="no bytes given"), store.transaction():
        store.backend.save(bundle, {}, None)  # a.png is new again: its bytes are needed
    assert store.check() == []


# ------------------------------------------------------------------ tombstones
def test_tombstones_and_origin_tombstones_persist(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with open_json(root) as store:
        backend = store.backend
        assert isinstance(backend, Tombstones)
        with store.transaction():
            backend.put_tombstone(GUILD, "D1F", None)
            backend.put_tombstone(GUILD, "D2M", "legacy:d2m")
            assert backend.has_tombstone(GUILD, "D1F")  # seen inside its transaction
        with pytest.raises(RuntimeError), store.transaction():
            backend.put_tombstone(GUILD, "D3F", "legacy:d3f")
            raise RuntimeError("rolled back")
    with open_json(root) as again:
        backend = again.backend
        assert isinstance(backend, Tombstones)
        assert backend.has_tombstone(GUILD, "D1F") and backend.has_tombstone(GUILD, "D2M")
        assert not backend.has_tombstone(GUILD, "D3F") and not backend.has_tombstone(1, "D1F")
        assert backend.has_origin_tombstone("legacy:d2m") and not backend.has_origin_tombstone("legacy:d3f")
        assert again.is_tombstoned(5, "OTHER", "legacy:d2m")  # by origin key, whatever the guild
        assert again.tombstone_count() == 2
        assert again.check() == []
    assert (root / "tombstones" / str(GUILD) / "D2M").is_file()


def test_tombstones_are_counted_as_the_transaction_sees_them(tmp_path: Path) -> None:
    """Pending tombstones of the open transaction count; another commit's temporaries do not."""
    root = tmp_path / "store"
    with open_json(root) as store:
        backend = store.backend
        assert isinstance(backend, Tombstones)
        assert backend.count_tombstones() == 0
        with store.transaction():
            backend.put_tombstone(GUILD, "D1F", None)
            backend.put_tombstone(GUILD, "D2M", "legacy:d2m")
            assert backend.count_tombstones() == 2  # not committed yet: seen by its own transaction
        # A commit in flight elsewhere: its hidden temporary is no tombstone.
        (root / "tombstones" / str(GUILD) / ".D3F.0123abcd.tmp").write_text("{}")
        assert backend.count_tombstones() == 2
        with store.transaction():
            backend.put_tombstone(5, "D4F", None)
            assert backend.count_tombstones() == 3


# ------------------------------------------------------------------ snapshots
def test_a_snapshot_shows_each_tribute_in_one_state_to_every_read(tmp_path: Path) -> None:
    """Inside the backend's own (per document) snapshot, which each multi-part read of the store
    uses, searches, counts and listings show the document the snapshot already read, not a newer
    one, and what they read first the snapshot keeps. (``store.snapshot()`` holds writers off
    instead: the next test.)"""
    root = tmp_path / "store"
    a, b = open_json(root), open_json(root)
    a.create_tribute(1, "A")
    a.add_item(1, "A", "sword")
    a.create_tribute(1, "B")
    a.add_item(1, "B", "shield")
    sword = [ItemHit(guild_id=1, tribute_id="A", slot="items", number=1, item="sword")]
    with a.backend.snapshot():
        assert a.get_inventory(1, "A").items == ["sword"]
        b.remove_item(1, "A", 1)
        assert a.search_items("sword") == sword
        assert a.counts().items == 2
        assert a.get_inventory(1, "A").items == ["sword"]
        # B was first read by the search: the snapshot keeps that state too.
        assert a.search_items("shield")[0].tribute_id == "B"
        b.remove_item(1, "B", 1)
        assert a.get_inventory(1, "B").items == ["shield"]
        assert a.search_items("shield")[0].tribute_id == "B"
        # Deleted since the snapshot read it: still listed, as the snapshot shows it.
        b.delete_tribute(1, "A")
        assert [t.tribute_id for t in a.list_tributes(1)] == ["A", "B"]
        assert a.get_tribute(1, "A") is not None and a.counts().tributes == 2
    assert a.search_items("sword") == [] and a.search_items("shield") == []
    assert [t.tribute_id for t in a.list_tributes(1)] == ["B"]
    assert a.counts().items == 0


def test_a_store_snapshot_holds_other_writers_until_it_ends(tmp_path: Path) -> None:
    """``store.snapshot()`` on JSON: another handle's write waits for the block to end (no commit
    lands inside it); a write of the snapshot's own thread joins it."""
    root = tmp_path / "store"
    a, b = open_json(root), open_json(root)
    a.create_tribute(1, "A")
    landed = threading.Event()

    def write() -> None:
        b.add_item(1, "A", "from b")
        landed.set()

    with a.snapshot():
        assert a.get_inventory(1, "A").items == []
        other = threading.Thread(target=write)
        other.start()
        assert not landed.wait(0.5)  # held off
        assert a.get_inventory(1, "A").items == []
        a.add_item(1, "A", "from a")  # the snapshot's own thread: joins it, no deadlock
    other.join(30)
    assert landed.is_set()
    assert sorted(a.get_inventory(1, "A").items) == ["from a", "from b"]


# ------------------------------------------------------------------ permission errors
@pytest.fixture
def denied_dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``closed`` (nothing under it can be looked at) and ``unsearchable`` (it can be looked at,
    not what it holds)."""
    closed, unsearchable = tmp_path / "closed", tmp_path / "unsearchable"
    closed.mkdir(mode=0o000)
    unsearchable.mkdir(mode=0o644)
    try:
        yield closed, unsearchable
    finally:
        closed.chmod(0o755)
        unsearchable.chmod(0o755)


@pytest.mark.parametrize("mode", ["read", "write"])
def test_a_path_it_may_not_look_at_is_a_storage_error(denied_dirs: tuple[Path, Path], mode: str) -> None:
    closed, unsearchable = denied_dirs
    for path in (closed / "store", unsearchable):
        outcome = open_denied(url_of(path), mode)
        assert outcome.startswith("StorageError: "), outcome
        assert "Permission denied" in outcome and str(path) in outcome, outcome


def test_ctrl_c_during_a_parallel_fsync_is_delivered_after_it() -> None:
    """A commit's parallel fsyncs hold Ctrl-C back until every one has run: a KeyboardInterrupt
    raised while the thread pool's own locks were held once hung a copy into a JSON store."""
    import os
    import signal
    import threading

    from tributestore.backends.json_backend import journal

    done: list[int] = []
    lock = threading.Lock()

    def action(entry: int) -> None:
        if entry == 0:
            os.kill(os.getpid(), signal.SIGINT)
        with lock:
            done.append(entry)

    entries = list(range(400))
    with pytest.raises(KeyboardInterrupt):
        journal._each(action, entries)
    assert sorted(done) == entries
