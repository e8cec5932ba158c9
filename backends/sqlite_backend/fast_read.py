"""Tribute documents read fast: :func:`read` is :func:`.documents.read` without its per-row costs.

:func:`.documents.read` (the reference) takes each row through SQLAlchemy's result
objects, ``dict()`` and ``model_validate`` (Python validators field by field).
:func:`read` runs the same statements, compiled once per dialect, on the driver's
cursor of the same connection and transaction; takes each result whole (``fetchall``:
plain tuples, columns at the positions the statements give them); reads the items a
row per tribute and slot rather than a row per item (:func:`_grouped_items`); and
builds the models as ``model_construct`` does, without its per-field loop.

The database is a boundary, so every value is still checked, with tests that are
*sufficient* for the models (passing them means ``model_validate`` accepts the value
and returns it unchanged), run a column at a time over a whole result, in C where
possible (``str.join``, ``map``, ``min``/``max``, compiled patterns):

- ids (``guild_id`` of tributes, prompts and files; ``user_id``, ``prompt_channel_id``,
  ``channel_id``): ``int`` exactly (not bool, float, text), 0 to 2**63-1, or ``None``
  where optional; ``tribute_id``: text matching ``[A-Z0-9][A-Z0-9_-]{0,63}`` whole, so
  the model's normalisation leaves it as it is (rows of the other tables are matched to
  a checked tribute by key);
- names, mentions, URLs: text (or ``None``) of at most 6,000 characters, no NUL, no lone
  surrogate; a prompt's message the same, of any length;
- capacities (of an inventories row found): ``int`` exactly, 0 to 1,000,000;
- items: text of 1 to 6,000 characters, no NUL, no lone surrogate, not all white space;
  a slot neither ``items`` nor ``equipped`` is a :class:`CorruptDataError` naming
  ``inventory_items`` (the reference raises a ``KeyError``);
- file names (``files.name``, ``prompt_files.file_name``): text of 1 to 255 characters,
  not ``.`` or ``..``, no ``/``, ``\\``, NUL or lone surrogate, no white space at either end;
  ``kind`` and ``sha256``: text matching their patterns whole; ``media_type``: text of at
  most 255 characters matching the ASCII form of its pattern; ``size``: ``int``, >= 0;
- timestamps: ``None``, or text ``datetime.fromisoformat`` parses into a datetime in
  ``UTC`` (stored with ``+00:00``), which is what ``from_text`` and the models return.

Nothing else is validated by the models (the statements select exactly their fields).
Anything the tests do not vouch for (a corrupt row, but also a value the models would
normalise: a lower-case tribute id, a naive timestamp, a non-ASCII media type) sends the
page to the reference, which reads it again in the same transaction and builds it, or
raises the :class:`CorruptDataError` naming the table, exactly as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from types import NoneType
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from pydantic import BaseModel
from sqlalchemy import Connection, Select, func, select

from tributestore.errors import CorruptDataError
from tributestore.models import (
    MAX_ITEM_LENGTH,
    MAX_SHORT_TEXT_LENGTH,
    MAX_SNOWFLAKE,
    FileInfo,
    Inventory,
    Prompt,
    Tribute,
    TributeBundle,
    shown,
)

from . import common, documents
from .common import SLOTS
from .documents import DocumentReads
from .schema import inventory_items, tributes

M = TypeVar("M", bound=BaseModel)
Row = Sequence[Any]
Column = Sequence[Any]

_TRIBUTE_ID = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,63}").fullmatch
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}").fullmatch
#: The ASCII part of ``^[\w.+-]+/[\w.+-]+$`` (other media types go to the reference).
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9_.+-]+/[A-Za-z0-9_.+-]+").fullmatch
_SHA256 = re.compile(r"[0-9a-f]{64}").fullmatch
_MAX_FILE_NAME = 255
_MAX_MEDIA_TYPE = 255
_MAX_CAPACITY = 1_000_000


# --------------------------------------------------------------------------- models
def _fast_construction(cls: type[BaseModel]) -> bool:
    """Whether an instance of ``cls`` is only its ``__dict__``, fields set, no extra, no private
    state: then :func:`_builder` builds what ``model_construct`` would, skipping its loop."""
    return (
        not cls.__pydantic_post_init__
        and not cls.__pydantic_root_model__
        and not cls.__private_attributes__
        and cls.model_config.get("extra") != "allow"
        and all(f.alias is None and f.validation_alias is None for f in cls.model_fields.values())
    )


def _builder(cls: type[M]) -> Callable[[dict[str, Any], Iterable[str]], M]:
    """Build ``cls`` from values already checked (all in field order) and the fields given."""
    if not _fast_construction(cls):
        return lambda values, given: cls.model_construct(set(given), **values)
    new = object.__new__
    put = object.__setattr__

    def build(values: dict[str, Any], given: Iterable[str]) -> M:
        made = new(cls)
        put(made, "__dict__", values)
        put(made, "__pydantic_fields_set__", set(given))
        put(made, "__pydantic_extra__", None)
        put(made, "__pydantic_private__", None)
        return made

    return build


_TRIBUTE = _builder(Tribute)
_INVENTORY = _builder(Inventory)
_PROMPT = _builder(Prompt)
_FILE = _builder(FileInfo)
_BUNDLE = _builder(TributeBundle)
_BUNDLE_FIELDS = ("tribute", "inventory", "prompt", "files")
_INVENTORY_FIELDS = tuple(Inventory.model_fields)
_CAPACITY_DEFAULTS = (
    Inventory.model_fields["capacity"].default,
    Inventory.model_fields["equipped_capacity"].default,
)
#: The fields the reference gives ``model_validate`` for an inventory without its row.
_INVENTORY_GIVEN_DEFAULTS = ("guild_id", "tribute_id", "items", "equipped")


# --------------------------------------------------------------------------- checks
class _Unvouched(Exception):
    """A value the fast checks do not vouch for: the page goes to the reference."""


def _ints(values: Column, low: int, high: int, optional: bool = False) -> None:
    """Ints (not bools, floats, text) from ``low`` to ``high``; ``None`` too if ``optional``."""
    kinds = set(map(type, values))
    if optional and NoneType in kinds:
        kinds.discard(NoneType)
        values = [value for value in values if value is not None]
    if not kinds <= {int} or (values and (min(values) < low or max(values) > high)):
        raise _Unvouched


def _snowflakes(values: Column, optional: bool = False) -> None:
    _ints(values, 0, MAX_SNOWFLAKE, optional)


def _texts(values: Column, longest: int | None, optional: bool = False) -> None:
    """Strings without NUL or lone surrogate, none longer than ``longest``."""
    if optional:
        values = [value for value in values if value is not None]
    try:
        joined = "".join(values)
    except TypeError:  # not all str
        raise _Unvouched from None
    if "\x00" in joined:
        raise _Unvouched
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            raise _Unvouched from None
    if longest is not None and values and max(map(len, values)) > longest:
        raise _Unvouched


def _items(values: Column) -> None:
    """Item texts: texts, none empty or blank."""
    _texts(values, MAX_ITEM_LENGTH)
    # Blank: empty or all white space (``isspace`` and ``strip`` share one definition of it).
    if not all(values) or any(map(str.isspace, values)):
        raise _Unvouched


def _file_names(values: Column) -> None:
    """File names: 1-255 characters, not ``.`` or ``..``, no ``/``, ``\\``, NUL, lone surrogate,
    no white space at either end."""
    _texts(values, _MAX_FILE_NAME)
    if (
        not all(values)
        or "." in values
        or ".." in values
        or any("/" in value or "\\" in value for value in values)
        or [value.strip() for value in values] != list(values)
    ):
        raise _Unvouched


def _matching(values: Column, pattern: Callable[[str], object], longest: int | None = None) -> None:
    """Strings matching ``pattern`` whole (ASCII-only patterns: the same for Python and pydantic)."""
    if not all(type(value) is str for value in values) or not all(map(pattern, values)):
        raise _Unvouched
    if longest is not None and values and max(map(len, values)) > longest:
        raise _Unvouched


def _stamps(values: Column) -> list[datetime | None]:
    """Timestamps parsed: what ``from_text`` and the models make of UTC ISO-8601 text, which is how
    they are stored; any other form (naive, another offset, not text) goes to the reference."""
    parsed: list[datetime | None] = []
    append = parsed.append
    parse = datetime.fromisoformat
    for value in values:
        if value is None:
            append(None)
            continue
        if type(value) is not str:
            raise _Unvouched
        try:
            stamp = parse(value)
        except ValueError:
            raise _Unvouched from None
        if stamp.tzinfo is not UTC:
            raise _Unvouched
        append(stamp)
    return parsed


# --------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class _Query:
    """A statement compiled for one dialect, run on the driver's cursor."""

    sql: str
    #: The parameter names in order (positional paramstyles), or ``None`` (named: a dict).
    order: tuple[str, ...] | None
    #: Each selected column's position by name.
    position: dict[str, int]

    @classmethod
    def of(cls, statement: Select[Any], conn: Connection) -> _Query:
        compiled = statement.compile(dialect=conn.dialect)
        order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        names = [column.name for column in statement.selected_columns]
        return cls(compiled.string, order, {name: n for n, name in enumerate(names)})

    def rows(self, driver: Any, params: dict[str, Any]) -> list[Row]:
        given: Any = params if self.order is None else tuple(params[name] for name in self.order)
        cursor = driver.cursor()
        try:
            cursor.execute(self.sql, given)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def picked(self, rows: list[Row], names: Sequence[str]) -> list[Row]:
        """The rows with the values of ``names`` (two or more) leading, in that order: the rows
        themselves when the statement selects them so."""
        positions = [self.position[name] for name in names]
        if positions == list(range(len(positions))):
            return rows
        return list(map(itemgetter(*positions), rows))


@dataclass(frozen=True)
class _Plan:
    tributes: _Query
    items: _Query
    prompts: _Query
    files: _Query
    #: The items a row per tribute and slot (see :func:`_grouped_items`), or ``None``.
    grouped: _Query | None
    #: Whether the grouped items come as JSON text with their numbers (SQLite), to be checked
    #: in order; else as arrays in order (PostgreSQL: ``array_agg(item ORDER BY number)``).
    as_json: bool


def _grouped_items(reads: DocumentReads, dialect: str) -> Select[Any] | None:
    """The items of the tributes ``reads`` selects, a row per tribute and slot: ``guild_id,
    tribute_id, slot, items[, numbers]``.  Fewer rows than one per item: a tenth of the
    driver's per-row work (on SQLite, a GIL release and four values per row).

    SQLite before 3.44 has no ORDER BY inside an aggregate: the GROUP BY walks the primary
    key index, so the rows reach ``json_group_array`` in ``number`` order, but since that is
    the query plan's doing and no documented promise, the numbers come along and are checked
    (:func:`_slotted_groups`); out of order, the page falls back to one row per item.
    """
    item = inventory_items.c
    key = (item.guild_id, item.tribute_id, item.slot)
    if dialect == "sqlite":
        columns: tuple[Any, ...] = (
            func.json_group_array(item.item).label("items"),
            func.group_concat(item.number).label("numbers"),
        )
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        columns = (func.array_agg(aggregate_order_by(item.item, item.number)).label("items"),)
    else:
        return None
    where = reads.items.whereclause
    if where is None:
        return None
    return select(*key, *columns).where(where).group_by(*key).order_by(*key)


_PLANS: WeakKeyDictionary[DocumentReads, dict[str, _Plan]] = WeakKeyDictionary()


def _plan(conn: Connection, reads: DocumentReads) -> _Plan:
    by_dialect = _PLANS.setdefault(reads, {})
    plan = by_dialect.get(conn.dialect.name)
    if plan is None:
        grouped = _grouped_items(reads, conn.dialect.name)
        plan = by_dialect[conn.dialect.name] = _Plan(
            _Query.of(reads.tributes, conn),
            _Query.of(reads.items, conn),
            _Query.of(reads.prompts, conn),
            _Query.of(reads.files, conn),
            None if grouped is None else _Query.of(grouped, conn),
            conn.dialect.name == "sqlite",
        )
    return plan


# --------------------------------------------------------------------------- reading
_TRIBUTE_FIELDS = tuple(Tribute.model_fields)
_PROMPT_COLUMNS = tuple(name for name in Prompt.model_fields if name != "files")
_FILE_FIELDS = tuple(FileInfo.model_fields)
_PROMPT_FIELDS = tuple(Prompt.model_fields)
_TRIBUTE_TABLE_COLUMNS = tuple(column.name for column in tributes.columns)
_CREATED_AT = _TRIBUTE_FIELDS.index("created_at")
_UPDATED_AT = _TRIBUTE_FIELDS.index("updated_at")
_KEY_AND_SLOT = itemgetter(0, 1, 2)
_ITEM = itemgetter(3)
_ITEM_COLUMNS = ("guild_id", "tribute_id", "slot", "item")

Key = tuple[int, str]


def read(conn: Connection, reads: DocumentReads, params: dict[str, Any], where: str) -> list[TributeBundle]:
    """The documents the four queries of ``reads`` find, in key order: what
    :func:`.documents.read` returns (or raises), faster (see the module documentation)."""
    plan = _plan(conn, reads)
    driver = conn.connection.dbapi_connection
    found = plan.tributes.rows(driver, params)
    if not found:
        return []
    items = _item_rows(conn, plan, driver, params)
    prompts = plan.prompts.rows(driver, params)
    files = plan.files.rows(driver, params)
    try:
        try:
            return _documents(plan, found, items, prompts, files, where)
        except _Unordered:  # one row per item, then
            items = (False, plan.items.rows(driver, params))
            return _documents(plan, found, items, prompts, files, where)
    except _Unvouched:
        return documents.read(conn, reads, params, where)


class _Unordered(Exception):
    """Grouped items whose numbers are not in order (see :func:`_grouped_items`)."""


def _item_rows(conn: Connection, plan: _Plan, driver: Any, params: dict[str, Any]) -> tuple[bool, list[Row]]:
    """The rows of the items: grouped (``True``) where the dialect can, else one per item."""
    if plan.grouped is not None:
        if not plan.as_json:
            return True, plan.grouped.rows(driver, params)
        try:  # SQLite: json_group_array refuses a BLOB, for one (then the reference says what is wrong)
            return True, plan.grouped.rows(driver, params)
        except conn.dialect.loaded_dbapi.Error:
            pass
    return False, plan.items.rows(driver, params)


def _documents(
    plan: _Plan,
    found: list[Row],
    items: tuple[bool, list[Row]],
    prompts: list[Row],
    files: list[Row],
    where: str,
) -> list[TributeBundle]:
    rows = plan.tributes.picked(found, (*_TRIBUTE_FIELDS, "capacity", "equipped_capacity"))
    columns = list(zip(*rows, strict=True))
    tribute_list = _tribute_models(rows, columns)
    keys = dict.fromkeys(zip(columns[0], columns[1], strict=True))
    capacities = columns[len(_TRIBUTE_FIELDS)], columns[len(_TRIBUTE_FIELDS) + 1]
    _check_capacities(*capacities)
    grouped, item_rows = items
    if grouped:
        by_slot = _slotted_groups(item_rows, keys, where, plan.as_json)
    else:
        by_slot = _slotted(plan.items, item_rows, keys, where)
    listed, equipped = by_slot["items"], by_slot["equipped"]
    prompt_of = _prompts(plan.prompts, prompts, keys)
    files_of = _files(plan.files, files, keys)
    inventory_of, bundle_of = _INVENTORY, _BUNDLE
    result = []
    for tribute, key, capacity, equipped_capacity in zip(tribute_list, keys, *capacities, strict=True):
        given = _INVENTORY_FIELDS
        if capacity is None:  # no inventories row: the defaults (check() reports it)
            capacity, equipped_capacity = _CAPACITY_DEFAULTS
            given = _INVENTORY_GIVEN_DEFAULTS
        inventory = {
            "guild_id": key[0],
            "tribute_id": key[1],
            "capacity": capacity,
            "equipped_capacity": equipped_capacity,
            "items": listed.get(key) or [],
            "equipped": equipped.get(key) or [],
        }
        bundle = {
            "tribute": tribute,
            "inventory": inventory_of(inventory, given),
            "prompt": prompt_of.get(key),
            "files": files_of.get(key) or [],
        }
        result.append(bundle_of(bundle, _BUNDLE_FIELDS))
    return result


def _check_capacities(capacity: Column, equipped_capacity: Column) -> None:
    if None in capacity:  # a tribute without its inventories row: only the others' are read
        equipped_capacity = [e for c, e in zip(capacity, equipped_capacity, strict=True) if c is not None]
        capacity = [c for c in capacity if c is not None]
    _ints(capacity, 0, _MAX_CAPACITY)
    _ints(equipped_capacity, 0, _MAX_CAPACITY)


def _tribute_models(rows: Iterable[Row], columns: Sequence[Column]) -> list[Tribute]:
    """Tributes from their rows (the fields leading, in order) and the same as columns."""
    _snowflakes(columns[0])
    _matching(columns[1], _TRIBUTE_ID)
    named = dict(zip(_TRIBUTE_FIELDS, columns, strict=False))
    for name in ("name", "user_mention", "face_claim_url"):
        _texts(named[name], MAX_SHORT_TEXT_LENGTH, optional=True)
    for name in ("user_id", "prompt_channel_id"):
        _snowflakes(named[name], optional=True)
    created, updated = _stamps(columns[_CREATED_AT]), _stamps(columns[_UPDATED_AT])
    build, fields = _TRIBUTE, _TRIBUTE_FIELDS
    made = []
    for row, created_at, updated_at in zip(rows, created, updated, strict=True):
        values = dict(zip(fields, row, strict=False))
        values["created_at"] = created_at
        values["updated_at"] = updated_at
        made.append(build(values, fields))
    return made


def tribute_rows(rows: Sequence[Row], where: str) -> list[Tribute]:
    """The tributes of rows of ``tributes`` (all its columns, in table order: ``select(tributes)``),
    as ``[common.model(Tribute, dict(row), where, "tributes") for row in rows]`` makes them
    (and with the same :class:`CorruptDataError` for a bad one), faster."""
    if not rows:
        return []
    names = _TRIBUTE_TABLE_COLUMNS
    try:
        if names[: len(_TRIBUTE_FIELDS)] != _TRIBUTE_FIELDS:
            raise _Unvouched  # the table's columns no longer lead with the model's fields
        return _tribute_models(rows, list(zip(*rows, strict=True)))
    except _Unvouched:
        return [
            common.model(Tribute, dict(zip(names, row, strict=True)), where, tributes.name) for row in rows
        ]


def _slotted(
    query: _Query, rows: list[Row], keys: dict[Key, None], where: str
) -> dict[str, dict[Key, list[str]]]:
    """Each tribute's items and equipped items, in order, by slot then tribute."""
    by_slot: dict[str, dict[Key, list[str]]] = {slot: {} for slot in SLOTS}
    if not rows:
        return by_slot
    rows = query.picked(rows, _ITEM_COLUMNS)
    _items(list(map(_ITEM, rows)))
    item = _ITEM
    for (guild_id, tribute_id, slot), group in groupby(rows, _KEY_AND_SLOT):
        key = (guild_id, tribute_id)
        if key not in keys:
            continue
        held = by_slot.get(slot)
        if held is None:
            raise _bad_slot(where, guild_id, tribute_id, slot)
        entries = held.get(key)
        if entries is None:
            held[key] = list(map(item, group))
        else:  # not reached: the rows come ordered by key and slot
            entries.extend(map(item, group))
    return by_slot


def _slotted_groups(
    rows: list[Row], keys: dict[Key, None], where: str, as_json: bool
) -> dict[str, dict[Key, list[str]]]:
    """:func:`_slotted` from the rows of :func:`_grouped_items`."""
    by_slot: dict[str, dict[Key, list[str]]] = {slot: {} for slot in SLOTS}
    texts: list[str] = []
    for guild_id, tribute_id, slot, entries, *numbers in rows:
        key = (guild_id, tribute_id)
        if key not in keys:
            continue
        held = by_slot.get(slot)
        if held is None:
            raise _bad_slot(where, guild_id, tribute_id, slot)
        if as_json:
            entries = _json_list(entries)
            _check_order(numbers[0], len(entries))
        if key in held:  # not reached: one row per tribute and slot
            raise _Unordered
        held[key] = entries
        texts += entries
    _items(texts)
    return by_slot


#: :func:`json.loads` without its white space handling (a call per group).
_SCAN = json.JSONDecoder().raw_decode
#: ``"1,2,...,n"`` by ``n``: the numbers of ``n`` items numbered as the store numbers them.
_NUMBERED: dict[int, str] = {}


def _json_list(text: str) -> list[str]:
    """A JSON array, as ``json_group_array`` writes it (no white space)."""
    try:
        found, end = _SCAN(text)
    except ValueError:  # not reached: SQLite writes JSON
        raise _Unvouched from None
    if end != len(text) or type(found) is not list:
        raise _Unvouched
    return found


def _check_order(numbers: str, count: int) -> None:
    """Check that the numbers (``group_concat``) came in ascending order: :class:`_Unordered` if not."""
    expected = _NUMBERED.get(count)
    if expected is None:
        expected = ",".join(map(str, range(1, count + 1)))
        if count <= 100:  # the common sizes, kept
            _NUMBERED[count] = expected
    if numbers == expected:
        return
    try:
        order = [int(number) for number in numbers.split(",")]
    except (ValueError, AttributeError):  # not ints (a hand edit): the reference orders them as SQL does
        raise _Unvouched from None
    if len(order) != count or order != sorted(order):
        raise _Unordered


def _bad_slot(where: str, guild_id: object, tribute_id: object, slot: object) -> CorruptDataError:
    return CorruptDataError(
        f"{where}, table {inventory_items.name}: an item of tribute {shown(tribute_id)} in guild "
        f"{shown(guild_id)} is in slot {shown(slot)}, neither of {' nor '.join(SLOTS)}"
    )


def _prompts(query: _Query, rows: list[Row], keys: dict[Key, None]) -> dict[Key, Prompt]:
    """Each tribute's prompt, its files' names in order (a row per name, or one without)."""
    if not rows:
        return {}
    values: dict[Key, dict[str, Any]] = {}
    names: list[str] = []
    for row in query.picked(rows, (*_PROMPT_COLUMNS, "file_name")):
        key = (row[0], row[1])
        if key not in keys:
            continue
        prompt = values.get(key)
        if prompt is None:
            prompt = values[key] = dict(zip(_PROMPT_COLUMNS, row, strict=False))
        name = row[len(_PROMPT_COLUMNS)]
        if name is not None:
            names.append(name)
            prompt.setdefault("files", []).append(name)
    listed = list(values.values())
    _snowflakes([prompt["guild_id"] for prompt in listed])
    _texts([prompt["message"] for prompt in listed], None)
    _snowflakes([prompt["channel_id"] for prompt in listed], optional=True)
    _file_names(names)
    created = _stamps([prompt["created_at"] for prompt in listed])
    updated = _stamps([prompt["updated_at"] for prompt in listed])
    given = (*_PROMPT_COLUMNS, "files")
    made = {}
    for (key, prompt), created_at, updated_at in zip(values.items(), created, updated, strict=True):
        fields = {name: prompt.get(name) for name in _PROMPT_FIELDS}
        fields.update(files=prompt.get("files") or [], created_at=created_at, updated_at=updated_at)
        made[key] = _PROMPT(fields, given)
    return made


def _files(query: _Query, rows: list[Row], keys: dict[Key, None]) -> dict[Key, list[FileInfo]]:
    """Each tribute's files' metadata, by name."""
    kept = [row for row in query.picked(rows, _FILE_FIELDS) if (row[0], row[1]) in keys]
    if not kept:
        return {}
    named = dict(zip(_FILE_FIELDS, zip(*kept, strict=True), strict=False))
    _snowflakes(named["guild_id"])
    _file_names(named["name"])
    _matching(named["kind"], _KIND)
    _matching(named["media_type"], _MEDIA_TYPE, _MAX_MEDIA_TYPE)
    _ints(named["size"], 0, MAX_SNOWFLAKE)
    _matching(named["sha256"], _SHA256)
    found: dict[Key, list[FileInfo]] = {}
    for row, created_at in zip(kept, _stamps(named["created_at"]), strict=True):
        values = dict(zip(_FILE_FIELDS, row, strict=False))
        values["created_at"] = created_at
        found.setdefault((row[0], row[1]), []).append(_FILE(values, _FILE_FIELDS))
    return found
