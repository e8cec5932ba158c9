"""The light reader of an up-to-date SQLite store (backends/sqlite_backend/light.py).

It must answer exactly as the full backend does (same statements, same models, same
errors), apply only where the full backend's open would have nothing to do, keep every
capability of the full backend, and hand over to it for good at the first call that needs
more than a read, whatever thread makes it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite
from test_sql_fast_read import KEYS, populate, shape

from tributestore import CorruptDataError, StoreNotFoundError, TributeStore, backend, open_store
from tributestore.backends.sqlite_backend import documents, light
from tributestore.backends.sqlite_backend.common import CURRENT_VERSION, FTS_TABLE, TEXT_INDEX
from tributestore.backends.sqlite_backend.light import LightSqlBackend, open_light
from tributestore.backends.sqlite_backend.store import SqlBackend
from tributestore.urls import parse_store_url

pytestmark = pytest.mark.backend("sqlite")
GUILD = 111111111111111111


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/light.db"
    with open_store(url) as store:
        populate(store)
    return url


def sql(path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)
    conn.close()


def test_the_statements_are_the_full_backends() -> None:
    dialect = sqlite.dialect(paramstyle="named")
    pairs = [
        (light.TRIBUTE_SQL, documents.TRIBUTE),
        (light.ONE_TRIBUTES_SQL, documents.ONE.tributes),
        (light.ONE_ITEMS_SQL, documents.ONE.items),
        (light.ONE_PROMPTS_SQL, documents.ONE.prompts),
        (light.ONE_FILES_SQL, documents.ONE.files),
    ]
    for text, statement in pairs:
        assert text == str(statement.compile(dialect=dialect))


def test_reads_are_the_full_backends(url: str) -> None:
    with open_store(url) as store:
        backend_ = store.backend
        assert isinstance(backend_, LightSqlBackend)
        keys = [*KEYS, (GUILD, "NOBODY"), (0, "D1F")]
        answers = [(shape(backend_.get_tribute(*key)), shape(backend_.load(*key))) for key in keys]
        exported = store.export_tribute(GUILD, "D1F")
        assert backend_._full is None  # all of it answered by the light reader
    full = SqlBackend(parse_store_url(url))
    try:
        assert answers == [(shape(full.get_tribute(*key)), shape(full.load(*key))) for key in keys]
        assert exported == full.load(GUILD, "D1F")
    finally:
        full.close()


def test_it_applies_only_where_the_full_open_has_nothing_to_do(url: str, tmp_path: Path) -> None:
    path = Path(parse_store_url(url).local_path())
    assert isinstance(open_light(parse_store_url(url)), LightSqlBackend)
    for other in (f"{url}?timeout=5", f"{url}?fts=off", "sqlite:///:memory:", f"sqlite:///{tmp_path}/no.db"):
        assert open_light(parse_store_url(other)) is None, other
    assert not (tmp_path / "no.db").exists()

    sql(path, "DROP INDEX " + TEXT_INDEX)  # an index to build: the full backend opens (and builds it)
    assert open_light(parse_store_url(url)) is None
    with open_store(url) as store:
        assert isinstance(store.backend, SqlBackend)
    assert isinstance(open_light(parse_store_url(url)), LightSqlBackend)

    sql(path, f"DROP TRIGGER {FTS_TABLE}_insert")  # an incomplete index: the full backend rebuilds it
    assert open_light(parse_store_url(url)) is None
    with open_store(url) as store:
        assert isinstance(store.backend, SqlBackend)
    assert isinstance(open_light(parse_store_url(url)), LightSqlBackend)

    sql(path, "UPDATE schema_version SET version = ?", CURRENT_VERSION + 1)  # newer: refused, by the full one
    assert open_light(parse_store_url(url)) is None
    with pytest.raises(Exception, match="newer"):
        open_store(url)
    sql(path, "UPDATE schema_version SET version = ?", CURRENT_VERSION)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    assert open_light(parse_store_url(f"sqlite:///{garbage}")) is None


def test_a_missing_search_index_is_left_to_the_full_backend(url: str) -> None:
    path = Path(parse_store_url(url).local_path())
    for name in ("insert", "delete", "update"):  # as a bulk import leaves it: table and triggers gone
        sql(path, f"DROP TRIGGER {FTS_TABLE}_{name}")
    sql(path, f"DROP TABLE {FTS_TABLE}")
    assert open_light(parse_store_url(url)) is None
    with open_store(url) as store:
        assert [hit.item for hit in store.search_items("spear")] == ["spear"]


def test_a_corrupt_row_is_the_full_backends_error(url: str) -> None:
    path = Path(parse_store_url(url).local_path())
    sql(path, "UPDATE tributes SET created_at = 'yesterday' WHERE tribute_id = 'D1F'")
    with open_store(url, mode="read") as store:
        assert isinstance(store.backend, LightSqlBackend)
        with pytest.raises(CorruptDataError, match="timestamp 'yesterday'") as first:
            store.get_tribute(GUILD, "D1F")
    full = SqlBackend(parse_store_url(url))
    try:
        with pytest.raises(CorruptDataError) as second:
            full.get_tribute(GUILD, "D1F")
    finally:
        full.close()
    assert str(first.value) == str(second.value)


def test_it_has_the_full_backends_capabilities(url: str) -> None:
    protocols = [value for value in vars(backend).values() if getattr(value, "_is_runtime_protocol", False)]
    assert len(protocols) >= 5
    with open_store(url) as store:
        reader = store.backend
        assert isinstance(reader, LightSqlBackend)
        full = reader.full()
        for protocol in protocols:
            assert isinstance(reader, protocol) == isinstance(full, protocol), protocol
        public = {name for name in dir(SqlBackend) if not name.startswith("_")}
        assert public <= set(dir(LightSqlBackend)), sorted(public - set(dir(LightSqlBackend)))


def test_a_write_hands_over_for_good_whatever_the_thread(url: str) -> None:
    with open_store(url) as store:
        reader = store.backend
        assert isinstance(reader, LightSqlBackend)
        errors: list[BaseException] = []
        seen: list[int] = []

        def read_many() -> None:
            try:
                for _ in range(200):
                    seen.append(len(store.get_inventory(GUILD, "D1F").items))
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        readers = [threading.Thread(target=read_many) for _ in range(4)]
        for thread in readers:
            thread.start()
        store.add_item(GUILD, "D1F", "knife", force=True)
        for thread in readers:
            thread.join()
        assert errors == []
        assert set(seen) <= {4, 5} and seen  # before the write or after it, never anything else
        assert reader._full is not None and reader._conn is None
        assert store.get_inventory(GUILD, "D1F").items[-1] == "knife"
        with store.transaction():  # reads inside a transaction see its writes (one connection)
            store.add_item(GUILD, "D1F", "rope", force=True)
            assert store.get_inventory(GUILD, "D1F").items[-1] == "rope"


def test_reading_never_creates(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        open_store(f"sqlite:///{tmp_path}/missing.db", mode="read")
    assert list(tmp_path.iterdir()) == []


def test_a_closed_store_reads_nothing(url: str) -> None:
    store: TributeStore = open_store(url)
    reader = store.backend
    assert isinstance(reader, LightSqlBackend)
    store.close()
    assert reader._conn is None and reader._full is None
