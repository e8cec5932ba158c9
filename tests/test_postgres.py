"""The PostgreSQL backend against a real server: conformance, copier, concurrent writers, search.

The server comes from ``TRIBUTESTORE_TEST_POSTGRES_URL``, else the local one
(127.0.0.1:5432), else a throwaway server the tests start from the installed
binaries (see ``postgres_server.py``); with none of them the tests are skipped
with one line saying how to provide a server, and under ``CI=true`` the run
stops with that line as a failure.  Each test gets a schema of its own
(``?schema=...``), dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from test_sqlite_backend import refuses_new_contents_without_bytes, tombstone_takes_a_later_origin_key

from tributestore import (
    ConfigError,
    SchemaVersionError,
    StorageError,
    TributeStore,
    open_store,
)
from tributestore.backends.sqlite_backend import dialects, schema, search
from tributestore.backends.sqlite_backend.store import SqlBackend
from tributestore.copier import copy_store, verify_stores
from tributestore.testing import ConformanceSuite
from tributestore.urls import parse_store_url

SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"
GUILD = 111111111111111111
OTHER = 222222222222222222


# ------------------------------------------- fixtures (server_url, admin, schema_url: conftest.py)
@pytest.fixture
def store(schema_url: str) -> Iterator[TributeStore]:
    with open_store(schema_url) as opened:
        yield opened


# ------------------------------------------------------------- conformance
@pytest.mark.backend("postgres")
class TestPostgres(ConformanceSuite):
    @pytest.fixture
    def store_url(self, schema_url: str) -> str:
        return schema_url


# ------------------------------------------------------------------ copier
def _bundles(store: TributeStore) -> list[object]:
    return [b.model_dump() for b in store.iter_bundles()]


def _file_bytes(store: TributeStore) -> dict[tuple[int, str, str], bytes]:
    return {
        (f.guild_id, f.tribute_id, f.name): store.read_file(f.guild_id, f.tribute_id, f.name)
        for b in store.iter_bundles()
        for f in b.files
    }


@pytest.mark.backend("postgres")
def test_legacy_to_postgres_to_sqlite_keeps_every_field(schema_url: str, tmp_path: Path) -> None:
    with (
        resources.as_file(SAMPLE) as path,
        open_store(f"thgbot:///{path}") as legacy,
        open_store(schema_url) as pg,
        open_store(f"sqlite:///{tmp_path}/thg.db") as sqlite,
    ):
        assert legacy.counts().tributes > 10
        first = copy_store(legacy, pg)
        assert first.ok and first.verified and first.written.tributes == legacy.counts().tributes
        second = copy_store(pg, sqlite)
        assert second.ok and second.verified
        for copy in (pg, sqlite):
            assert _bundles(copy) == _bundles(legacy)
            assert copy.list_guilds() == legacy.list_guilds()
            assert _file_bytes(copy) == _file_bytes(legacy)
            assert copy.counts() == legacy.counts()
        assert verify_stores(legacy, sqlite) == []
        assert pg.check() == []


# ------------------------------------------------------------- concurrency
_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tributestore import open_store

    url, worker, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    with open_store(url) as store:
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.005)
        for n in range(250):
            store.add_item({guild}, "D1F", f"w{{worker}}-{{n:03d}}", force=True)
    """
).format(guild=GUILD)


@pytest.mark.backend("postgres")
def test_four_processes_lose_no_update(store: TributeStore, schema_url: str, tmp_path: Path) -> None:
    store.create_tribute(GUILD, "D1F")
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, schema_url, str(worker), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready", worker.communicate(timeout=60)[1]
        go.touch()  # all four start writing at once
        for worker in workers:
            _, stderr = worker.communicate(timeout=300)
            assert worker.returncode == 0, stderr
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    items = store.get_inventory(GUILD, "D1F").items
    expected = [f"w{number}-{n:03d}" for number in range(4) for n in range(250)]
    assert len(items) == 1000
    assert sorted(items) == expected
    for number in range(4):  # each process's items kept its own order
        own = [item for item in items if item.startswith(f"w{number}-")]
        assert own == sorted(own)
    assert store.check() == []


@pytest.mark.backend("postgres")
def test_waiting_writer_gives_up_after_timeout(store: TributeStore, schema_url: str) -> None:
    store.create_tribute(GUILD, "D1F")
    with open_store(schema_url + "&timeout=1") as other, store.transaction():
        store.add_item(GUILD, "D1F", "held")
        with pytest.raises(StorageError, match="locked by another process"):
            other.add_item(GUILD, "D1F", "waiting")
        assert other.get_inventory(GUILD, "D1F").items == []  # readers do not wait
    assert store.get_inventory(GUILD, "D1F").items == ["held"]


# ------------------------------------------------------------------ search
ITEMS = [
    "Meat (2/2 uses.)",
    "100% cotton",
    "snake_case",
    "back\\slash",
    "İstanbul",
    "ΣΊΣΥΦΟΣ",
    "Straße",
    "Knife",
    "knife sharpener",
    "a%b_c\\d",
]
QUERIES = [
    "%",
    "_",
    "\\",
    "%b_",
    "a%",
    "ss",
    "i\u0307",
    "\u03c3",
    "kn",
    "knife",
    "2/2",
    "x",
    "mEaT",
    "sharp",
    "c\\d",
]


@pytest.mark.backend("postgres")
@pytest.mark.parametrize("index", [search.TRIGRAM_INDEX, "inventory_items_by_text"])
def test_check_of_a_store_opened_for_reading_names_a_dropped_search_index(
    store: TributeStore, schema_url: str, admin: Engine, index: str
) -> None:
    """Opened for reading, the store is not repaired, and ``check`` must not call it sound."""
    store.create_tribute(GUILD, "D1F")
    store.add_item(GUILD, "D1F", "Rusty spear", force=True)
    store.close()
    name = schema_url.rsplit("schema=", 1)[1]
    with admin.begin() as conn:
        conn.execute(text(f'DROP INDEX "{name}".{index}'))
    with open_store(schema_url, mode="read") as reading:
        problems = reading.check()
        assert len(problems) == 1, problems
        assert index in problems[0] and "next open for writing" in problems[0], problems
        assert [h.item for h in reading.search_items("spear")] == ["Rusty spear"]
    with open_store(schema_url) as writing:
        assert writing.check() == []


@pytest.mark.backend("postgres")
def test_a_schema_holding_another_programs_tributes_table_is_refused(schema_url: str, admin: Engine) -> None:
    name = schema_url.rsplit("schema=", 1)[1]
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
        conn.execute(text(f'CREATE TABLE "{name}".tributes (tribute_id TEXT)'))
    with pytest.raises(ConfigError, match=r"holds tables named as tributestore's \(tributes\)"):
        open_store(schema_url)
    with admin.begin() as conn:
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": name}
        )
        assert [row[0] for row in tables] == ["tributes"]  # nothing added


@pytest.mark.backend("postgres")
def test_trigram_index_and_scan_agree_with_python(store: TributeStore, schema_url: str) -> None:
    backend = store.backend
    assert isinstance(backend, SqlBackend) and isinstance(backend.dialect, dialects.PostgresDialect)
    assert backend.use_fts and store.details() == {"trigram_index": 1}
    store.create_tribute(GUILD, "D1F")
    store.create_tribute(OTHER, "D2M")
    for number, item in enumerate(ITEMS * 2):
        guild, tribute = (GUILD, "D1F") if number % 2 else (OTHER, "D2M")
        store.add_item(guild, tribute, item, equipped=number % 3 == 0, force=True)
    inventories = {
        (t.guild_id, t.tribute_id): store.get_inventory(t.guild_id, t.tribute_id)
        for t in store.iter_tributes()
    }
    with open_store(schema_url + "&fts=off") as plain:
        assert isinstance(plain.backend, SqlBackend) and not plain.backend.use_fts
        assert plain.details() == {"trigram_index": 0}
        for query in QUERIES + ITEMS:
            indexed = store.search_items(query)
            assert indexed == plain.search_items(query), query
            folded = query.casefold()
            expected = [
                (guild_id, tribute_id, slot, number, item)
                for (guild_id, tribute_id), inventory in sorted(inventories.items())
                for slot, entries in (("items", inventory.items), ("equipped", inventory.equipped))
                for number, item in enumerate(entries, start=1)
                if folded in item.casefold()
            ]
            assert [(h.guild_id, h.tribute_id, h.slot, h.number, h.item) for h in indexed] == expected, query
    query = backend.dialect.search_query("knife", use_index=True)
    with store.snapshot(), backend.connection() as conn:
        statement = search.search_statement(query, False).params(query.params)
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(str(row[0]) for row in conn.execute(text(f"EXPLAIN {compiled}")))
    assert search.TRIGRAM_INDEX in plan


# ---------------------------------------------------------- schema, order
@pytest.mark.backend("postgres")
def test_order_is_code_point_order(store: TributeStore) -> None:
    ids = ["D1F", "D1_F", "D1-F", "D10F", "D1FA", "A", "Z9"]
    for tribute_id in ids:
        store.create_tribute(GUILD, tribute_id)
    for tribute_id in ids:
        store.add_file(GUILD, "A", f"{tribute_id.lower()}_x.png", b"x")
    assert [t.tribute_id for t in store.iter_tributes()] == sorted(ids)
    assert [f.name for f in store.list_files(GUILD, "A")] == sorted(f"{i.lower()}_x.png" for i in ids)


@pytest.mark.backend("postgres")
def test_schema_version_and_newer_schema_refused(store: TributeStore, schema_url: str) -> None:
    store.close()
    name = parse_store_url(schema_url).options["schema"]
    with open_store(schema_url) as again:
        backend = again.backend
        assert isinstance(backend, SqlBackend)
        with again.transaction(), backend.connection() as conn:
            assert conn.execute(text(f'SELECT version FROM "{name}".schema_version')).scalar() == (
                schema.CURRENT_VERSION
            )
            conn.execute(text("UPDATE schema_version SET version = 99"))
    with pytest.raises(SchemaVersionError, match="99"):
        open_store(schema_url)


@pytest.mark.backend("postgres")
@pytest.mark.parametrize("version", [1, 2])
def test_older_schema_versions_are_migrated(store: TributeStore, schema_url: str, version: int) -> None:
    store.create_tribute(GUILD, "D1F")
    store.add_item(GUILD, "D1F", "Hunting knife")
    backend = store.backend
    assert isinstance(backend, SqlBackend)
    with store.transaction(), backend.connection() as conn:  # back to what older versions wrote
        if version == 1:
            conn.execute(text("DROP TABLE tombstones"))
        else:
            conn.execute(text("ALTER TABLE tombstones DROP COLUMN origin_key"))
            conn.execute(text("INSERT INTO tombstones VALUES (1, 'GONE', '2024-01-01T00:00:00+00:00')"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": version})
    store.close()
    with open_store(schema_url, mode="read") as again:
        assert again.get_inventory(GUILD, "D1F").items == ["Hunting knife"]
        assert again.tombstone_count() == (1 if version == 2 else 0)
        migrated = again.backend
        assert isinstance(migrated, SqlBackend)
        migrated.put_tombstone(GUILD, "D2F", "legacy-2")
        assert again.has_origin_tombstone("legacy-2") and not again.has_origin_tombstone("legacy-3")
        with again.snapshot(), migrated.connection() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == schema.CURRENT_VERSION
            indexes = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'tombstones'"))
            assert "tombstones_by_origin" in set(indexes.scalars())
        assert again.check() == []


# --------------------------------------------------- URLs (no server needed)
def test_url_mapping_and_options() -> None:
    url = parse_store_url("postgres://bot:s3cret@db.example:6543/thg?schema=game&sslmode=require&timeout=5")
    assert (
        dialects.sqlalchemy_url(url) == "postgresql+psycopg://bot:s3cret@db.example:6543/thg?sslmode=require"
    )
    assert url.display == ("postgres://bot:***@db.example:6543/thg?schema=game&sslmode=require&timeout=5")
    assert dialects.schema_option(url) == "game"
    with pytest.raises(ConfigError, match="psycopg2"):
        dialects.sqlalchemy_url(parse_store_url("postgresql+psycopg2://h/db"))
    with pytest.raises(ConfigError, match="schema="):
        dialects.schema_option(parse_store_url('postgresql://h/db?schema=x";drop'))


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install tributestore\[postgres\]"):
        open_store("postgresql://127.0.0.1:1/none")


# ------------------------------------------------------------------ documents and tombstones
@pytest.mark.backend("postgres")
def test_new_contents_without_bytes_are_refused(store: TributeStore) -> None:
    refuses_new_contents_without_bytes(store)


@pytest.mark.backend("postgres")
def test_a_tombstone_takes_a_later_origin_key(store: TributeStore) -> None:
    tombstone_takes_a_later_origin_key(store)


@pytest.mark.backend("postgres")
def test_a_pooled_connection_killed_while_idle_is_replaced(schema_url: str, admin: object) -> None:
    """A pooled connection the server closed (a restart, a failover, an idle timeout) is replaced at
    its next checkout, at once (not only after it sat idle for a while): never the caller's error."""
    with open_store(schema_url) as store:
        store.create_tribute(GUILD, "A1", name="Alpha")
        backend = store.backend
        assert isinstance(backend, SqlBackend)
        with backend.connection() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin.begin() as killer:  # type: ignore[attr-defined]
            assert killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        assert store.get_tribute(GUILD, "A1").name == "Alpha"
        with backend.connection() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid


@pytest.mark.backend("postgres")
def test_a_role_without_the_privileges_gets_a_clean_error(schema_url: str, admin: object) -> None:
    """A bot's role may lack CREATE (to make the store) or write grants: a one-line StorageError naming
    the database and what is needed, never a raw driver error; what it may read it reads."""
    from urllib.parse import urlsplit, urlunsplit
    from uuid import uuid4

    role = f"tributestore_test_role_{uuid4().hex[:8]}"
    parts = urlsplit(schema_url)
    host = parts.netloc.rpartition("@")[2]
    as_role = urlunsplit(parts._replace(netloc=f"{role}:pw@{host}"))
    with admin.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'pw'"))
    try:
        with pytest.raises(StorageError, match=r"not allowed to do this.*CREATE") as refused:
            open_store(as_role)
        assert "\n" not in str(refused.value) and "sqlalche" not in str(refused.value)
        with open_store(schema_url) as owner:  # the owner makes the store, the role may only read
            owner.create_tribute(GUILD, "D1F", name="Katniss")
        name = parse_store_url(schema_url).options["schema"]
        with admin.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{name}" TO "{role}"'))
            conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{name}" TO "{role}"'))
        with open_store(as_role) as reader:
            assert reader.get_tribute(GUILD, "D1F").name == "Katniss"
            with pytest.raises(StorageError, match=r"not allowed to do this.*INSERT"):
                reader.add_item(GUILD, "D1F", "Knife")
        with open_store(schema_url, mode="read") as owner:
            assert owner.get_inventory(GUILD, "D1F").items == []
    finally:
        with admin.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


@pytest.mark.backend("postgres")
def test_a_connection_the_server_ends_mid_transaction_is_said_so(schema_url: str, admin: object) -> None:
    """The server ending a connection inside a transaction (a restart, pg_terminate_backend) is
    'lost the connection', not 'cannot connect' (it did connect), and says the transaction's
    writes were not kept; the store goes on with a new connection."""
    with open_store(schema_url) as store:
        store.create_tribute(GUILD, "A1", name="Alpha")
        backend = store.backend
        assert isinstance(backend, SqlBackend)
        with pytest.raises(StorageError) as raised, store.transaction():
            store.create_tribute(GUILD, "B2", name="Beta")
            with backend.db.writing() as conn:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with admin.begin() as killer:  # type: ignore[attr-defined]
                assert killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            store.create_tribute(GUILD, "C3", name="Gamma")
        message = str(raised.value)
        assert "cannot connect" not in message
        assert "lost the connection" in message and "not written" in message
        assert "\n" not in message
        assert [t.tribute_id for t in store.iter_tributes()] == ["A1"]


def _on_database(server_url: str, database: str) -> str:
    """``server_url`` naming ``database`` instead of its own."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))


@pytest.mark.backend("postgres")
def test_a_database_that_does_not_exist_is_not_found(server_url: str) -> None:
    """tributestore never creates a database: one the server does not have is a store that does
    not exist (StoreNotFoundError, exit 3) in either mode, in one line naming it and what to do;
    a server that does not answer stays a storage error (exit 5, 'cannot connect')."""
    from helpers import run_cli

    from tributestore import StoreNotFoundError

    url = _on_database(server_url, "tributestore_no_such_db") + "?schema=x"
    for mode in ("read", "write"):
        with pytest.raises(StoreNotFoundError) as missing:
            open_store(url, mode=mode)  # type: ignore[arg-type]
        message = str(missing.value)
        assert "database tributestore_no_such_db does not exist" in message, message
        assert "never databases" in message and "createdb tributestore_no_such_db" in message
        assert "\n" not in message and "sqlalche" not in message and "cannot connect" not in message
    for command in ("check", "stats"):
        result = run_cli(command, url)
        assert result.returncode == 3, result.stderr
        assert "database tributestore_no_such_db does not exist" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.backend("postgres")  # needs the driver, not the server
def test_a_server_that_does_not_answer_is_still_a_storage_error() -> None:
    import socket

    from helpers import run_cli

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("stats", f"postgresql://postgres@127.0.0.1:{port}/nodb?schema=x&timeout=2")
    assert result.returncode == 5, result.stderr
    assert "cannot connect" in result.stderr and "does not exist" not in result.stderr
