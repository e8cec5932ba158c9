"""The SQL backend's bulk import: the search index dropped for a large import, rebuilt at its end.

``SqlBackend.bulk_import(n)`` around the ``import_documents`` batches of a large
import drops the search index (SQLite: the FTS5 table and its triggers; PostgreSQL:
the trigram GIN index) with the first batch, in the same transaction as a marker
row (``search_index_pending``), and rebuilds it at the end.  Whatever happens in
between, the store stays honest: searches find every item (they scan while the index
is gone), ``check()`` says the index is stale, other processes' writes are indexed
by the rebuild, and a killed import leaves the marker, so the next open rebuilds it.

The PostgreSQL tests also check that the COPY path writes exactly what the
statement-by-statement path writes (tabs, newlines, backslashes, NUL bytes, large
snowflakes).
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import sql_backend

from tributestore import TributeStore, open_store
from tributestore.backends.sqlite_backend import search
from tributestore.backends.sqlite_backend import store as sql_store
from tributestore.backends.sqlite_backend.store import SqlBackend
from tributestore.models import FileInfo, TributeBundle

GUILD = 111111111111111111
OTHER = 222222222222222222
MAX_ID = 2**63 - 1
STALE = "search index is stale"


# ------------------------------------------------------------------ helpers
def fill(store: TributeStore, count: int, prefix: str = "T") -> None:
    """``count`` tributes with items, an equipped item, a file and (one in three) a prompt."""
    with store.transaction():
        for n in range(count):
            guild, tid = (GUILD, OTHER)[n % 2], f"{prefix}{n:03d}"
            store.create_tribute(guild, tid, name=f"tribute {n}", user_id=MAX_ID - n)
            for item in range(3):
                store.add_item(guild, tid, f"Item {item} of {tid}")
            store.add_item(guild, tid, f"Sword of {tid}", equipped=True)
            store.add_file(guild, tid, f"{tid}.bin", hashlib.sha256(tid.encode()).digest() * (1 + n % 3))
            if n % 3 == 0:
                store.set_prompt(guild, tid, f"prompt of {tid}", files=[f"{tid}.bin"])


def documents(store: TributeStore) -> list[TributeBundle]:
    return list(store.iter_bundles())


def file_reader(store: TributeStore) -> Callable[[FileInfo], bytes]:
    def read(info: FileInfo) -> bytes:
        return store.read_file(info.guild_id, info.tribute_id, info.name)

    return read


def hits(store: TributeStore, query: str) -> list[tuple[int, str, str, int, str]]:
    return [(h.guild_id, h.tribute_id, h.slot, h.number, h.item) for h in store.search_items(query)]


def scanned(path: Path, query: str) -> list[tuple[int, str, str, int, str]]:
    """The hits a search must give, by a plain scan of the file's rows (Python's casefold)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT guild_id, tribute_id, slot, number, item FROM inventory_items"
            " ORDER BY guild_id, tribute_id, slot = 'equipped', number"
        ).fetchall()
    return [row for row in rows if query.casefold() in row[4].casefold()]


def index_state(path: Path) -> tuple[bool, int, list[str]]:
    """(FTS table exists, number of its triggers, marker rows), read raw from the file."""
    with sqlite3.connect(path) as conn:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        triggers = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'inventory_items'"
        ).fetchone()[0]
        marker = (
            [name for (name,) in conn.execute("SELECT name FROM search_index_pending")]
            if "search_index_pending" in names
            else []
        )
    return search.FTS_TABLE in names, int(triggers), marker


def assert_honest(path: Path) -> None:
    """What any process may see: the index whole (with its triggers) or gone with the marker set."""
    fts, triggers, marker = index_state(path)
    if fts:
        assert triggers == 3
        with sqlite3.connect(path) as conn:  # raises if the index does not match the items
            conn.execute(
                f"INSERT INTO {search.FTS_TABLE} ({search.FTS_TABLE}, rank) VALUES ('integrity-check', 1)"
            )
    else:
        assert triggers == 0 and marker == ["search"]


@pytest.fixture
def source() -> Iterator[TributeStore]:
    with open_store("sqlite:///:memory:") as opened:
        fill(opened, 30)
        yield opened


@pytest.fixture
def always_defer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_store, "DEFER_INDEX_MIN", 1)


def backend_of(store: TributeStore) -> SqlBackend:
    backend = sql_backend(store)
    return backend


# ------------------------------------------------------------------ SQLite, in one process
@pytest.mark.backend("sqlite")
@pytest.mark.usefixtures("always_defer")
def test_index_dropped_with_its_marker_searches_scan_and_the_end_rebuilds_it(
    tmp_path: Path, source: TributeStore
) -> None:
    path = tmp_path / "thg.db"
    bundles, read = documents(source), file_reader(source)
    with open_store(f"sqlite:///{path}") as importer, open_store(f"sqlite:///{path}") as bot:
        bot.create_tribute(GUILD, "BOT", name="written by the bot")
        bot.add_item(GUILD, "BOT", "Bot's lantern")
        backend = backend_of(importer)
        with backend.bulk_import(len(bundles)):
            importer.import_many(bundles[:10], read)
            assert index_state(path) == (False, 0, ["search"])
            assert_honest(path)
            # Another writer while the triggers are gone: its item is in the rebuilt index.
            bot.add_item(GUILD, "BOT", "Bot's second lantern")
            bot.remove_item(GUILD, "BOT", 1)
            for query in ("lantern", "item 2 of t00", "sword", "of"):
                assert hits(bot, query) == hits(importer, query) == scanned(path, query)
            assert any(STALE in problem for problem in bot.check())
            importer.import_many(bundles[10:], read)
            assert_honest(path)
        assert index_state(path) == (True, 3, [])
        assert_honest(path)
        for store in (importer, bot):
            assert store.check() == []
            for query in ("lantern", "item 1 of t02", "sword of t029", "zzz"):
                assert hits(store, query) == scanned(path, query)
        assert hits(bot, "lantern") == [(GUILD, "BOT", "items", 1, "Bot's second lantern")]
        assert [b for b in importer.iter_bundles() if b.tribute.tribute_id != "BOT"] == bundles


@pytest.mark.backend("sqlite")
@pytest.mark.usefixtures("always_defer")
def test_an_open_during_a_running_import_leaves_the_index_to_it(tmp_path: Path, source: TributeStore) -> None:
    """A bot starting while an import runs does not rebuild the index (the import would drop it
    again at its next batch, and the rebuild takes seconds at a million items): it scans, says
    so, and uses the index again once the import has rebuilt it."""
    path = tmp_path / "thg.db"
    bundles, read = documents(source), file_reader(source)
    with open_store(f"sqlite:///{path}") as importer:
        with backend_of(importer).bulk_import(len(bundles)):
            importer.import_many(bundles[:10], read)
            with open_store(f"sqlite:///{path}") as opened:  # a bot starting meanwhile
                assert index_state(path) == (False, 0, ["search"])
                assert any("bulk import in progress" in warning for warning in opened.warnings)
                assert any(STALE in problem for problem in opened.check())
                assert hits(opened, "sword") == scanned(path, "sword")
                importer.import_many(bundles[10:20], read)
                assert hits(opened, "sword") == scanned(path, "sword")
            importer.import_many(bundles[20:], read)
            during = open_store(f"sqlite:///{path}")  # open until after the import ended
        try:
            assert index_state(path) == (True, 3, [])
            assert importer.check() == []
            assert list(importer.iter_bundles()) == bundles
            assert during.check() == []
            assert hits(during, "sword") == scanned(path, "sword")
            assert backend_of(during).use_fts  # the index, back, is used
        finally:
            during.close()


@pytest.mark.backend("sqlite")
@pytest.mark.usefixtures("always_defer")
def test_a_reused_process_id_is_not_taken_for_the_importer(tmp_path: Path, source: TributeStore) -> None:
    """The marker names the importer's host, pid and start time: a live process that got the id of
    a killed importer (a restarted container's pid 1) does not keep the index off for good."""
    path = tmp_path / "thg.db"
    bundles, read = documents(source), file_reader(source)
    with open_store(f"sqlite:///{path}") as importer:
        with backend_of(importer).bulk_import(len(bundles)):
            importer.import_many(bundles[:10], read)
            assert index_state(path) == (False, 0, ["search"])
            with sqlite3.connect(path) as raw:
                (owner,) = raw.execute("SELECT owner FROM search_index_pending").fetchone()
                host = owner.rpartition(":")[0]
                raw.execute("UPDATE search_index_pending SET owner = ?", (f"{host}:{os.getpid()}@1",))
            with open_store(f"sqlite:///{path}") as opened:  # pid alive, started at another time
                assert index_state(path) == (True, 3, [])
                assert opened.check() == []
            importer.import_many(bundles[10:], read)
        assert importer.check() == []
        assert hits(importer, "sword") == scanned(path, "sword")


@pytest.mark.backend("sqlite")
@pytest.mark.usefixtures("always_defer")
def test_an_error_inside_the_import_still_rebuilds_the_index(tmp_path: Path, source: TributeStore) -> None:
    path = tmp_path / "thg.db"
    bundles, read = documents(source), file_reader(source)
    with open_store(f"sqlite:///{path}") as importer:
        with pytest.raises(RuntimeError, match="stop"), backend_of(importer).bulk_import(len(bundles)):
            importer.import_many(bundles[:5], read)
            raise RuntimeError("stop")
        assert index_state(path) == (True, 3, [])
        assert importer.check() == []
        assert hits(importer, "item") == scanned(path, "item")


@pytest.mark.backend("sqlite")
def test_a_small_import_keeps_the_index(
    tmp_path: Path, source: TributeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "thg.db"
    bundles, read = documents(source), file_reader(source)
    with open_store(f"sqlite:///{path}") as importer:
        with backend_of(importer).bulk_import(len(bundles)):  # 30 < DEFER_INDEX_MIN
            importer.import_many(bundles, read)
            assert index_state(path) == (True, 3, [])
        fill(importer, 40, prefix="X")
        # Large enough, but small beside what is stored: the triggers are cheaper than a rebuild.
        monkeypatch.setattr(sql_store, "DEFER_INDEX_MIN", 1)
        least = math.ceil(70 * backend_of(importer).dialect.defer_index_share)
        assert not backend_of(importer)._worth_deferring(least - 1)
        assert backend_of(importer)._worth_deferring(least)
        assert importer.check() == []


CHILD = textwrap.dedent(
    """
    import sys, time
    from tributestore import open_store
    from tributestore.backends.sqlite_backend import store as sql_store

    sql_store.DEFER_INDEX_MIN = 1
    with open_store(sys.argv[1]) as source, open_store(sys.argv[2]) as target:
        bundles = list(source.iter_bundles())
        read = lambda info: source.read_file(info.guild_id, info.tribute_id, info.name)
        with target.backend.bulk_import(len(bundles)):
            for start in range(0, len(bundles), 5):
                target.import_many(bundles[start : start + 5], read)
                print(start + 5, flush=True)
                time.sleep(float(sys.argv[3]))
        print("done", flush=True)
    """
)


@pytest.mark.backend("sqlite")
def test_a_killed_import_leaves_the_marker_and_the_next_open_rebuilds(tmp_path: Path) -> None:
    src, path = tmp_path / "src.db", tmp_path / "dst.db"
    with open_store(f"sqlite:///{src}") as source:
        fill(source, 30)
        expected = documents(source)
    command = [sys.executable, "-c", CHILD, f"sqlite:///{src}", f"sqlite:///{path}"]
    child = subprocess.Popen([*command, "5"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "5"
    assert child.stdout.readline().strip() == "10"
    child.kill()  # SIGKILL, between or inside batches
    child.wait(timeout=30)
    assert index_state(path)[:2] == (False, 0)
    assert_honest(path)
    with sqlite3.connect(path) as conn:
        written = conn.execute("SELECT count(*) FROM tributes").fetchone()[0]
    assert 10 <= written < 30
    # Opened without building an index: searches scan, and check() says the index is stale.
    with open_store(f"sqlite:///{path}?fts=off") as stale:
        problems = stale.check()
        assert len(problems) == 1 and STALE in problems[0], problems
        for query in ("item 0", "sword of t00", "of"):
            assert hits(stale, query) == scanned(path, query) != []
    assert index_state(path) == (False, 0, ["search"])
    # Opened for reading (a copy source, a backup): read as it is, the index not rebuilt.
    with open_store(f"sqlite:///{path}", mode="read") as reader:
        assert any("opened for reading" in warning for warning in reader.warnings), reader.warnings
        for query in ("item 0", "sword of t00", "of"):
            assert hits(reader, query) == scanned(path, query) != []
        assert documents(reader)
    assert index_state(path) == (False, 0, ["search"])
    # The next ordinary open rebuilds it (and clears the marker) in its opening transaction.
    with open_store(f"sqlite:///{path}") as reopened:
        assert index_state(path) == (True, 3, [])
        assert reopened.check() == []
        assert backend_of(reopened).use_fts
        for query in ("item 0", "sword of t00", "of"):
            assert hits(reopened, query) == scanned(path, query)
    # The re-run (resume) finishes the import: the index is rebuilt once more, at its end.
    finished = subprocess.run([*command, "0"], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0 and finished.stdout.endswith("done\n"), finished.stderr
    assert index_state(path) == (True, 3, [])
    with open_store(f"sqlite:///{path}") as done:
        assert done.check() == []
        assert documents(done) == expected
        assert hits(done, "sword") == scanned(path, "sword")


# ------------------------------------------------------------------ PostgreSQL
TRICKY = [
    "tab\there",
    "new\nline",
    "back\\slash \\N \\x41",
    "carriage\rreturn",
    "quote ' \" ,;|",
    "émoji 🗡️ ß ǅ",
    "\\",
]


def tricky_source() -> TributeStore:
    store = open_store("sqlite:///:memory:")
    with store.transaction():
        store.put_guild(GUILD, log_channel_id=MAX_ID, category_id=None)
        store.create_tribute(GUILD, "D1F", name="tab\tand\nnewline \\N", user_id=MAX_ID, user_mention=None)
        for item in TRICKY:
            store.add_item(GUILD, "D1F", item)
        store.add_item(GUILD, "D1F", "\\.", equipped=True)
        store.add_file(GUILD, "D1F", "all-bytes.bin", bytes(range(256)) * 3)
        store.add_file(GUILD, "D1F", "empty.bin", b"")
        store.add_file(GUILD, "D1F", "tab\tname.png", b"\\x00\x00\\\\N")
        store.set_prompt(GUILD, "D1F", "line 1\nline 2\t\\", files=["all-bytes.bin", "tab\tname.png"])
        store.create_tribute(OTHER, "D2F")  # nothing but defaults: NULLs everywhere
        fill(store, 12, prefix="P")
    return store


def dump(store: TributeStore) -> tuple[list[Any], dict[tuple[int, str, str], bytes], list[Any]]:
    bundles = [b.model_dump() for b in store.iter_bundles()]
    data = {
        (f.guild_id, f.tribute_id, f.name): store.read_file(f.guild_id, f.tribute_id, f.name)
        for b in store.iter_bundles()
        for f in b.files
    }
    found = [
        h.model_dump() for query in ("tab", "\\", "line", "🗡", "item 1") for h in store.search_items(query)
    ]
    return bundles, data, found


@pytest.mark.backend("postgres")
def test_postgres_copy_import_writes_what_the_statement_path_writes(
    schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tricky_source()
    try:
        bundles, read = documents(source), file_reader(source)
        with open_store(schema_url) as pg:
            for bundle in bundles:  # the ordinary path: a save per document
                pg.import_tribute(bundle, read)
            pg.put_guild(GUILD, log_channel_id=MAX_ID)
            normal = dump(pg)
            assert pg.check() == []
            with pg.transaction():
                for bundle in bundles:
                    pg.delete_tribute(bundle.tribute.guild_id, bundle.tribute.tribute_id)
            monkeypatch.setattr(sql_store, "DEFER_INDEX_MIN", 1)
            backend = backend_of(pg)
            with backend.bulk_import(len(bundles)):
                pg.import_many(bundles[:1], read)  # COPY; the trigram index kept (never dropped)
                with backend.db.reading() as conn:
                    assert search.has_trigram_index(conn)
                assert pg.check() == []
                assert [h.item for h in pg.search_items("tab")] == ["tab\there"]
                pg.import_many(bundles[1:], read)
            with backend.db.reading() as conn:
                assert search.has_trigram_index(conn)
            assert dump(pg) == normal
            assert pg.check() == []
            assert dump(source)[:2] == normal[:2]
    finally:
        source.close()


@pytest.mark.backend("postgres")
def test_postgres_keeps_its_index_through_a_bulk_import_even_when_killed(
    schema_url: str, tmp_path: Path
) -> None:
    """PostgreSQL never drops its trigram index for an import: DROP INDEX would take an
    ACCESS EXCLUSIVE lock, waiting for every open read and queueing every bot's search."""
    src = tmp_path / "src.db"
    with open_store(f"sqlite:///{src}") as source:
        fill(source, 30)
        expected = documents(source)
    command = [sys.executable, "-c", CHILD, f"sqlite:///{src}", schema_url]
    child = subprocess.Popen([*command, "5"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "5"
    with open_store(schema_url) as during, backend_of(during).db.reading() as conn:
        assert search.has_trigram_index(conn)
    child.kill()
    child.wait(timeout=30)
    with open_store(schema_url) as after:
        assert after.check() == []
        stored = [(b.tribute.guild_id, b.tribute.tribute_id) for b in after.iter_bundles()]
        assert len(stored) >= 5
        assert [(h.guild_id, h.tribute_id) for h in after.search_items("sword of t0")] == stored
    finished = subprocess.run([*command, "0"], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0 and finished.stdout.endswith("done\n"), finished.stderr
    with open_store(schema_url) as done:
        assert done.check() == []
        assert documents(done) == expected
