"""SQLite-specific behaviour: schema versioning, foreign keys, search index, locking, errors."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tributestore import (
    ConfigError,
    CorruptDataError,
    SchemaVersionError,
    StorageError,
    TributeStore,
    open_store,
)
from tributestore.backends.sqlite_backend import schema, search
from tributestore.backends.sqlite_backend import store as sqlite_store
from tributestore.models import Counts

#: Selected by the tox factor sqlite (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("sqlite")

GUILD = 111111111111111111
OTHER = 222222222222222222
MAX_ID = 2**63 - 1


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "thg.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[TributeStore]:
    with open_store(f"sqlite:///{db_path}") as opened:
        yield opened


def raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


# ------------------------------------------------------------------ schema
def test_creates_file_directory_and_schema_version(store: TributeStore, db_path: Path) -> None:
    assert db_path.is_file()
    with raw(db_path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.CURRENT_VERSION,)]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {
            "guilds",
            "tributes",
            "inventories",
            "inventory_items",
            "prompts",
            "prompt_files",
            "files",
        } <= tables
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store.check() == []


def test_reopening_keeps_version_and_data(db_path: Path) -> None:
    with open_store(f"sqlite:///{db_path}") as first:
        first.create_tribute(GUILD, "D1F", name="Katniss")
    with open_store(f"sqlite:///{db_path}") as second:
        assert second.get_tribute(GUILD, "D1F").name == "Katniss"
    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


def test_newer_schema_version_is_refused(db_path: Path) -> None:
    open_store(f"sqlite:///{db_path}").close()
    with raw(db_path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (schema.CURRENT_VERSION + 1,))
    with pytest.raises(SchemaVersionError, match=str(db_path)) as raised:
        open_store(f"sqlite:///{db_path}")
    assert "\n" not in str(raised.value)


def test_check_reports_schema_version_mismatch(store: TributeStore, db_path: Path) -> None:
    with raw(db_path) as conn:
        conn.execute("UPDATE schema_version SET version = 0")
    assert any("schema version" in problem for problem in store.check())


# ------------------------------------------------------------ foreign keys
def test_deleting_a_tribute_cascades_to_everything_it_owns(store: TributeStore, db_path: Path) -> None:
    store.create_tribute(GUILD, "D1F")
    store.create_tribute(GUILD, "D2F")
    for tribute in ("D1F", "D2F"):
        store.add_item(GUILD, tribute, "Knife")
        store.add_item(GUILD, tribute, "Rope", equipped=True)
        store.set_prompt(GUILD, tribute, "go", files=["a.png"])
        store.add_file(GUILD, tribute, "a.png", b"png")
    store.delete_tribute(GUILD, "D1F")
    with raw(db_path) as conn:
        for table in ("inventories", "inventory_items", "prompts", "prompt_files", "files"):
            owners = conn.execute(f"SELECT DISTINCT tribute_id FROM {table}").fetchall()
            assert owners == [("D2F",)], table
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert [hit.tribute_id for hit in store.search_items("knife")] == ["D2F"]
    assert store.check() == []


def test_foreign_keys_are_enforced(store: TributeStore) -> None:
    assert isinstance(store, sqlite_store.SqliteStore)
    with pytest.raises(StorageError, match="FOREIGN KEY"), store.transaction(), store._connection() as conn:
        conn.exec_driver_sql(
            "INSERT INTO inventories (guild_id, tribute_id, capacity, equipped_capacity)"
            " VALUES (1, 'NOBODY', 1, 1)"
        )
    assert store.counts() == Counts()


def test_check_reports_dangling_rows_and_bad_files(store: TributeStore, db_path: Path) -> None:
    store.create_tribute(GUILD, "D1F")
    store.add_file(GUILD, "D1F", "a.bin", b"original")
    store.add_file(GUILD, "D1F", "b.bin", b"original")
    with raw(db_path) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(
            "INSERT INTO inventories (guild_id, tribute_id, capacity, equipped_capacity)"
            " VALUES (5, 'X', 1, 1)"
        )
        conn.execute("UPDATE files SET data = ? WHERE name = 'a.bin'", (b"tampered",))
        conn.execute("UPDATE files SET data = ? WHERE name = 'b.bin'", (b"short",))
    problems = store.check()
    assert any("inventories" in p and "missing" in p for p in problems)
    assert any("'a.bin'" in p and "sha256" in p for p in problems)
    assert any("'b.bin'" in p and "5 bytes" in p for p in problems)
    assert all(str(db_path) in p for p in problems)


# -------------------------------------------------------------- values
def test_timestamps_and_large_snowflakes_round_trip(store: TributeStore, db_path: Path) -> None:
    created = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    store.create_tribute(MAX_ID, "D1F", user_id=MAX_ID, created_at=created)
    tribute = open_store(f"sqlite:///{db_path}").get_tribute(MAX_ID, "D1F")
    assert tribute.created_at == created and tribute.created_at.tzinfo is not None
    assert tribute.user_id == MAX_ID
    with raw(db_path) as conn:
        assert conn.execute("SELECT created_at FROM tributes").fetchone() == (
            "2024-02-29T23:59:58.123456+00:00",
        )


def test_in_memory_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url, hint in (("sqlite://", "sqlite:///:memory:"), ("sqlite://thg.db", "sqlite:///thg.db")):
        with pytest.raises(ConfigError, match=re.escape(hint)):
            open_store(url)  # only an explicit :memory: is in memory
    for url in ("sqlite:///:memory:",):
        with open_store(url) as memory:
            memory.create_tribute(GUILD, "D1F")
            thread = threading.Thread(target=memory.add_item, args=(GUILD, "D1F", "from a thread"))
            thread.start()
            thread.join()
            assert memory.get_inventory(GUILD, "D1F").items == ["from a thread"]
            assert memory.check() == []
    assert list(tmp_path.iterdir()) == []


def test_iteration_pages_in_order(store: TributeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "PAGE_SIZE", 3)
    expected = []
    for guild in (OTHER, GUILD):
        for number in range(7):
            store.create_tribute(guild, f"D{number}F")
    expected = sorted((t.guild_id, t.tribute_id) for t in store.iter_tributes())
    assert [(t.guild_id, t.tribute_id) for t in store.iter_tributes()] == expected
    assert len(expected) == 14
    assert [t.tribute_id for t in store.iter_tributes(OTHER)] == [f"D{n}F" for n in range(7)]


# ---------------------------------------------------------- transactions
def test_nested_failure_undoes_only_its_own_writes(store: TributeStore) -> None:
    store.create_tribute(GUILD, "D1F")
    with store.transaction():
        store.add_item(GUILD, "D1F", "kept")
        with pytest.raises(RuntimeError), store.transaction():
            store.add_item(GUILD, "D1F", "undone")
            raise RuntimeError("boom")
        store.add_item(GUILD, "D1F", "also kept")
    assert store.get_inventory(GUILD, "D1F").items == ["kept", "also kept"]


def test_locked_database_is_a_storage_error(db_path: Path) -> None:
    with open_store(f"sqlite:///{db_path}?timeout=0.2") as store:
        store.create_tribute(GUILD, "D1F")
        blocker = raw(db_path)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError, match="locked") as raised:
                store.add_item(GUILD, "D1F", "blocked")
            assert str(db_path) in str(raised.value) and "\n" not in str(raised.value)
        finally:
            blocker.rollback()
            blocker.close()
        store.add_item(GUILD, "D1F", "after")
        assert store.get_inventory(GUILD, "D1F").items == ["after"]


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an sqlite file at all" * 100)
    with pytest.raises(CorruptDataError, match=str(path)):
        open_store(f"sqlite:///{path}")


def test_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="directory"):
        open_store(f"sqlite:///{tmp_path}")


def test_closed_store(db_path: Path) -> None:
    store = open_store(f"sqlite:///{db_path}")
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.list_guilds()


def _add_many(url: str, count: int, label: str) -> None:
    with open_store(url) as store:
        for number in range(count):
            store.add_item(GUILD, "D1F", f"{label}-{number}", force=True)


def test_two_processes_lose_no_update(db_path: Path) -> None:
    url = f"sqlite:///{db_path}?synchronous=normal"
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(url, 100, label)) for label in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with open_store(url) as store:
        items = store.get_inventory(GUILD, "D1F").items
        assert len(items) == 200
        for label in ("a", "b"):
            assert [i for i in items if i.startswith(label)] == [f"{label}-{n}" for n in range(100)]
        assert store.check() == []


# ---------------------------------------------------------------- search
ITEMS = [
    "Meat (2/2 uses.)",
    "Hunting KNIFE",
    "Canteen",
    'Rope "lucky" knot',
    "Straße map",
    "100% cotton_shirt 'o",
    "ǅemal's İstanbul ﬁle",
    "AND OR NOT NEAR",
    "x",
    "ΣΊΣΥΦΟΣ stone",
]
QUERIES = [
    "k",
    "kn",
    "kni",
    "knife",
    "e",
    "ee",
    "een",
    '"',
    '""',
    '"lucky"',
    'e "l',
    "'",
    "'o",
    "%",
    "_",
    "2/2",
    "(2/2 uses.)",
    "*",
    "kni*",
    "NEAR",
    "and or",
    "or not near",
    "strasse",
    "ss",
    "ß",
    "fi",
    "ﬁle",
    "file",
    "i̇stanbul",
    "σίσυφος",
    "\u03c3",  # final/medial sigma fold alike
    "x",
    "xx",
    "zzz",
    "-",
    "^can",
    "teen)",
    "{a b}",
    ":",
]


def test_fts_and_fallback_search_agree(db_path: Path) -> None:
    with open_store(f"sqlite:///{db_path}") as store:
        assert isinstance(store, sqlite_store.SqliteStore)
        assert store.use_fts == search.sqlite_has_trigram()
        store.create_tribute(GUILD, "D1F")
        store.create_tribute(GUILD, "D2M")
        store.create_tribute(OTHER, "D1F")
        owners = [(GUILD, "D1F"), (GUILD, "D2M"), (OTHER, "D1F")]
        for number, item in enumerate(ITEMS * 2):
            guild, tribute = owners[number % 3]
            store.add_item(guild, tribute, item, equipped=number % 4 == 1, force=True)
        store.remove_item(GUILD, "D1F", 1)  # renumbering keeps the index in step
        store.unequip_item(GUILD, "D2M", 1)
        with open_store(f"sqlite:///{db_path}?fts=off") as plain:
            assert isinstance(plain, sqlite_store.SqliteStore) and not plain.use_fts
            for query in QUERIES + [item[1:-1] for item in ITEMS if len(item) > 2] + ITEMS:
                for scope in (None, GUILD, OTHER):
                    indexed = store.search_items(query, guild_id=scope)
                    scanned = plain.search_items(query, guild_id=scope)
                    assert indexed == scanned, (query, scope)
                    folded = query.casefold()
                    assert all(folded in hit.item.casefold() for hit in indexed)
            inventories = {
                (t.guild_id, t.tribute_id): store.get_inventory(t.guild_id, t.tribute_id)
                for t in store.iter_tributes()
            }
            for query in QUERIES:
                expected = [
                    (gid, tid, slot, number, item)
                    for (gid, tid), inventory in sorted(inventories.items())
                    for slot in ("items", "equipped")
                    for number, item in enumerate(getattr(inventory, slot), start=1)
                    if query.casefold() in item.casefold()
                ]
                hits = store.search_items(query)
                assert [(h.guild_id, h.tribute_id, h.slot, h.number, h.item) for h in hits] == expected, query
        assert store.check() == []


def test_index_survives_vacuum(store: TributeStore, db_path: Path) -> None:
    store.create_tribute(GUILD, "D1F")
    store.create_tribute(GUILD, "D2F")
    for number in range(30):
        store.add_item(GUILD, ["D1F", "D2F"][number % 2], f"item number {number}", force=True)
    store.clear_inventory(GUILD, "D1F")
    with raw(db_path) as conn:
        conn.execute("VACUUM")
    store.remove_item(GUILD, "D2F", 1)
    assert [h.number for h in store.search_items("number 29")] == [14]
    assert store.check() == []


@pytest.mark.parametrize("in_memory", [False, True])
def test_threads_lose_no_update(db_path: Path, in_memory: bool) -> None:
    with open_store(
        "sqlite:///:memory:" if in_memory else f"sqlite:///{db_path}?synchronous=normal"
    ) as store:
        store.create_tribute(GUILD, "D1F")
        errors: list[BaseException] = []

        def work(label: str) -> None:
            try:
                for number in range(40):
                    store.add_item(GUILD, "D1F", f"{label}-{number}", force=True)
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(str(n),)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.get_inventory(GUILD, "D1F").items) == 240
