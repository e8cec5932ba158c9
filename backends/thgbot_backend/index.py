"""The index of a legacy directory: its assembled documents, in a SQLite file, built once.

Reading a legacy directory (:mod:`.reader`) is slow and, held as models, big.
So the reader writes every assembled, validated tribute document (compact
JSON), the guilds, where each file's bytes are, the counts and the warnings
into an *index*: a SQLite file in a cache directory.  The backend then reads
lazily, one tribute at a time, in key order for iterations.  A later open of
the same, unchanged directory reuses the index (a bot's start-up pays only a
``stat`` of the files).

- **Where**: the URL option ``cache=DIR``, else the ``TRIBUTESTORE_CACHE_DIR``
  environment variable, else the user's cache directory (``platformdirs``),
  sub-folder ``thgbot-index``.  Never inside the legacy directory: reading
  creates nothing there.  ``cache=off`` (or a directory that cannot be
  written) builds into a temporary file deleted at close, and says so in
  :attr:`LegacyIndex.note`.
- **Trust**: an index is used only when this user owns it, its fingerprint
  matches (the directory's real path, the options, the reader's own source, and
  the relative path, size and ``mtime_ns`` of every file the reader reads), its
  content check holds (the build completed, the row count it recorded is the
  count present), and the files it points to and the places it looked for an
  image elsewhere in the directory are as they were.  Anything else (missing,
  changed, corrupt, older format) is rebuilt, never trusted.
- **Concurrency**: an index is built into a temporary file beside it and
  renamed over it atomically; a reader holding the old file keeps reading it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tributestore.errors import ConfigError, StorageError
from tributestore.models import Counts, FileInfo, Guild, Inventory, Prompt, Tribute, TributeBundle

#: Bump when what the index holds changes (the reader's source is fingerprinted too).
FORMAT = 1
CACHE_ENV = "TRIBUTESTORE_CACHE_DIR"
CACHE_SUBDIR = "thgbot-index"
_BATCH = 2000

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE guilds (guild_id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE docs (
    guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL, tribute TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (guild_id, tribute_id)
);
CREATE TABLE blobs (
    guild_id INTEGER NOT NULL, tribute_id TEXT NOT NULL, name TEXT NOT NULL,
    sha256 TEXT NOT NULL, path BLOB, state TEXT, content BLOB,
    PRIMARY KEY (guild_id, tribute_id, name)
);
CREATE TABLE probed (path BLOB PRIMARY KEY, state TEXT NOT NULL);
"""


# ------------------------------------------------------------------------- where
def cache_dir(option: str | None) -> Path | None:
    """The directory of indexes (``None``: a temporary index, option ``cache=off``)."""
    if option is not None:
        if option.strip().lower() in ("off", "none", "no", "0"):
            return None
        if not option.strip():  # ``cache=``: never the working directory by accident
            raise ConfigError("option cache= needs a directory (or 'off' for a temporary index)")
        return Path(option).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs  # local: only an opened legacy directory needs it

    return Path(platformdirs.user_cache_dir("tributestore")) / CACHE_SUBDIR


def source_digest() -> str:
    """The reader's own code: an index built by other code is never trusted."""
    digest = hashlib.sha256(str(FORMAT).encode())
    here = Path(__file__).parent
    for name in ("reader.py", "index.py", "jsonstream.py", "legacy_db.py"):
        with contextlib.suppress(OSError):
            digest.update((here / name).read_bytes())
    return digest.hexdigest()


def fingerprint(root: Path, top_level: tuple[str, ...], images: str, options: object) -> str:
    """What the index of ``root`` depends on: the reader's code, the options, and the state
    (size, ``mtime_ns``, inode, link target) of the top-level files the reader reads and of
    everything under ``images`` (folders included, symlinked folders inside ``root`` followed).
    Files referenced from elsewhere in the directory are checked by :func:`read_meta`."""
    digest = hashlib.sha256()
    digest.update(source_digest().encode())
    digest.update(repr(options).encode("utf-8", "surrogatepass"))
    real_root = root.resolve()
    digest.update(os.fsencode(real_root))
    for rel in top_level:
        digest.update(_state(os.path.join(root, rel), rel))
    base = os.path.join(root, images)
    if os.path.isdir(base):
        digest.update(_state(base, images))
        _walk_states(base, images, real_root, digest, set())
    return digest.hexdigest()


def _state(path: str, rel: str) -> bytes:
    """One line naming ``rel`` and the state of what it is (and of what it links to)."""
    try:
        lstat = os.lstat(path)
    except OSError:
        return os.fsencode(f"{rel}\0-\n")
    # ctime too: a file rewritten with its size and mtime restored (cp -p, rsync -t) still differs.
    line = f"{rel}\0{lstat.st_mode}:{lstat.st_size}:{lstat.st_mtime_ns}:{lstat.st_ino}:{lstat.st_ctime_ns}"
    if os.path.islink(path):
        try:
            target = os.stat(path)
            line += f"\0{os.readlink(path)}\0{target.st_mode}:{target.st_size}"
            line += f":{target.st_mtime_ns}:{target.st_ino}:{target.st_ctime_ns}"
        except OSError:
            line += "\0dangling"
    return os.fsencode(line + "\n")


def _walk_states(directory: str, rel: str, real_root: Path, digest: Any, seen: set[tuple[int, int]]) -> None:
    try:
        stat = os.stat(directory)
        if (stat.st_dev, stat.st_ino) in seen:
            return
        seen.add((stat.st_dev, stat.st_ino))
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        entry_rel = f"{rel}/{entry.name}"
        digest.update(_state(entry.path, entry_rel))
        try:
            is_dir = entry.is_dir()  # a symlinked folder too (the reader follows those inside root)
        except OSError:
            continue
        if is_dir and (not entry.is_symlink() or Path(entry.path).resolve().is_relative_to(real_root)):
            _walk_states(entry.path, entry_rel, real_root, digest, seen)


def file_state(path: Path) -> str:
    """Size, ``mtime_ns``, inode and ``ctime_ns`` of a file whose bytes the index points to ('-'
    when unreadable): a file replaced by rename, or rewritten with its mtime restored, differs."""
    try:
        stat = path.stat()
    except OSError:
        return "-"
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_ctime_ns}"


# ------------------------------------------------------------------------- spool
class Walk:
    """Values of a :class:`Spool` looked up in increasing key order, in one sequential scan."""

    def __init__(self, spool: Spool) -> None:
        self.rows = spool.in_order()
        self.head: tuple[str, Any] | None = next(self.rows, None)

    def get(self, key: str) -> Any:
        """The value of ``key`` (``None`` when absent); keys asked must increase."""
        while self.head is not None and self.head[0] < key:
            self.head = next(self.rows, None)
        if self.head is not None and self.head[0] == key:
            return self.head[1]
        return None


class Spool:
    """A dict too big for memory: values pickled in a scratch SQLite file, recent writes buffered."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn = conn
        self.table = f"spool_{name}"
        # a rowid table: values appended in order, only the small key index is updated at random
        conn.execute(f"CREATE TABLE {self.table} (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self.pending: dict[str, Any] = {}

    def flush(self) -> None:
        if self.pending:
            self.conn.executemany(
                f"INSERT OR REPLACE INTO {self.table} VALUES (?, ?)",
                [(key, pickle.dumps(value, pickle.HIGHEST_PROTOCOL)) for key, value in self.pending.items()],
            )
            self.pending.clear()

    def __setitem__(self, key: str, value: Any) -> None:
        self.pending[key] = value
        if len(self.pending) >= _BATCH:
            self.flush()

    def in_order(self) -> Iterator[tuple[str, Any]]:
        """Every (key, value), by key (code-point order, as Python sorts), streamed."""
        self.flush()
        query = f"SELECT key, value FROM {self.table} ORDER BY key"
        cursor = self.conn.execute(query)
        while rows := cursor.fetchmany(500):
            for key, value in rows:
                yield key, pickle.loads(value)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.pending:
            return self.pending[key]
        row = self.conn.execute(f"SELECT value FROM {self.table} WHERE key = ?", (key,)).fetchone()
        return default if row is None else pickle.loads(row[0])

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        if key in self.pending:
            return True
        query = f"SELECT 1 FROM {self.table} WHERE key = ?"
        return self.conn.execute(query, (key,)).fetchone() is not None


_MISSING = object()


@contextlib.contextmanager
def scratch_db() -> Iterator[sqlite3.Connection]:
    """A private SQLite file for spools, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="tributestore-thgbot-spool-") as scratch:
        conn = sqlite3.connect(Path(scratch) / "spool.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA cache_size = -16000")
            conn.execute("BEGIN")
            yield conn
        finally:
            conn.close()


# ------------------------------------------------------------------------- writing
class IndexWriter:
    """Where the reader puts what it assembled (the index being built, a temporary file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.executescript(_SCHEMA)
        self.conn.execute("BEGIN")
        self.docs: list[tuple[int, str, str, str]] = []
        self.counts = {"tributes": 0, "items": 0, "equipped": 0, "prompts": 0, "files": 0}

    def guild(self, guild: Guild) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO guilds VALUES (?, ?)", (guild.guild_id, guild.model_dump_json())
        )

    def blob(self, info: FileInfo, path: Path | None, content: bytes | None) -> None:
        self.conn.execute(
            "INSERT INTO blobs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                info.guild_id,
                info.tribute_id,
                info.name,
                info.sha256,
                None if path is None else os.fsencode(path.absolute()),  # bytes: any file name
                None if path is None else file_state(path),
                content,
            ),
        )

    def probed(self, path: Path) -> None:
        """A path the reader looked at and did not use (an image reference's other place): if it
        appears or changes later, what the reader would find differs, so the index is rebuilt."""
        self.conn.execute(
            "INSERT OR IGNORE INTO probed VALUES (?, ?)", (os.fsencode(path.absolute()), file_state(path))
        )

    def document(
        self, tribute: Tribute, inventory: Inventory, prompt: Prompt | None, files: list[FileInfo]
    ) -> None:
        bundle = TributeBundle(tribute=tribute, inventory=inventory, prompt=prompt, files=files)
        self.docs.append(
            (
                tribute.guild_id,
                tribute.tribute_id,
                tribute.model_dump_json(),
                bundle.model_dump_json(),
            )
        )
        counts = self.counts
        counts["tributes"] += 1
        counts["items"] += len(inventory.items)
        counts["equipped"] += len(inventory.equipped)
        counts["prompts"] += prompt is not None
        counts["files"] += len(files)
        if len(self.docs) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", self.docs)
        self.docs.clear()

    def finish(self, meta: dict[str, Any]) -> None:
        self.flush()
        guilds = self.conn.execute("SELECT count(*) FROM guilds").fetchone()[0]
        values = {**meta, "counts": {**self.counts, "guilds": guilds}, "complete": True}
        self.conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [(name, json.dumps(value)) for name, value in values.items()],
        )
        self.conn.execute("COMMIT")
        self.conn.close()

    def abandon(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


# ------------------------------------------------------------------------- reading
class LegacyIndex:
    """A built index, read lazily through one read-only connection (shared by threads, locked)."""

    def __init__(self, path: Path, meta: dict[str, Any], temporary: bool, note: str = "") -> None:
        self.path = path
        self.meta = meta
        #: Whether the index is a temporary file (no usable cache directory), deleted at once:
        #: the open connection keeps it alive until :meth:`close`.
        self.temporary = temporary
        #: Why the index is temporary, when it is.
        self.note = note
        self.lock = threading.Lock()
        # One connection for the object's life: a rebuild by another process renames a new file
        # over this one; this object keeps reading the file it checked.
        self.connection: sqlite3.Connection | None = connect_read_only(path, check_same_thread=False)
        # The file this connection holds is the one whose metadata was checked (not one another
        # process renamed over it since): else sqlite3.DatabaseError, and the caller rebuilds.
        try:
            held = self.connection.execute("SELECT value FROM meta WHERE name = 'fingerprint'").fetchone()
        except sqlite3.Error:
            self.close()
            raise
        if held is None or json.loads(held[0]) != meta.get("fingerprint"):
            self.close()
            raise sqlite3.DatabaseError(f"{path} was replaced after its check")
        if temporary:
            with contextlib.suppress(OSError):
                path.unlink()

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self.lock:
            if self.connection is None:
                raise StorageError(f"legacy index {self.path} is closed")
            return self.connection.execute(sql, args).fetchall()

    def stream(self, sql: str, args: tuple[Any, ...] = ()) -> Iterator[Any]:
        """Rows in pages, never holding a cursor open across a ``yield`` on a shared connection."""
        last: tuple[int, str] | None = None
        while True:
            if last is None:
                page = self.query(f"{sql} ORDER BY guild_id, tribute_id LIMIT {_BATCH}", args)
            else:
                where = "WHERE" if "WHERE" not in sql else "AND"
                after = f"{where} (guild_id, tribute_id) > (?, ?)"
                page = self.query(
                    f"{sql} {after} ORDER BY guild_id, tribute_id LIMIT {_BATCH}", (*args, *last)
                )
            if not page:
                return
            yield from page
            last = (page[-1][0], page[-1][1])

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.connection.close()
                self.connection = None

    # ---------------------------------------------------------------- answers
    def guilds(self) -> dict[int, Guild]:
        rows = self.query("SELECT doc FROM guilds ORDER BY guild_id")
        found = [Guild.model_validate_json(row[0]) for row in rows]
        return {guild.guild_id: guild for guild in found}

    def tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        rows = self.query(
            "SELECT tribute FROM docs WHERE guild_id = ? AND tribute_id = ?", (guild_id, tribute_id)
        )
        return Tribute.model_validate_json(rows[0][0]) if rows else None

    def document(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        rows = self.query(
            "SELECT doc FROM docs WHERE guild_id = ? AND tribute_id = ?", (guild_id, tribute_id)
        )
        return TributeBundle.model_validate_json(rows[0][0]) if rows else None

    def has(self, guild_id: int, tribute_id: str) -> bool:
        return bool(
            self.query("SELECT 1 FROM docs WHERE guild_id = ? AND tribute_id = ?", (guild_id, tribute_id))
        )

    def blob(self, guild_id: int, tribute_id: str, name: str) -> tuple[str, Path | None, bytes | None] | None:
        """A file's sha256 and where its bytes are: its path in the legacy directory, or the bytes."""
        rows = self.query(
            "SELECT sha256, path, content FROM blobs WHERE guild_id = ? AND tribute_id = ? AND name = ?",
            (guild_id, tribute_id, name),
        )
        if not rows:
            return None
        sha256, path, content = rows[0]
        return sha256, None if path is None else Path(os.fsdecode(path)), content

    def _filter(self, guild_id: int | None) -> tuple[str, tuple[Any, ...]]:
        return ("WHERE guild_id = ?", (guild_id,)) if guild_id is not None else ("", ())

    def tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        where, args = self._filter(guild_id)
        for row in self.stream(f"SELECT guild_id, tribute_id, tribute FROM docs {where}", args):
            yield Tribute.model_validate_json(row[2])

    def documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        where, args = self._filter(guild_id)
        for row in self.stream(f"SELECT guild_id, tribute_id, doc FROM docs {where}", args):
            yield TributeBundle.model_validate_json(row[2])

    def items(self, guild_id: int | None) -> Iterator[tuple[int, str, list[str], list[str]]]:
        where, args = self._filter(guild_id)
        for row in self.stream(f"SELECT guild_id, tribute_id, doc FROM docs {where}", args):
            inventory = json.loads(row[2])["inventory"]
            yield row[0], row[1], inventory["items"], inventory["equipped"]

    def counts(self) -> Counts:
        return Counts.model_validate(self.meta["counts"])


def connect_read_only(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    uri = f"file:{path.absolute().as_posix()}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=check_same_thread)


def read_meta(path: Path) -> dict[str, Any] | None:
    """The index's metadata when the file is a complete index whose content check holds, else ``None``.

    An index another user owns is never trusted (a shared ``cache=`` directory: anyone who can
    read the legacy directory can compute its fingerprint).
    """
    if not owned_by_us(path):
        return None
    try:
        conn = connect_read_only(path)
    except sqlite3.Error:
        return None
    try:
        meta = {name: json.loads(value) for name, value in conn.execute("SELECT name, value FROM meta")}
        if meta.get("complete") is not True or meta.get("format") != FORMAT:
            return None
        rows = conn.execute("SELECT count(*) FROM docs").fetchone()[0]
        if rows != meta["counts"]["tributes"]:
            return None
        # the files it points to, wherever in the directory they are, are as they were
        # and so are the places an image was looked for and not taken from
        watched = (
            "SELECT path, state FROM blobs WHERE path IS NOT NULL UNION ALL SELECT path, state FROM probed"
        )
        for where, state in conn.execute(watched):
            if file_state(Path(os.fsdecode(where))) != state:
                return None
        return meta
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return None
    finally:
        conn.close()


def owned_by_us(path: Path) -> bool:
    """Whether this process's user owns ``path`` (always true where there are no owners)."""
    if not hasattr(os, "geteuid"):  # Windows
        return True
    try:
        return path.stat().st_uid == os.geteuid()
    except OSError:
        return False


def index_path(directory: Path, root: Path, options: object) -> Path:
    """The index file of legacy directory ``root`` read with ``options`` (one file per both)."""
    name = hashlib.sha256(f"{root.resolve()}\0{options!r}".encode("utf-8", "surrogatepass")).hexdigest()
    return directory / f"{name[:32]}.sqlite"


def writable_dir(directory: Path) -> str:
    """Why ``directory`` cannot hold indexes ('' when it can; created when missing)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create {directory} ({error.strerror or error})"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{directory} is not writable"
    return ""


def check_cache_option(value: str | None, where: str) -> None:
    if value is not None and not value.strip():
        raise ConfigError(f"{where}: option cache must be a directory or off")


#: An index not opened for this long is deleted when another one is built (seconds).
STALE_INDEX = 30 * 86400
#: A build file this old was left by a killed process (seconds).
STALE_BUILD = 86400


def prune(directory: Path, now: float) -> None:
    """Delete indexes of ``directory`` unused for :data:`STALE_INDEX` and abandoned build files."""
    with contextlib.suppress(OSError):
        for path in directory.glob("*.sqlite"):
            with contextlib.suppress(OSError):
                age = now - path.stat().st_mtime
                if age > (STALE_BUILD if path.name.startswith(".build-") else STALE_INDEX):
                    path.unlink()


def touch(path: Path) -> None:
    """Mark an index as used (what :func:`prune` goes by); never fails."""
    with contextlib.suppress(OSError):
        os.utime(path)
