"""The ``sqlite`` backend: tributes in relational tables, WAL, real transactions, indexed search.

``sqlite:///relative.db`` / ``sqlite:////absolute.db`` name a file (in
``write`` mode it and its directory are created; in ``read`` mode it must
already be a tributestore database); ``sqlite:///:memory:`` a private
in-memory database (``sqlite://NAME`` and a bare ``sqlite://`` are errors).
URL options: ``timeout`` (seconds to wait for a lock, default 30),
``synchronous`` (``full``, the default, ``normal`` or ``extra``) and ``fts``
(``off`` disables the full-text index for searches).

Transactions: :meth:`SqliteStore.transaction` gives each thread one
connection; the outermost call starts ``BEGIN IMMEDIATE`` (the write lock, so
read-modify-write sequences of several processes serialize and none loses an
update), nested calls join it through a savepoint (a failing nested block
undoes only its own writes).  Reads outside a transaction run in a short
read transaction of their own, so each one sees a consistent snapshot;
:meth:`SqliteStore.snapshot` holds one read transaction (a thread-local
connection, as the write transaction's) across a multi-part read.

Fair writers: before ``BEGIN IMMEDIATE`` (whose busy handler polls, letting a
process committing back to back win every race) a writer takes a place in
the queue ``<database>-queue`` (:class:`tributestore.fairlock.FairLock`), so
writers of every process and thread start in arrival order; the whole wait
(queue and ``BEGIN IMMEDIATE``) is bounded by ``timeout``.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, TextClause, inspect
from sqlalchemy import text as _text

from tributestore.errors import (
    ConfigError,
    CorruptDataError,
    LockTimeoutError,
    NotFoundError,
    StorageError,
    StoreNotFoundError,
)
from tributestore.fairlock import FairLock
from tributestore.models import (
    Counts,
    FileInfo,
    Guild,
    Inventory,
    ItemHit,
    Prompt,
    Tribute,
    TributeBundle,
    check_guild_id,
    describe_validation_error,
    utcnow,
)
from tributestore.store import FileData, TributeStore, check_bundle, file_bytes
from tributestore.urls import StoreURL

from . import schema, search
from .connection import (
    BEGIN_KEY,
    DRIVER_ERRORS,
    SYNCHRONOUS_LEVELS,
    begin_statement,
    open_sqlite_engine,
    translate_error,
    upsert_statement,
)

DEFAULT_TIMEOUT = 30.0
#: Rows fetched per query when streaming tributes (keyset pagination).
PAGE_SIZE = 200

M = TypeVar("M", bound=BaseModel)


@functools.lru_cache(maxsize=1024)
def text(sql: str) -> TextClause:
    """``sqlalchemy.text``, parsed once per distinct statement (a hot path of bulk copies)."""
    return _text(sql)


_GUILD_COLUMNS = ("guild_id", "log_channel_id", "category_id", "gm_id", "admin_id")
_TRIBUTE_COLUMNS = (
    "guild_id",
    "tribute_id",
    "name",
    "user_id",
    "user_mention",
    "face_claim_url",
    "prompt_channel_id",
    "created_at",
    "updated_at",
)
_FILE_COLUMNS = ("guild_id", "tribute_id", "name", "kind", "media_type", "size", "sha256", "created_at")
_TIMESTAMPS = frozenset({"created_at", "updated_at"})
_OWNER = "guild_id = :guild_id AND tribute_id = :tribute_id"


def open_sqlite_store(url: StoreURL) -> TributeStore:
    """The opener the plugin registers for ``sqlite:`` URLs."""
    return SqliteStore(url)


# ------------------------------------------------------------------ values
def to_text(value: datetime | None) -> str | None:
    """A timestamp as fixed-width ISO-8601 UTC text (sorts as it compares, round-trips exactly)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CorruptDataError(f"{where}: timestamp {value!r} is not ISO-8601 text")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CorruptDataError(f"{where}: timestamp {value!r} is not ISO-8601") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _row_params(model: BaseModel, columns: Sequence[str]) -> dict[str, Any]:
    params = {column: getattr(model, column) for column in columns}
    for column in _TIMESTAMPS & params.keys():
        params[column] = to_text(params[column])
    return params


class SqliteStore(TributeStore):
    """A :class:`TributeStore` in one SQLite database (see the module docstring)."""

    def __init__(self, url: StoreURL) -> None:
        self.url = url.display
        self.timeout = _timeout_option(url)
        synchronous = (url.option("synchronous") or "FULL").upper()
        if synchronous not in SYNCHRONOUS_LEVELS:
            raise ConfigError(
                f"store URL {url.display!r}: synchronous={synchronous.lower()!r} is not one of "
                f"{', '.join(level.lower() for level in SYNCHRONOUS_LEVELS)}"
            )
        self.path = _database_path(url)
        self.where = "in-memory SQLite database" if self.path is None else f"SQLite database {self.path}"
        self._must_exist = url.must_exist
        if self.path is None:
            self.ephemeral = True
            if url.must_exist:
                raise StoreNotFoundError(
                    f"store {url.display!r} is an in-memory database, which is always empty: "
                    "it cannot be opened for reading"
                )
        elif url.must_exist and not self.path.is_file():
            raise url.missing("no SQLite database file", self.path)
        new_file = self.path is not None and not self.path.exists()
        self._local = threading.local()
        # One shared connection in memory: its users take turns.
        self._memory_lock = threading.RLock() if self.path is None else None
        #: The writers' queue (files only: in memory the lock above already serializes).
        self._queue: FairLock | None = None
        if self.path is not None:
            self._queue = FairLock(
                self.path, what=self.where, exclusive=False, queue_path=Path(f"{self.path}-queue")
            )
        self._closed = False
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.is_dir():
                    raise StorageError(f"cannot open {self.where}: it is a directory")
            self._db, self._engine = open_sqlite_engine(
                self.path, timeout=self.timeout, synchronous=synchronous
            )
        except DRIVER_ERRORS as error:
            raise translate_error(error, self.where, self.timeout) from None
        self.dialect = self._engine.dialect.name
        want_fts = url.flag("fts", default=True)
        try:
            self.use_fts = self._prepare_schema(want_fts) and want_fts
        except BaseException:
            self.close()
            raise
        if new_file and self.path is not None:
            self.created = str(self.path.absolute())

    def _refuse_missing_schema(self) -> None:
        """In ``read`` mode, a database without tributestore's tables is not a store: touch nothing."""
        raise StoreNotFoundError(
            f"{self.where} ({self.url}) holds no tributestore tables (no schema_version); nothing was created"
        )

    def _prepare_schema(self, want_fts: bool) -> bool:
        """Migrate (and index) when needed; whether the full-text index exists.

        A read transaction looks first, so opening an up-to-date database takes
        no write lock: opening does not wait for a writer of another process.
        """
        with self._connection() as conn:
            has_table = inspect(conn).has_table
            version = schema.read_version(conn) if has_table("schema_version") else None
            has_fts = search.has_fts_table(conn)
        if has_fts and not search.sqlite_has_trigram():
            raise StorageError(
                f"{self.where} has a full-text index (FTS5 trigram) this SQLite library "
                "cannot maintain; use SQLite 3.34 or newer with FTS5"
            )
        if version is None and self._must_exist:
            self._refuse_missing_schema()
        if version is not None and version > schema.CURRENT_VERSION:
            schema.refuse_newer(version, self.where)
        if version == schema.CURRENT_VERSION and (has_fts or not want_fts or not search.sqlite_has_trigram()):
            return has_fts
        with self.transaction(), self._connection() as conn:
            schema.migrate(conn, self.dialect, self.where, lambda name: inspect(conn).has_table(name))
            return search.ensure_fts(conn) if want_fts else search.has_fts_table(conn)

    # ----------------------------------------------------------- plumbing
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        engine = getattr(self, "_engine", None)
        if engine is not None:
            self._db.close()

    def _guard(self) -> AbstractContextManager[Any]:
        return self._memory_lock if self._memory_lock is not None else nullcontext()

    def _translate(self, error: BaseException) -> StorageError:
        return translate_error(error, self.where, self.timeout)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn driver errors into one-line :class:`StorageError` naming the database."""
        try:
            yield
        except DRIVER_ERRORS as error:
            raise self._translate(error) from None

    def _start(self, *, write: bool) -> tuple[Connection, Any]:
        if self._closed:
            raise StorageError(f"{self.where} ({self.url}) is closed")
        conn = self._engine.connect()
        try:
            return conn, self._begin(conn, write=write)
        except BaseException:
            conn.close()
            raise

    def _begin(self, conn: Connection, *, write: bool) -> Any:
        """Start the connection's transaction: ``BEGIN IMMEDIATE`` for a write (the dialect hook)."""
        statement = begin_statement(self.dialect, write=write)
        if statement:
            conn.info[BEGIN_KEY] = statement
        deadline: float | None = getattr(self._local, "deadline", None)
        if not write or deadline is None:
            return conn.begin()
        # What the queue left of the timeout is BEGIN IMMEDIATE's busy timeout, then restored.
        raw = conn.connection.dbapi_connection
        assert raw is not None
        left = max(1, int((deadline - time.monotonic()) * 1000))
        raw.execute(f"PRAGMA busy_timeout = {left}")
        try:
            return conn.begin()
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:  # nested: join the outer transaction through a savepoint
            with self._errors():
                savepoint = current.begin_nested()
            try:
                yield
            except BaseException:
                with self._errors():
                    if savepoint.is_active:
                        savepoint.rollback()
                raise
            with self._errors():
                savepoint.commit()
            return
        if getattr(self._local, "read_conn", None) is not None and self._memory_lock is not None:
            raise StorageError(f"{self.where}: cannot write inside store.snapshot() (one connection)")
        with self._guard(), self._writers_queue():
            with self._errors():
                conn, tx = self._start(write=True)
            self._local.deadline = None
            self._local.conn = conn
            try:
                try:
                    yield
                except BaseException:
                    with suppress(*DRIVER_ERRORS):  # the original error matters more
                        tx.rollback()
                    raise
                with self._errors():
                    tx.commit()
            finally:
                self._local.conn = None
                conn.close()

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    @contextmanager
    def _writers_queue(self) -> Iterator[None]:
        """A place in the writers' queue (arrival order) until the transaction ends."""
        if self._queue is None:
            yield
            return
        self._local.deadline = None if self.timeout < 0 else time.monotonic() + self.timeout
        try:
            with self._queue.hold(self.timeout):
                yield
        finally:
            self._local.deadline = None

    def snapshot(self) -> AbstractContextManager[None]:
        return self._snapshot()

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction, on a thread-local connection every read primitive reuses."""
        local = self._local
        if getattr(local, "conn", None) is not None or getattr(local, "read_conn", None) is not None:
            yield  # inside a transaction or a snapshot already: join it
            return
        with self._guard():
            with self._errors():
                conn, tx = self._start(write=False)
            local.read_conn = conn
            try:
                yield
                with self._errors():
                    tx.commit()
            finally:
                local.read_conn = None
                with suppress(*DRIVER_ERRORS):
                    conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """The thread's transaction (or snapshot) connection, else one in a read transaction of its own."""
        current: Connection | None = getattr(self._local, "conn", None) or getattr(
            self._local, "read_conn", None
        )
        if current is not None:
            with self._errors():
                yield current
            return
        with self._guard(), self._errors():
            conn, tx = self._start(write=False)
            try:
                yield conn
                tx.commit()
            finally:
                conn.close()

    def _rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self._connection() as conn:
            return [dict(row._mapping) for row in conn.execute(text(sql), params)]

    def _model(self, model: type[M], row: Mapping[str, Any], table: str) -> M:
        data = dict(row)
        where = f"{self.where}, table {table}"
        for column in _TIMESTAMPS & data.keys():
            data[column] = from_text(data[column], where)
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise CorruptDataError(f"{where}: {describe_validation_error(error, 'row')}") from None

    # ------------------------------------------------------------- guilds
    def _put_guild(self, guild: Guild) -> None:
        with self._connection() as conn:
            conn.execute(
                text(upsert_statement("guilds", _GUILD_COLUMNS, ("guild_id",))),
                _row_params(guild, _GUILD_COLUMNS),
            )

    def _get_guild(self, guild_id: int) -> Guild | None:
        rows = self._rows(f"SELECT {', '.join(_GUILD_COLUMNS)} FROM guilds WHERE guild_id = :g", g=guild_id)
        return self._model(Guild, rows[0], "guilds") if rows else None

    def _list_guilds(self) -> list[Guild]:
        rows = self._rows(f"SELECT {', '.join(_GUILD_COLUMNS)} FROM guilds ORDER BY guild_id")
        return [self._model(Guild, row, "guilds") for row in rows]

    # ----------------------------------------------------------- tributes
    def _get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        rows = self._rows(
            f"SELECT {', '.join(_TRIBUTE_COLUMNS)} FROM tributes WHERE {_OWNER}",
            guild_id=guild_id,
            tribute_id=tribute_id,
        )
        return self._model(Tribute, rows[0], "tributes") if rows else None

    def _insert_tribute(self, tribute: Tribute) -> None:
        columns = ", ".join(_TRIBUTE_COLUMNS)
        values = ", ".join(f":{column}" for column in _TRIBUTE_COLUMNS)
        default = Inventory(guild_id=tribute.guild_id, tribute_id=tribute.tribute_id)
        with self._connection() as conn:
            conn.execute(
                text(f"INSERT INTO tributes ({columns}) VALUES ({values})"),
                _row_params(tribute, _TRIBUTE_COLUMNS),
            )
            conn.execute(
                text(
                    "INSERT INTO inventories (guild_id, tribute_id, capacity, equipped_capacity)"
                    " VALUES (:guild_id, :tribute_id, :capacity, :equipped_capacity)"
                ),
                _row_params(default, ("guild_id", "tribute_id", "capacity", "equipped_capacity")),
            )

    def _update_tribute(self, tribute: Tribute) -> None:
        changes = ", ".join(f"{column} = :{column}" for column in _TRIBUTE_COLUMNS[2:])
        with self._connection() as conn:
            conn.execute(
                text(f"UPDATE tributes SET {changes} WHERE {_OWNER}"), _row_params(tribute, _TRIBUTE_COLUMNS)
            )

    def _delete_tribute(self, guild_id: int, tribute_id: str) -> None:
        # ON DELETE CASCADE removes the inventory, items (and their index rows), prompt and files.
        with self._connection() as conn:
            conn.execute(
                text(f"DELETE FROM tributes WHERE {_OWNER}"), {"guild_id": guild_id, "tribute_id": tribute_id}
            )

    def _iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        # Keyset pagination: each page is one short query, so no read transaction
        # (nor the in-memory connection) is held while the caller works.
        select = f"SELECT {', '.join(_TRIBUTE_COLUMNS)} FROM tributes"
        where = [] if guild_id is None else ["guild_id = :g"]
        after: tuple[int, str] | None = None
        while True:
            conditions = list(where)
            if after is not None:
                # A row-value comparison: the index seeks to it (the OR form scans the guild).
                conditions.append("(guild_id, tribute_id) > (:ag, :at)")
            sql = select + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
            sql += f" ORDER BY guild_id, tribute_id LIMIT {PAGE_SIZE}"
            params: dict[str, Any] = {"g": guild_id}
            if after is not None:
                params.update(ag=after[0], at=after[1])
            rows = self._rows(sql, **params)
            for row in rows:
                yield self._model(Tribute, row, "tributes")
            if len(rows) < PAGE_SIZE:
                return
            after = (rows[-1]["guild_id"], rows[-1]["tribute_id"])

    # ---------------------------------------------------------- inventory
    def _get_inventory(self, guild_id: int, tribute_id: str) -> Inventory:
        owner = {"guild_id": guild_id, "tribute_id": tribute_id}
        with self._connection() as conn:
            capacities = conn.execute(
                text(f"SELECT capacity, equipped_capacity FROM inventories WHERE {_OWNER}"), owner
            ).first()
            rows = conn.execute(
                text(f"SELECT slot, item FROM inventory_items WHERE {_OWNER} ORDER BY slot, number"), owner
            ).all()
        data: dict[str, Any] = dict(owner, items=[], equipped=[])
        if capacities is not None:
            data.update(capacity=capacities[0], equipped_capacity=capacities[1])
        for slot, item in rows:
            data[slot].append(item)
        return self._model(Inventory, data, "inventories/inventory_items")

    def _save_inventory(self, inventory: Inventory) -> None:
        owner = {"guild_id": inventory.guild_id, "tribute_id": inventory.tribute_id}
        columns = ("guild_id", "tribute_id", "capacity", "equipped_capacity")
        with self._connection() as conn:
            conn.execute(
                text(upsert_statement("inventories", columns, ("guild_id", "tribute_id"))),
                _row_params(inventory, columns),
            )
            stored = {
                (slot, number): item
                for slot, number, item in conn.execute(
                    text(f"SELECT slot, number, item FROM inventory_items WHERE {_OWNER}"), owner
                )
            }
            # Write only what changed (appending an item touches one row and one index entry).
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for slot in ("items", "equipped"):
                entries: list[str] = getattr(inventory, slot)
                for number, item in enumerate(entries, start=1):
                    row = dict(owner, slot=slot, number=number, item=item, item_folded=item.casefold())
                    old = stored.get((slot, number))
                    if old is None:
                        inserts.append(row)
                    elif old != item:
                        updates.append(row)
                if any(key[0] == slot and key[1] > len(entries) for key in stored):
                    conn.execute(
                        text(f"DELETE FROM inventory_items WHERE {_OWNER} AND slot = :slot AND number > :n"),
                        dict(owner, slot=slot, n=len(entries)),
                    )
            if updates:
                conn.execute(
                    text(
                        "UPDATE inventory_items SET item = :item, item_folded = :item_folded"
                        f" WHERE {_OWNER} AND slot = :slot AND number = :number"
                    ),
                    updates,
                )
            if inserts:
                _insert_items(conn, inserts)

    def _search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        sql, params = search.search_statement(
            folded_query, guild_id, dialect=self.dialect, use_fts=self.use_fts
        )
        for row in self._rows(sql, **params):
            try:  # ItemHit has no timestamps: validated directly (_model's per-row work halves the speed)
                yield ItemHit.model_validate(row)
            except ValidationError as error:
                raise CorruptDataError(
                    f"{self.where}, table inventory_items: {describe_validation_error(error, 'row')}"
                ) from None

    # ------------------------------------------------------------- prompt
    def _get_prompt(self, guild_id: int, tribute_id: str) -> Prompt | None:
        owner = {"guild_id": guild_id, "tribute_id": tribute_id}
        with self._connection() as conn:
            row = conn.execute(
                text(
                    "SELECT guild_id, tribute_id, message, channel_id, created_at, updated_at"
                    f" FROM prompts WHERE {_OWNER}"
                ),
                owner,
            ).first()
            if row is None:
                return None
            files = conn.execute(
                text(f"SELECT file_name FROM prompt_files WHERE {_OWNER} ORDER BY position"), owner
            ).scalars()
            data = dict(row._mapping, files=list(files))
        return self._model(Prompt, data, "prompts")

    def _save_prompt(self, prompt: Prompt) -> None:
        owner = {"guild_id": prompt.guild_id, "tribute_id": prompt.tribute_id}
        columns = ("guild_id", "tribute_id", "message", "channel_id", "created_at", "updated_at")
        with self._connection() as conn:
            conn.execute(
                text(upsert_statement("prompts", columns, ("guild_id", "tribute_id"))),
                _row_params(prompt, columns),
            )
            conn.execute(text(f"DELETE FROM prompt_files WHERE {_OWNER}"), owner)
            if prompt.files:
                conn.execute(
                    text(
                        "INSERT INTO prompt_files (guild_id, tribute_id, position, file_name)"
                        " VALUES (:guild_id, :tribute_id, :position, :file_name)"
                    ),
                    [dict(owner, position=n, file_name=name) for n, name in enumerate(prompt.files, 1)],
                )

    def _delete_prompt(self, guild_id: int, tribute_id: str) -> None:
        with self._connection() as conn:
            conn.execute(
                text(f"DELETE FROM prompts WHERE {_OWNER}"), {"guild_id": guild_id, "tribute_id": tribute_id}
            )

    # -------------------------------------------------------------- files
    def _save_file(self, info: FileInfo, data: bytes) -> None:
        columns = (*_FILE_COLUMNS, "data")
        params = _row_params(info, _FILE_COLUMNS)
        params["data"] = data
        with self._connection() as conn:
            conn.execute(text(upsert_statement("files", columns, ("guild_id", "tribute_id", "name"))), params)

    def _get_file(self, guild_id: int, tribute_id: str, name: str) -> FileInfo | None:
        rows = self._rows(
            f"SELECT {', '.join(_FILE_COLUMNS)} FROM files WHERE {_OWNER} AND name = :name",
            guild_id=guild_id,
            tribute_id=tribute_id,
            name=name,
        )
        return self._model(FileInfo, rows[0], "files") if rows else None

    def _read_file(self, info: FileInfo) -> bytes:
        with self._connection() as conn:
            data = conn.execute(
                text(f"SELECT data FROM files WHERE {_OWNER} AND name = :name"),
                {"guild_id": info.guild_id, "tribute_id": info.tribute_id, "name": info.name},
            ).scalar()
        if data is None:
            raise NotFoundError(
                f"file {info.name!r} not found for tribute {info.tribute_id} in guild {info.guild_id}"
            )
        return bytes(data)

    def _list_files(self, guild_id: int, tribute_id: str) -> list[FileInfo]:
        rows = self._rows(
            f"SELECT {', '.join(_FILE_COLUMNS)} FROM files WHERE {_OWNER} ORDER BY name",
            guild_id=guild_id,
            tribute_id=tribute_id,
        )
        return [self._model(FileInfo, row, "files") for row in rows]

    def _delete_file(self, guild_id: int, tribute_id: str, name: str) -> None:
        with self._connection() as conn:
            conn.execute(
                text(f"DELETE FROM files WHERE {_OWNER} AND name = :name"),
                {"guild_id": guild_id, "tribute_id": tribute_id, "name": name},
            )

    # -------------------------------------------------------- whole store
    def iter_bundles(self, guild_id: int | None = None) -> Iterator[TributeBundle]:
        """Every tribute with all it owns, streaming: a few queries per page of tributes.

        (The base class asks for each tribute's parts one by one: five queries per
        tribute.)  Each page's tributes and parts are read again in one read
        transaction, so every bundle is one committed state of its tribute (one
        deleted since the listing is skipped).
        """
        page: list[Tribute] = []
        for tribute in self._iter_tributes(None if guild_id is None else check_guild_id(guild_id)):
            page.append(tribute)
            if len(page) >= PAGE_SIZE:
                yield from self._bundle_page(page)
                page = []
        if page:
            yield from self._bundle_page(page)

    def _import_replacing(self, bundles: Sequence[TributeBundle], file_data: FileData) -> None:
        """The copier's bulk write: a batch of whole tributes in a few statements, one transaction."""
        checked = [check_bundle(bundle) for bundle in bundles]
        keys = sorted((b.tribute.guild_id, b.tribute.tribute_id) for b in checked)
        if len(set(keys)) != len(keys):  # the same tribute twice: one by one, in order
            super()._import_replacing(checked, file_data)
            return
        if not checked:
            return
        self._writable()
        owner_columns = ("guild_id", "tribute_id")
        capacity_columns = ("guild_id", "tribute_id", "capacity", "equipped_capacity")
        prompt_columns = ("guild_id", "tribute_id", "message", "channel_id", "created_at", "updated_at")
        with self.transaction(), self._connection() as conn:
            span = {"g0": keys[0][0], "t0": keys[0][1], "g1": keys[-1][0], "t1": keys[-1][1]}
            existing = conn.execute(
                text(
                    "SELECT guild_id, tribute_id FROM tributes"
                    " WHERE (guild_id, tribute_id) >= (:g0, :t0) AND (guild_id, tribute_id) <= (:g1, :t1)"
                ),
                span,
            ).all()
            wanted = set(keys)
            for guild_id, tribute_id in existing:  # replaced whole, as import_tribute(overwrite)
                if (guild_id, tribute_id) in wanted:
                    self._delete_tribute(guild_id, tribute_id)
            for guild_id in sorted({key[0] for key in keys}):
                self._ensure_guild(guild_id)
            conn.execute(
                text(
                    f"INSERT INTO tributes ({', '.join(_TRIBUTE_COLUMNS)})"
                    f" VALUES ({', '.join(':' + c for c in _TRIBUTE_COLUMNS)})"
                ),
                [_row_params(b.tribute, _TRIBUTE_COLUMNS) for b in checked],
            )
            conn.execute(
                text(
                    f"INSERT INTO inventories ({', '.join(capacity_columns)})"
                    f" VALUES ({', '.join(':' + c for c in capacity_columns)})"
                ),
                [_row_params(b.inventory, capacity_columns) for b in checked],
            )
            items: list[dict[str, Any]] = []
            for bundle in checked:
                owner = _row_params(bundle.inventory, owner_columns)
                for slot in ("items", "equipped"):
                    for number, item in enumerate(getattr(bundle.inventory, slot), start=1):
                        items.append(
                            dict(owner, slot=slot, number=number, item=item, item_folded=item.casefold())
                        )
            if items:
                _insert_items(conn, items)
            prompts = [b.prompt for b in checked if b.prompt is not None]
            if prompts:
                conn.execute(
                    text(
                        f"INSERT INTO prompts ({', '.join(prompt_columns)})"
                        f" VALUES ({', '.join(':' + c for c in prompt_columns)})"
                    ),
                    [_row_params(prompt, prompt_columns) for prompt in prompts],
                )
                names = [
                    dict(_row_params(prompt, owner_columns), position=position, file_name=name)
                    for prompt in prompts
                    for position, name in enumerate(prompt.files, start=1)
                ]
                if names:
                    conn.execute(
                        text(
                            "INSERT INTO prompt_files (guild_id, tribute_id, position, file_name)"
                            " VALUES (:guild_id, :tribute_id, :position, :file_name)"
                        ),
                        names,
                    )
            for bundle in checked:
                for info in bundle.files:
                    self._save_file(info, file_bytes(info, file_data))

    def _bundle_page(self, tributes: list[Tribute]) -> list[TributeBundle]:
        first, last = tributes[0], tributes[-1]
        span = {"g0": first.guild_id, "t0": first.tribute_id, "g1": last.guild_id, "t1": last.tribute_id}
        within = " WHERE (guild_id, tribute_id) >= (:g0, :t0) AND (guild_id, tribute_id) <= (:g1, :t1)"
        parts: dict[tuple[int, str], dict[str, Any]] = {
            (t.guild_id, t.tribute_id): {"items": [], "equipped": [], "files": []} for t in tributes
        }
        with self._connection() as conn:
            fresh = {
                (row["guild_id"], row["tribute_id"]): row
                for row in (
                    dict(row._mapping)
                    for row in conn.execute(
                        text(f"SELECT {', '.join(_TRIBUTE_COLUMNS)} FROM tributes" + within), span
                    )
                )
            }
            capacities = conn.execute(
                text("SELECT guild_id, tribute_id, capacity, equipped_capacity FROM inventories" + within),
                span,
            ).all()
            items = conn.execute(
                text(
                    "SELECT guild_id, tribute_id, slot, item FROM inventory_items"
                    + within
                    + " ORDER BY guild_id, tribute_id, slot, number"
                ),
                span,
            ).all()
            prompts = [
                dict(row._mapping)
                for row in conn.execute(
                    text(
                        "SELECT guild_id, tribute_id, message, channel_id, created_at, updated_at"
                        " FROM prompts" + within
                    ),
                    span,
                )
            ]
            prompt_files = conn.execute(
                text(
                    "SELECT guild_id, tribute_id, file_name FROM prompt_files"
                    + within
                    + " ORDER BY guild_id, tribute_id, position"
                ),
                span,
            ).all()
            files = [
                dict(row._mapping)
                for row in conn.execute(
                    text(
                        f"SELECT {', '.join(_FILE_COLUMNS)} FROM files"
                        + within
                        + " ORDER BY guild_id, tribute_id, name"
                    ),
                    span,
                )
            ]
        for gid, tid, capacity, equipped_capacity in capacities:
            if (gid, tid) in parts:
                parts[gid, tid].update(capacity=capacity, equipped_capacity=equipped_capacity)
        for gid, tid, slot, item in items:
            if (gid, tid) in parts:
                parts[gid, tid][slot].append(item)
        names: dict[tuple[int, str], list[str]] = {}
        for gid, tid, name in prompt_files:
            names.setdefault((gid, tid), []).append(name)
        for row in prompts:
            key = (row["guild_id"], row["tribute_id"])
            if key in parts:
                parts[key]["prompt"] = self._model(Prompt, dict(row, files=names.get(key, [])), "prompts")
        for row in files:
            key = (row["guild_id"], row["tribute_id"])
            if key in parts:
                parts[key]["files"].append(self._model(FileInfo, row, "files"))
        bundles = []
        for listed in tributes:
            key = (listed.guild_id, listed.tribute_id)
            if key not in fresh:  # deleted since the page was listed
                continue
            tribute = self._model(Tribute, fresh[key], "tributes")
            found = parts[key]
            inventory = {"guild_id": key[0], "tribute_id": key[1], "items": found["items"]}
            inventory["equipped"] = found["equipped"]
            if "capacity" in found:
                inventory.update(capacity=found["capacity"], equipped_capacity=found["equipped_capacity"])
            bundles.append(
                TributeBundle.model_construct(
                    tribute=tribute,
                    inventory=self._model(Inventory, inventory, "inventories/inventory_items"),
                    prompt=found.get("prompt"),
                    files=found["files"],
                )
            )
        return bundles

    # --------------------------------------------------------- tombstones
    supports_tombstones = True

    def _put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None = None) -> None:
        with self._connection() as conn:
            conn.execute(
                text(
                    "INSERT INTO tombstones (guild_id, tribute_id, deleted_at, origin_key)"
                    " VALUES (:guild_id, :tribute_id, :deleted_at, :origin_key)"
                    " ON CONFLICT (guild_id, tribute_id) DO NOTHING"
                ),
                {
                    "guild_id": guild_id,
                    "tribute_id": tribute_id,
                    "deleted_at": to_text(utcnow()),
                    "origin_key": origin_key,
                },
            )

    def _has_tombstone(self, guild_id: int, tribute_id: str) -> bool:
        rows = self._rows(
            f"SELECT 1 AS found FROM tombstones WHERE {_OWNER}", guild_id=guild_id, tribute_id=tribute_id
        )
        return bool(rows)

    def _has_origin_tombstone(self, origin_key: str) -> bool:
        rows = self._rows("SELECT 1 AS found FROM tombstones WHERE origin_key = :key", key=origin_key)
        return bool(rows)

    def _count_tombstones(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM tombstones")[0]["n"])

    def counts(self) -> Counts:
        rows = self._rows(
            "SELECT (SELECT count(*) FROM guilds) AS guilds,"
            " (SELECT count(*) FROM tributes) AS tributes,"
            " (SELECT count(*) FROM inventory_items WHERE slot = 'items') AS items,"
            " (SELECT count(*) FROM inventory_items WHERE slot = 'equipped') AS equipped,"
            " (SELECT count(*) FROM prompts) AS prompts,"
            " (SELECT count(*) FROM files) AS files"
        )
        return Counts(**rows[0])

    def check(self) -> list[str]:
        """Problems: SQLite integrity, dangling references, schema version, file bytes, items.

        Reads one snapshot (a read transaction), so writes in flight are not
        seen half-done; the full-text index check (a write statement in SQLite)
        runs in a write transaction of its own.  A lock not obtained within the
        timeout raises :class:`~tributestore.errors.LockTimeoutError`: "busy"
        is never reported as damage.
        """
        try:
            with self.snapshot(), self._connection() as conn:
                problems = self._check(conn)
            if self.dialect == "sqlite":
                problems.extend(f"{self.where}: {problem}" for problem in self._fts_problems())
        except LockTimeoutError:
            raise
        except StorageError as error:
            return [str(error)]
        return problems

    def _fts_problems(self) -> list[str]:
        """FTS5's integrity check, under the write lock (it is an INSERT: in a read
        transaction it fails with "database is locked" whenever a writer is active)."""
        if self._local_conn() is not None or getattr(self._local, "read_conn", None) is not None:
            with self._connection() as conn:
                return search.fts_problems(conn)
        try:
            with self.transaction(), self._connection() as conn:
                return search.fts_problems(conn)
        except LockTimeoutError:
            raise
        except StorageError:  # a read-only file or directory: FTS5 cannot run its check there
            return []

    def _local_conn(self) -> Connection | None:
        return getattr(self._local, "conn", None)

    def _check(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        where = self.where
        if self.dialect == "sqlite":
            results = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            if results != ["ok"]:
                problems.extend(f"{where}: integrity check: {result}" for result in results)
            for table, rowid, parent, _fk in conn.exec_driver_sql("PRAGMA foreign_key_check"):
                problems.append(f"{where}: row {rowid} of table {table} refers to a missing {parent} row")
        try:
            version = schema.read_version(conn)
        except CorruptDataError as error:
            problems.append(f"{where}: {error}")
        else:
            if version != schema.CURRENT_VERSION:
                problems.append(f"{where}: schema version is {version}, expected {schema.CURRENT_VERSION}")
        problems.extend(self._check_files(conn))
        problems.extend(self._check_items(conn))
        return problems

    def _check_files(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        keys = conn.execute(text("SELECT guild_id, tribute_id, name, size, sha256 FROM files")).all()
        for guild_id, tribute_id, name, size, sha256 in keys:
            data = conn.execute(
                text(f"SELECT data FROM files WHERE {_OWNER} AND name = :name"),
                {"guild_id": guild_id, "tribute_id": tribute_id, "name": name},
            ).scalar()
            data = bytes(data or b"")
            label = f"{self.where}: file {name!r} of tribute {tribute_id} in guild {guild_id}"
            if len(data) != size:
                problems.append(f"{label} holds {len(data)} bytes, its metadata says {size}")
            elif hashlib.sha256(data).hexdigest() != sha256:
                problems.append(f"{label} does not match its sha256")
        return problems

    def _check_items(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        gaps = conn.execute(
            text(
                "SELECT guild_id, tribute_id, slot, count(*), max(number) FROM inventory_items"
                " GROUP BY guild_id, tribute_id, slot HAVING count(*) <> max(number)"
            )
        )
        for guild_id, tribute_id, slot, count, highest in gaps:
            problems.append(
                f"{self.where}: {slot} of tribute {tribute_id} in guild {guild_id} are not numbered "
                f"1..{count} (highest number {highest})"
            )
        rows = conn.execute(
            text("SELECT guild_id, tribute_id, slot, number, item, item_folded FROM inventory_items")
        )
        for guild_id, tribute_id, slot, number, item, folded in rows:
            if item.casefold() != folded:
                problems.append(
                    f"{self.where}: {slot} {number} of tribute {tribute_id} in guild {guild_id}: "
                    "item_folded is not item.casefold() (search would miss it)"
                )
        return problems


def _insert_items(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert item rows, numbering their ``item_key`` (the search index's row id) after the largest."""
    last = conn.execute(text("SELECT max(item_key) FROM inventory_items")).scalar()
    for key, row in enumerate(rows, start=int(last or 0) + 1):
        row["item_key"] = key
    conn.execute(
        text(
            "INSERT INTO inventory_items"
            " (guild_id, tribute_id, slot, number, item, item_folded, item_key) VALUES"
            " (:guild_id, :tribute_id, :slot, :number, :item, :item_folded, :item_key)"
        ),
        rows,
    )


def _timeout_option(url: StoreURL) -> float:
    return url.seconds("timeout", DEFAULT_TIMEOUT)


def _database_path(url: StoreURL) -> Path | None:
    """The database file, or ``None`` for an in-memory database (only ``sqlite:///:memory:``)."""
    if url.path == ":memory:" and not url.netloc:
        return None
    if not url.path and not url.netloc:
        raise ConfigError(
            f"store URL {url.display!r} names no database: write sqlite:///thg.db (relative), "
            "sqlite:////abs/thg.db (absolute), or sqlite:///:memory: for an in-memory one"
        )
    return url.local_path()
