"""Load a legacy THGBot data directory into the tributestore models.

Everything is read at once (legacy directories are small) and checked;
a malformed file raises :class:`LegacyFormatError` naming the file and the
key path, anything odd but recoverable becomes a warning naming the file and
key.  Decisions, all deterministic:

* **Tribute identity** is the normalised id (``check_tribute_id``), global
  across guilds, as in the bot's JSON files.  Every id seen anywhere
  (``thgbot.db`` tables, ``inventories.json``, ``prompt_info.json``) becomes
  a tribute; ids known only from JSON have no name.
* **Free-text keys** of ``inventories.json`` / ``prompt_info.json`` (``"Rue's
  gift"``, ``"Day 3: feast"``) that are no valid id even once normalised get
  a sanitised id: upper-cased, every character outside ``A-Z 0-9 _ -``
  becomes ``_``, runs of ``_`` collapsed, leading/trailing ``_``/``-``
  stripped, at most 64 characters; a warning names the file, key and id, and
  the key text becomes the tribute's name when it has none.  A sanitised id
  equal to another key's id merges like a case collision (below).  A key
  with nothing usable left (``"!!!"``) is a :class:`LegacyFormatError`.
* **Items**: an empty or white-space-only item text (JSON or the leftover
  ``inventory_items`` table) is skipped with a warning, the others renumbered
  as for gaps.  Capacities of the leftover ``inventories`` table
  (``capacity``, ``equipped_capacity``) are used for inventories taken from
  there; an unusable one warns and means the default.
* **Case collisions** (``d1f`` and ``D1F``): the entries are merged in this
  order: the key already in normalised form first, then the other keys in
  code-point order.  Items and equipped items are concatenated in that order
  (each entry's items sorted by their integer key), capacities are the
  maximum, and a warning names the keys.  Prompts merge the same way: the
  first non-empty message is kept and differing ones are appended after a
  blank line, images are concatenated; the first non-null channel is kept
  and a differing one is a warning naming both.
* **Guild of a tribute**: ``thgbot.db`` ``tributes.guild_id``; else the
  ``prompt_images/<guild_id>/`` folder holding its images (the one holding
  most of them when several, with a warning); else the only guild of the
  config file(s); else guild 0, with a warning.
* **JSON vs thgbot.db**: the JSON files are authoritative for inventories and
  prompt messages (they are what the bot read); the database fills what JSON
  lacks (names, users, timestamps, prompt channel, prompts, images and files
  only it knows, leftover inventories of tributes absent from JSON), and every
  disagreement is a warning.
* **Images**: a prompt's image references resolve (relative names against
  ``prompt_images/<guild_id>/``) to files owned by the tribute, kind
  ``prompt_image``, listed by name in ``Prompt.files``; a missing one keeps
  its name in ``Prompt.files`` and gives a warning.  Unreferenced files in a
  guild folder named ``<TRIBUTE>_<unix>.<ext>`` or ``SPOILER_<TRIBUTE> ...``
  attach to the tribute with the longest id followed by ``_``, space, ``.``
  or ``-``; the others give a warning.  A file's ``created_at`` comes from
  the unix time in its name (9-12 digits: seconds, or milliseconds when
  over 1e11 as for every legacy unix time; out of range keeps the other
  source).  Image names (references and files on disk) with white space
  around them are stripped, with a warning.  A ``prompt_images/`` entry that
  is not a folder named by a guild id (digits, at most 2**63-1) is not
  migrated, with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from tributestore.errors import InvalidInputError, LegacyFormatError
from tributestore.models import (
    DEFAULT_CAPACITY,
    DEFAULT_EQUIPPED_CAPACITY,
    MAX_SNOWFLAKE,
    FileInfo,
    Guild,
    Inventory,
    ItemText,
    Prompt,
    Tribute,
    check_file_name,
    check_tribute_id,
    describe_validation_error,
)
from tributestore.store import guess_media_type

from .legacy_db import DbRows, read_thgbot_db

TributeKey = tuple[int, str]
M = TypeVar("M", bound=BaseModel)

INVENTORIES = "inventories/inventories.json"
PROMPTS = "prompts/prompt_info.json"
CONFIGS = ("config/config.json", "config.json")
DATABASE = "thgbot.db"
IMAGES = "prompt_images"

_GUILD_FIELDS = ("log_channel_id", "category_id", "gm_id", "admin_id")
_INVENTORY_KEYS = frozenset({"capacity", "equipped_capacity", "items", "equipped"})
_PROMPT_KEYS = frozenset({"message", "channel", "image"})
_UNIX_NAME_RE = re.compile(r"_(\d{9,12})\.[^.]+$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ITEM = TypeAdapter(ItemText)
_MAX_CAPACITY = 1_000_000  # the models' Capacity bound


@dataclass
class LegacyFile:
    """A tribute-owned file of the legacy directory: its metadata and where its bytes are."""

    info: FileInfo
    path: Path


@dataclass
class LegacyData:
    """The whole legacy directory as models, plus the warnings met while reading it."""

    guilds: dict[int, Guild] = field(default_factory=dict)
    tributes: dict[TributeKey, Tribute] = field(default_factory=dict)
    inventories: dict[TributeKey, Inventory] = field(default_factory=dict)
    prompts: dict[TributeKey, Prompt] = field(default_factory=dict)
    files: dict[TributeKey, dict[str, LegacyFile]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Inventory:
    items: list[str]
    equipped: list[str]
    capacity: int | None
    equipped_capacity: int | None


@dataclass
class _ImageRef:
    raw: str
    rel: str  # the file naming it
    key: str  # its key path / table row there
    in_prompt: bool = True
    kind: str = "prompt_image"
    created_at: datetime | None = None

    @property
    def where(self) -> str:
        return f"{self.rel} {self.key}"


@dataclass
class _Prompt:
    message: str
    channel_id: int | None
    rel: str
    key: str
    created_at: datetime | None = None

    @property
    def where(self) -> str:
        return f"{self.rel} {self.key}"


def _jp(*keys: object) -> str:
    """A JSON key path: ``["d1f"]["items"]["x"]``, on one line whatever the keys hold."""
    return "".join(f"[{_printable(json.dumps(key, ensure_ascii=False))}]" for key in keys)


def _printable(text: str) -> str:
    """``text`` with every non-printable character (U+0085, U+2028, ...) as a ``\\u`` escape."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def read_legacy_dir(root: Path) -> LegacyData:
    """Read and check the legacy THGBot directory ``root``."""
    return _Reader(root).read()


class _Reader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.warnings: set[str] = set()
        self.guilds: dict[int, Guild] = {}
        self.config_guilds: set[int] = set()
        self.db_tributes: dict[str, dict[str, Any]] = {}
        self.db_guild: dict[str, int] = {}
        self.inventories: dict[str, _Inventory] = {}
        self.db_inventories: dict[str, _Inventory] = {}
        self.prompts: dict[str, _Prompt] = {}
        self.refs: dict[str, list[_ImageRef]] = {}
        self.ids: set[str] = set()
        self.key_names: dict[str, str] = {}  # sanitised id -> the free-text key it came from

    # ------------------------------------------------------------ messages
    def warn(self, where: str, message: str) -> None:
        self.warnings.add(f"{where}: {message}")

    def fail(self, rel: str, where: str, message: str) -> NoReturn:
        location = f"{self.root / rel}: {where}" if where else f"{self.root / rel}"
        raise LegacyFormatError(f"{location}: {message}")

    def build(self, model: type[M], data: dict[str, Any], rel: str, where: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as error:
            self.fail(rel, where, describe_validation_error(error, model.__name__))

    def tribute_id(self, raw: object, rel: str, where: str) -> str:
        try:
            return check_tribute_id(raw)
        except InvalidInputError as error:
            self.fail(rel, where, str(error))

    def key_id(self, rel: str, key: str) -> str:
        """The tribute id of a JSON key; free text (``"Rue's gift"``) gets a sanitised id."""
        try:
            return check_tribute_id(key)
        except InvalidInputError as error:
            tid = _sanitised_id(key)
            if not tid:
                self.fail(rel, _jp(key), f"{error}; nothing usable remains when sanitised")
        self.warn(
            f"{rel} {_jp(key)}",
            f"free-text key {key!r} migrated as tribute {tid} (the key kept as its name when it has none)",
        )
        if len(key) <= 2048 and "\x00" not in key:  # what a tribute name may hold
            self.key_names.setdefault(tid, key)
        return tid

    # ------------------------------------------------------------ values
    def snowflake(self, value: object, rel: str, where: str) -> int | None:
        """A Discord id given as int or decimal string; null, 0 and '' mean none."""
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            if not (text.isascii() and text.isdecimal()):
                self.fail(rel, where, f"must be a Discord id (digits), got {value!r}")
            if len(text.lstrip("0")) > len(str(MAX_SNOWFLAKE)):  # also keeps int() from refusing it
                self.fail(rel, where, f"Discord id out of range: a {len(text)}-digit number")
            value = int(text)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(rel, where, f"must be a Discord id (integer or digit string), got {value!r}")
        if not 0 <= value <= MAX_SNOWFLAKE:
            self.fail(rel, where, f"Discord id out of range: {value!r}")
        return value or None

    def timestamp(self, value: object, rel: str, where: str) -> datetime | None:
        """Text timestamp (naive = UTC) or unix seconds (milliseconds when huge)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            self.fail(rel, where, f"not a timestamp: {value!r}")
        number: float | None = None
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            text = value.strip()
            try:
                number = float(text)
            except ValueError:
                try:
                    parsed = datetime.fromisoformat(text)
                except ValueError:
                    self.fail(rel, where, f"not a timestamp: {value!r}")
                return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        else:
            self.fail(rel, where, f"not a timestamp: {value!r}")
        found = _unix_time(number)
        if found is None:
            self.fail(rel, where, f"unix time out of range: {value!r}")
        return found

    def optional_text(self, value: object, rel: str, where: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.fail(rel, where, f"must be text, got {type(value).__name__} {value!r}")

    def load_json(self, rel: str) -> object:
        path = self.root / rel
        try:
            raw = path.read_bytes()
        except OSError as error:
            self.fail(rel, "", f"cannot read ({error.strerror or error})")
        if not raw.strip():
            self.fail(rel, "", "empty file (expected a JSON object)")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            self.fail(rel, "", f"not UTF-8 JSON text (binary or corrupt data at byte {error.start})")
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_parse_int)
        except _DuplicateKeyError as error:
            self.fail(rel, "", f"duplicate key {error.args[0]!r} in one JSON object")
        except json.JSONDecodeError as error:
            self.fail(rel, "", f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}")
        except RecursionError:
            self.fail(rel, "", "invalid JSON: nested too deeply")

    def object_of(self, value: object, rel: str, where: str, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(rel, where, f"{what} must be a JSON object, got {_json_type(value)}")
        return value

    # ------------------------------------------------------------ steps
    def read(self) -> LegacyData:
        for rel in CONFIGS:
            if (self.root / rel).exists():
                self.read_config(rel)
        if (self.root / DATABASE).exists():
            self.read_db()
        if (self.root / INVENTORIES).exists():
            self.read_inventories()
        if (self.root / PROMPTS).exists():
            self.read_prompts()
        folders = self.scan_images()
        return self.assemble(folders)

    # config ---------------------------------------------------------------
    def read_config(self, rel: str) -> None:
        data = self.object_of(self.load_json(rel), rel, "", "the config")
        if not data:
            return
        per_guild = all(
            key.isascii() and key.isdecimal() and isinstance(value, dict) for key, value in data.items()
        )
        if per_guild:
            for key, value in data.items():
                gid = self.snowflake(key, rel, _jp(key)) if len(key) > 20 else int(key)
                self.config_guild(rel, gid or 0, value, (key,))
        elif "guild_id" in data:
            gid = self.snowflake(data["guild_id"], rel, _jp("guild_id"))
            if gid is None:
                self.fail(rel, _jp("guild_id"), "the flat (old) config names no guild")
            self.config_guild(rel, gid, {k: v for k, v in data.items() if k != "guild_id"}, ())
        else:
            self.fail(
                rel,
                "",
                'neither a per-guild config ({"<guild_id>": {...}}) nor the old flat one (with guild_id)',
            )

    def config_guild(self, rel: str, gid: int, settings: dict[str, Any], keys: tuple[str, ...]) -> None:
        values: dict[str, Any] = {"guild_id": gid}
        for name, value in settings.items():
            if name in _GUILD_FIELDS:
                values[name] = self.snowflake(value, rel, _jp(*keys, name))
            else:
                self.warn(f"{rel} {_jp(*keys, name)}", "unknown setting, not migrated")
        guild = self.build(Guild, values, rel, _jp(*keys) or "(flat config)")
        old = self.guilds.get(gid)
        if old is not None:  # a second config file: the first one read wins
            merged = old.model_dump()
            for name in _GUILD_FIELDS:
                new = getattr(guild, name)
                if merged[name] is None:
                    merged[name] = new
                elif new is not None and new != merged[name]:
                    self.warn(
                        f"{rel} {_jp(*keys, name)}",
                        f"{new} differs from {merged[name]} in the other config file, which is kept",
                    )
            guild = Guild.model_validate(merged)
        self.guilds[gid] = guild
        self.config_guilds.add(gid)

    # thgbot.db --------------------------------------------------------------
    def read_db(self) -> None:
        db: DbRows = read_thgbot_db(self.root / DATABASE, DATABASE)
        self.warnings.update(db.warnings)
        rel = DATABASE

        def where(table: str, number: int, column: str) -> str:
            return f"table {table} row {number} column {column}"

        for number, row in enumerate(db.rows("tributes"), start=1):
            tid = self.tribute_id(row.get("tribute_id"), rel, where("tributes", number, "tribute_id"))
            at = functools.partial(where, "tributes", number)
            fields = {
                "name": self.optional_text(row.get("tribute_name"), rel, at("tribute_name")),
                "user_id": self.snowflake(row.get("user_id"), rel, at("user_id")),
                "user_mention": self.optional_text(row.get("user_mention"), rel, at("user_mention")),
                "face_claim_url": self.optional_text(row.get("face_claim_url"), rel, at("face_claim_url")),
                "prompt_channel_id": self.snowflake(
                    row.get("prompt_channel_id"), rel, at("prompt_channel_id")
                ),
                "created_at": self.timestamp(row.get("created_at"), rel, at("created_at")),
            }
            gid = self.snowflake(row.get("guild_id"), rel, where("tributes", number, "guild_id"))
            if tid in self.db_tributes:
                self.warn(
                    f"{rel} table tributes row {number}",
                    f"tribute {row.get('tribute_id')!r} repeats tribute {tid} (ids are case-insensitive); "
                    "the first row is kept",
                )
                continue
            self.db_tributes[tid] = fields
            self.ids.add(tid)
            if gid is not None:
                self.db_guild[tid] = gid

        for number, row in enumerate(db.rows("prompts"), start=1):
            tid = self.tribute_id(row.get("tribute_id"), rel, where("prompts", number, "tribute_id"))
            message = self.optional_text(row.get("message"), rel, where("prompts", number, "message"))
            prompt = _Prompt(
                message=message or "",
                channel_id=self.snowflake(row.get("channel_id"), rel, where("prompts", number, "channel_id")),
                rel=rel,
                key=f"table prompts row {number}",
                created_at=self.timestamp(row.get("created_at"), rel, where("prompts", number, "created_at")),
            )
            if tid in self.prompts:
                self.warn(prompt.where, f"second prompt of tribute {tid}; the first row is kept")
                continue
            self.prompts[tid] = prompt
            self.ids.add(tid)

        for table, in_prompt, id_columns in (
            ("prompt_images", True, ("prompt_id", "tribute_id")),
            ("files", False, ("tribute_id",)),
        ):
            for number, row in enumerate(db.rows(table), start=1):
                column = next((c for c in id_columns if row.get(c) is not None), id_columns[0])
                tid = self.tribute_id(row.get(column), rel, where(table, number, column))
                path_column = "file_path" if row.get("file_path") else "file_name"
                raw = self.optional_text(row.get(path_column), rel, where(table, number, path_column))
                if not raw or not raw.strip():
                    self.warn(f"{rel} table {table} row {number}", "names no file; ignored")
                    continue
                kind = "prompt_image"
                if table == "files":
                    kind = _kind(row.get("file_type"))
                    if kind != _kind_text(row.get("file_type")):
                        self.warn(
                            f"{rel} table files row {number} column file_type",
                            f"{row.get('file_type')!r} is not a usable kind; using {kind!r}",
                        )
                self.refs.setdefault(tid, []).append(
                    _ImageRef(
                        raw=self.stripped_name(raw, f"{rel} table {table} row {number}"),
                        rel=rel,
                        key=f"table {table} row {number}",
                        in_prompt=in_prompt,
                        kind=kind,
                        created_at=self.timestamp(
                            row.get("created_at"), rel, where(table, number, "created_at")
                        ),
                    )
                )
                self.ids.add(tid)

        capacities: dict[str, tuple[int | None, int | None]] = {}
        for number, row in enumerate(db.rows("inventories"), start=1):
            tid = self.tribute_id(row.get("tribute_id"), rel, where("inventories", number, "tribute_id"))
            capacities[tid] = (
                self.db_capacity(row.get("capacity"), where("inventories", number, "capacity")),
                self.db_capacity(
                    row.get("equipped_capacity"), where("inventories", number, "equipped_capacity")
                ),
            )
        items: dict[str, list[tuple[int, str]]] = {}
        for number, row in enumerate(db.rows("inventory_items"), start=1):
            tid = self.tribute_id(row.get("tribute_id"), rel, where("inventory_items", number, "tribute_id"))
            name = row.get("item_name")
            if isinstance(name, str) and not name.strip():
                self.warn(f"{rel} {where('inventory_items', number, 'item_name')}", "empty item skipped")
                self.ids.add(tid)
                capacities.setdefault(tid, (None, None))
                continue
            text = self.item(name, rel, where("inventory_items", number, "item_name"))
            items.setdefault(tid, []).append((_int_or_none(row.get("item_number")) or 0, text))
        for tid in sorted(capacities.keys() | items.keys()):
            ordered = [text for _, text in sorted(items.get(tid, []), key=lambda pair: pair[0])]
            capacity, equipped_capacity = capacities.get(tid, (None, None))
            self.db_inventories[tid] = _Inventory(ordered, [], capacity, equipped_capacity)
            self.ids.add(tid)

    def db_capacity(self, value: object, where: str) -> int | None:
        """A capacity of the leftover database tables; an unusable one warns and means the default."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        number = _int_or_none(value)
        if number is None or not 0 <= number <= _MAX_CAPACITY:
            self.warn(f"{DATABASE} {where}", f"{value!r} is not a capacity; the default is used")
            return None
        return number

    def item(self, value: object, rel: str, where: str) -> str:
        if not isinstance(value, str):
            self.fail(rel, where, f"an item must be text, got {_json_type(value)} {value!r}")
        try:
            return _ITEM.validate_python(value)
        except ValidationError as error:
            self.fail(rel, where, describe_validation_error(error, "item"))

    def item_at(self, value: object, rel: str, key: str, slot: str, number: str) -> str:
        """:meth:`item`, naming the key path only on failure (a hot path: every legacy item)."""
        if isinstance(value, str):
            try:
                return _ITEM.validate_python(value)
            except ValidationError:
                pass
        return self.item(value, rel, _jp(key, slot, number))  # raises, naming the key path

    # inventories.json -------------------------------------------------------
    def read_inventories(self) -> None:
        rel = INVENTORIES
        data = self.object_of(self.load_json(rel), rel, "", "the inventories file")
        groups: dict[str, list[tuple[str, _Inventory]]] = {}
        for key, entry in data.items():
            try:  # the key path is spelled out only when not a plain id (a hot loop)
                tid = check_tribute_id(key)
            except InvalidInputError:
                tid = self.key_id(rel, key)
            groups.setdefault(tid, []).append((key, self.inventory(rel, key, entry)))
        for tid, entries in groups.items():
            entries.sort(key=lambda pair: (pair[0] != tid, pair[0]))
            if len(entries) > 1:
                keys = ", ".join(repr(key) for key, _ in entries)
                self.warn(
                    f"{rel} {_jp(entries[0][0])}",
                    f"keys {keys} are the same tribute {tid}: merged in that order "
                    f"({' + '.join(str(len(inv.items)) for _, inv in entries)} items, "
                    f"{' + '.join(str(len(inv.equipped)) for _, inv in entries)} equipped, "
                    "capacities the maximum)",
                )
            self.inventories[tid] = _Inventory(
                items=[text for _, inv in entries for text in inv.items],
                equipped=[text for _, inv in entries for text in inv.equipped],
                # each entry's effective capacity (the default when missing), the largest wins
                capacity=max(_or(inv.capacity, DEFAULT_CAPACITY) for _, inv in entries),
                equipped_capacity=max(
                    _or(inv.equipped_capacity, DEFAULT_EQUIPPED_CAPACITY) for _, inv in entries
                ),
            )
            self.ids.add(tid)

    def inventory(self, rel: str, key: str, entry: object) -> _Inventory:
        data = entry if isinstance(entry, dict) else self.object_of(entry, rel, _jp(key), "an inventory")
        for name in sorted(data.keys() - _INVENTORY_KEYS):
            self.warn(f"{rel} {_jp(key, name)}", "unknown inventory field, not migrated")
        capacities: list[int | None] = []
        for name in ("capacity", "equipped_capacity"):
            value = data.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                self.fail(rel, _jp(key, name), f"must be an integer, got {_json_type(value)} {value!r}")
            if value is not None and value < 0:
                self.fail(rel, _jp(key, name), f"must not be negative, got {value!r}")
            capacities.append(value)
        return _Inventory(
            items=self.numbered_items(rel, key, "items", data.get("items")),
            equipped=self.numbered_items(rel, key, "equipped", data.get("equipped")),
            capacity=capacities[0],
            equipped_capacity=capacities[1],
        )

    def numbered_items(self, rel: str, key: str, slot: str, value: object) -> list[str]:
        if value is None:
            return []
        entries = (
            value if isinstance(value, dict) else self.object_of(value, rel, _jp(key, slot), f"{slot!r}")
        )
        numbered: list[tuple[int, str, str]] = []
        for number, text in entries.items():
            if not (number.isascii() and number.isdecimal()):
                self.fail(rel, _jp(key, slot, number), 'item key must be a decimal number like "1"')
            if len(number) > 1000:  # int() refuses more than 4300 digits
                self.fail(rel, _jp(key, slot, number[:20] + "..."), f"item key has {len(number)} digits")
            if isinstance(text, str) and not text.strip():
                self.warn(f"{rel} {_jp(key, slot, number)}", "empty item skipped")
                continue
            numbered.append((int(number), number, self.item_at(text, rel, key, slot, number)))
        numbered.sort(key=lambda entry: (entry[0], entry[1]))
        if [entry[0] for entry in numbered] != list(range(1, len(numbered) + 1)):
            self.warn(
                f"{rel} {_jp(key, slot)}",
                f"item numbers {', '.join(entry[1] for entry in numbered)} renumbered 1..{len(numbered)}",
            )
        return [entry[2] for entry in numbered]

    # prompt_info.json -------------------------------------------------------
    def read_prompts(self) -> None:
        rel = PROMPTS
        data = self.object_of(self.load_json(rel), rel, "", "the prompts file")
        groups: dict[str, list[tuple[str, _Prompt, list[_ImageRef]]]] = {}
        for key, entry in data.items():
            tid = self.key_id(rel, key)
            prompt, refs = self.prompt(rel, key, entry)
            groups.setdefault(tid, []).append((key, prompt, refs))
        for tid, entries in groups.items():
            entries.sort(key=lambda entry: (entry[0] != tid, entry[0]))
            first = entries[0][1]
            if len(entries) > 1:
                keys = ", ".join(repr(entry[0]) for entry in entries)
                self.warn(
                    f"{rel} {_jp(entries[0][0])}",
                    f"keys {keys} are the same tribute {tid}: prompts merged in that order "
                    "(differing messages appended after a blank line, images concatenated)",
                )
                for _, other, _ in entries[1:]:
                    if other.message.strip() and other.message != first.message:
                        first.message = (
                            f"{first.message}\n\n{other.message}" if first.message.strip() else other.message
                        )
                    if first.channel_id is None:
                        first.channel_id = other.channel_id
                    elif other.channel_id is not None and other.channel_id != first.channel_id:
                        self.warn(
                            f"{other.where}{_jp('channel')}",
                            f"channel {other.channel_id} differs from channel {first.channel_id} "
                            f"of {first.where}, which is kept",
                        )
            self.merge_db_prompt(tid, first)
            self.prompts[tid] = first
            refs = [ref for entry in entries for ref in entry[2]]
            self.refs[tid] = refs + self.refs.get(tid, [])
            self.ids.add(tid)

    def merge_db_prompt(self, tid: str, prompt: _Prompt) -> None:
        old = self.prompts.get(tid)
        if old is None:
            return
        prompt.created_at = old.created_at
        if prompt.channel_id is None:
            prompt.channel_id = old.channel_id
        elif old.channel_id is not None and old.channel_id != prompt.channel_id:
            self.warn(
                old.where, f"channel {old.channel_id} differs from {prompt.where}; the JSON one is kept"
            )
        if old.message.strip() and old.message != prompt.message:
            self.warn(
                old.where,
                f"message differs from {prompt.where}; the JSON one is kept "
                f"(database message: {_short(old.message)})",
            )

    def prompt(self, rel: str, key: str, entry: object) -> tuple[_Prompt, list[_ImageRef]]:
        data = self.object_of(entry, rel, _jp(key), "a prompt")
        for name in sorted(data.keys() - _PROMPT_KEYS):
            self.warn(f"{rel} {_jp(key, name)}", "unknown prompt field, not migrated")
        message = data.get("message")
        if message is not None and not isinstance(message, str):
            self.fail(rel, _jp(key, "message"), f"must be text, got {_json_type(message)}")
        channel = self.snowflake(data.get("channel"), rel, _jp(key, "channel"))
        image = data.get("image")
        images: list[tuple[str, str]] = []
        if isinstance(image, str):
            images.append((image, _jp(key, "image")))
        elif isinstance(image, list):
            for index, name in enumerate(image):
                if not isinstance(name, str):
                    self.fail(rel, _jp(key, "image", index), f"must be a file name, got {_json_type(name)}")
                images.append((name, _jp(key, "image", index)))
        elif image is not None:
            self.fail(rel, _jp(key, "image"), f"must be a file name or a list, got {_json_type(image)}")
        refs: list[_ImageRef] = []
        for name, where in images:
            if not name.strip():
                self.warn(f"{rel} {where}", "empty image name ignored")
                continue
            refs.append(_ImageRef(raw=self.stripped_name(name, f"{rel} {where}"), rel=rel, key=where))
        prompt = _Prompt(message=message or "", channel_id=channel, rel=rel, key=_jp(key))
        return prompt, refs

    def stripped_name(self, name: str, where: str) -> str:
        """An image name without surrounding white space (which no file name may have)."""
        if name != name.strip():
            self.warn(where, f"image name {name!r} has white space around it; {name.strip()!r} used")
        return name.strip()

    # prompt_images/ ---------------------------------------------------------
    def scan_images(self) -> dict[int, list[Path]]:
        folders: dict[int, list[Path]] = {}
        base = self.root / IMAGES
        if not base.is_dir():
            return folders
        for child in sorted(base.iterdir()):
            rel = f"{IMAGES}/{child.name}"
            if not child.is_dir():
                self.warn(rel, "file outside a guild folder, not migrated")
            elif _guild_folder_id(child.name) is None:
                self.warn(rel, "folder name is not a guild id, not migrated")
            else:
                files = []
                root = self.root.resolve()
                for entry in sorted(child.iterdir()):
                    if entry.is_file() and _inside(entry, root):
                        files.append(entry)
                    elif entry.is_file():
                        self.warn(f"{rel}/{entry.name}", "links outside the data directory, not read")
                    else:
                        self.warn(f"{rel}/{entry.name}", "not a regular file, not migrated")
                folders[int(child.name)] = files  # a guild id (checked above)
        return folders

    def owner_by_name(self, name: str) -> str | None:
        """The tribute a ``<TRIBUTE>_<unix>.ext`` / ``SPOILER_<TRIBUTE> ...`` name belongs to."""
        text = name
        if text.upper().startswith("SPOILER_"):
            text = text[len("SPOILER_") :]
        text = "_".join(text.strip().upper().split(" "))
        # The longest known id followed by "_", "." or "-": look each such prefix up
        # (linear in the name, not in the number of tributes).
        for end in range(len(text) - 1, 0, -1):
            if text[end] in "_.-" and text[:end] in self.ids:
                return text[:end]
        return None

    def resolve(self, ref: _ImageRef, gid: int) -> Path | None:
        """The existing file a reference names, or ``None`` (with a warning)."""
        folder = self.root / IMAGES / str(gid)
        path = PurePath(ref.raw)
        if ".." in path.parts:
            self.warn(ref.where, f"image path {ref.raw!r} leaves the data directory; not migrated")
            return None
        if path.is_absolute():
            candidates = [Path(path), folder / path.name]
        elif len(path.parts) > 1:
            candidates = [self.root / path, folder / path, folder / path.name]
        else:
            candidates = [folder / path]
        root = self.root.resolve()
        for number, candidate in enumerate(candidates):
            try:
                # Never read outside the data directory (an absolute path or a symlink
                # could name /etc/passwd); the bot's own absolute paths point inside it.
                found = candidate.resolve().is_relative_to(root) and candidate.is_file()
            except (OSError, ValueError, RuntimeError):  # too long a name, a symlink loop
                found = False
            if found:
                if number:
                    self.warn(
                        ref.where,
                        f"image {ref.raw!r} not found there; using {_rel(candidate, self.root)}",
                    )
                return candidate
        looked = _rel(candidates[0], self.root)
        if not _inside(candidates[0], root) and _exists(candidates[0]):
            self.warn(
                ref.where,
                f"image {ref.raw!r} is outside the data directory and not read; "
                f"no {_rel(candidates[-1], self.root)} either; name kept in the prompt",
            )
            return None
        self.warn(ref.where, f"image {ref.raw!r} missing (looked for {looked}); name kept in the prompt")
        return None

    # assemble ---------------------------------------------------------------
    def assign_guilds(self, folders: dict[int, list[Path]]) -> dict[str, int]:
        by_name: dict[str, Counter[int]] = {}
        for gid, paths in folders.items():
            names = {path.name for path in paths}
            for path in paths:
                owner = self.owner_by_name(path.name)
                if owner is not None:
                    by_name.setdefault(owner, Counter())[gid] += 1
            for tid, refs in self.refs.items():
                for ref in refs:
                    pure = PurePath(ref.raw)
                    if not pure.is_absolute() and len(pure.parts) == 1 and ref.raw in names:
                        by_name.setdefault(tid, Counter())[gid] += 1
        only = next(iter(self.config_guilds)) if len(self.config_guilds) == 1 else None
        assigned: dict[str, int] = {}
        for tid in sorted(self.ids):
            if tid in self.db_guild:
                assigned[tid] = self.db_guild[tid]
                continue
            seen = by_name.get(tid)
            if seen:
                ranked = sorted(seen.items(), key=lambda pair: (-pair[1], pair[0]))
                assigned[tid] = ranked[0][0]
                if len(ranked) > 1:
                    self.warn(
                        f"{IMAGES} tribute {tid}",
                        f"images of tribute {tid} are in several guild folders "
                        f"({', '.join(str(g) for g, _ in ranked)}); assigned to guild {ranked[0][0]}",
                    )
            elif only is not None:
                assigned[tid] = only
            else:
                assigned[tid] = 0
                self.warn(
                    f"{self.source_of(tid)}",
                    f"no guild known for tribute {tid} (not in thgbot.db, no images, "
                    f"{len(self.config_guilds)} guilds in the config); assigned to guild 0",
                )
        return assigned

    def source_of(self, tid: str) -> str:
        if tid in self.inventories:
            return f"{INVENTORIES} tribute {tid}"
        if tid in self.prompts:
            return self.prompts[tid].where
        return f"{DATABASE} tribute {tid}"

    def assemble(self, folders: dict[int, list[Path]]) -> LegacyData:
        data = LegacyData(guilds=dict(self.guilds))
        assigned = self.assign_guilds(folders)
        claimed: set[Path] = set()
        prompt_files: dict[str, list[str]] = {}

        def attach(tid: str, path: Path, kind: str, created: datetime | None, where: str) -> str:
            key = (assigned[tid], tid)
            name = path.name.strip()
            if name != path.name:
                self.warn(_rel(path, self.root), f"file name has white space around it; stored as {name!r}")
            try:
                check_file_name(name)
            except InvalidInputError as error:
                raise LegacyFormatError(f"{self.root / _rel(path, self.root)}: {error}") from None
            owned = data.files.setdefault(key, {})
            if name in owned:
                if owned[name].path.resolve() != path.resolve():
                    self.warn(where, f"a different file named {name!r} is already attached; not migrated")
                return name
            content = path.read_bytes()
            match = _UNIX_NAME_RE.search(name)
            if match:  # 9-12 digits: unix seconds, or milliseconds when huge (as in timestamp())
                created = _unix_time(float(match.group(1))) or created
            info = self.build(
                FileInfo,
                {
                    "guild_id": key[0],
                    "tribute_id": tid,
                    "name": name,
                    "kind": kind,
                    "media_type": guess_media_type(name),
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "created_at": created,
                },
                _rel(path, self.root),
                "",
            )
            owned[name] = LegacyFile(info=info, path=path)
            claimed.add(path.resolve())
            return name

        for tid in sorted(self.refs):
            for ref in self.refs[tid]:
                found = self.resolve(ref, assigned[tid])
                if found is not None:
                    name = attach(tid, found, ref.kind, ref.created_at, ref.where)
                else:
                    name = PurePath(ref.raw).name
                    try:
                        check_file_name(name)
                    except InvalidInputError as error:
                        self.fail(ref.rel, ref.key, str(error))
                if ref.in_prompt:
                    names = prompt_files.setdefault(tid, [])
                    if name not in names:
                        names.append(name)

        for gid, paths in sorted(folders.items()):
            data.guilds.setdefault(gid, Guild(guild_id=gid))
            for path in paths:
                if path.resolve() in claimed:
                    continue
                where = _rel(path, self.root)
                owner = self.owner_by_name(path.name)
                if owner is None:
                    self.warn(where, "matches no tribute (not referenced, name has no known tribute id)")
                    continue
                if assigned[owner] != gid:
                    self.warn(
                        where,
                        f"named for tribute {owner} of guild {assigned[owner]}; attached to it anyway",
                    )
                attach(owner, path, "prompt_image", None, where)

        for tid in sorted(self.ids):
            gid = assigned[tid]
            key = (gid, tid)
            data.guilds.setdefault(gid, Guild(guild_id=gid))
            fields = self.db_tributes.get(tid, {})
            if fields.get("name") is None and tid in self.key_names:
                fields = {**fields, "name": self.key_names[tid]}
            where = f"tribute {tid}"
            data.tributes[key] = self.build(
                Tribute, {**fields, "guild_id": gid, "tribute_id": tid}, DATABASE, where
            )
            inventory = self.inventories.get(tid)
            leftover = self.db_inventories.get(tid)
            if inventory is None and leftover is not None:
                inventory = leftover
                if leftover.items:
                    self.warn(
                        f"{DATABASE} table inventory_items tribute {tid}",
                        "inventory known only from the leftover database tables; migrated from there",
                    )
            elif inventory is not None and leftover is not None and leftover.items != inventory.items:
                self.warn(
                    f"{DATABASE} table inventory_items tribute {tid}",
                    f"leftover database inventory differs from {INVENTORIES}; the JSON one is kept",
                )
            inventory = inventory or _Inventory([], [], None, None)
            data.inventories[key] = self.build(
                Inventory,
                {
                    "guild_id": gid,
                    "tribute_id": tid,
                    "capacity": DEFAULT_CAPACITY if inventory.capacity is None else inventory.capacity,
                    "equipped_capacity": DEFAULT_EQUIPPED_CAPACITY
                    if inventory.equipped_capacity is None
                    else inventory.equipped_capacity,
                    "items": inventory.items,
                    "equipped": inventory.equipped,
                },
                INVENTORIES,
                _jp(tid),
            )
            prompt = self.prompts.get(tid)
            if prompt is not None:
                data.prompts[key] = self.build(
                    Prompt,
                    {
                        "guild_id": gid,
                        "tribute_id": tid,
                        "message": prompt.message,
                        "channel_id": prompt.channel_id,
                        "files": prompt_files.get(tid, []),
                        "created_at": prompt.created_at,
                    },
                    prompt.rel,
                    prompt.key,
                )
            elif prompt_files.get(tid):
                self.warn(
                    f"{DATABASE} table prompt_images tribute {tid}",
                    "prompt images of a tribute without a prompt; attached as files only",
                )
        data.warnings = sorted(self.warnings)
        return data


class _HugeInt(float):
    """A JSON integer too long for ``int()`` (over 4300 digits): kept so an error names its key."""

    digits = 0

    def __repr__(self) -> str:
        return f"<a {self.digits}-digit number>"


def _parse_int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        huge = _HugeInt("-inf" if text.startswith("-") else "inf")
        huge.digits = len(text.lstrip("-"))
        return huge


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        _HugeInt: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _sanitised_id(key: str) -> str:
    """A free-text key as a tribute id: upper-case, other characters ``_``, at most 64 (maybe '')."""
    text = re.sub(r"[^A-Z0-9_-]", "_", key.upper())
    text = re.sub(r"_+", "_", text).strip("_-")
    return text[:64].rstrip("_-")


def _guild_folder_id(name: str) -> int | None:
    """The guild id a ``prompt_images/<guild_id>`` folder name spells, or ``None``."""
    if not (name.isascii() and name.isdecimal()) or len(name.lstrip("0")) > len(str(MAX_SNOWFLAKE)):
        return None
    value = int(name)
    return value if value <= MAX_SNOWFLAKE else None


def _unix_time(number: float) -> datetime | None:
    """Unix seconds (milliseconds when huge) as UTC, ``None`` when out of range."""
    if abs(number) > 1e11:  # milliseconds
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 1000:
        return int(value)
    return None


def _kind_text(value: object) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", str(value).strip().lower()).strip("_") if value else ""


def _kind(value: object) -> str:
    text = _kind_text(value)
    return text if _KIND_RE.match(text) else "attachment"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= 40 else flat[:37] + "...")


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, ValueError, RuntimeError):
        return False


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
