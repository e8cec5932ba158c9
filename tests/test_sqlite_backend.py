"""SQLite-specific behaviour: schema versioning, foreign keys, search index, locking, errors."""

from __future__ import annotations

import hashlib
import multiprocessing
import re
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import open_denied, run_cli, sql_backend, statements_of

from tributestore import (
    ConfigError,
    CorruptDataError,
    InvalidInputError,
    SchemaVersionError,
    StorageError,
    StoreNotFoundError,
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
    backend = sql_backend(store)
    with pytest.raises(StorageError, match="FOREIGN KEY"), store.transaction(), backend.connection() as conn:
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


def test_open_waits_for_a_writer_while_switching_to_wal(db_path: Path) -> None:
    """SQLite refuses ``journal_mode = WAL`` at once ("database is locked", no busy wait) while
    another connection writes in a file not yet in WAL mode: what several processes opening a
    new store together met.  Opening waits for the writer, as for any other lock."""
    with open_store(f"sqlite:///{db_path}") as store:
        store.create_tribute(GUILD, "D1F", name="Katniss")
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode = DELETE").fetchone() == ("delete",)
    blocker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("UPDATE tributes SET name = 'Primrose'")
    finished = threading.Timer(0.5, lambda: (blocker.execute("COMMIT"), blocker.close()))
    finished.start()
    try:
        with open_store(f"sqlite:///{db_path}?timeout=20") as store:
            assert store.get_tribute(GUILD, "D1F").name == "Primrose"
    finally:
        finished.join()
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_open_gives_up_on_a_writer_after_its_timeout(db_path: Path) -> None:
    open_store(f"sqlite:///{db_path}").close()
    with raw(db_path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    blocker = raw(db_path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="locked") as raised:
            open_store(f"sqlite:///{db_path}?timeout=0.3")
        assert str(db_path) in str(raised.value) and "\n" not in str(raised.value)
    finally:
        blocker.rollback()
        blocker.close()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an sqlite file at all" * 100)
    with pytest.raises(CorruptDataError, match=str(path)):
        open_store(f"sqlite:///{path}")


def test_directory_is_not_a_database(tmp_path: Path) -> None:
    # A wrong URL, said as such in every mode (and by `config`): see test_open_modes.py.
    with pytest.raises(ConfigError, match="is a directory, not an SQLite database file"):
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
        assert sql_backend(store).use_fts == search.sqlite_has_trigram()
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
            assert not sql_backend(plain).use_fts
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


@pytest.mark.parametrize(
    ("removal", "named"),
    [
        (
            "DROP TRIGGER inventory_items_fts_insert; DROP TRIGGER inventory_items_fts_delete;"
            " DROP TRIGGER inventory_items_fts_update; DROP TABLE inventory_items_fts",
            "full-text index inventory_items_fts is missing",
        ),
        ("DROP TRIGGER inventory_items_fts_insert", "inventory_items_fts_insert missing"),
        ("DROP TRIGGER inventory_items_fts_update", "inventory_items_fts_update missing"),
        ("DROP INDEX inventory_items_by_text", "inventory_items_by_text is missing"),
    ],
)
def test_check_names_a_search_index_part_removed_by_hand_and_a_write_open_rebuilds_it(
    db_path: Path, removal: str, named: str
) -> None:
    """No pending marker explains it: ``check`` must still not say "no problems", and the items
    written while a trigger was gone must be found once the store is opened for writing."""
    with open_store(f"sqlite:///{db_path}") as store:
        store.create_tribute(GUILD, "D1F")
        store.add_item(GUILD, "D1F", "Rusty spear", force=True)
    with raw(db_path) as conn:
        conn.executescript(removal)
        # Written behind the index's back (a trigger gone, or no index at all).
        conn.execute(
            "INSERT INTO inventory_items (guild_id, tribute_id, slot, number, item, item_folded, item_key) "
            "VALUES (?, 'D1F', 'items', 2, 'Golden trident', 'golden trident', "
            "(SELECT max(item_key) + 1 FROM inventory_items))",
            (GUILD,),
        )
        conn.execute(
            "UPDATE inventory_items SET item = 'Poisoned mace', item_folded = 'poisoned mace'"
            " WHERE number = 1"
        )
        gone = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    with open_store(f"sqlite:///{db_path}", mode="read") as reading:
        problems = reading.check()
        assert len(problems) == 1, problems
        assert named in problems[0] and "next open for writing" in problems[0], problems
        assert [h.item for h in reading.search_items("trident")] == ["Golden trident"]  # a scan
    with raw(db_path) as conn:  # reading changed nothing
        assert {row[0] for row in conn.execute("SELECT name FROM sqlite_master")} == gone
    with open_store(f"sqlite:///{db_path}") as store:
        assert store.check() == []
        assert [h.item for h in store.search_items("trident")] == ["Golden trident"]
        assert [h.item for h in store.search_items("poisoned")] == ["Poisoned mace"]
        assert store.search_items("rusty") == []


def _files_and_bytes(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_a_legacy_thgbot_db_as_destination_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """``sqlite:///legacy/thgbot.db`` (a typo for thg.db): another program's database holding
    tables named as ours.  Refused before anything is written: no table, no WAL switch, no file."""
    assert run_cli("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    before = _files_and_bytes(tmp_path / "legacy")
    result = run_cli("copy", "thgbot:///legacy", "sqlite:///legacy/thgbot.db", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is not a tributestore store" in result.stderr and "(files, inventories" in result.stderr
    assert "nothing was changed" in result.stderr and "Traceback" not in result.stderr
    assert _files_and_bytes(tmp_path / "legacy") == before
    for mode in ("read", "write"):
        with pytest.raises(ConfigError, match="no schema_version table"):
            open_store(f"sqlite:///{tmp_path}/legacy/thgbot.db", mode=mode)  # type: ignore[arg-type]
    assert _files_and_bytes(tmp_path / "legacy") == before


@pytest.mark.parametrize("content", ["table", "empty file"])
def test_reading_another_programs_database_leaves_it_as_it_was(tmp_path: Path, content: str) -> None:
    """Opened for reading (stats, check, a copy source), a file without tributestore's tables is
    refused before a connection switches it to WAL, which would change that program's database
    (or write a header into an empty file)."""
    path = tmp_path / "other.db"
    if content == "table":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (x)")
            conn.execute("INSERT INTO notes VALUES (1)")
        conn.close()
    else:
        path.write_bytes(b"")
    before = _files_and_bytes(tmp_path)
    for command in ("stats", "check"):
        result = run_cli(command, f"sqlite:///{path}")
        assert result.returncode == 3 and "holds no tributestore tables" in result.stderr, result.stderr
    with pytest.raises(StoreNotFoundError):
        open_store(f"sqlite:///{path}", mode="read")
    assert _files_and_bytes(tmp_path) == before


def test_a_database_with_other_tables_gets_ours_and_says_so(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_path.parent.mkdir(parents=True)
    with raw(db_path) as conn:
        conn.execute("CREATE TABLE scores (player TEXT, points INTEGER)")
    with open_store(f"sqlite:///{db_path}") as store:
        store.create_tribute(GUILD, "D1F")
    notes = [r.getMessage() for r in caplog.records if "already held other tables" in r.getMessage()]
    assert notes == [
        f"added tributestore's tables to SQLite database {db_path} (sqlite:///{db_path}), "
        "which already held other tables (scores)"
    ]
    caplog.clear()
    with open_store(f"sqlite:///{db_path}") as store:
        assert store.get_tribute(GUILD, "D1F") is not None
    assert not [r for r in caplog.records if "other tables" in r.getMessage()]


def test_a_store_in_a_directory_nobody_may_write_is_a_clear_error(tmp_path: Path) -> None:
    """SQLite needs -wal and -shm files beside a WAL store even to read it: the error says so.
    The directory is made immutable (``chattr +i``), which binds root too."""
    directory = tmp_path / "ro"
    directory.mkdir()
    open_store(f"sqlite:///{directory}/thg.db").close()
    if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        result = run_cli("stats", f"sqlite:///{directory}/thg.db")
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)
    assert result.returncode == 5, result.stderr
    assert f"its directory {directory} is not writable" in result.stderr and "thg.db-shm" in result.stderr


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


# ------------------------------------------------------ files of older versions
#: The DDL of schema versions 1-3 as the format-string migrations of tributestore <= 0.x wrote it.
OLD_DDL = {
    1: """
    CREATE TABLE schema_version (version INTEGER NOT NULL);
    CREATE TABLE guilds (guild_id INTEGER NOT NULL PRIMARY KEY, log_channel_id INTEGER,
        category_id INTEGER, gm_id INTEGER, admin_id INTEGER);
    CREATE TABLE tributes (guild_id INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
        tribute_id TEXT NOT NULL, name TEXT, user_id INTEGER, user_mention TEXT, face_claim_url TEXT,
        prompt_channel_id INTEGER, created_at TEXT, updated_at TEXT, PRIMARY KEY (guild_id, tribute_id));
    CREATE TABLE inventories (guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL,
        capacity INTEGER NOT NULL, equipped_capacity INTEGER NOT NULL, PRIMARY KEY (guild_id, tribute_id),
        FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE);
    CREATE TABLE inventory_items (guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL,
        slot TEXT NOT NULL CHECK (slot IN ('items', 'equipped')), number INTEGER NOT NULL CHECK (number >= 1),
        item TEXT NOT NULL, item_folded TEXT NOT NULL, item_key INTEGER NOT NULL UNIQUE,
        PRIMARY KEY (guild_id, tribute_id, slot, number),
        FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE);
    CREATE TABLE prompts (guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL, message TEXT NOT NULL,
        channel_id INTEGER, created_at TEXT, updated_at TEXT, PRIMARY KEY (guild_id, tribute_id),
        FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE);
    CREATE TABLE prompt_files (guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL,
        position INTEGER NOT NULL, file_name TEXT NOT NULL, PRIMARY KEY (guild_id, tribute_id, position),
        FOREIGN KEY (guild_id, tribute_id) REFERENCES prompts (guild_id, tribute_id) ON DELETE CASCADE);
    CREATE TABLE files (guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL, name TEXT NOT NULL,
        kind TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
        created_at TEXT, data BLOB NOT NULL, PRIMARY KEY (guild_id, tribute_id, name),
        FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE);
    """,
    2: """
    CREATE TABLE tombstones (guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL,
        deleted_at TEXT NOT NULL, PRIMARY KEY (guild_id, tribute_id));
    """,
    3: """
    ALTER TABLE tombstones ADD COLUMN origin_key TEXT;
    CREATE INDEX tombstones_by_origin ON tombstones (origin_key);
    """,
}
STAMP = "2024-02-29T23:59:58.123456+00:00"


def _old_file(path: Path, version: int) -> None:
    """A database written by the old code at ``version``: every part of one tribute, no FTS index."""
    with raw(path) as conn:
        for step in range(1, version + 1):
            conn.executescript(OLD_DDL[step])
        conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
        conn.execute("INSERT INTO guilds (guild_id, gm_id) VALUES (?, 5)", (GUILD,))
        conn.execute(
            "INSERT INTO tributes VALUES (?, 'D1F', 'Katniss', 7, '<@7>', NULL, NULL, ?, ?)",
            (GUILD, STAMP, STAMP),
        )
        conn.execute("INSERT INTO inventories VALUES (?, 'D1F', 10, 5)", (GUILD,))
        for number, (slot, item) in enumerate(
            [("items", "Hunting KNIFE"), ("items", "Rope"), ("equipped", "Bow")]
        ):
            position = 1 if slot == "equipped" else number + 1
            conn.execute(
                "INSERT INTO inventory_items VALUES (?, 'D1F', ?, ?, ?, ?, ?)",
                (GUILD, slot, position, item, item.casefold(), number + 1),
            )
        conn.execute("INSERT INTO prompts VALUES (?, 'D1F', 'go', NULL, ?, ?)", (GUILD, STAMP, STAMP))
        conn.execute("INSERT INTO prompt_files VALUES (?, 'D1F', 1, 'a.png')", (GUILD,))
        data = b"png"
        conn.execute(
            "INSERT INTO files VALUES (?, 'D1F', 'a.png', 'attachment', 'image/png', 3, ?, ?, ?)",
            (GUILD, hashlib.sha256(data).hexdigest(), STAMP, data),
        )
        if version >= 2:
            conn.execute(
                "INSERT INTO tombstones (guild_id, tribute_id, deleted_at) VALUES (?, 'D9F', ?)",
                (GUILD, STAMP),
            )


@pytest.mark.parametrize("version", [1, 2, 3])
def test_files_of_older_schema_versions_open_and_are_migrated(
    db_path: Path, version: int, caplog: pytest.LogCaptureFixture
) -> None:
    db_path.parent.mkdir(parents=True)
    _old_file(db_path, version)
    with open_store(f"sqlite:///{db_path}", mode="read") as store:
        # The upgrade changes the file, even opened for reading: said once, naming both versions.
        upgraded = [r.getMessage() for r in caplog.records if "upgraded the schema" in r.getMessage()]
        assert (
            upgraded
            == [
                f"upgraded the schema of SQLite database {db_path} (sqlite:///{db_path}) from version "
                f"{version} to {schema.CURRENT_VERSION}: tributestore versions older than this one can "
                "no longer open it"
            ][: int(version < schema.CURRENT_VERSION)]
        )
        assert store.created is None
        document = store.export_tribute(GUILD, "D1F")
        assert document.tribute.name == "Katniss" and document.tribute.created_at == datetime.fromisoformat(
            STAMP
        )
        assert document.inventory.items == ["Hunting KNIFE", "Rope"] and document.inventory.equipped == [
            "Bow"
        ]
        assert document.prompt is not None and document.prompt.files == ["a.png"]
        assert store.read_file(GUILD, "D1F", "a.png") == b"png"
        assert [(h.slot, h.number) for h in store.search_items("knife")] == [("items", 1)]  # a scan
        assert store.tombstone_count() == (1 if version >= 2 else 0)
        store.add_item(GUILD, "D1F", "Knife sharpener", force=True)
        assert [h.number for h in store.search_items("knife")] == [1, 3]
        backend = sql_backend(store)
        backend.put_tombstone(GUILD, "D8F", "legacy-8")
        assert store.has_origin_tombstone("legacy-8")
        # Opened for reading: no search index was built, and check says so.
        problems = store.check()
        assert len(problems) == 2 and all("next open for writing" in line for line in problems), problems
    caplog.clear()
    with open_store(f"sqlite:///{db_path}") as store:
        assert [h.number for h in store.search_items("knife")] == [1, 3]  # the index, built now
        assert store.check() == []
    assert not [r for r in caplog.records if "upgraded" in r.getMessage()]  # once only
    with raw(db_path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.CURRENT_VERSION,)]
        assert "origin_key" in {row[1] for row in conn.execute("PRAGMA table_info(tombstones)")}


# ------------------------------------------------------- writes of a document
def _writes(store: TributeStore, action: Callable[[], object]) -> list[str]:
    """The INSERT/UPDATE/DELETE statements ``action()`` runs (their first three words)."""
    words = [statement.split() for statement, _ in statements_of(store, action)]
    return [" ".join(first[:3]) for first in words if first[0] in ("INSERT", "UPDATE", "DELETE")]


def test_a_write_touches_only_the_rows_that_changed(store: TributeStore) -> None:
    store.create_tribute(GUILD, "D1F")
    for item in ("a", "b", "c"):
        store.add_item(GUILD, "D1F", item)
    store.add_file(GUILD, "D1F", "a.png", b"a")
    store.set_prompt(GUILD, "D1F", "go", files=["a.png"])
    items = "INSERT INTO inventory_items"
    assert _writes(store, lambda: store.add_item(GUILD, "D1F", "d")) == [items]
    assert _writes(store, lambda: store.add_item(GUILD, "D1F", "e", equipped=True)) == [items]
    assert _writes(store, lambda: store.remove_item(GUILD, "D1F", 4)) == ["DELETE FROM inventory_items"]
    assert _writes(store, lambda: store.remove_item(GUILD, "D1F", 1)) == [
        "DELETE FROM inventory_items",
        "UPDATE inventory_items SET",
    ]
    assert _writes(store, lambda: store.equip_item(GUILD, "D1F", 1)) == [
        "DELETE FROM inventory_items",
        "UPDATE inventory_items SET",
        items,
    ]
    assert _writes(store, lambda: store.update_tribute(GUILD, "D1F", name="x")) == ["UPDATE tributes SET"]
    assert _writes(store, lambda: store.set_capacity(GUILD, "D1F", capacity=3)) == ["INSERT INTO inventories"]
    assert _writes(store, lambda: store.add_file(GUILD, "D1F", "b.png", b"b")) == ["INSERT INTO files"]
    assert _writes(store, lambda: store.delete_file(GUILD, "D1F", "b.png")) == ["DELETE FROM files"]
    assert _writes(store, lambda: store.set_prompt(GUILD, "D1F", "again", files=["a.png"])) == [
        "INSERT INTO prompts"
    ]
    assert store.get_inventory(GUILD, "D1F").model_dump(include={"items", "equipped"}) == {
        "items": ["c"],
        "equipped": ["e", "b"],
    }
    assert [f.name for f in store.list_files(GUILD, "D1F")] == ["a.png"]
    assert store.read_file(GUILD, "D1F", "a.png") == b"a"
    assert store.check() == []


def test_save_without_previous_replaces_the_whole_document(store: TributeStore) -> None:
    store.create_tribute(GUILD, "D1F")
    store.add_item(GUILD, "D1F", "old item")
    store.add_file(GUILD, "D1F", "keep.bin", b"kept bytes")
    store.add_file(GUILD, "D1F", "drop.bin", b"dropped")
    store.set_prompt(GUILD, "D1F", "old prompt")
    backend = sql_backend(store)
    before = store.export_tribute(GUILD, "D1F")
    kept = next(f for f in before.files if f.name == "keep.bin")
    inventory = before.inventory.model_copy(update={"items": ["new"], "equipped": ["bow"]})
    document = before.model_copy(update={"inventory": inventory, "prompt": None, "files": [kept]})
    with store.transaction():
        backend.save(document, {}, None)  # keep.bin is not given: its stored bytes stay
    assert store.export_tribute(GUILD, "D1F") == document
    assert store.read_file(GUILD, "D1F", "keep.bin") == b"kept bytes"
    stranger = kept.model_copy(update={"name": "new.bin"})
    with pytest.raises(InvalidInputError, match=r"new\.bin"), store.transaction():
        backend.save(document.model_copy(update={"files": [kept, stranger]}), {}, None)
    assert store.export_tribute(GUILD, "D1F") == document
    assert [hit.item for hit in store.search_items("new")] == ["new"]
    assert store.check() == []


def test_bulk_import_replaces_whole_documents_and_takes_a_tribute_twice(store: TributeStore) -> None:
    store.create_tribute(GUILD, "D1F")
    store.add_item(GUILD, "D1F", "stale")
    store.add_file(GUILD, "D1F", "stale.bin", b"stale")
    source = open_store("sqlite:///:memory:")
    try:
        for tribute in ("D1F", "D2F"):
            source.create_tribute(GUILD, tribute, name=tribute.lower())
            source.add_item(GUILD, tribute, f"fresh {tribute}")
            source.add_file(GUILD, tribute, "fresh.bin", tribute.encode())
            source.set_prompt(GUILD, tribute, "go", files=["fresh.bin"])
        bundles = list(source.iter_bundles())
        data = {
            (f.tribute_id, f.name): source.read_file(GUILD, f.tribute_id, f.name)
            for b in bundles
            for f in b.files
        }
    finally:
        source.close()
    file_data = lambda info: data[info.tribute_id, info.name]  # noqa: E731
    store.import_many(bundles, file_data)
    assert list(store.iter_bundles()) == bundles
    renamed = bundles[0].model_copy(
        update={"tribute": bundles[0].tribute.model_copy(update={"name": "again"})}
    )
    store.import_many([bundles[0], bundles[1], renamed], file_data)  # D1F twice: the last one wins
    assert list(store.iter_bundles()) == [renamed, bundles[1]]
    assert store.read_file(GUILD, "D1F", "fresh.bin") == b"D1F"
    assert store.check() == []


# ------------------------------------------------------------------ shared with test_postgres.py
def refuses_new_contents_without_bytes(store: TributeStore) -> None:
    """A file whose sha256 changed but whose bytes were not given is refused, with or without
    ``previous``: keeping the old bytes would give them the new metadata."""
    store.create_tribute(GUILD, "D1F")
    store.add_file(GUILD, "D1F", "a.bin", b"old bytes")
    backend = sql_backend(store)
    before = store.export_tribute(GUILD, "D1F")
    new = b"new bytes, longer"
    changed = before.files[0].model_copy(update={"sha256": hashlib.sha256(new).hexdigest(), "size": len(new)})
    document = before.model_copy(update={"files": [changed]})
    for previous in (before, None):
        with (
            pytest.raises(StorageError, match=r"'a\.bin' of tribute D1F .*no bytes given"),
            store.transaction(),
        ):
            backend.save(document, {}, previous)
        assert store.export_tribute(GUILD, "D1F") == before
        assert store.read_file(GUILD, "D1F", "a.bin") == b"old bytes"
    with store.transaction():  # with its bytes it is a replacement
        backend.save(document, {"a.bin": new}, before)
    assert store.read_file(GUILD, "D1F", "a.bin") == new
    assert store.check() == []


def tombstone_takes_a_later_origin_key(store: TributeStore) -> None:
    """A tombstone recorded without an origin key gets the one a later put names (as in JSON);
    one it already has is kept."""
    backend = sql_backend(store)
    backend.put_tombstone(GUILD, "D1F", None)
    assert not backend.has_origin_tombstone("legacy:d1f")
    backend.put_tombstone(GUILD, "D1F", "legacy:d1f")
    assert backend.has_origin_tombstone("legacy:d1f")
    backend.put_tombstone(GUILD, "D1F", "legacy:other")
    backend.put_tombstone(GUILD, "D1F", None)
    assert backend.has_origin_tombstone("legacy:d1f") and not backend.has_origin_tombstone("legacy:other")
    assert backend.count_tombstones() == 1


def test_new_contents_without_bytes_are_refused(store: TributeStore) -> None:
    refuses_new_contents_without_bytes(store)


def test_a_tombstone_takes_a_later_origin_key(store: TributeStore) -> None:
    tombstone_takes_a_later_origin_key(store)


# ------------------------------------------------------------------ permission errors
@pytest.mark.parametrize("mode", ["read", "write"])
def test_a_path_it_may_not_look_at_is_a_storage_error(tmp_path: Path, mode: str) -> None:
    """Opening a database under a directory the user may not search: a StorageError naming the
    path and the reason, not a raw PermissionError (root runs without the capabilities that let
    it past file modes)."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o000)
    try:
        outcome = open_denied(f"sqlite:///{closed}/thg.db", mode)
    finally:
        closed.chmod(0o755)
    assert outcome.startswith("StorageError: "), outcome
    assert "Permission denied" in outcome and f"{closed}/thg.db" in outcome, outcome


def test_a_store_named_through_a_symlink_keeps_its_files_beside_the_real_one(tmp_path: Path) -> None:
    """SQLite puts -wal and -shm beside the file a symlink points to; the writers' queue goes there
    too, so writers naming the store by either path queue in one line (and the link's directory
    gets nothing)."""
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    open_store(f"sqlite:///{real}/thg.db").close()
    (links / "thg.db").symlink_to(real / "thg.db")
    with open_store(f"sqlite:///{links}/thg.db") as through_link:
        through_link.create_tribute(1, "A1")
        assert sorted(p.name for p in links.iterdir()) == ["thg.db"]
        assert (real / "thg.db-queue").exists()
