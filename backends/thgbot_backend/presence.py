"""An independent check of a migration: is everything the raw legacy files hold in the destination?

This deliberately shares nothing with :mod:`.reader` (nor with :mod:`.store`): no merging, no
guild inference, no repair.  It streams the raw files (``ijson`` over the
JSON, plain ``sqlite3`` over ``thgbot.db``) and, for every legacy record,
asks the destination through its public methods whether the text is there:

* every item and equipped item of ``inventories/inventories.json``: present
  (as often as the raw entry lists it) among the items, respectively equipped
  items, of the destination tributes whose id is the key upper-cased with
  spaces as ``_`` (the bot's own normalisation) in any guild; a key no
  tribute has is looked up with the destination's item search;
* every non-blank prompt message of ``prompts/prompt_info.json`` and of the
  ``thgbot.db`` ``prompts`` table: contained in that tribute's prompt or in
  one of its files (where a losing version is kept);
* every file under ``prompt_images/``: its bytes (sha256) among the
  destination's files.

Records of a tribute the destination has tombstoned (deleted during the
transition window) are skipped.  Each miss is one line naming file and key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from tributestore.errors import StorageError
from tributestore.models import FileInfo
from tributestore.store import TributeStore

INVENTORIES = Path("inventories") / "inventories.json"
PROMPTS = Path("prompts") / "prompt_info.json"
DATABASE = Path("thgbot.db")
IMAGES = Path("prompt_images")
ORIGIN_PREFIX = "thgbot-legacy:"
MAX_REPORTED = 200


def bot_id(key: str) -> str:
    """The bot's own normalisation of a tribute key."""
    return key.strip().upper().replace(" ", "_")


class PresenceCheck:
    """Walks the raw legacy directory ``root`` against ``destination``."""

    def __init__(self, root: Path, destination: TributeStore) -> None:
        self.root = root
        self.destination = destination
        self.missing: list[str] = []
        #: tribute id -> guilds holding it in the destination (ids only: small).
        self.guilds_of: dict[str, list[int]] = {}
        for tribute in destination.iter_tributes():
            self.guilds_of.setdefault(tribute.tribute_id, []).append(tribute.guild_id)

    def run(self) -> list[str]:
        self.check_inventories()
        self.check_json_prompts()
        self.check_db_prompts()
        self.check_images()
        return self.missing

    def miss(self, line: str) -> None:
        if len(self.missing) < MAX_REPORTED:
            self.missing.append(line)

    def deleted(self, key: str) -> bool:
        return self.destination.has_origin_tombstone(ORIGIN_PREFIX + bot_id(key))

    # ------------------------------------------------------------ items
    def check_inventories(self) -> None:
        for key, entry in _stream_object(self.root / INVENTORIES):
            if not isinstance(entry, dict) or self.deleted(key):
                continue
            for slot, field in (("items", "items"), ("equipped", "equipped")):
                wanted = Counter(_texts(entry.get(field)))
                if wanted:
                    self.check_items(key, slot, wanted)

    def check_items(self, key: str, slot: str, wanted: Counter[str]) -> None:
        where = f"{INVENTORIES} [{json.dumps(key, ensure_ascii=False)}][{json.dumps(slot)}]"
        guilds = self.guilds_of.get(bot_id(key))
        if guilds:
            held: Counter[str] = Counter()
            for guild_id in guilds:
                inventory = self.destination.get_inventory(guild_id, bot_id(key))
                held.update(inventory.items if slot == "items" else inventory.equipped)
            for text, count in sorted(wanted.items()):
                # A text the store could not hold as it was (cut, U+FFFD) is kept in a file.
                if held[text] < count and not any(self.text_in_files(g, bot_id(key), text) for g in guilds):
                    self.miss(
                        f"{where}: item {_short(text)} missing in the destination ({held[text]} of {count})"
                    )
            return
        for text in sorted(wanted):
            hits = self.destination.search_items(text) if text.strip() else []
            if not any(hit.item == text and hit.slot == slot for hit in hits):
                self.miss(
                    f"{where}: item {_short(text)} missing in the destination (no tribute {bot_id(key)})"
                )

    # ------------------------------------------------------------ prompts
    def check_json_prompts(self) -> None:
        for key, entry in _stream_object(self.root / PROMPTS):
            if isinstance(entry, dict) and isinstance(entry.get("message"), str):
                self.check_text(key, entry["message"], f"{PROMPTS} [{json.dumps(key, ensure_ascii=False)}]")

    def check_db_prompts(self) -> None:
        path = self.root / DATABASE
        if not path.is_file():
            return
        for rowid, key, message in _db_prompts(path):
            if isinstance(key, str) and isinstance(message, str):
                self.check_text(key, message, f"{DATABASE} table prompts row {rowid}")

    def check_text(self, key: str, message: str, where: str) -> None:
        if not message.strip() or self.deleted(key):
            return
        for guild_id in self.guilds_of.get(bot_id(key), []):
            if self.text_held(guild_id, bot_id(key), message):
                return
        self.miss(f"{where}: prompt text {_short(message)} missing in the destination")

    def text_held(self, guild_id: int, tribute_id: str, message: str) -> bool:
        bundle = self.destination.export_tribute(guild_id, tribute_id)
        if bundle.prompt is not None and message in bundle.prompt.message:
            return True
        return self.text_in_files(guild_id, tribute_id, message, bundle.files)

    def text_in_files(
        self, guild_id: int, tribute_id: str, text: str, files: list[FileInfo] | None = None
    ) -> bool:
        """Whether a file of the tribute (``files``, else listed here) holds ``text``, as it is
        or as a JSON string."""
        forms = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
        if files is None:
            files = self.destination.list_files(guild_id, tribute_id)
        for info in files:
            if info.size > 64 * 1024 * 1024:
                continue
            content = self.destination.read_file(guild_id, tribute_id, info.name).decode("utf-8", "replace")
            if any(form in content for form in forms):
                return True
        return False

    # ------------------------------------------------------------ images
    def check_images(self) -> None:
        top = self.root / IMAGES
        if not top.is_dir():
            return
        held = {info.sha256 for bundle in self.destination.iter_bundles() for info in bundle.files}
        for path in _files_under(top):
            if self.deleted(_named_for(path.name)):  # <ID>_<time>.png of a tribute deleted meanwhile
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in held:
                where = path.relative_to(self.root)
                self.miss(f"{where}: file bytes (sha256 {digest[:12]}) missing in the destination")


def check_presence(root: Path, destination: TributeStore) -> list[str]:
    """Every record of the raw legacy directory ``root`` missing in ``destination`` (empty: all there)."""
    try:
        return PresenceCheck(root, destination).run()
    except (OSError, sqlite3.Error, ijson.JSONError) as error:
        raise StorageError(
            f"independent check of {root}: cannot read the raw legacy files: {error}"
        ) from None


def _stream_object(path: Path) -> Iterator[tuple[str, Any]]:
    """The top-level (key, value) pairs of a JSON object file, streamed; nothing when absent.

    ijson's fast C backend turns an escaped lone surrogate (``\\ud800``) into ``?``; a
    file holding such an escape is parsed with its exact pure-Python backend instead.
    """
    if not path.is_file():
        return
    backend = ijson.get_backend("python") if _has_surrogate_escape(path) else ijson
    with path.open("rb") as handle:
        yield from backend.kvitems(handle, "", use_float=True)


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
    """The strings of a raw ``{"1": "text", ...}`` mapping (or list)."""
    values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for text in values:
        if isinstance(text, str) and text.strip():
            yield text


def _db_prompts(path: Path) -> Iterator[tuple[int, object, object]]:
    uri = f"file:{path.absolute().as_posix()}?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "prompts" not in tables:
            return
        yield from conn.execute("SELECT rowid, tribute_id, message FROM prompts ORDER BY rowid")
    finally:
        conn.close()


def _files_under(top: Path) -> Iterator[Path]:
    for directory, dirs, names in os.walk(top):
        dirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _named_for(name: str) -> str:
    """The tribute key a file name starts with, by the bot's naming (``[SPOILER_]<ID>_<time>.png``)."""
    stem = name.removeprefix("SPOILER_")
    return re.split(r"[_ .]", stem, maxsplit=1)[0]


def _short(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return json.dumps(shown, ensure_ascii=False)
