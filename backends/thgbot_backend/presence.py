"""An independent check of a migration: is everything the raw legacy files hold in the destination?

This deliberately shares nothing with :mod:`.reader` (nor with :mod:`.store`): no merging, no
guild inference, no repair.  It streams the raw files (``ijson`` over the
JSON, plain ``sqlite3`` over ``thgbot.db``) and the destination's documents
(in key order, through its public methods), writes both into a private
scratch SQLite file, and compares them there in bulk (bounded memory, no
random read of the destination per record):

* every key of ``inventories/inventories.json`` and ``prompts/prompt_info.json``
  and every ``tribute_id`` of the ``thgbot.db`` ``tributes`` and ``prompts``
  tables: a destination tribute (any guild) of the id :func:`bot_id` gives it;
  an absent one is one line naming where its key first is, the file, key and
  id (``tribute D3M missing in the destination``), and its records are not
  listed one by one;
* every item and equipped item of ``inventories/inventories.json``: present
  (as often as the raw entry lists it) among the items, respectively equipped
  items, of the destination tributes whose id is the key's (:func:`bot_id`) in
  any guild (a number item as its text, as Python's ``json`` gives it: the
  reader stores that);
* every non-blank prompt message of ``prompts/prompt_info.json`` and of the
  ``thgbot.db`` ``prompts`` table (its committed state, as SQLite reads it: a
  leftover ``-journal`` rolled back, a ``-wal`` read, both in a private copy of
  the three files, so the directory is never written): contained in that
  tribute's prompt or in one of its files (where a losing version is kept);
* every file under ``prompt_images/`` (a symlink to a file inside the directory
  included, by its link name: the bot opened it; one leading outside is
  skipped, as the reader skips it): a destination file of its name (white
  space around it removed, or tagged ``<stem> (...)<ext>`` as two files of one
  tribute named alike are) whose bytes, read from the destination now, have
  the raw file's sha256: neither the digest the destination records nor the
  same bytes under another name count.

A key's tribute id is the one docs/legacy-format.md documents: upper-cased, spaces as
``_``, and a free-text or over-long key sanitised (over 64 characters: cut, with a
digest; nothing usable left: ``KEY-`` and a digest; :func:`bot_id`).  The rule is
written out here, not imported from the reader, so a reader that stores a key
elsewhere is caught (tests check the two rules give the same tributes for every key
form: case, spaces, free text, long keys, nothing usable, white space, a NUL, a lone
surrogate, database text that is not UTF-8).  Items and prompts are looked for only
in the tribute of their key: a text found in some other tribute would pass a record
migrated to the wrong tribute, and keys of one id are one tribute (its losing
versions kept in its files).  Items of a key whose tribute is absent were once passed
when their text was an item "anywhere" in the destination; nothing legitimate needs
that (the reader stores every key's records under that id, a tribute deleted during
the transition window is tombstoned and skipped) and generic items ("Bow",
"Water") are always somewhere, so whole lost tributes passed: the fallback is gone.

A text not found where expected is looked for in the tribute's files (a
text the store could not hold as it was, cut or with U+FFFD, is kept in a
file).  Records of a tribute the destination has tombstoned (deleted during
the transition window) are skipped, their tribute not expected.  Each miss is
one line naming file and key; past the first :data:`MAX_REPORTED` misses are
counted, not listed: a last line ``... and N more missing in the destination
(...)`` says how many (the CLI counts it as N differences: the total is true).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any

import ijson

from tributestore.errors import StorageError, TributeStoreError
from tributestore.models import TributeBundle
from tributestore.store import TributeStore

INVENTORIES = Path("inventories") / "inventories.json"
PROMPTS = Path("prompts") / "prompt_info.json"
DATABASE = Path("thgbot.db")
IMAGES = Path("prompt_images")
ORIGIN_PREFIX = "thgbot-legacy:"
#: The tribute the reader gives a guild folder's unreferenced files (docs/legacy-format.md).
ORPHANS = "LEGACY_FILES"
MAX_REPORTED = 200
_BATCH = 5000

_SCHEMA = """
CREATE TABLE held_tribute (tid TEXT NOT NULL, guild INTEGER NOT NULL);
CREATE TABLE held_item (tid TEXT NOT NULL, slot INTEGER NOT NULL, text BLOB NOT NULL);
CREATE TABLE held_prompt (tid TEXT NOT NULL, message BLOB NOT NULL);
CREATE TABLE held_file (guild INTEGER NOT NULL, tid TEXT NOT NULL, name TEXT NOT NULL,
                        sha256 TEXT NOT NULL);
CREATE TABLE raw_key (ord INTEGER PRIMARY KEY, tid TEXT NOT NULL, place TEXT NOT NULL);
CREATE TABLE raw_item (seq INTEGER NOT NULL, tid TEXT NOT NULL, key TEXT NOT NULL,
                       slot INTEGER NOT NULL, text BLOB NOT NULL, count INTEGER NOT NULL);
CREATE TABLE raw_prompt (seq INTEGER NOT NULL, tid TEXT NOT NULL, message BLOB NOT NULL,
                         place TEXT NOT NULL);
CREATE TABLE raw_image (seq INTEGER NOT NULL, place TEXT NOT NULL, name TEXT NOT NULL,
                        sha256 TEXT NOT NULL);
"""
_INDEXES = """
CREATE INDEX held_tribute_tid ON held_tribute (tid);
CREATE INDEX held_item_key ON held_item (tid, slot, text);
CREATE INDEX held_item_text ON held_item (slot, text);
CREATE INDEX held_prompt_tid ON held_prompt (tid);
CREATE INDEX held_file_sha ON held_file (sha256);
"""
_SLOTS = ("items", "equipped")
_TRIBUTE_ID = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,63}")


def bot_id(key: str) -> str:
    """The tribute id a raw key is stored under, by the rule docs/legacy-format.md states.

    Upper-cased with spaces as ``_`` (the bot's own normalisation); a key that is then no
    valid id (free text such as ``"Rue's gift"``, over 64 characters) is sanitised: each
    character outside ``A-Z 0-9 _ -`` becomes ``_``, runs of ``_`` one, ``_``/``-`` stripped
    at both ends; over 64 characters, the first 51, ``-`` and 12 hex digits of the sanitised
    text's sha256; nothing left, ``KEY-`` and 12 hex digits of the key's sha256.
    """
    tid = "_".join(key.strip().upper().split(" "))
    if _TRIBUTE_ID.fullmatch(tid):
        return tid
    tid = re.sub(r"_+", "_", re.sub(r"[^A-Z0-9_-]", "_", key.upper())).strip("_-")
    if not tid:  # nothing usable: KEY- and the key's own digest
        return "KEY-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12].upper()
    if len(tid) > 64:  # cut, with the digest of the whole: keys differing past the cut differ
        return tid[:51].rstrip("_-") + "-" + hashlib.sha256(tid.encode()).hexdigest()[:12].upper()
    return tid


def _blob(text: str) -> bytes:
    """``text`` as UTF-8 bytes, lone surrogates included (bytes compare like the strings)."""
    return text.encode("utf-8", "surrogatepass")


def _text(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogatepass")


def _undecoded(data: bytes) -> str:
    """Database text as stored: bytes that are not UTF-8 as lone surrogates (never an error)."""
    return data.decode("utf-8", "surrogateescape")


class PresenceCheck:
    """Walks the raw legacy directory ``root`` against ``destination``, in a scratch database."""

    def __init__(self, root: Path, destination: TributeStore, scratch: sqlite3.Connection) -> None:
        self.root = root
        self.destination = destination
        self.db = scratch
        self.missing: list[str] = []
        #: Misses past the first MAX_REPORTED: counted, not listed.
        self.unlisted = 0
        #: Names of images the raw files tie to a tribute the destination deleted (its tombstone):
        #: not expected in the destination.
        self.deleted_images: set[str] = set()
        #: Whether any guild's LEGACY_FILES was deleted (``None``: not looked up yet).
        self._orphans_deleted: bool | None = None
        self.tombstones = destination.tombstone_count() > 0
        #: (tribute id, where) of each raw key not yet written to the scratch database.
        self._keys: list[tuple[str, str]] = []
        #: The destination's rows not yet written to the scratch database.
        self._held: tuple[list[Any], list[Any], list[Any], list[Any]] = ([], [], [], [])
        self.db.executescript(_SCHEMA)
        self.db.execute("BEGIN")  # one transaction for the loads (executescript commits)

    def run(self) -> list[str]:
        """Read the destination's documents, then :meth:`finish`."""
        for bundle in self.destination.iter_bundles():
            self.hold(bundle)
        return self.finish()

    def finish(self) -> list[str]:
        """Read the raw files and list what of them the documents given to :meth:`hold` lack."""
        self.flush()
        with raw_errors(self.root):
            self.load_inventories()
            self.load_prompts()
            self.load_images()
            self.flush_keys()
            self.db.execute("COMMIT")
            self.db.executescript(_INDEXES)
            self.check_tributes()
            self.check_items()
            self.check_prompts()
            self.check_images()
        if self.unlisted:
            self.missing.append(
                f"... and {self.unlisted} more missing in the destination (the first {MAX_REPORTED} "
                f"listed, {MAX_REPORTED + self.unlisted} in all)"
            )
        return self.missing

    def miss(self, line: str) -> None:
        """One miss: listed while fewer than MAX_REPORTED are, else counted (the last line says how many)."""
        if len(self.missing) < MAX_REPORTED:
            self.missing.append(line)
        else:
            self.unlisted += 1

    def deleted(self, key: str) -> bool:
        return self.tombstones and self.destination.has_origin_tombstone(ORIGIN_PREFIX + bot_id(key))

    def key(self, key: str, place: str) -> None:
        """A raw key (or ``thgbot.db`` id) found at ``place``: its tribute must be in the destination."""
        self._keys.append((bot_id(key), place))
        if len(self._keys) >= _BATCH:
            self.flush_keys()

    def flush_keys(self) -> None:
        self.db.executemany("INSERT INTO raw_key (tid, place) VALUES (?, ?)", self._keys)
        self._keys.clear()

    def insert(self, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        batch: list[tuple[Any, ...]] = []
        statement = ""
        for row in rows:
            if not statement:
                statement = f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})"
            batch.append(row)
            if len(batch) >= _BATCH:
                self.db.executemany(statement, batch)
                batch.clear()
        if batch:
            self.db.executemany(statement, batch)

    # ------------------------------------------------------------ the destination
    def hold(self, bundle: TributeBundle) -> None:
        """One document of the destination (each once, whatever the order)."""
        tributes, items, prompts, files = self._held
        tid = bundle.tribute.tribute_id
        tributes.append((tid, bundle.tribute.guild_id))
        items.extend((tid, 0, _blob(text)) for text in bundle.inventory.items)
        items.extend((tid, 1, _blob(text)) for text in bundle.inventory.equipped)
        if bundle.prompt is not None:
            prompts.append((tid, _blob(bundle.prompt.message)))
        files.extend((info.guild_id, tid, info.name, info.sha256) for info in bundle.files)
        if len(items) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        tributes, items, prompts, files = self._held
        with raw_errors(self.root):
            self.db.executemany("INSERT INTO held_tribute VALUES (?, ?)", tributes)
            self.db.executemany("INSERT INTO held_item VALUES (?, ?, ?)", items)
            self.db.executemany("INSERT INTO held_prompt VALUES (?, ?)", prompts)
            self.db.executemany("INSERT INTO held_file VALUES (?, ?, ?, ?)", files)
        for rows in (tributes, items, prompts, files):
            rows.clear()

    # ------------------------------------------------------------ the raw files
    def load_inventories(self) -> None:
        def rows() -> Iterator[tuple[int, str, str, int, bytes, int]]:
            for seq, (key, entry) in enumerate(_stream_object(self.root, INVENTORIES)):
                if not isinstance(entry, dict) or self.deleted(key):
                    continue
                self.key(key, f"{INVENTORIES} [{_shown_key(key)}]")
                for slot, field in enumerate(_SLOTS):
                    for text, count in Counter(_texts(entry.get(field))).items():
                        yield seq, bot_id(key), _shown_key(key), slot, _blob(text), count

        self.insert("raw_item", rows())

    def load_prompts(self) -> None:
        def rows() -> Iterator[tuple[int, str, bytes, str]]:
            seq = 0
            for key, entry in _stream_object(self.root, PROMPTS):
                if not isinstance(entry, dict):
                    continue
                if self.deleted(key):  # nor are its images expected
                    self.deleted_images.update(_image_names(entry.get("image")))
                    continue
                where = f"{PROMPTS} [{_shown_key(key)}]"
                self.key(key, where)
                if isinstance(entry.get("message"), str):
                    if entry["message"].strip():
                        yield seq, bot_id(key), _blob(entry["message"]), where
                    seq += 1
            path = self.root / DATABASE
            if not path.is_file():
                return
            with _private_copy(path) as conn:
                for raw_key, reference in _db_file_references(conn):
                    if isinstance(raw_key, str) and self.deleted(raw_key):
                        self.deleted_images.update(_image_names(reference))
                for table, row, raw_key, message in _db_rows(conn):
                    if not isinstance(raw_key, str) or self.deleted(raw_key):
                        continue
                    where = f"{DATABASE} table {table} row {row}"
                    self.key(raw_key, where)
                    if isinstance(message, str):
                        if message.strip():
                            yield seq, bot_id(raw_key), _blob(message), where
                        seq += 1

        self.insert("raw_prompt", rows())

    def load_images(self) -> None:
        top = self.root / IMAGES
        if not top.is_dir():
            return

        def rows() -> Iterator[tuple[int, str, str, str]]:
            for seq, path in enumerate(_files_under(top, self.root)):
                if self.deleted(_named_for(path.name)):  # <ID>_<time>.png of a tribute deleted meanwhile
                    continue
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                yield seq, str(path.relative_to(self.root)), path.name, digest

        self.insert("raw_image", rows())

    # ------------------------------------------------------------ comparisons
    def guilds(self, tid: str) -> list[int]:
        return [row[0] for row in self.db.execute("SELECT guild FROM held_tribute WHERE tid = ?", (tid,))]

    def check_tributes(self) -> None:
        """Each tribute id a raw key maps to: a tribute of the destination (any guild).  One line
        per absent tribute, naming where its key first appears; its records are not listed."""
        # SQLite: the bare column ``place`` comes from the row of min(ord), the key's first place.
        lost = self.db.execute(
            """
            SELECT tid, place, min(ord), count(*) FROM raw_key r
             WHERE NOT EXISTS (SELECT 1 FROM held_tribute t WHERE t.tid = r.tid)
             GROUP BY tid ORDER BY min(ord)
            """
        )
        for tid, place, _, places in lost:
            also = f" (its key also in {places - 1} other place(s) of the raw files)" if places > 1 else ""
            self.miss(f"{place}: tribute {tid} missing in the destination{also}")

    def check_items(self) -> None:
        # Each raw (key, slot, text) of a tribute the destination has, held fewer times than
        # listed, in raw file order (a tribute it lacks is one line of check_tributes).
        shortfalls = self.db.execute(
            """
            SELECT r.seq, r.tid, r.key, r.slot, r.text, r.count,
                   (SELECT count(*) FROM held_item h
                     WHERE h.tid = r.tid AND h.slot = r.slot AND h.text = r.text) AS held
              FROM raw_item r
             WHERE held < r.count AND EXISTS (SELECT 1 FROM held_tribute t WHERE t.tid = r.tid)
             ORDER BY r.seq, r.slot, r.text
            """
        )
        for _, tid, key, slot, blob, count, held in shortfalls:
            text = _text(blob)
            where = f"{INVENTORIES} [{key}][{json.dumps(_SLOTS[slot])}]"
            if not any(self.text_in_files(guild, tid, text) for guild in self.guilds(tid)):
                self.miss(f"{where}: item {_short(text)} missing in the destination ({held} of {count})")

    def check_prompts(self) -> None:
        """Each raw prompt text: in its tribute's prompt, or in one of its files (a losing version
        kept) provided some raw version of that tribute's prompt is in the prompt itself (one of
        them won: a replaced prompt is not passed because a kept version holds the text)."""
        rows = self.db.execute(
            "SELECT r.seq, r.tid, r.message, r.place, h.message FROM raw_prompt r "
            "LEFT JOIN held_prompt h ON h.tid = r.tid ORDER BY r.tid, r.seq"
        )
        for tid, group in groupby(rows, key=lambda row: row[1]):
            versions: dict[int, tuple[bytes, str, bool]] = {}
            for seq, _, message, place, held in group:
                shown = held is not None and any(form in held for form in _stored_forms(message))
                earlier = versions.get(seq)
                versions[seq] = (message, place, shown or (earlier is not None and earlier[2]))
            won = any(shown for _, _, shown in versions.values())
            for message, place, shown in versions.values():
                if not shown:
                    self.prompt_missing(tid, message, place, won)

    def prompt_missing(self, tid: str, message: bytes, place: str, won: bool) -> None:
        text = _text(message)
        guilds = self.guilds(tid)
        if not guilds:
            return  # the tribute itself is missing: one line of check_tributes
        if won and any(self.text_in_files(guild, tid, text) for guild in guilds):
            return  # a losing version, kept as a file of the tribute
        why = "" if won else " (the destination's prompt holds none of this tribute's raw prompts)"
        self.miss(f"{place}: prompt text {_short(text)} missing in the destination{why}")

    def text_in_files(self, guild_id: int, tribute_id: str, text: str) -> bool:
        """Whether a file of the tribute holds ``text``, as it is or as a JSON string."""
        forms = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
        for info in self.destination.list_files(guild_id, tribute_id):
            if info.size > 64 * 1024 * 1024:
                continue
            content = self.destination.read_file(guild_id, tribute_id, info.name).decode("utf-8", "replace")
            if any(form in content for form in forms):
                return True
        return False

    def check_images(self) -> None:
        """Each raw image: a destination file of its name whose bytes, read now, are the raw ones.

        The digests the destination records are only where to look: a file whose stored bytes
        were damaged, or the same bytes kept only under another name (another image), do not count.
        """
        rows = self.db.execute(
            "SELECT r.seq, r.place, r.name, r.sha256, h.guild, h.tid, h.name FROM raw_image r "
            "LEFT JOIN held_file h ON h.sha256 = r.sha256 ORDER BY r.seq"
        )
        read: dict[tuple[int, str, str], str] = {}  # each destination file's bytes hashed once
        for _, group in groupby(rows, key=lambda row: row[0]):
            candidates = list(group)
            _, place, raw_name, digest = candidates[0][:4]
            named = [row[4:] for row in candidates if row[4] is not None and _kept_as(row[6], raw_name)]
            damaged = []
            for guild, tid, name in named:
                key = (guild, tid, name)
                if key not in read:
                    read[key] = self.actual_digest(guild, tid, name)
                if read[key] == digest:
                    break
                found = read[key] if read[key].startswith("unreadable") else f"sha256 {read[key][:12]}"
                damaged.append(f"{name!r} of tribute {tid} ({found}, expected {digest[:12]})")
            else:
                if not named and self.deleted_with_owner(place, raw_name):
                    continue
                if damaged:
                    self.miss(f"{place}: the destination's copy holds other bytes: {'; '.join(damaged[:3])}")
                elif len(candidates) > 1 or candidates[0][4] is not None:
                    others = ", ".join(f"{row[6]!r} of tribute {row[5]}" for row in candidates[:3])
                    self.miss(
                        f"{place}: file {raw_name!r} missing in the destination "
                        f"(its bytes are there only under other names: {others})"
                    )
                else:
                    self.miss(f"{place}: file bytes (sha256 {digest[:12]}) missing in the destination")

    def deleted_with_owner(self, place: str, name: str) -> bool:
        """Whether a raw image missing in the destination went with a tribute deleted during the
        transition window: one whose raw prompt (JSON ``image`` or a ``thgbot.db`` row) names it,
        or the ``LEGACY_FILES`` tribute (unreferenced files) of its guild folder (of any guild for
        a file at the top of ``prompt_images/``)."""
        if not self.tombstones:
            return False
        if name in self.deleted_images or name.strip() in self.deleted_images:
            return True
        parts = Path(place).parts
        if len(parts) > 2 and parts[1].isdecimal():
            return self.destination.is_tombstoned(int(parts[1]), ORPHANS)
        if self._orphans_deleted is None:  # looked up once, for every top-level image missing
            tombstones = self.destination.list_tombstones() or []
            self._orphans_deleted = any(tid == ORPHANS for _, tid, _ in tombstones)
        return self._orphans_deleted

    def actual_digest(self, guild_id: int, tribute_id: str, name: str) -> str:
        """The sha256 of a destination file's bytes as read now, or what reading them failed with."""
        try:
            content = self.destination.read_file(guild_id, tribute_id, name)
        except TributeStoreError as error:
            return f"unreadable: {error}"
        return hashlib.sha256(content).hexdigest()


def check_presence(root: Path, destination: TributeStore) -> list[str]:
    """Every record of the raw legacy directory ``root`` missing in ``destination`` (empty: all there)."""
    with presence_check(root, destination) as check:
        return check.run()


@contextmanager
def presence_check(root: Path, destination: TributeStore) -> Iterator[PresenceCheck]:
    """A :class:`PresenceCheck` of ``root`` against ``destination`` in a scratch database that
    lives as long as the block: give it the destination's documents (:meth:`~PresenceCheck.hold`)
    and ask what is missing (:meth:`~PresenceCheck.finish`)."""
    with tempfile.TemporaryDirectory(prefix="tributestore-presence-") as scratch:
        with raw_errors(root):
            conn = sqlite3.connect(Path(scratch) / "presence.db", isolation_level=None)
        try:
            with raw_errors(root):
                conn.execute("PRAGMA journal_mode = OFF")
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute("PRAGMA cache_size = -16000")
                check = PresenceCheck(root, destination, conn)
            yield check  # the caller's own errors pass through untranslated
        finally:
            conn.close()


@contextmanager
def raw_errors(root: Path) -> Iterator[None]:
    """The check's errors (reading the raw files, its scratch database) as one :class:`StorageError`."""
    try:
        yield
    except (OSError, sqlite3.Error, ijson.JSONError) as error:
        first = " ".join(str(error).split("\n", 1)[0].split()) or type(error).__name__
        raise StorageError(
            f"independent check of {root}: cannot read the raw legacy files: {first}"
        ) from None


def _stream_object(root: Path, rel: Path) -> Iterator[tuple[str, Any]]:
    """The top-level (key, value) pairs of the JSON object file ``root / rel``, streamed;
    nothing when absent.

    Numbers come as ``int`` (any size: with ``use_float`` the C backend refuses one beyond
    64 bits) or ``Decimal``.  ijson's fast C backend turns an escaped lone surrogate
    (``\\ud800``) into ``?``; a file holding such an escape is parsed with its exact
    pure-Python backend instead.  A parse error names the file and the entry it is in.
    """
    path = root / rel
    if not path.is_file():
        return
    backend = ijson.get_backend("python") if _has_surrogate_escape(path) else ijson
    key: str | None = None
    with path.open("rb") as handle:
        if handle.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:  # the bot's reader skips one too
            handle.seek(0)
        try:
            for key, value in backend.kvitems(handle, ""):
                yield key, value
        except (ijson.JSONError, ValueError) as error:
            first = " ".join(str(error).split("\n", 1)[0].split()) or type(error).__name__
            where = "its first entry" if key is None else f"the entry after [{_shown_key(key)}]"
            raise ijson.JSONError(f"{rel.as_posix()}, {where}: {first}") from None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_surrogate_escape(path: Path) -> bool:
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            if _SURROGATE_ESCAPE.search(tail + chunk):
                return True
            tail = chunk[-5:]
    return False


def _texts(value: object) -> Iterator[str]:
    """The items of a raw ``{"1": "text", ...}`` mapping (or list) as the reader stores them:
    non-blank strings as they are, a number as the text Python's ``json`` gives it
    (``12345678901234567890123``, ``1.5``, ``100000.0`` for ``1E5``)."""
    values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for text in values:
        if isinstance(text, str) and text.strip():
            yield text
        elif isinstance(text, int) and not isinstance(text, bool):
            yield str(text)
        elif isinstance(text, Decimal) and math.isfinite(float(text)):
            yield str(float(text))


@contextmanager
def _private_copy(path: Path) -> Iterator[sqlite3.Connection]:
    """``thgbot.db`` as SQLite (and so the bot) reads it: committed only.

    The file and its ``-journal`` / ``-wal`` are copied into a private directory and opened
    there, so SQLite rolls a leftover hot journal back, or reads what the WAL holds, in the
    copy: the legacy directory itself is never opened by SQLite, never written.  Text that is
    not UTF-8 comes as written (its bad bytes as lone surrogates), never refused.
    """
    with tempfile.TemporaryDirectory(prefix="tributestore-presence-db-") as scratch:
        copy = Path(scratch) / DATABASE.name
        shutil.copyfile(path, copy)
        for suffix in ("-journal", "-wal"):
            if Path(f"{path}{suffix}").is_file():
                shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
        conn = sqlite3.connect(copy)
        conn.text_factory = _undecoded
        try:
            yield conn
        finally:
            conn.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def _db_rows(conn: sqlite3.Connection) -> Iterator[tuple[str, int, object, object]]:
    """The ``tributes`` rows (table, row number, tribute id, ``None``), then the ``prompts`` rows
    (table, rowid, tribute id, message), of a :func:`_private_copy` of ``thgbot.db``."""
    tables = _tables(conn)
    if "tributes" in tables and "tribute_id" in _columns(conn, "tributes"):
        # numbered as the reader numbers them: from 1, in rowid order (a table without
        # rowids in its own order)
        try:
            rows = conn.execute("SELECT tribute_id FROM tributes ORDER BY rowid")
        except sqlite3.OperationalError:
            rows = conn.execute("SELECT tribute_id FROM tributes")
        for number, (tid,) in enumerate(rows, 1):
            yield "tributes", number, tid, None
    if "prompts" not in tables:
        return
    for rowid, tid, message in conn.execute("SELECT rowid, tribute_id, message FROM prompts ORDER BY rowid"):
        yield "prompts", rowid, tid, message


def _files_under(top: Path, root: Path) -> Iterator[Path]:
    """The files under ``top`` the bot's ``open()`` read: regular files, and symlinks to a file
    inside the data directory ``root`` (by their link name).  A symlink leading outside it,
    dangling or in a loop is skipped (the reader does not read it either, with a warning);
    symlinked folders are not entered."""
    real_root = root.resolve()
    for directory, dirs, names in os.walk(top):
        dirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling, a loop
                    continue
                if target.is_relative_to(real_root) and target.is_file():
                    yield path
            elif path.is_file():
                yield path


def _kept_as(held: str, raw: str) -> bool:
    """Whether a destination file name is a raw image's: the same (white space around it
    removed, as no file name may have it), the same with a ``" (...)"`` tag before its
    extension (two files of one tribute named alike), or any name when the raw one is not
    valid text (the copy had to replace characters of it)."""
    name = raw.strip()
    if held == name:
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    if not held.endswith(")" + ext):
        return False
    # A tag makes room for itself in a 255-character name by cutting the stem.
    return held.startswith(stem + " (") or (len(name) > 200 and held.startswith(stem[:64]))


def _stored_forms(message: bytes) -> set[bytes]:
    """A raw text as the destination may hold it: as it is, and with what no store holds (NUL, a
    lone surrogate: text that was not UTF-8) replaced by U+FFFD."""
    text = _text(message)
    replaced = "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return {message, replaced.encode("utf-8")}


def _image_names(value: object) -> set[str]:
    """The file names an ``image`` value (a name or path, or a list of them) refers to."""
    values = value if isinstance(value, list) else [value]
    return {re.split(r"[/\\]", item)[-1].strip() for item in values if isinstance(item, str) and item.strip()}


def _db_file_references(conn: sqlite3.Connection) -> Iterator[tuple[object, object]]:
    """(tribute id, file path) of the ``prompt_images`` and ``files`` rows of a
    :func:`_private_copy` of ``thgbot.db``."""
    tables = _tables(conn)
    for table, ids in (("prompt_images", ("prompt_id", "tribute_id")), ("files", ("tribute_id",))):
        if table not in tables:
            continue
        columns = _columns(conn, table)
        id_column = next((c for c in ids if c in columns), None)
        paths = [c for c in ("file_path", "file_name") if c in columns]
        if id_column is None or not paths:
            continue
        for tid, *found in conn.execute(f'SELECT "{id_column}", {", ".join(paths)} FROM "{table}"'):
            yield tid, next((p for p in found if p), None)


def _named_for(name: str) -> str:
    """The tribute key a file name starts with, by the bot's naming (``[SPOILER_]<ID>_<time>.png``)."""
    stem = name.removeprefix("SPOILER_")
    return re.split(r"[_ .]", stem, maxsplit=1)[0]


def _shown_key(key: str) -> str:
    """A raw JSON key as the file spells it, quoted; a lone surrogate (from a ``"\\ud800"`` escape)
    as that escape: text SQLite and a terminal take."""
    return json.dumps(key, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def _short(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    # a lone surrogate (text that was not UTF-8) shown as its escape, never written raw
    return json.dumps(shown, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")
