"""A bot's first reads of an up-to-date SQLite store, without importing SQLAlchemy.

Bots restart often, and SQLAlchemy's import alone takes 0.2-0.3 s.  When the URL
is a plain ``sqlite:///FILE`` (no options) naming an existing file whose schema is
current and whose search index is complete (what the full backend checks when it
opens, finding nothing to do), :func:`open_light` returns a :class:`LightSqlBackend`.
It answers ``get_tribute`` and ``load`` (so ``get_tribute``, ``get_inventory``,
``get_prompt``, ``list_files``, ``export_tribute`` of the store) with the standard
library's ``sqlite3``: the same SQL as the full backend's reference reads
(``tests/test_sqlite_light.py`` holds the statements and the results equal), the same
row-to-model conversions (:mod:`.common`), each read in one read transaction.

Every other call, and a light read that meets anything unexpected (an error of any
kind: the full backend then reads again and answers, or raises its own error), opens
the full :class:`~.store.SqlBackend` on the same file, once, and hands over for good:
from then on every call goes to it, so transactions, writes and their reads see one
connection as before.  The light connection never writes (``PRAGMA query_only``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tributestore.backend import FileData
from tributestore.errors import TributeStoreError
from tributestore.models import Counts, FileInfo, Guild, ItemHit, Tribute, TributeBundle
from tributestore.urls import StoreURL

from .common import (
    CURRENT_VERSION,
    DEFAULT_TIMEOUT,
    FTS_TABLE,
    FTS_TRIGGERS,
    TEXT_INDEX,
    assemble,
    model,
    sqlite_has_trigram,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from tributestore.models import HitPosition

    from .store import SqlBackend

T = TypeVar("T")

# The full backend's statements as SQLite renders them (tests compare them with the compiled
# statements of .documents: TRIBUTE and the four of ONE).
TRIBUTE_SQL = (
    "SELECT tributes.guild_id, tributes.tribute_id, tributes.name, tributes.user_id, tributes.user_mention, "
    "tributes.face_claim_url, tributes.prompt_channel_id, tributes.created_at, tributes.updated_at \n"
    "FROM tributes \n"
    "WHERE tributes.guild_id = :guild_id AND tributes.tribute_id = :tribute_id"
)
ONE_TRIBUTES_SQL = (
    "SELECT tributes.guild_id, tributes.tribute_id, tributes.name, tributes.user_id, tributes.user_mention, "
    "tributes.face_claim_url, tributes.prompt_channel_id, tributes.created_at, tributes.updated_at, "
    "inventories.capacity, inventories.equipped_capacity \n"
    "FROM tributes LEFT OUTER JOIN inventories ON inventories.guild_id = tributes.guild_id "
    "AND inventories.tribute_id = tributes.tribute_id \n"
    "WHERE tributes.guild_id = :guild_id AND tributes.tribute_id = :tribute_id "
    "ORDER BY tributes.guild_id, tributes.tribute_id"
)
ONE_ITEMS_SQL = (
    "SELECT inventory_items.guild_id, inventory_items.tribute_id, inventory_items.slot, "
    "inventory_items.item \n"
    "FROM inventory_items \n"
    "WHERE inventory_items.guild_id = :guild_id AND inventory_items.tribute_id = :tribute_id "
    "ORDER BY inventory_items.guild_id, inventory_items.tribute_id, inventory_items.slot, "
    "inventory_items.number"
)
ONE_PROMPTS_SQL = (
    "SELECT prompts.guild_id, prompts.tribute_id, prompts.message, prompts.channel_id, prompts.created_at, "
    "prompts.updated_at, prompt_files.file_name \n"
    "FROM prompts LEFT OUTER JOIN prompt_files ON prompt_files.guild_id = prompts.guild_id "
    "AND prompt_files.tribute_id = prompts.tribute_id \n"
    "WHERE prompts.guild_id = :guild_id AND prompts.tribute_id = :tribute_id "
    "ORDER BY prompts.guild_id, prompts.tribute_id, prompt_files.position"
)
ONE_FILES_SQL = (
    "SELECT files.guild_id, files.tribute_id, files.name, files.kind, files.media_type, files.size, "
    "files.sha256, files.created_at \n"
    "FROM files \n"
    "WHERE files.guild_id = :guild_id AND files.tribute_id = :tribute_id "
    "ORDER BY files.guild_id, files.tribute_id, files.name"
)


class _Unanswered(Exception):
    """A light read that could not answer: the full backend does."""


def open_sqlite_backend(url: StoreURL) -> LightSqlBackend | SqlBackend:
    """The opener the plugin registers for ``sqlite:`` URLs: the light reader when it applies,
    else the full backend (which creates, migrates, indexes, or reports what is wrong)."""
    light = open_light(url)
    if light is not None:
        return light
    from .store import SqlBackend  # local: SQLAlchemy is imported here

    return SqlBackend(url)


def open_light(url: StoreURL) -> LightSqlBackend | None:
    """The light reader of ``url`` (see the module documentation); ``None`` when it does not
    apply: another URL form, a missing file, anything the full backend's open would act on or
    report (an older or newer schema, a missing search index, an unreadable file)."""
    if url.scheme != "sqlite" or url.netloc or url.options or not url.path or url.path == ":memory:":
        return None
    try:
        path = url.local_path()
        if not path.is_file() or not sqlite_has_trigram():
            return None
        uri = f"{path.absolute().as_uri()}?mode=rw"  # never creates a file
        conn = sqlite3.connect(
            uri, uri=True, timeout=DEFAULT_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except (OSError, ValueError, TributeStoreError, sqlite3.Error):
        return None
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("BEGIN")
        try:
            current = conn.execute("SELECT version FROM schema_version").fetchall() == [(CURRENT_VERSION,)]
            indexed = all(
                conn.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", part).fetchone()
                for part in (
                    ("table", FTS_TABLE),
                    ("index", TEXT_INDEX),
                    *(("trigger", name) for name in FTS_TRIGGERS),
                )
            )
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        current = indexed = False
    if current and indexed:
        return LightSqlBackend(url, path, conn)
    conn.close()
    return None


class LightSqlBackend:
    """The light reader (see the module documentation); a
    :class:`~tributestore.backend.Backend` with the full backend's capabilities, which it opens
    when a call needs more than a light read."""

    read_only = False
    ephemeral = False
    created: str | None = None

    def __init__(self, url: StoreURL, path: Path, conn: sqlite3.Connection) -> None:
        self._store_url = url
        self.url = url.display
        self.where = f"SQLite database {path}"
        self._conn: sqlite3.Connection | None = conn
        self._full: SqlBackend | None = None
        self._lock = threading.Lock()

    def full(self) -> SqlBackend:
        """The full SQL backend on the same file, opened by the first call that needs it."""
        full = self._full
        if full is not None:
            return full
        with self._lock:
            if self._full is None:
                from .store import SqlBackend  # local: this is where SQLAlchemy is imported

                self._full = SqlBackend(self._store_url)
                self._close_light()
            return self._full

    def _close_light(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _light(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """``read`` in one read transaction of the light connection; :class:`_Unanswered` when the
        full backend is open, or on any error (the full backend reads again, and reports)."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise _Unanswered
            try:
                conn.execute("BEGIN")
                try:
                    return read(conn)
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")  # it only read
            except Exception as error:
                raise _Unanswered from error

    @property
    def warnings(self) -> Sequence[str]:
        return [] if self._full is None else self._full.warnings

    def close(self) -> None:
        with self._lock:
            self._close_light()
            if self._full is not None:
                self._full.close()

    # ------------------------------------------------------------- light reads
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        params = {"guild_id": guild_id, "tribute_id": tribute_id}

        def read(conn: sqlite3.Connection) -> Tribute | None:
            found = _mappings(conn, TRIBUTE_SQL, params)  # one row at most: the primary key
            return model(Tribute, found[0], self.where, "tributes") if found else None

        try:
            return self._light(read)
        except _Unanswered:
            return self.full().get_tribute(guild_id, tribute_id)

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        params = {"guild_id": guild_id, "tribute_id": tribute_id}

        def read(conn: sqlite3.Connection) -> TributeBundle | None:
            found = assemble(
                _mappings(conn, ONE_TRIBUTES_SQL, params),
                conn.execute(ONE_ITEMS_SQL, params).fetchall(),
                _mappings(conn, ONE_PROMPTS_SQL, params),
                _mappings(conn, ONE_FILES_SQL, params),
                self.where,
            )
            return found[0] if found else None

        try:
            return self._light(read)
        except _Unanswered:
            return self.full().load(guild_id, tribute_id)

    # ------------------------------------------------------------- the full backend's
    def transaction(self) -> AbstractContextManager[None]:
        return self.full().transaction()

    def snapshot(self) -> AbstractContextManager[None]:
        return self.full().snapshot()

    def connection(self) -> AbstractContextManager[Connection]:
        return self.full().connection()

    def put_guild(self, guild: Guild) -> None:
        self.full().put_guild(guild)

    def get_guild(self, guild_id: int) -> Guild | None:
        return self.full().get_guild(guild_id)

    def list_guilds(self) -> list[Guild]:
        return self.full().list_guilds()

    def save(self, document: TributeBundle, files: Any, previous: TributeBundle | None) -> None:
        self.full().save(document, files, previous)

    def delete(self, guild_id: int, tribute_id: str) -> None:
        self.full().delete(guild_id, tribute_id)

    def read_file(self, info: FileInfo) -> bytes:
        return self.full().read_file(info)

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        return self.full().iter_tributes(guild_id)

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        return self.full().iter_documents(guild_id)

    def import_documents(self, documents: Sequence[TributeBundle], file_data: FileData) -> None:
        self.full().import_documents(documents, file_data)

    def bulk_import(self, tributes: int) -> AbstractContextManager[None]:
        return self.full().bulk_import(tributes)

    def finish_import(self) -> None:
        self.full().finish_import()

    def put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None) -> None:
        self.full().put_tombstone(guild_id, tribute_id, origin_key)

    def has_tombstone(self, guild_id: int, tribute_id: str) -> bool:
        return self.full().has_tombstone(guild_id, tribute_id)

    def has_origin_tombstone(self, origin_key: str) -> bool:
        return self.full().has_origin_tombstone(origin_key)

    def present(self, keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
        return self.full().present(keys)

    def iter_tombstones(self) -> Iterator[tuple[int, str, str | None]]:
        return self.full().iter_tombstones()

    def count_tombstones(self) -> int:
        return self.full().count_tombstones()

    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        return self.full().search_items(folded_query, guild_id)

    def search_page(
        self, folded_query: str, guild_id: int | None, after: HitPosition | None, limit: int
    ) -> list[ItemHit]:
        return self.full().search_page(folded_query, guild_id, after, limit)

    def counts(self) -> Counts:
        return self.full().counts()

    def details(self) -> dict[str, int]:
        return self.full().details()

    def check(self) -> list[str]:
        return self.full().check()


def _mappings(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, found, strict=True)) for found in cursor.fetchall()]
