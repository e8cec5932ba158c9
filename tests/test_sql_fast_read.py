"""The fast document read (``fast_read.read``) against the reference (``documents.read``).

Same documents (model by model: classes, field values and their types, field order, the
fields set), in the same order, over a store with varied data, on SQLite and PostgreSQL;
and the same :class:`CorruptDataError` (same message) for a row edited by hand into one
the models refuse, or the same documents for one they normalise.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from helpers import sql_backend
from pydantic import BaseModel
from sqlalchemy import create_engine, text

from tributestore import CorruptDataError, TributeStore, open_store
from tributestore.backends.sqlite_backend import common, documents, fast_read
from tributestore.backends.sqlite_backend.dialects import sqlalchemy_url
from tributestore.backends.sqlite_backend.documents import ONE, SPAN, DocumentReads
from tributestore.backends.sqlite_backend.schema import tributes
from tributestore.backends.sqlite_backend.store import SqlBackend
from tributestore.models import Tribute
from tributestore.urls import parse_store_url

A, B, C = 0, 111111111111111111, 2**63 - 1
EVERYTHING = {"g0": 0, "t0": "", "g1": 2**63 - 1, "t1": "~"}
#: Also rows whose guild id is no longer an int (SQLite keeps a REAL, a TEXT there).
WIDER = {"g0": -1e300, "t0": "", "g1": "~", "t1": "~"}
KEYS = [(A, "Z9"), (B, "D1-F"), (B, "D1F"), (B, "D1_F"), (B, "D2M"), (B, "D3F"), (B, "D4M"), (C, "D1F")]


def populate(store: TributeStore) -> None:
    """Tributes with every kind of part, in three guilds (ids 0, a snowflake, the largest)."""
    when = datetime(2026, 2, 2, 2, 51, 43, 123000, tzinfo=UTC)
    store.create_tribute(
        B,
        "D1F",
        name="Kätniss Évérdeen 🏹",
        user_id=42,
        user_mention="<@42>",
        face_claim_url="https://example.org/ä.png",
        prompt_channel_id=7,
        created_at=when,
    )
    for item in ["bow", "Äpfel ✓ 🍎", "x" * 6000, " padded ", "line\nbreak"]:
        store.add_item(B, "D1F", item, force=True)
    store.equip_item(B, "D1F", 1)
    store.set_capacity(B, "D1F", capacity=0, equipped_capacity=1_000_000)
    store.add_file(B, "D1F", "a.png", b"\x89PNG data", kind="image", media_type="image/png")
    store.add_file(B, "D1F", "ünïcode name.txt", b"text")
    store.set_prompt(
        B, "D1F", "Écris ton message\navec 🎯", channel_id=9, files=["a.png", "ünïcode name.txt"]
    )
    store.create_tribute(B, "D1_F")  # empty inventory, nothing else; sorts after D1F
    store.create_tribute(B, "D1-F", name="")  # sorts before D1F
    store.add_item(B, "D1-F", "only")
    store.create_tribute(B, "D2M", user_id=0)
    store.set_prompt(B, "D2M", "")  # a prompt without files, empty message
    store.create_tribute(B, "D3F")
    store.add_file(B, "D3F", "notes.md", b"# notes", kind="note_2", media_type="text/x-markdown+v1.0")
    store.create_tribute(B, "D4M")
    store.add_item(B, "D4M", "equipped only")
    store.equip_item(B, "D4M", 1)
    store.create_tribute(A, "Z9", created_at=None, updated_at=None)
    store.create_tribute(C, "D1F")
    store.add_item(C, "D1F", "spear")
    store.set_prompt(C, "D1F", "other guild", files=["missing.png"])


def shape(value: Any) -> Any:
    """A value as comparable structure: models by class, fields in order (with their types),
    fields set, extra and private state; datetimes by repr (tzinfo included)."""
    if isinstance(value, BaseModel):
        return (
            type(value).__name__,
            [(name, shape(field)) for name, field in value.__dict__.items()],
            sorted(value.__pydantic_fields_set__),
            value.__pydantic_extra__,
            value.__pydantic_private__,
        )
    if isinstance(value, list):
        return [shape(entry) for entry in value]
    return (type(value).__name__, repr(value))


def outcome(backend: SqlBackend, read: Any, reads: DocumentReads, params: dict[str, Any]) -> Any:
    """What ``read`` returns (as :func:`shape`), or raises (class and message)."""
    with backend.connection() as conn:
        try:
            return shape(read(conn, reads, params, backend.where))
        except Exception as error:  # noqa: BLE001 (whatever it is, compared with the reference's)
            return (type(error).__name__, str(error))


def agree(backend: SqlBackend, reads: DocumentReads, params: dict[str, Any]) -> Any:
    expected = outcome(backend, documents.read, reads, params)
    assert outcome(backend, fast_read.read, reads, params) == expected
    return expected


class FastReadCases:
    """The cases, for each dialect (subclasses give ``url`` and ``mangle``)."""

    def mangle(self, url: str, sql: str, **params: Any) -> None:
        raise NotImplementedError

    @pytest.fixture
    def backend(self, url: str) -> Iterator[SqlBackend]:
        with open_store(url) as store:
            populate(store)
        with open_store(url) as store:
            yield sql_backend(store)

    # ------------------------------------------------------------ same documents
    def test_same_documents_as_the_reference(
        self, backend: SqlBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        expected = outcome(backend, documents.read, SPAN, EVERYTHING)
        monkeypatch.setattr(documents, "read", _no_fallback)  # clean data: the fast path alone
        assert outcome(backend, fast_read.read, SPAN, EVERYTHING) == expected
        assert len(expected) == len(KEYS)
        for guild_id, tribute_id in KEYS:
            one = outcome(backend, fast_read.read, ONE, {"guild_id": guild_id, "tribute_id": tribute_id})
            assert len(one) == 1 and one[0] in expected
        assert outcome(backend, fast_read.read, ONE, {"guild_id": B, "tribute_id": "NONE"}) == []

    def test_one_row_per_item_gives_the_same(
        self, backend: SqlBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the grouped items query (a dialect without one) the documents are the same."""
        expected = outcome(backend, documents.read, SPAN, EVERYTHING)
        monkeypatch.setattr(fast_read, "_PLANS", WeakKeyDictionary())
        monkeypatch.setattr(fast_read, "_grouped_items", lambda reads, dialect: None)
        monkeypatch.setattr(documents, "read", _no_fallback)
        assert outcome(backend, fast_read.read, SPAN, EVERYTHING) == expected

    def test_grouped_items_out_of_order_are_read_again_a_row_per_item(
        self, backend: SqlBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = {(B, "D1F"): None}
        with pytest.raises(fast_read._Unordered):
            fast_read._slotted_groups([(B, "D1F", "items", '["b","a"]', "2,1")], key, "w", True)
        with pytest.raises(fast_read._Unvouched):  # numbers not ints: SQL's order, not Python's
            fast_read._slotted_groups([(B, "D1F", "items", '["b","a"]', "1,x")], key, "w", True)
        expected = outcome(backend, documents.read, SPAN, EVERYTHING)

        def unordered(*args: object) -> None:
            raise fast_read._Unordered

        monkeypatch.setattr(fast_read, "_slotted_groups", unordered)
        monkeypatch.setattr(documents, "read", _no_fallback)
        assert outcome(backend, fast_read.read, SPAN, EVERYTHING) == expected

    def test_unordered_then_corrupt_is_refused_as_the_reference_does(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def unordered(*args: object) -> None:
            raise fast_read._Unordered

        monkeypatch.setattr(fast_read, "_slotted_groups", unordered)
        self.refused(
            url, "UPDATE inventory_items SET item = '  ' WHERE item = 'spear'", {}, "inventory_items"
        )

    def test_spans_and_pages(self, backend: SqlBackend) -> None:
        with backend.connection() as conn:
            everything = fast_read.read(conn, SPAN, EVERYTHING, backend.where)
        keys = [d.tribute.key for d in everything]
        assert keys == KEYS
        for first in range(len(keys)):
            for last in range(first, len(keys)):
                (g0, t0), (g1, t1) = keys[first], keys[last]
                found = agree(backend, SPAN, {"g0": g0, "t0": t0, "g1": g1, "t1": t1})
                assert len(found) == last - first + 1
        assert agree(backend, SPAN, {"g0": 5, "t0": "", "g1": 6, "t1": "~"}) == []

    def test_store_reads_through_it(self, backend: SqlBackend, monkeypatch: pytest.MonkeyPatch) -> None:
        """Switched into the store (as the integration does), whole streams are unchanged."""
        from tributestore.backends.sqlite_backend import store as sql_store

        expected = [shape(d) for d in backend.iter_documents(None)]
        monkeypatch.setattr(sql_store, "read", fast_read.read)
        monkeypatch.setattr(sql_store, "PAGE_SIZE", 3)
        assert [shape(d) for d in backend.iter_documents(None)] == expected
        assert [shape(d) for d in backend.iter_documents(B)] == expected[1:7]
        assert shape(backend.load(B, "D1F")) == expected[2]

    def test_missing_inventories_row_gives_the_defaults(self, url: str) -> None:
        with open_store(url) as store:
            populate(store)
        self.mangle(url, "DELETE FROM inventories WHERE tribute_id IN ('D1F', 'D1_F')")
        with open_store(url) as store:
            found = agree(sql_backend(store), SPAN, EVERYTHING)
        assert len(found) == len(KEYS)

    # ------------------------------------------------------------ rows edited by hand
    @pytest.mark.parametrize(
        ("sql", "params", "table"),
        [
            ("UPDATE tributes SET tribute_id = 'A/B' WHERE tribute_id = 'D2M'", {}, "tributes"),
            ("UPDATE tributes SET tribute_id = :v WHERE tribute_id = 'D2M'", {"v": "X" * 65}, "tributes"),
            ("UPDATE tributes SET created_at = 'yesterday-ish'", {}, "tributes"),
            ("UPDATE tributes SET updated_at = '2026-13-45T00:00:00+00:00'", {}, "tributes"),
            ("UPDATE tributes SET user_id = -1 WHERE tribute_id = 'D4M'", {}, "tributes"),
            ("UPDATE tributes SET name = :v WHERE tribute_id = 'D4M'", {"v": "n" * 6001}, "tributes"),
            ("UPDATE inventories SET capacity = -1 WHERE tribute_id = 'D3F'", {}, "inventories"),
            ("UPDATE inventories SET equipped_capacity = 1000001", {}, "inventories"),
            ("UPDATE inventory_items SET item = '  ' WHERE item = 'spear'", {}, "inventory_items"),
            ("UPDATE inventory_items SET item = '' WHERE item = 'only'", {}, "inventory_items"),
            ("UPDATE inventory_items SET item = :v WHERE item = 'bow'", {"v": "y" * 6001}, "inventory_items"),
            ("UPDATE prompts SET channel_id = -2", {}, "prompts"),
            ("UPDATE prompts SET created_at = 'now'", {}, "prompts"),
            ("UPDATE prompt_files SET file_name = '..' WHERE file_name = 'a.png'", {}, "prompts"),
            ("UPDATE prompt_files SET file_name = 'a/b' WHERE file_name = 'a.png'", {}, "prompts"),
            ("UPDATE prompt_files SET file_name = ' a.png' WHERE file_name = 'a.png'", {}, "prompts"),
            ("UPDATE files SET sha256 = 'not hex'", {}, "files"),
            ("UPDATE files SET kind = 'Bad Kind' WHERE name = 'a.png'", {}, "files"),
            ("UPDATE files SET media_type = 'no slash' WHERE name = 'a.png'", {}, "files"),
            ("UPDATE files SET size = -5 WHERE name = 'notes.md'", {}, "files"),
            ("UPDATE files SET created_at = 'soon' WHERE name = 'notes.md'", {}, "files"),
            ("UPDATE files SET name = 'x\\y' WHERE name = 'notes.md'", {}, "files"),
        ],
    )
    def test_corrupt_row_is_refused_as_the_reference_does(
        self, url: str, sql: str, params: dict[str, Any], table: str
    ) -> None:
        self.refused(url, sql, params, table)

    def refused(
        self, url: str, sql: str, params: dict[str, Any], table: str, span: dict[str, Any] = EVERYTHING
    ) -> None:
        with open_store(url) as store:
            populate(store)
        self.mangle(url, sql, **params)
        with open_store(url) as store:
            name, message = agree(sql_backend(store), SPAN, span)
        assert name == "CorruptDataError", message
        assert f"table {table}" in message or (table.startswith("inv") and "inventories/" in message), message
        assert sql_backend(store).where in message and "\n" not in message

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE tributes SET created_at = '2026-01-02T03:04:05'",  # naive: taken as UTC
            "UPDATE tributes SET updated_at = '2026-01-02T03:04:05.5+02:00'",  # converted to UTC
            "UPDATE files SET created_at = '2026-01-02T03:04:05Z'",
            "UPDATE prompts SET updated_at = '2026-01-02 03:04:05-01:30'",
            "UPDATE tributes SET tribute_id = ' d9z ' WHERE tribute_id = 'D1_F'",  # normalised
            "UPDATE files SET media_type = 'text/plaîn' WHERE name = 'notes.md'",  # \\w is Unicode
            "UPDATE inventory_items SET number = number * 10 + 5",  # numbered with gaps: same order
        ],
    )
    def test_values_the_models_normalise_come_out_as_the_reference_makes_them(
        self, url: str, sql: str
    ) -> None:
        with open_store(url) as store:
            populate(store)
        self.mangle(url, sql)
        with open_store(url) as store:
            found = agree(sql_backend(store), SPAN, EVERYTHING)
        assert isinstance(found, list) and len(found) == len(KEYS), found

    def test_tribute_rows(self, backend: SqlBackend) -> None:
        from sqlalchemy import select

        with backend.connection() as conn:
            rows = conn.execute(select(tributes).order_by(tributes.c.guild_id, tributes.c.tribute_id)).all()
        expected = [common.model(Tribute, dict(row._mapping), backend.where, "tributes") for row in rows]
        assert shape(fast_read.tribute_rows(rows, backend.where)) == shape(expected)
        assert fast_read.tribute_rows([], backend.where) == []
        bad = [(*tuple(rows[0])[:7], "then", *tuple(rows[0])[8:])]
        with pytest.raises(CorruptDataError, match=r"table tributes: timestamp 'then' is not ISO-8601"):
            fast_read.tribute_rows(bad, backend.where)


def _no_fallback(*args: object) -> None:
    raise AssertionError("the fast read gave clean rows to the reference")


@pytest.mark.backend("sqlite")
class TestSqlite(FastReadCases):
    @pytest.fixture
    def url(self, tmp_path: Any) -> str:
        return f"sqlite:///{tmp_path / 'fast.db'}"

    def mangle(self, url: str, sql: str, **params: Any) -> None:
        """A hand edit: no foreign keys, CHECK constraints ignored (SQLite keeps any type anywhere)."""
        path = parse_store_url(url).path
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("PRAGMA ignore_check_constraints = ON")
            db.execute(sql, params)

    @pytest.mark.parametrize(
        ("sql", "params", "table"),
        [
            ("UPDATE tributes SET user_id = 'x' || user_id WHERE user_id IS NOT NULL", {}, "tributes"),
            ("UPDATE tributes SET guild_id = '99999999999999999999' WHERE guild_id = 0", {}, "tributes"),
            ("UPDATE tributes SET guild_id = 2.5 WHERE guild_id = 0", {}, "tributes"),
            ("UPDATE tributes SET name = :v WHERE tribute_id = 'D4M'", {"v": b"bytes"}, "tributes"),
            ("UPDATE tributes SET name = :v WHERE tribute_id = 'D4M'", {"v": "nul\x00"}, "tributes"),
            (
                "UPDATE tributes SET tribute_id = CAST(tribute_id AS BLOB) WHERE tribute_id = 'D4M'",
                {},
                "tributes",
            ),
            ("UPDATE tributes SET created_at = 1700000000", {}, "tributes"),
            ("UPDATE inventories SET capacity = 'lots'", {}, "inventories"),
            ("UPDATE inventories SET capacity = 2.5", {}, "inventories"),
            (
                "UPDATE inventory_items SET item = :v WHERE item = 'bow'",
                {"v": b"\x00\xff"},
                "inventory_items",
            ),
            (
                "UPDATE inventory_items SET item = CAST(item AS BLOB) WHERE item = 'bow'",
                {},
                "inventory_items",
            ),
            ("UPDATE inventory_items SET item = :v WHERE item = 'bow'", {"v": "b\x00w"}, "inventory_items"),
            ("UPDATE prompts SET message = :v", {"v": "a\x00b"}, "prompts"),
            ("UPDATE prompts SET message = CAST(message AS BLOB)", {}, "prompts"),
            ("UPDATE prompts SET channel_id = 'x'", {}, "prompts"),
            ("UPDATE prompt_files SET file_name = CAST(file_name AS BLOB)", {}, "prompts"),
            ("UPDATE files SET size = 1.5", {}, "files"),
            ("UPDATE files SET sha256 = :v", {"v": b"0" * 64}, "files"),
        ],
    )
    def test_wrongly_typed_row_is_refused_as_the_reference_does(
        self, url: str, sql: str, params: dict[str, Any], table: str
    ) -> None:
        self.refused(url, sql, params, table, WIDER)

    def test_unknown_slot_is_corrupt_data(self, url: str) -> None:
        """The reference's KeyError, as a CorruptDataError naming the table."""
        with open_store(url) as store:
            populate(store)
        self.mangle(url, "UPDATE inventory_items SET slot = 'pocket' WHERE item = 'spear'")
        with open_store(url) as store, sql_backend(store).connection() as conn:
            with pytest.raises(
                CorruptDataError,
                match=r"table inventory_items: an item of tribute 'D1F' in guild \d+ is in slot 'pocket'",
            ):
                fast_read.read(conn, SPAN, EVERYTHING, sql_backend(store).where)
            with pytest.raises(KeyError):
                documents.read(conn, SPAN, EVERYTHING, sql_backend(store).where)


@pytest.mark.backend("postgres")
class TestPostgres(FastReadCases):
    @pytest.fixture
    def url(self, schema_url: str) -> str:
        return schema_url

    def mangle(self, url: str, sql: str, **params: Any) -> None:
        """A hand edit in the store's schema, foreign keys not enforced (replica role)."""
        parsed = parse_store_url(url)
        engine = create_engine(sqlalchemy_url(parsed))
        try:
            with engine.begin() as conn:
                conn.execute(text(f'SET LOCAL search_path TO "{parsed.options["schema"]}"'))
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(text(sql), params)
        finally:
            engine.dispose()
