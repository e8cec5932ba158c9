"""Load a legacy THGBot data directory into the tributestore models.

Everything is read and checked in one go, in bounded memory: the big JSON
files are streamed (:mod:`.jsonstream`: a first pass over the whole file finds
the keys that are one tribute, a second settles each entry), ``thgbot.db`` is
read row by row, per-tribute data waits in a scratch SQLite file, and each
assembled, validated document goes to the index (:mod:`.index`) the backend
reads from.  The decisions below do not depend on that.  A malformed file
raises :class:`LegacyFormatError` naming the file and the key path.
Anything odd but recoverable is a warning naming the file and key; the
warnings an operator must act on are also *problems* (``check`` lists them
and exits 1; ``stats`` counts them).  The rule behind every decision:
**nothing the bot could have shown a user disappears; where two sources
disagree, the one the bot would have shown wins and the other is kept, as a
file of that tribute, and reported.**  Decisions, all deterministic:

* **Eras.**  The bot's layout changed over time (see ``docs/legacy-format.md``):
  single-guild (images as ``prompt_images/<attachment name>``, a flat
  ``config.json``), multi-guild (``prompt_images/<guild_id>/``, per-guild
  ``config/config.json``), then tribute-centric (``thgbot.db``).  The era is
  inferred from what the directory holds: a ``thgbot.db`` with a ``prompts``
  table is the tribute-centric era, whose bot read prompts from the database
  first and fell back to ``prompt_info.json``; before it, the JSON files were
  the only source.  Inventories were read from ``inventories.json`` in every era.
* **Kept versions.**  A losing version becomes a file of the tribute, kind
  ``legacy_conflict``, named ``legacy-conflict-<sha256 prefix>.json``: a JSON
  document naming its source file and key, the source that won, why, and the
  losing value as it was.  Text the store cannot hold (NUL, lone surrogates,
  e.g. from ``"\\ud800"`` escapes or non-UTF-8 database text) is stored with
  each such character replaced by U+FFFD, and the original is kept the same
  way, kind ``legacy_original``.  Both are problems.
* **Tribute identity** is the normalised id (``check_tribute_id``), global
  across guilds, as in the bot's JSON files.  Every id seen anywhere
  (``thgbot.db`` tables, ``inventories.json``, ``prompt_info.json``) becomes
  a tribute; ids known only from JSON have no name.
* **Free-text keys** of ``inventories.json`` / ``prompt_info.json`` (``"Rue's
  gift"``) that are no valid id even once normalised get a sanitised id:
  upper-cased, every character outside ``A-Z 0-9 _ -`` becomes ``_``, runs of
  ``_`` collapsed, leading/trailing ``_``/``-`` stripped; a longer text than
  64 characters is cut to 51 and ends in ``-`` and 12 hex digits of its
  sha256 (two keys differing past the cut stay two tributes); a warning names
  the file, key and id, and the key text becomes
  the tribute's name when it has none.  A sanitised id equal to another key's
  id merges like a case collision.  A key with nothing usable left (``"!!!"``,
  ``"🎉"``) gets the id ``KEY-`` and 12 hex digits of its sha256.  Ids in
  ``thgbot.db`` (the bot's ``/create-tribute`` accepted ``D1.F``) follow the
  same rules.
* **Items**: a ``null``, empty or white-space-only item (JSON or the leftover
  ``inventory_items`` table) is skipped with a warning, the others renumbered
  as for gaps; a number is migrated as its text (what the bot displayed),
  with a warning.  An item longer than ``MAX_ITEM_LENGTH`` (6,000, the most a
  slash-command option carries) follows the ``oversize`` option: ``cut``
  (default) stores its first characters ending in ``" [...]"`` and keeps the
  whole text in a ``legacy_original`` file (a problem); ``fail`` refuses the
  directory.  Prompt messages have no length limit.
* **Inventory case collisions** (``d1f`` and ``D1F``, all read by some bot
  version): merged in this order: the key already in normalised form first,
  then the other keys in code-point order; items and equipped items are
  concatenated, capacities are the maximum, and a warning names the keys.
* **Prompt case collisions**: every bot version looked prompts up by the
  upper-cased id, so the key already in normalised form wins (else the first
  in code-point order); each other key whose message or channel differs is
  kept as a ``legacy_conflict`` file; images of all keys are kept; a missing
  channel is filled from the other keys.
* **thgbot.db vs JSON**: a ``thgbot.db`` prompt wins over the JSON one (the
  tribute-centric bot read it first); a JSON prompt whose message or channel
  differs is kept as a ``legacy_conflict`` file, and its images stay attached.
  Several ``prompts`` rows of one tribute (the bot's older many-per-tribute
  schema, or ids differing in case): the row whose id is already upper-case
  wins, then the latest row (what the bot's own schema migration kept); the
  others are kept where they differ.  ``tributes`` rows differing only in
  the case of their id: the upper-case one wins (the bot looked ids up
  upper-cased), else the first; its empty fields are filled from the others,
  and a row that differs is kept as a ``legacy_conflict`` file.  Inventories:
  ``inventories.json`` wins (every bot version read it); a leftover
  ``inventory_items`` inventory that differs (items JSON lacks, another
  capacity than the migrated one) is kept as a ``legacy_conflict`` file, one
  of a tribute absent from JSON is migrated.  The database fills
  what JSON lacks (names, users, timestamps, prompts, images, files).
* **Guild of a tribute**, first match wins: the ``guild_map`` option (a
  TOML/JSON file ``TRIBUTE = guild_id``); ``thgbot.db`` ``tributes.guild_id``;
  the ``prompt_images/<guild_id>/`` folder holding its images (the one holding
  most of them, with a warning, when several); the ``guild`` option; the only
  guild of the config file(s); else guild 0, a problem naming the options
  that fix it (``stats`` shows ``unassigned_tributes``).
* **Config**: ``config/config.json`` then ``config.json``; the first file read
  wins a setting both hold.  A file may be per guild (``{"<guild_id>": {...}}``),
  flat (the single-guild era: ``{"guild_id": ..., "log_channel_id": ...}``), or
  both at once (the multi-guild bot added per-guild keys to the flat object it
  loaded): per-guild entries win, since the multi-guild bot read only those;
  a flat value that differs is reported with both values; a flat value for a
  guild with no per-guild entry is migrated.
* **Images**: a reference resolves, in order: a relative name against
  ``prompt_images/<guild_id>/`` of its tribute, then against ``prompt_images/``
  itself (the single-guild era saved uploads there under their attachment
  name); an absolute path naming ``.../prompt_images/<guild_id>/<name>`` or
  ``.../prompt_images/<name>`` against that folder of the data directory (never
  the inferred guild's); other absolute paths by their name.  Files resolve to
  files of the tribute, kind ``prompt_image``, listed in ``Prompt.files``; a
  missing one keeps its name in ``Prompt.files`` with a warning, or, where no
  prompt lists it (a ``files`` row, a prompt image of a tribute without a
  prompt), is kept as a ``legacy_missing`` file of the tribute; a reference
  with no usable file name (``..``, ``sub/..``, NUL, over 255 characters) or
  leaving the data directory (``../x``) is one warning, never an error.  Every
  regular file under ``prompt_images/`` is migrated: a file not referenced
  attaches to the tribute its name starts with (``<TRIBUTE>_``, ``<TRIBUTE>.``,
  ``<TRIBUTE>-``, ``<TRIBUTE> `` after an optional ``SPOILER_``, longest id
  first); the rest go to the tribute ``LEGACY_FILES`` of their guild folder
  (else of the default guild), kind ``legacy_unreferenced``.  Two different
  files of one tribute with the same name (same name in two guild folders)
  are both kept, the second as ``<stem> (<folder>)<ext>``; identical bytes are
  kept once.  A symlink to a file inside the directory is a file of its own
  name (the bot sent it under that name).  A ``created_at`` comes from the unix time in a file's name (9-12
  digits: seconds, or milliseconds when over 1e11).  Names with white space
  around them are stripped, with a warning.
* **Boundary**: nothing outside the data directory is read.  A top-level file
  (``inventories.json``, ``prompt_info.json``, a config, ``thgbot.db`` and its
  ``-wal``/``-journal``) that is a symlink leading outside it is refused
  (:class:`LegacyFormatError`); an image leading outside is skipped with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import sqlite3
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from tributestore.errors import ConfigError, InvalidInputError, LegacyFormatError
from tributestore.models import (
    DEFAULT_CAPACITY,
    DEFAULT_EQUIPPED_CAPACITY,
    MAX_ITEM_LENGTH,
    MAX_SHORT_TEXT_LENGTH,
    MAX_SNOWFLAKE,
    FileInfo,
    Guild,
    Inventory,
    Prompt,
    Tribute,
    check_file_name,
    check_tribute_id,
    describe_validation_error,
)
from tributestore.store import guess_media_type
from tributestore.urls import StoreURL

from .index import IndexWriter, Spool, Walk
from .jsonstream import DuplicateKeyError, StreamError, iter_object
from .legacy_db import DbRows, open_thgbot_db

TributeKey = tuple[int, str]
M = TypeVar("M", bound=BaseModel)
Oversize = Literal["cut", "fail"]

INVENTORIES = "inventories/inventories.json"
PROMPTS = "prompts/prompt_info.json"
CONFIGS = ("config/config.json", "config.json")
DATABASE = "thgbot.db"
IMAGES = "prompt_images"
#: The tribute that receives files under ``prompt_images/`` that no tribute owns.
ORPHANS = "LEGACY_FILES"
OVERSIZE_POLICIES: tuple[Oversize, ...] = ("cut", "fail")
CUT_MARK = " [...]"

_GUILD_FIELDS = ("log_channel_id", "category_id", "gm_id", "admin_id")
_INVENTORY_KEYS = frozenset({"capacity", "equipped_capacity", "items", "equipped"})
_PROMPT_KEYS = frozenset({"message", "channel", "image"})
_UNIX_NAME_RE = re.compile(r"_(\d{9,12})\.[^.]+$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
_MAX_CAPACITY = 1_000_000  # the models' Capacity bound


@dataclass(frozen=True)
class LegacyOptions:
    """How to read a legacy directory: the URL options ``guild``, ``guild_map``, ``oversize``."""

    #: The guild of tributes whose guild neither thgbot.db nor their images tell.
    guild: int | None = None
    #: tribute id -> guild id, from the ``guild_map`` file (it wins over every inference).
    guild_map: Mapping[str, int] = field(default_factory=dict)
    #: Where ``guild_map`` came from (for messages).
    guild_map_source: str = "guild_map"
    #: What to do with an item longer than the store holds.
    oversize: Oversize = "cut"


@dataclass
class LegacyFile:
    """A tribute-owned file: its metadata and where its bytes are (a path, or ``content``)."""

    info: FileInfo
    path: Path | None
    content: bytes | None = None


@dataclass
class LegacyResult:
    """What reading a legacy directory found besides its documents (those went to the index)."""

    #: Every oddity, sorted; each names the file and key.
    warnings: list[str] = field(default_factory=list)
    #: The warnings the operator must act on (a subset of ``warnings``).
    problems: list[str] = field(default_factory=list)
    #: Tribute ids placed in guild 0 because no guild is known for them.
    unassigned: list[str] = field(default_factory=list)
    #: How many ``legacy_conflict`` / ``legacy_original`` files were made.
    kept_versions: int = 0
    #: How many unreferenced files went to a ``LEGACY_FILES`` tribute.
    unreferenced_files: int = 0


@dataclass
class _Assembled:
    """What :meth:`_Reader.assemble` holds besides the documents: guilds and files (few)."""

    guilds: dict[int, Guild] = field(default_factory=dict)
    files: dict[TributeKey, dict[str, LegacyFile]] = field(default_factory=dict)
    unassigned: list[str] = field(default_factory=list)
    kept_versions: int = 0
    unreferenced_files: int = 0

    def infos(self, key: TributeKey) -> list[FileInfo]:
        """The metadata of the tribute's files, by name."""
        owned = self.files.get(key, {})
        return [owned[name].info for name in sorted(owned)]


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
    raw: Any = None  # the entry / row as read, for a kept version

    @property
    def where(self) -> str:
        return f"{self.rel} {self.key}"


#: A thgbot.db ``tributes`` row: (row number, id as written, fields, guild, the raw row).
_DbTributeRow = tuple[int, str, dict[str, Any], int | None, dict[str, Any]]


@dataclass
class _Kept:
    """A version kept as a file of a tribute (kind ``legacy_conflict`` or ``legacy_original``)."""

    kind: str
    name: str
    content: bytes


def _jp(*keys: object) -> str:
    """A JSON key path: ``["d1f"]["items"]["x"]``, on one line whatever the keys hold."""
    return "".join(f"[{_printable(json.dumps(key, ensure_ascii=False))}]" for key in keys)


def _printable(text: str) -> str:
    """``text`` with every non-printable character (U+0085, U+2028, ...) as a ``\\u`` escape."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.duplicate_key = key  # the stream reader names the entry holding it


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def storable(text: str) -> bool:
    """Whether every store can hold ``text`` (no NUL, no lone surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def replace_unstorable(text: str) -> str:
    """``text`` with each NUL and lone surrogate replaced by U+FFFD."""
    return _UNSTORABLE_RE.sub("\ufffd", text)


#: The URL options of a legacy directory (``thgbot:///config?guild=123&guild_map=map.toml``);
#: ``cache`` (where the index goes, see :mod:`.index`) is read by :mod:`.store`.
URL_OPTIONS = ("guild", "guild_map", "oversize", "cache")


def check_url(url: StoreURL) -> None:
    """The URL's path and options (the guild map read) as opening reads them, nothing opened."""
    url.local_path()
    options_from_url(url)


def options_from_url(url: StoreURL) -> LegacyOptions:
    """The :class:`LegacyOptions` a store URL asks for; :class:`ConfigError` naming a bad one."""
    guild = url.options.get("guild")
    gid = None if guild is None else _guild_option(guild, f"store URL {url.display!r}: option guild")
    oversize = url.options.get("oversize", "cut")
    if oversize not in OVERSIZE_POLICIES:
        raise ConfigError(
            f"store URL {url.display!r}: option oversize must be cut or fail (got {oversize[:40]!r})"
        )
    mapping: dict[str, int] = {}
    source = "guild_map"
    if url.options.get("guild_map"):
        path = Path(url.options["guild_map"])
        path = path if path.is_absolute() else url.base_dir / path
        source = str(path)
        mapping = read_guild_map(path)
    policy: Oversize = "fail" if oversize == "fail" else "cut"
    return LegacyOptions(guild=gid, guild_map=mapping, guild_map_source=source, oversize=policy)


def read_guild_map(path: Path) -> dict[str, int]:
    """A guild map file: TOML (``D1F = 1395951775160340551``) or JSON (``{"D1F": ...}``).

    Keys are tribute ids (or legacy keys, normalised like them); values guild ids,
    as integers or digit strings.  A TOML file may put them in a ``[guilds]`` table.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"guild map {path}: cannot read it ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8-sig")
        data: object = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError and TOMLDecodeError
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"guild map {path}: not valid {kind} ({error})") from None
    if isinstance(data, dict) and set(data) == {"guilds"} and isinstance(data["guilds"], dict):
        data = data["guilds"]
    if not isinstance(data, dict):
        raise ConfigError(f"guild map {path}: must map tribute ids to guild ids")
    mapping: dict[str, int] = {}
    for key, value in data.items():
        try:
            tid = check_tribute_id(key)
        except InvalidInputError:
            tid = _sanitised_id(str(key))
            if not tid:
                raise ConfigError(f"guild map {path}: {key!r} is not a tribute id") from None
        mapping[tid] = _guild_option(value, f"guild map {path}: {key}")
    return mapping


def _guild_option(value: object, where: str) -> int:
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdecimal()) or len(text) > 19 or not 0 < int(text) <= MAX_SNOWFLAKE:
        raise ConfigError(f"{where} must be a Discord guild id (digits), got {value!r}")
    return int(text)


def read_legacy_dir(
    root: Path, options: LegacyOptions, writer: IndexWriter, scratch: sqlite3.Connection
) -> LegacyResult:
    """Read and check the legacy THGBot directory ``root``; its documents go to ``writer``.

    ``scratch`` is a private SQLite file for what is too big to hold in memory (per-tribute
    rows, inventories and prompts until they are assembled).
    """
    return _Reader(root, options, writer, scratch).read()


def _plain_tid(key: object) -> str | None:
    """The tribute id a key will get (:meth:`_Reader.key_id`), without its warnings; ``None``: none."""
    try:
        return check_tribute_id(key)
    except InvalidInputError:
        return (_sanitised_id(key) or None) if isinstance(key, str) else None


def _repeated(ids: Iterable[str | None]) -> set[str]:
    """The ids seen more than once (case collisions to merge)."""
    counts = Counter(tid for tid in ids if tid is not None)
    return {tid for tid, count in counts.items() if count > 1}


class _Reader:
    def __init__(
        self, root: Path, options: LegacyOptions, writer: IndexWriter, scratch: sqlite3.Connection
    ) -> None:
        self.root = root
        self.writer = writer
        self.real_root = root.resolve()
        self.options = options
        self.warnings: set[str] = set()
        self.problems: set[str] = set()
        self.guilds: dict[int, Guild] = {}
        self.guild_sources: dict[tuple[int, str], str] = {}  # (guild, setting) -> where it came from
        self.config_guilds: set[int] = set()
        #: tid -> fields (a spool: one entry per tribute of thgbot.db)
        self.db_tributes = Spool(scratch, "db_tributes")
        self.db_guild: dict[str, int] = {}
        #: tid -> _Inventory (a spool: every inventory of inventories.json)
        self.inventories = Spool(scratch, "inventories")
        self.db_inventories: dict[str, _Inventory] = {}
        self.db_inventory_where: dict[str, str] = {}
        #: tid -> _Prompt (a spool)
        self.prompts = Spool(scratch, "prompts")
        self.refs: dict[str, list[_ImageRef]] = {}
        self.ids: set[str] = set()
        self.key_names: dict[str, str] = {}  # sanitised id -> the free-text key it came from
        self.kept: dict[str, list[_Kept]] = {}

    # ------------------------------------------------------------ messages
    def warn(self, where: str, message: str) -> None:
        self.warnings.add(f"{where}: {message}")

    def problem(self, where: str, message: str) -> None:
        """A warning the operator must act on (``check`` lists it)."""
        line = f"{where}: {message}"
        self.warnings.add(line)
        self.problems.add(line)

    def fail(self, rel: str, where: str, message: str) -> NoReturn:
        location = f"{self.root / rel}: {where}" if where else f"{self.root / rel}"
        raise LegacyFormatError(f"{location}: {message}")

    def build(self, model: type[M], data: dict[str, Any], rel: str, where: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as error:
            self.fail(rel, where, describe_validation_error(error, model.__name__))

    def tribute_id(self, raw: object, rel: str, where: str) -> str:
        """The tribute id of a database value; text that is no id (``D1.F``, which the bot's
        ``/create-tribute`` accepted) gets a sanitised id, as a JSON key does."""
        try:
            return check_tribute_id(raw)
        except InvalidInputError as error:
            if not isinstance(raw, str):
                self.fail(rel, where, str(error))
            return self.free_text_id(raw, f"{rel} {where}")

    def key_id(self, rel: str, key: str) -> str:
        """The tribute id of a JSON key; free text (``"Rue's gift"``) gets a sanitised id."""
        try:
            return check_tribute_id(key)
        except InvalidInputError:
            return self.free_text_id(key, f"{rel} {_jp(key)}")

    def free_text_id(self, key: str, where: str) -> str:
        """The id of text that is no tribute id: sanitised, or, with nothing usable left (``"🎉"``,
        a fullwidth ``D1F``), ``KEY-`` and a digest of the text; a warning; the text becomes the
        tribute's name when it has none."""
        tid = _sanitised_id(key)
        if tid:
            self.warn(
                where,
                f"free-text key {key!r} migrated as tribute {tid} "
                "(the key kept as its name when it has none)",
            )
        else:
            tid = _digest_id(key)
            self.warn(
                where,
                f"key {key!r} holds nothing usable in a tribute id (A-Z, 0-9, '_', '-'); migrated as "
                f"tribute {tid} (the key kept as its name when it has none)",
            )
        if len(key) <= MAX_SHORT_TEXT_LENGTH and storable(key):  # what a tribute name may hold
            self.key_names.setdefault(tid, key)
        return tid

    # ------------------------------------------------------------ kept versions
    def keep(self, tid: str, kind: str, document: dict[str, Any]) -> str:
        """Keep ``document`` as a file of ``tid`` (kind ``legacy_conflict``/``legacy_original``); its name."""
        body = {"tributestore": kind, "tribute": tid, **document}
        try:
            content = (json.dumps(body, indent=2, ensure_ascii=False, default=_jsonable) + "\n").encode()
        except UnicodeEncodeError:  # lone surrogates: kept as \\u escapes
            content = (json.dumps(body, indent=2, default=_jsonable) + "\n").encode()
        name = f"{kind.replace('_', '-')}-{hashlib.sha256(content).hexdigest()[:12]}.json"
        kept = self.kept.setdefault(tid, [])
        if all(entry.name != name for entry in kept):
            kept.append(_Kept(kind, name, content))
        self.ids.add(tid)
        return name

    def conflict(
        self, tid: str, loser: str, winner: str, reason: str, value: object, what: str = "version"
    ) -> None:
        """Keep the losing ``value`` (from ``loser``) as a file of ``tid``, and report it."""
        name = self.keep(
            tid,
            "legacy_conflict",
            {"source": loser, "kept_instead": winner, "reason": reason, "value": value},
        )
        self.problem(
            loser,
            f"{what} differs from {winner}, which is migrated ({reason}); "
            f"this one kept as file {name!r} of tribute {tid}",
        )

    def text(self, value: str, tid: str, rel: str, where: str, what: str) -> str:
        """``value``, with what the store cannot hold replaced by U+FFFD and the original kept."""
        if storable(value):
            return value
        fixed = replace_unstorable(value)
        count = sum(1 for a, b in zip(value, fixed, strict=True) if a != b)
        name = self.keep(
            tid,
            "legacy_original",
            {
                "source": f"{rel} {where}".strip(),
                "field": what,
                "reason": "holds characters no store can hold (NUL, lone surrogates); "
                "stored with each replaced by U+FFFD",
                "original": value,
            },
        )
        self.problem(
            f"{rel} {where}".strip(),
            f"{what}: {count} character(s) no store can hold (NUL, lone surrogates) replaced by U+FFFD; "
            f"the original kept as file {name!r} of tribute {tid}",
        )
        return fixed

    def optional_field(self, value: object, tid: str, rel: str, where: str, what: str) -> str | None:
        text = self.optional_text(value, rel, where)
        return None if text is None else self.text(text, tid, rel, where, what)

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

    def inside(self, rel: str) -> None:
        """Refuse a top-level file that leads outside the data directory (a symlink)."""
        path = self.root / rel
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as error:
            self.fail(rel, "", f"cannot resolve it ({error})")
        if not real.is_relative_to(self.real_root):
            self.fail(
                rel,
                "",
                f"links outside the data directory (to {real}); not read. "
                "Copy the file into the directory to migrate it",
            )

    def load_json(self, rel: str) -> object:
        self.inside(rel)
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
    def read(self) -> LegacyResult:
        for rel in CONFIGS:
            if _lexists(self.root / rel):
                self.read_config(rel)
        if _lexists(self.root / DATABASE):
            self.read_db()
        if _lexists(self.root / INVENTORIES):
            self.read_inventories()
        if _lexists(self.root / PROMPTS):
            self.read_prompts()
        folders, loose = self.scan_images()
        return self.assemble(folders, loose)

    # config ---------------------------------------------------------------
    def read_config(self, rel: str) -> None:
        data = self.object_of(self.load_json(rel), rel, "", "the config")
        if not data:
            return
        per_guild = {
            key: value
            for key, value in data.items()
            if key.isascii() and key.isdecimal() and isinstance(value, dict)
        }
        flat = {key: value for key, value in data.items() if key not in per_guild}
        for key, value in per_guild.items():
            gid = self.snowflake(key, rel, _jp(key)) if len(key) > 20 else int(key)
            self.config_guild(rel, gid or 0, value, (key,))
        if not flat:
            return
        if "guild_id" in flat:
            gid = self.snowflake(flat["guild_id"], rel, _jp("guild_id"))
            if gid is None:
                self.fail(rel, _jp("guild_id"), "the flat (old) config names no guild")
            settings = {k: v for k, v in flat.items() if k != "guild_id"}
            if per_guild:
                self.warn(
                    f"{rel} (flat settings)",
                    f"flat single-guild settings of guild {gid} and per-guild entries in one file "
                    "(the multi-guild bot added its entries to the old object); "
                    "per-guild entries win, the flat values fill what they lack",
                )
            self.config_guild(rel, gid, settings, ())
        elif per_guild:
            for name, value in flat.items():
                self.warn(
                    f"{rel} {_jp(name)}",
                    f"flat setting naming no guild (no guild_id), not migrated (value {value!r})",
                )
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
                self.warn(f"{rel} {_jp(*keys, name)}", f"unknown setting, not migrated (value {value!r})")
        where = f"{rel} {_jp(*keys) or '(flat settings)'}"
        guild = self.build(Guild, values, rel, _jp(*keys) or "(flat config)")
        old = self.guilds.get(gid)
        merged = old.model_dump() if old is not None else {"guild_id": gid}
        for name in _GUILD_FIELDS:
            new = getattr(guild, name)
            if new is None:
                continue
            if merged.get(name) is None:
                merged[name] = new
                self.guild_sources[(gid, name)] = where
            elif new != merged[name]:
                self.warn(
                    f"{rel} {_jp(*keys, name)}",
                    f"{name} {new} differs from {merged[name]} of {self.guild_sources[(gid, name)]}, "
                    "which is kept (what the bot read)",
                )
        self.guilds[gid] = Guild.model_validate(merged)
        self.config_guilds.add(gid)

    # thgbot.db --------------------------------------------------------------
    def read_db(self) -> None:
        for rel in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-journal"):
            if _lexists(self.root / rel):
                self.inside(rel)
        with open_thgbot_db(self.root / DATABASE, DATABASE) as db:
            self.read_db_rows(db)

    def read_db_rows(self, db: DbRows) -> None:
        self.warnings.update(db.warnings)
        rel = DATABASE

        def where(table: str, number: int, column: str) -> str:
            return f"table {table} row {number} column {column}"

        # tributes: rows whose ids differ only in case are one tribute (a first pass finds them;
        # every other row is settled at once, so the table is never held)
        repeated = _repeated(_plain_tid(row.get("tribute_id")) for row in db.rows("tributes"))
        rows_of: dict[str, list[_DbTributeRow]] = {}
        for number, row in enumerate(db.rows("tributes"), start=1):
            tid = self.tribute_id(row.get("tribute_id"), rel, where("tributes", number, "tribute_id"))
            at = functools.partial(where, "tributes", number)
            fields = {
                "name": self.optional_field(row.get("tribute_name"), tid, rel, at("tribute_name"), "name"),
                "user_id": self.snowflake(row.get("user_id"), rel, at("user_id")),
                "user_mention": self.optional_field(
                    row.get("user_mention"), tid, rel, at("user_mention"), "user_mention"
                ),
                "face_claim_url": self.optional_field(
                    row.get("face_claim_url"), tid, rel, at("face_claim_url"), "face_claim_url"
                ),
                "prompt_channel_id": self.snowflake(
                    row.get("prompt_channel_id"), rel, at("prompt_channel_id")
                ),
                "created_at": self.timestamp(row.get("created_at"), rel, at("created_at")),
            }
            gid = self.snowflake(row.get("guild_id"), rel, where("tributes", number, "guild_id"))
            entry = (number, str(row.get("tribute_id")), fields, gid, row)
            if tid in repeated:
                rows_of.setdefault(tid, []).append(entry)
            else:
                self.db_tribute(tid, [entry])
        for tid, rows in rows_of.items():
            self.db_tribute(tid, rows)

        # prompts: the tribute-centric bot read these first (see the module documentation)
        repeated = _repeated(_plain_tid(row.get("tribute_id")) for row in db.rows("prompts"))
        prompt_rows: dict[str, list[tuple[int, str, _Prompt]]] = {}
        for number, row in enumerate(db.rows("prompts"), start=1):
            tid = self.tribute_id(row.get("tribute_id"), rel, where("prompts", number, "tribute_id"))
            message = self.optional_text(row.get("message"), rel, where("prompts", number, "message"))
            prompt = _Prompt(
                message=self.text(message or "", tid, rel, where("prompts", number, "message"), "message"),
                channel_id=self.snowflake(row.get("channel_id"), rel, where("prompts", number, "channel_id")),
                rel=rel,
                key=f"table prompts row {number}",
                created_at=self.timestamp(row.get("created_at"), rel, where("prompts", number, "created_at")),
                raw=row,
            )
            entry_p = (number, str(row.get("tribute_id")), prompt)
            if tid in repeated:
                prompt_rows.setdefault(tid, []).append(entry_p)
            else:
                self.db_prompt(tid, [entry_p])
        for tid, prompt_list in prompt_rows.items():
            self.db_prompt(tid, prompt_list)

        self.read_db_files(db)

    def db_tribute(self, tid: str, rows: list[_DbTributeRow]) -> None:
        """The tributes rows of one tribute (ids differing only in case): settle them."""
        rel = DATABASE
        # the bot looked tributes up by the upper-cased id: that row wins, else the first
        rows.sort(key=lambda entry: (entry[1] != tid, entry[0]))
        number, _, fields, gid, _ = rows[0]
        fields = dict(fields)
        for other_number, raw_id, other, other_gid, raw_row in rows[1:]:
            differs = [
                name
                for name, value in other.items()
                if value is not None and fields.get(name) is not None and value != fields[name]
            ]
            if other_gid is not None and gid is not None and other_gid != gid:
                differs.append("guild_id")
            filled = [name for name, value in other.items() if value is not None and fields[name] is None]
            for name in filled:
                fields[name] = other[name]
            gid = gid if gid is not None else other_gid
            loser = f"{rel} table tributes row {other_number}"
            winner = f"table tributes row {number}"
            if differs:
                self.conflict(
                    tid,
                    loser,
                    winner,
                    f"ids differing only in case are one tribute; the bot looked up {tid!r}",
                    raw_row,
                    what=f"tribute {raw_id!r} ({', '.join(differs)})",
                )
            else:
                self.warn(
                    loser,
                    f"tribute {raw_id!r} repeats tribute {tid} of {winner} (ids are case-insensitive); "
                    + (f"its {', '.join(filled)} filled in" if filled else "nothing differs"),
                )
        self.db_tributes[tid] = fields
        self.ids.add(tid)
        if gid is not None:
            self.db_guild[tid] = gid

    def db_prompt(self, tid: str, prompt_list: list[tuple[int, str, _Prompt]]) -> None:
        """The prompts rows of one tribute: upper-case id first (the bot's lookup), then the latest
        row (what its migration kept)."""
        prompt_list.sort(key=lambda entry: (entry[1] != tid, -entry[0]))
        best = prompt_list[0][2]
        for _, _, older in prompt_list[1:]:
            if older.message != best.message or (
                older.channel_id is not None and older.channel_id != best.channel_id
            ):
                self.conflict(
                    tid,
                    older.where,
                    best.key,
                    "one prompt per tribute: the upper-case id, then the latest row, wins",
                    older.raw,
                    what="prompt",
                )
            else:
                self.warn(older.where, f"repeats the prompt of tribute {tid} of {best.key}")
            if best.channel_id is None:
                best.channel_id = older.channel_id
        self.prompts[tid] = best
        self.ids.add(tid)

    def read_db_files(self, db: DbRows) -> None:
        rel = DATABASE

        def where(table: str, number: int, column: str) -> str:
            return f"table {table} row {number} column {column}"

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
            self.ids.add(tid)
            capacities.setdefault(tid, (None, None))
            text = self.item(row.get("item_name"), rel, where("inventory_items", number, "item_name"), tid)
            if text is not None:
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

    def item(self, value: object, rel: str, where: str, tid: str) -> str | None:
        """An item's text, or ``None`` for a ``null``/blank one (skipped, with a warning)."""
        at = f"{rel} {where}"
        if value is None or (isinstance(value, str) and not value.strip()):
            self.warn(at, "null item skipped" if value is None else "empty item skipped")
            return None
        if isinstance(value, int | float) and not isinstance(value, bool | _HugeInt) and math.isfinite(value):
            self.warn(at, f"a number, not text: migrated as the item {str(value)!r} (as the bot showed it)")
            return str(value)
        if not isinstance(value, str):
            self.fail(rel, where, f"an item must be text, got {_json_type(value)} {value!r}")
        text = self.text(value, tid, rel, where, "item")
        if len(text) <= MAX_ITEM_LENGTH:
            return text
        if self.options.oversize == "fail":
            self.fail(
                rel,
                where,
                f"an item of {len(text)} characters is longer than the store holds ({MAX_ITEM_LENGTH}); "
                "refused by the option oversize=fail (oversize=cut stores it cut and keeps the whole text)",
            )
        name = self.keep(
            tid,
            "legacy_original",
            {
                "source": at,
                "field": "item",
                "reason": f"longer than the store holds ({MAX_ITEM_LENGTH} characters); "
                f"stored cut, ending in {CUT_MARK!r} (option oversize=cut)",
                "original": value,
            },
        )
        self.problem(
            at,
            f"item of {len(text)} characters cut to {MAX_ITEM_LENGTH} (option oversize=cut); "
            f"the whole text kept as file {name!r} of tribute {tid}",
        )
        return text[: MAX_ITEM_LENGTH - len(CUT_MARK)] + CUT_MARK

    def item_at(self, value: object, rel: str, key: str, tid: str, slot: str, number: str) -> str | None:
        """:meth:`item`, naming the key path only when needed (a hot path: every legacy item)."""
        if (
            isinstance(value, str)
            and len(value) <= MAX_ITEM_LENGTH
            and (value.isascii() or storable(value))
            and "\x00" not in value
            and value.strip()
        ):
            return value
        return self.item(value, rel, _jp(key, slot, number), tid)

    # inventories.json -------------------------------------------------------
    def entries(self, rel: str, what: str) -> tuple[Callable[[], Iterator[tuple[str, Any]]], set[str]]:
        """A big JSON object file's entries, streamed (a function giving them, in file order, each
        time it is called), and the ids more than one key maps to (read in a first pass over the
        whole file, which also checks it is valid JSON before anything is used).

        A file the stream cannot take as it is (not an object, invalid, duplicate keys, ...) is
        read whole by :meth:`load_json`, which names the problem (or, should it read it after
        all, whose entries are used).
        """
        self.inside(rel)
        path = self.root / rel
        try:
            repeated = _repeated(
                _plain_tid(key) for key, _ in iter_object(path, _no_duplicates, _parse_int, keys_only=True)
            )
        except DuplicateKeyError as error:
            where = "" if error.entry is None else _jp(error.entry)
            self.fail(rel, where, f"duplicate key {error.key!r} in one JSON object")
        except StreamError:
            data = self.object_of(self.load_json(rel), rel, "", what)
            return (lambda: iter(data.items())), _repeated(_plain_tid(key) for key in data)

        def again() -> Iterator[tuple[str, Any]]:
            try:
                yield from iter_object(path, _no_duplicates, _parse_int)
            except StreamError as error:
                self.fail(rel, "", f"changed while being read ({error}); read it again")

        return again, repeated

    def read_inventories(self) -> None:
        rel = INVENTORIES
        entries, repeated = self.entries(rel, "the inventories file")
        groups: dict[str, list[tuple[str, _Inventory]]] = {}
        for key, entry in entries():
            try:  # the key path is spelled out only when not a plain id (a hot loop)
                tid = check_tribute_id(key)
            except InvalidInputError:
                tid = self.key_id(rel, key)
            inventory = self.inventory(rel, key, tid, entry)
            if tid in repeated:
                groups.setdefault(tid, []).append((key, inventory))
            else:  # one key: settled at once, never held
                self.merge_inventories(rel, tid, [(key, inventory)])
        for tid, group in groups.items():
            self.merge_inventories(rel, tid, group)

    def merge_inventories(self, rel: str, tid: str, entries: list[tuple[str, _Inventory]]) -> None:
        """The inventories of every key of one tribute (case collisions), merged in order."""
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

    def inventory(self, rel: str, key: str, tid: str, entry: object) -> _Inventory:
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
            items=self.numbered_items(rel, key, tid, "items", data.get("items")),
            equipped=self.numbered_items(rel, key, tid, "equipped", data.get("equipped")),
            capacity=capacities[0],
            equipped_capacity=capacities[1],
        )

    def numbered_items(self, rel: str, key: str, tid: str, slot: str, value: object) -> list[str]:
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
            item = self.item_at(text, rel, key, tid, slot, number)
            if item is not None:
                numbered.append((int(number), number, item))
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
        entries, repeated = self.entries(rel, "the prompts file")
        groups: dict[str, list[tuple[str, _Prompt, list[_ImageRef]]]] = {}
        for key, entry in entries():
            tid = self.key_id(rel, key)
            prompt, refs = self.prompt(rel, key, tid, entry)
            if tid in repeated:
                groups.setdefault(tid, []).append((key, prompt, refs))
            else:  # one key: settled at once, never held
                self.merge_prompts(rel, tid, [(key, prompt, refs)])
        for tid, group in groups.items():
            self.merge_prompts(rel, tid, group)

    def merge_prompts(self, rel: str, tid: str, entries: list[tuple[str, _Prompt, list[_ImageRef]]]) -> None:
        """The prompts of every key of one tribute: every bot version looked prompts up by the
        upper-cased id, so that key wins."""
        entries.sort(key=lambda entry: (entry[0] != tid, entry[0]))
        first = entries[0][1]
        if len(entries) > 1:
            keys = ", ".join(repr(entry[0]) for entry in entries)
            self.warn(
                f"{rel} {_jp(entries[0][0])}",
                f"keys {keys} are the same tribute {tid}: the first is migrated, "
                "the others kept where they differ, images of all attached",
            )
            for _, other, _ in entries[1:]:
                if other.message != first.message or (
                    other.channel_id is not None
                    and first.channel_id is not None
                    and other.channel_id != first.channel_id
                ):
                    self.conflict(
                        tid,
                        other.where,
                        first.where,
                        f"keys differing only in case are one tribute; the bot looked up {tid!r}",
                        other.raw,
                        what="prompt",
                    )
                if first.channel_id is None:
                    first.channel_id = other.channel_id
        db = self.prompts.get(tid)
        if db is not None:
            self.prefer_db_prompt(tid, db, first)
            self.prompts[tid] = db  # a spool: the changed value is stored again
        else:
            self.prompts[tid] = first
        refs = [ref for entry in entries for ref in entry[2]]
        if refs or tid in self.refs:
            self.refs[tid] = refs + self.refs.get(tid, [])
        self.ids.add(tid)

    def prefer_db_prompt(self, tid: str, db: _Prompt, stale: _Prompt) -> None:
        """The tribute-centric bot read thgbot.db first: its prompt wins; a differing JSON one is kept."""
        if db.channel_id is None and stale.channel_id is not None:
            db.channel_id = stale.channel_id
            self.warn(stale.where, f"channel {stale.channel_id} used: {db.where} has none")
        if (stale.message.strip() and stale.message != db.message) or (
            stale.channel_id is not None and stale.channel_id != db.channel_id
        ):
            self.conflict(
                tid,
                stale.where,
                db.where,
                "the tribute-centric bot read prompts from thgbot.db first",
                stale.raw,
                what="prompt",
            )

    def prompt(self, rel: str, key: str, tid: str, entry: object) -> tuple[_Prompt, list[_ImageRef]]:
        data = self.object_of(entry, rel, _jp(key), "a prompt")
        for name in sorted(data.keys() - _PROMPT_KEYS):
            self.warn(f"{rel} {_jp(key, name)}", "unknown prompt field, not migrated")
        message = data.get("message")
        if message is not None and not isinstance(message, str):
            self.fail(rel, _jp(key, "message"), f"must be text, got {_json_type(message)}")
        channel = self.snowflake(data.get("channel"), rel, _jp(key, "channel"))
        image = data.get("image")
        images: list[tuple[str | None, str]] = []  # (name, key path)
        if isinstance(image, str):
            images.append((image, _jp(key, "image")))
        elif isinstance(image, list):
            for index, name in enumerate(image):
                if name is not None and not isinstance(name, str):
                    self.fail(rel, _jp(key, "image", index), f"must be a file name, got {_json_type(name)}")
                images.append((name, _jp(key, "image", index)))
        elif image is not None:
            self.fail(rel, _jp(key, "image"), f"must be a file name or a list, got {_json_type(image)}")
        refs: list[_ImageRef] = []
        for image_name, where in images:
            if image_name is None or not image_name.strip():
                what = "null" if image_name is None else "empty"
                self.warn(f"{rel} {where}", f"{what} image name ignored")
                continue
            refs.append(_ImageRef(raw=self.stripped_name(image_name, f"{rel} {where}"), rel=rel, key=where))
        text = message or ""
        if not storable(text):
            text = self.text(text, tid, rel, _jp(key, "message"), "message")
        prompt = _Prompt(message=text, channel_id=channel, rel=rel, key=_jp(key), raw=entry)
        return prompt, refs

    def stripped_name(self, name: str, where: str) -> str:
        """An image name without surrounding white space (which no file name may have)."""
        if name != name.strip():
            self.warn(where, f"image name {name!r} has white space around it; {name.strip()!r} used")
        return name.strip()

    # prompt_images/ ---------------------------------------------------------
    def scan_images(self) -> tuple[dict[int, list[Path]], list[tuple[Path, int | None]]]:
        """Guild folders' files, and every other file under ``prompt_images/`` with its folder's guild.

        The second list holds the single-guild era's files (``prompt_images/<name>``, guild
        ``None``) first, then files of folders the bot never wrote (sub-folders, folders
        not named by a guild id).
        """
        folders: dict[int, list[Path]] = {}
        loose: list[tuple[Path, int | None]] = []
        nested: list[tuple[Path, int | None]] = []
        base = self.root / IMAGES
        if not base.is_dir():
            return folders, loose
        for child in sorted(base.iterdir()):
            rel = f"{IMAGES}/{child.name}"
            if not _inside(child, self.real_root):
                self.warn(rel, "links outside the data directory, not read")
            elif child.is_file():
                loose.append((child, None))
            elif not child.is_dir():
                self.warn(rel, "not a regular file, not migrated")
            elif _guild_folder_id(child.name) is None:
                self.warn(rel, "folder name is not a guild id; its files are migrated as unreferenced files")
                nested.extend((path, None) for path in self.walk(child))
            else:
                gid = int(child.name)  # a guild id (checked above)
                files = []
                for entry in sorted(child.iterdir()):
                    where = f"{rel}/{entry.name}"
                    if not _inside(entry, self.real_root):
                        self.warn(where, "links outside the data directory, not read")
                    elif entry.is_file():
                        files.append(entry)
                    elif entry.is_dir():
                        self.warn(
                            where, "a folder inside a guild folder; its files are migrated as unreferenced"
                        )
                        nested.extend((path, gid) for path in self.walk(entry))
                    else:
                        self.warn(where, "not a regular file, not migrated")
                folders[gid] = files
        return folders, loose + nested

    def walk(self, top: Path) -> list[Path]:
        """The regular files under ``top`` (symlinks leading outside skipped, with a warning)."""
        found: list[Path] = []
        for entry in sorted(top.iterdir()):
            where = _rel(entry, self.root)
            if not _inside(entry, self.real_root):
                self.warn(where, "links outside the data directory, not read")
            elif entry.is_file():
                found.append(entry)
            elif entry.is_dir() and not entry.is_symlink():
                found.extend(self.walk(entry))
            else:
                self.warn(where, "not a regular file, not migrated")
        return found

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

    def passed_over(self, candidate: Path, images: Path) -> None:
        """A place an image was looked for and not taken from: an image appearing there later
        changes what is read, so the index records it (its fingerprint covers everything under
        prompt_images/ already; a place outside the data directory is never read)."""
        if candidate.is_relative_to(images):
            return
        if candidate.is_relative_to(self.root) or candidate.is_relative_to(self.real_root):
            self.writer.probed(candidate)

    def resolve(self, ref: _ImageRef, gid: int, kept: Callable[[], str]) -> Path | None:
        """The existing file a reference names, or ``None`` (with a warning ending in ``kept()``:
        where the reference is kept)."""
        if _WEB_ADDRESS_RE.match(ref.raw):  # a Discord CDN link, say: nothing of the directory
            self.warn(
                ref.where, f"file {ref.raw!r} is a web address, not a file of the data directory; {kept()}"
            )
            return None
        path = _pure(ref.raw)
        if ".." in path.parts:
            self.warn(ref.where, f"image path {ref.raw!r} leaves the data directory; not read")
            return None
        images = self.root / IMAGES
        folder = images / str(gid)
        candidates: list[Path] = []
        if path.anchor:  # absolute (POSIX or Windows)
            if isinstance(path, PurePosixPath):
                candidates.append(Path(path))
            tail = _after_images(path.parts)
            if tail:  # the folder it names, in this data directory
                candidates.append(images.joinpath(*tail))
            else:
                candidates += [folder / path.name, images / path.name]
        elif len(path.parts) > 1:
            candidates += [self.root / path, images / path, folder / path, folder / path.name]
        else:
            candidates += [folder / path, images / path]  # the single-guild era saved in prompt_images/
        for number, candidate in enumerate(candidates):
            try:
                # Never read outside the data directory (an absolute path or a symlink
                # could name /etc/passwd); the bot's own absolute paths point inside it.
                found = candidate.resolve().is_relative_to(self.real_root) and candidate.is_file()
            except (OSError, ValueError, RuntimeError):  # too long a name, a symlink loop
                found = False
            if found:
                if number and candidate.parent == images and not path.anchor and len(path.parts) == 1:
                    self.warn(
                        ref.where,
                        f"image {ref.raw!r} found in {IMAGES}/ itself, where the single-guild bot "
                        "saved uploads; migrated",
                    )
                elif number:
                    self.warn(
                        ref.where,
                        f"image {ref.raw!r} not found there; using {_rel(candidate, self.root)}",
                    )
                for skipped in candidates[:number]:
                    self.passed_over(skipped, images)
                return candidate
        for skipped in candidates:
            self.passed_over(skipped, images)
        looked = _rel(candidates[0], self.root)
        if not _inside(candidates[0], self.real_root) and _exists(candidates[0]):
            self.warn(
                ref.where,
                f"image {ref.raw!r} is outside the data directory and not read; "
                f"no {_rel(candidates[-1], self.root)} either; {kept()}",
            )
            return None
        self.warn(ref.where, f"image {ref.raw!r} missing (looked for {looked}); {kept()}")
        return None

    def kept_reference(self, tid: str, ref: _ImageRef) -> str:
        """Where the reference to a missing file is kept: the prompt's list of files when the bot
        showed it there (a prompt image of a tribute with a prompt), else a ``legacy_missing`` file
        of the tribute (a ``files`` row, shown by the bot's tribute view; a prompt image of a
        tribute without a prompt), never nowhere."""
        if ref.in_prompt and tid in self.prompts:
            return "name kept in the prompt"
        name = self.keep(
            tid,
            "legacy_missing",
            {
                "source": f"{ref.rel} {ref.key}",
                "reason": "the file this reference names is not in the data directory",
                "reference": ref.raw,
                "file_kind": ref.kind,
                "created_at": None if ref.created_at is None else ref.created_at.isoformat(),
            },
        )
        return f"the reference kept as file {name!r} of tribute {tid}"

    # assemble ---------------------------------------------------------------
    def default_guild(self) -> int | None:
        """The guild of what nothing places: the ``guild`` option, else the only config guild."""
        if self.options.guild is not None:
            return self.options.guild
        return next(iter(self.config_guilds)) if len(self.config_guilds) == 1 else None

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
                    pure = _pure(ref.raw)
                    tail = _after_images(pure.parts) if pure.anchor else ()
                    if (not pure.anchor and len(pure.parts) == 1 and ref.raw in names) or (
                        len(tail) == 2 and tail[0] == str(gid) and tail[1] in names
                    ):
                        by_name.setdefault(tid, Counter())[gid] += 1
        mapped = self.options.guild_map
        for tid in sorted(mapped.keys() - self.ids):
            self.warn(
                f"{self.options.guild_map_source} {tid}",
                "names a tribute the legacy directory does not hold; ignored",
            )
        default = self.default_guild()
        assigned: dict[str, int] = {}
        unplaced: list[str] = []
        for tid in sorted(self.ids):
            seen = by_name.get(tid)
            ranked = sorted(seen.items(), key=lambda pair: (-pair[1], pair[0])) if seen else []
            if tid in mapped:
                assigned[tid] = mapped[tid]
                inferred = self.db_guild.get(tid, ranked[0][0] if ranked else None)
                if inferred is not None and inferred != mapped[tid]:
                    self.warn(
                        f"{self.options.guild_map_source} {tid}",
                        f"assigns guild {mapped[tid]}; the legacy data says guild {inferred}; the map wins",
                    )
            elif tid in self.db_guild:
                assigned[tid] = self.db_guild[tid]
            elif ranked:
                assigned[tid] = ranked[0][0]
                if len(ranked) > 1:
                    self.warn(
                        f"{IMAGES} tribute {tid}",
                        f"images of tribute {tid} are in several guild folders "
                        f"({', '.join(str(g) for g, _ in ranked)}); assigned to guild {ranked[0][0]}",
                    )
            elif default is not None:
                assigned[tid] = default
            else:
                assigned[tid] = 0
                unplaced.append(tid)
        if unplaced:
            shown = ", ".join(unplaced[:50]) + (
                f", ... ({len(unplaced) - 50} more)" if len(unplaced) > 50 else ""
            )
            self.problem(
                "guild assignment",
                f"{len(unplaced)} tribute(s) have no known guild (not in thgbot.db, no images in a guild "
                f"folder, {len(self.config_guilds)} guilds in the config) and are placed in guild 0, where "
                f"a bot looking them up per guild never finds them: {shown}; assign them with the URL "
                "option guild=GUILD_ID (all of them) or guild_map=FILE (per tribute)",
            )
        return assigned

    def assemble(self, folders: dict[int, list[Path]], loose: list[tuple[Path, int | None]]) -> LegacyResult:
        data = _Assembled(guilds=dict(self.guilds))
        assigned = self.assign_guilds(folders)
        claimed: set[Path] = set()
        attached_as: dict[TributeKey, dict[Path, str]] = {}
        prompt_files: dict[str, list[str]] = {}
        prompt_images_found: set[str] = set()

        def attach(
            key: TributeKey, path: Path, kind: str, created: datetime | None, where: str, note: str
        ) -> str:
            entry = _entry(path)  # a symlink is an entry of its own: the bot sent it under its name
            done = attached_as.setdefault(key, {})
            if entry in done:
                return done[entry]
            rel = _rel(path, self.root)
            name = path.name.strip()
            messages = [note] if note else []
            if name != path.name:
                messages.append(f"file name has white space around it; stored as {name!r}")
            if not storable(name):
                name = replace_unstorable(name)
                messages.append(f"file name is not valid text; stored as {name!r}")
            try:
                check_file_name(name)
            except InvalidInputError as error:
                raise LegacyFormatError(f"{self.root / rel}: {error}") from None
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            owned = data.files.setdefault(key, {})
            if name in owned and owned[name].info.sha256 != digest:
                name = _unique_name(owned, name, _rel(path.parent, self.root))
                messages.append(
                    f"another file of that name is attached to tribute {key[1]}; "
                    f"this one attached as {name!r}"
                )
            if messages:
                self.warn(where, "; ".join(messages))
            done[entry] = name
            claimed.add(entry)
            if name in owned:  # the same bytes under the same name: kept once
                return name
            match = _UNIX_NAME_RE.search(name)
            if match:  # 9-12 digits: unix seconds, or milliseconds when huge (as in timestamp())
                created = _unix_time(float(match.group(1))) or created
            info = self.build(
                FileInfo,
                {
                    "guild_id": key[0],
                    "tribute_id": key[1],
                    "name": name,
                    "kind": kind,
                    "media_type": guess_media_type(name),
                    "size": len(content),
                    "sha256": digest,
                    "created_at": created,
                },
                rel,
                "",
            )
            owned[name] = LegacyFile(info=info, path=path)
            return name

        for tid in sorted(self.refs):
            for ref in self.refs[tid]:
                name = _pure(ref.raw).name
                if not _usable_name(name):  # '..', NUL, too long: no file can have that name
                    self.warn(
                        ref.where,
                        f"image {ref.raw!r} names no usable file; not migrated, not kept in the prompt",
                    )
                    continue
                found = self.resolve(ref, assigned[tid], functools.partial(self.kept_reference, tid, ref))
                if found is not None and ref.in_prompt:
                    prompt_images_found.add(tid)
                if found is not None:
                    name = attach((assigned[tid], tid), found, ref.kind, ref.created_at, ref.where, "")
                if ref.in_prompt:
                    names = prompt_files.setdefault(tid, [])
                    if name not in names:
                        names.append(name)

        for gid in folders:
            data.guilds.setdefault(gid, Guild(guild_id=gid))
        orphans: set[TributeKey] = set()
        default = self.default_guild()
        unplaced = [(path, gid) for gid, paths in sorted(folders.items()) for path in paths] + loose
        for path, folder_gid in unplaced:
            if folder_gid is not None:
                data.guilds.setdefault(folder_gid, Guild(guild_id=folder_gid))
            if _entry(path) in claimed:
                continue
            where = _rel(path, self.root)
            owner = self.owner_by_name(path.name)
            if owner is not None:
                note = ""
                if folder_gid is not None and assigned[owner] != folder_gid:
                    note = f"named for tribute {owner} of guild {assigned[owner]}; attached to it"
                attach((assigned[owner], owner), path, "prompt_image", None, where, note)
                continue
            home = folder_gid if folder_gid is not None else default if default is not None else 0
            key = (home, ORPHANS)
            orphans.add(key)
            data.unreferenced_files += 1
            attach(
                key,
                path,
                "legacy_unreferenced",
                None,
                where,
                f"referenced by no tribute, its name names none; "
                f"kept as a file of tribute {ORPHANS} of guild {home}",
            )

        for tid in sorted(tid for tid in self.db_inventories if tid in self.inventories):
            stale, migrated = self.db_inventories[tid], self.inventories[tid]
            capacities = (
                _or(migrated.capacity, DEFAULT_CAPACITY),
                _or(migrated.equipped_capacity, DEFAULT_EQUIPPED_CAPACITY),
            )
            other_capacity = any(  # a capacity the database states and the migrated one is not
                theirs is not None and theirs != ours
                for theirs, ours in zip((stale.capacity, stale.equipped_capacity), capacities, strict=True)
            )
            if Counter(stale.items) - Counter(migrated.items) or other_capacity:  # what JSON lacks
                self.conflict(
                    tid,
                    f"{DATABASE} table inventory_items tribute {tid}",
                    INVENTORIES,
                    "every bot version read inventories from inventories.json",
                    {
                        "items": stale.items,
                        "capacity": stale.capacity,
                        "equipped_capacity": stale.equipped_capacity,
                    },
                    what="leftover database inventory",
                )
        for tid, kept in sorted(self.kept.items()):
            key = (assigned[tid], tid)
            owned = data.files.setdefault(key, {})
            for entry in kept:
                if entry.name in owned:
                    continue
                info = FileInfo(
                    guild_id=key[0],
                    tribute_id=tid,
                    name=entry.name,
                    kind=entry.kind,
                    media_type="application/json",
                    size=len(entry.content),
                    sha256=hashlib.sha256(entry.content).hexdigest(),
                )
                owned[entry.name] = LegacyFile(info=info, path=None, content=entry.content)
                data.kept_versions += 1

        for key in sorted(orphans):
            if key[1] in self.ids and assigned[key[1]] == key[0]:
                continue  # a legacy tribute of that id: its own row below
            data.guilds.setdefault(key[0], Guild(guild_id=key[0]))
            self.writer.document(
                Tribute(guild_id=key[0], tribute_id=ORPHANS, name="Files no legacy tribute references"),
                Inventory(guild_id=key[0], tribute_id=ORPHANS),
                None,
                data.infos(key),
            )
            if key[0] == 0:
                data.unassigned.append(ORPHANS)

        # the spools, read in one scan each (ids in sorted order, as the spools sort them)
        db_tributes, inventories, prompts = Walk(self.db_tributes), Walk(self.inventories), Walk(self.prompts)
        for tid in sorted(self.ids):
            gid = assigned[tid]
            key = (gid, tid)
            if gid == 0:
                data.unassigned.append(tid)
            data.guilds.setdefault(gid, Guild(guild_id=gid))
            fields = db_tributes.get(tid) or {}
            if fields.get("name") is None and tid in self.key_names:
                fields = {**fields, "name": self.key_names[tid]}
            where = f"tribute {tid}"
            tribute = self.build(Tribute, {**fields, "guild_id": gid, "tribute_id": tid}, DATABASE, where)
            inventory = inventories.get(tid)
            leftover = self.db_inventories.get(tid)
            if inventory is None and leftover is not None:
                inventory = leftover
                if leftover.items:
                    self.warn(
                        f"{DATABASE} table inventory_items tribute {tid}",
                        "inventory known only from the leftover database tables; migrated from there",
                    )
            inventory = inventory or _Inventory([], [], None, None)
            built = self.build(
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
            prompt = prompts.get(tid)
            model: Prompt | None = None
            if prompt is not None:
                model = self.build(
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
            elif tid in prompt_images_found:
                self.warn(
                    f"{DATABASE} table prompt_images tribute {tid}",
                    "prompt images of a tribute without a prompt; attached as files only",
                )
            self.writer.document(tribute, built, model, data.infos(key))
        for gid in sorted(data.guilds):
            self.writer.guild(data.guilds[gid])
        for key in sorted(data.files):
            for name in sorted(data.files[key]):
                stored = data.files[key][name]
                self.writer.blob(stored.info, stored.path, stored.content)
        return LegacyResult(
            warnings=sorted(self.warnings),
            problems=sorted(self.problems),
            unassigned=sorted(data.unassigned),
            kept_versions=data.kept_versions,
            unreferenced_files=data.unreferenced_files,
        )


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
    """A free-text key as a tribute id: upper-case, other characters ``_`` (maybe '').  Longer than
    64: its first 51 characters, ``-`` and 12 hex digits of the whole sanitised text's sha256, so
    keys differing past the cut stay two tributes (the bot showed them as two)."""
    text = re.sub(r"[^A-Z0-9_-]", "_", key.upper())
    text = re.sub(r"_+", "_", text).strip("_-")
    if len(text) <= 64:
        return text
    return text[:51].rstrip("_-") + "-" + hashlib.sha256(text.encode()).hexdigest()[:12].upper()


def _entry(path: Path) -> Path:
    """The directory entry ``path`` names, however spelled: its folder resolved, not the entry
    itself (a symlink and its target are two entries, each migrated under its own name)."""
    return path.parent.resolve() / path.name


def _digest_id(key: str) -> str:
    """The id of a key with nothing usable in an id: ``KEY-`` and 12 hex digits of its sha256."""
    return "KEY-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12].upper()


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


#: A reference that is a web address (``https://cdn.discordapp.com/...``), not a path.
_WEB_ADDRESS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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


def _lexists(path: Path) -> bool:
    """Whether ``path`` exists, a dangling or outside-leading symlink included."""
    return path.exists() or path.is_symlink()


def _pure(raw: str) -> PurePath:
    """An image reference as a path: Windows-style when it holds a backslash."""
    return PureWindowsPath(raw) if "\\" in raw else PurePosixPath(raw)


def _after_images(parts: tuple[str, ...]) -> tuple[str, ...]:
    """The parts after the last ``prompt_images`` of a path (empty when none)."""
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] == IMAGES:
            return parts[index + 1 :]
    return ()


def _usable_name(name: str) -> bool:
    """Whether ``name`` can be a stored file's name."""
    try:
        check_file_name(name)
    except InvalidInputError:
        return False
    return storable(name)


def _unique_name(owned: Mapping[str, object], name: str, folder: str) -> str:
    """``<stem> (<folder>)<ext>``, numbered when needed: a name ``owned`` does not hold yet."""
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    label = folder.replace("/", " ")
    for number in range(1, 10_000):
        tag = f" ({label})" if number == 1 else f" ({label} {number})"
        candidate = stem[: 255 - len(tag) - len(ext)] + tag + ext
        if candidate not in owned:
            return candidate
    raise LegacyFormatError(f"too many files named {name!r}")  # pragma: no cover


def _jsonable(value: object) -> object:
    """JSON for what ``json`` cannot encode (database BLOBs, ...)."""
    if isinstance(value, bytes):
        return {"bytes_hex": value.hex()}
    return repr(value)
