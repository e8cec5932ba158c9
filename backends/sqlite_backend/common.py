"""What the SQL backend and its light reader (:mod:`.light`) share, without SQLAlchemy.

The schema version, the names of the search index's parts, the row <-> model
conversions of timestamps, and whether this SQLite library has the trigram
tokenizer.  Importing this module imports no SQLAlchemy: the light reader opens
an up-to-date SQLite file and answers a bot's first reads with it alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tributestore.errors import CorruptDataError
from tributestore.models import (
    FileInfo,
    Inventory,
    Prompt,
    Slot,
    Tribute,
    TributeBundle,
    describe_validation_error,
)

#: The version of the tables this code writes (``schema_version``; see :mod:`.schema`).
CURRENT_VERSION = 3
#: The FTS5 table of the SQLite search index (see :mod:`.search`).
FTS_TABLE = "inventory_items_fts"
#: The triggers keeping :data:`FTS_TABLE` in step with ``inventory_items`` (an index without one
#: of them misses every later write).
FTS_TRIGGERS = ("inventory_items_fts_insert", "inventory_items_fts_delete", "inventory_items_fts_update")
#: The B-tree index of the search accelerator over ``item_folded`` and then the item's key:
#: searches list distinct texts with it, and put the items of the matching texts in key order
#: without reading their rows (see :mod:`.search_plan`).
TEXT_INDEX = "inventory_items_by_text"
#: Its earlier form, over ``item_folded`` alone (dropped when the new one is made).
OLD_TEXT_INDEX = "inventory_items_by_folded"
#: Seconds a SQLite connection waits for a lock (the URL option ``timeout``).
DEFAULT_TIMEOUT = 30.0
SLOTS: tuple[Slot, ...] = ("items", "equipped")
TIMESTAMPS = frozenset({"created_at", "updated_at", "deleted_at"})

M = TypeVar("M", bound=BaseModel)


def to_text(value: datetime | None) -> str | None:
    """A timestamp as fixed-width ISO-8601 UTC text (sorts as it compares, round-trips exactly)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(value: object, where: str) -> datetime | None:
    """A timestamp read back (naive text is taken as UTC); anything else is corrupt data."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CorruptDataError(f"{where}: timestamp {value!r} is not ISO-8601 text")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CorruptDataError(f"{where}: timestamp {value!r} is not ISO-8601") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def model(cls: type[M], data: dict[str, Any], where: str, table: str) -> M:
    """The model of a row (timestamps parsed); a bad row is a :class:`CorruptDataError` naming the table."""
    where = f"{where}, table {table}"
    for name in TIMESTAMPS & data.keys():
        data[name] = from_text(data[name], where)
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        raise CorruptDataError(f"{where}: {describe_validation_error(error, 'row')}") from None


def assemble(
    found: list[dict[str, Any]],
    items: Iterable[Sequence[Any]],
    prompts: Iterable[Mapping[Any, Any]],
    files: Iterable[Mapping[Any, Any]],
    where: str,
) -> list[TributeBundle]:
    """The documents of the ``found`` tribute rows (joined with their inventories row), from the
    rows of their items (guild_id, tribute_id, slot, item), prompts (joined with prompt_files) and
    files, each in key order (see ``.documents.DocumentReads``)."""
    parts: dict[tuple[int, str], dict[str, Any]] = {
        (r["guild_id"], r["tribute_id"]): {"items": [], "equipped": [], "files": [], "prompt": None}
        for r in found
    }
    for guild_id, tribute_id, slot, item in items:
        if (guild_id, tribute_id) in parts:
            parts[guild_id, tribute_id][slot].append(item)
    for r in prompts:
        part = parts.get((r["guild_id"], r["tribute_id"]))
        if part is not None:
            if part["prompt"] is None:
                part["prompt"] = {key: value for key, value in r.items() if key != "file_name"} | {
                    "files": []
                }
            if r["file_name"] is not None:
                part["prompt"]["files"].append(r["file_name"])
    for r in files:
        if (r["guild_id"], r["tribute_id"]) in parts:
            parts[r["guild_id"], r["tribute_id"]]["files"].append(model(FileInfo, dict(r), where, "files"))
    return [_document(tribute, parts[tribute["guild_id"], tribute["tribute_id"]], where) for tribute in found]


def _document(found: dict[str, Any], part: dict[str, Any], where: str) -> TributeBundle:
    capacity, equipped_capacity = found.pop("capacity"), found.pop("equipped_capacity")
    inventory = {
        "guild_id": found["guild_id"],
        "tribute_id": found["tribute_id"],
        "items": part["items"],
        "equipped": part["equipped"],
    }
    if capacity is not None:  # else the defaults (a row lost: check() reports it)
        inventory.update(capacity=capacity, equipped_capacity=equipped_capacity)
    prompt = part["prompt"]
    return TributeBundle.model_construct(
        tribute=model(Tribute, found, where, "tributes"),
        inventory=model(Inventory, inventory, where, "inventories/inventory_items"),
        prompt=None if prompt is None else model(Prompt, prompt, where, "prompts"),
        files=part["files"],
    )


_trigram_supported: bool | None = None


def sqlite_has_trigram() -> bool:
    """Whether this process's SQLite library has FTS5 with the trigram tokenizer (3.34+)."""
    global _trigram_supported
    if _trigram_supported is None:
        probe = sqlite3.connect(":memory:")
        try:
            probe.execute("CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='trigram case_sensitive 1')")
            _trigram_supported = True
        except sqlite3.Error:
            _trigram_supported = False
        finally:
            probe.close()
    return _trigram_supported
