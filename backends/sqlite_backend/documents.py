"""Tribute documents in rows: reading, inserting, replacing and updating them.

A document is the rows of one tribute in ``tributes`` (joined with
``inventories``), ``inventory_items``, ``prompts`` (joined with
``prompt_files``) and ``files``: four queries read one document, or a page of
them (:class:`DocumentReads`).  Statements are Core constructs built once, at
import.  :func:`update_document` compares a document with the ``previous``
one and writes only the parts that changed (appending an item inserts one
row); :func:`replace` writes one whole.  Timestamps are stored as fixed-width
ISO-8601 UTC text.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)

from tributestore.backend import FileData
from tributestore.errors import InvalidInputError, StorageError
from tributestore.models import (
    FileInfo,
    Prompt,
    Slot,
    TributeBundle,
)

from .common import SLOTS, TIMESTAMPS, assemble, to_text
from .schema import files, guilds, inventories, inventory_items, prompt_files, prompts, tributes

Key = tuple[int, str]
#: The dialect's upsert statement of a table (see :meth:`.dialects.Dialect.upsert`).
Upserts = Callable[[Table], Executable]


def _names(table: Table, *skip: str) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns if column.name not in skip)


_FIELDS = {
    guilds.name: _names(guilds),
    tributes.name: _names(tributes),
    inventories.name: _names(inventories),
    prompts.name: _names(prompts),
    files.name: _names(files, "data"),
}


def row(part: BaseModel, table: Table, **extra: Any) -> dict[str, Any]:
    """The row of ``table`` holding ``part`` (timestamps as text), plus ``extra`` columns."""
    values = {name: getattr(part, name) for name in _FIELDS[table.name]}
    for name in TIMESTAMPS & values.keys():
        values[name] = to_text(values[name])
    values.update(extra)
    return values


def item_rows(
    guild_id: int, tribute_id: str, slot: Slot, first: int, entries: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of ``entries`` in ``slot``, numbered from ``first`` (``item_key`` is given on insert)."""
    return [
        {
            "guild_id": guild_id,
            "tribute_id": tribute_id,
            "slot": slot,
            "number": number,
            "item": item,
            "item_folded": item.casefold(),
        }
        for number, item in enumerate(entries, start=first)
    ]


# --------------------------------------------------------------------------- statements
def of_key(table: Table, prefix: str = "") -> ColumnElement[bool]:
    """The rows of one tribute (an UPDATE's parameters are named ``key_...``: its SET takes the rest)."""
    return and_(
        table.c.guild_id == bindparam(f"{prefix}guild_id"),
        table.c.tribute_id == bindparam(f"{prefix}tribute_id"),
    )


def in_span(table: Table) -> ColumnElement[bool]:
    """The rows of the tributes from (g0, t0) to (g1, t1).

    Row values: the primary key index seeks to them (the OR form scans the guild).
    """
    key = tuple_(table.c.guild_id, table.c.tribute_id)
    return and_(
        key >= tuple_(bindparam("g0"), bindparam("t0")), key <= tuple_(bindparam("g1"), bindparam("t1"))
    )


class DocumentReads:
    """The four queries reading the documents of the tributes ``where`` selects, in key order."""

    def __init__(self, where: Callable[[Table], ColumnElement[bool]]) -> None:
        def ordered(table: Table, *columns: Any, parts: Any = None) -> Select[Any]:
            statement = select(*columns).where(where(table))
            if parts is not None:
                statement = statement.select_from(parts)
            return statement.order_by(table.c.guild_id, table.c.tribute_id)

        def joined(table: Table, other: Table) -> Any:
            same = (other.c.guild_id == table.c.guild_id) & (other.c.tribute_id == table.c.tribute_id)
            return table.outerjoin(other, same)

        item, name = inventory_items.c, prompt_files.c
        capacities = (inventories.c.capacity, inventories.c.equipped_capacity)
        self.tributes = ordered(tributes, tributes, *capacities, parts=joined(tributes, inventories))
        self.items = ordered(inventory_items, item.guild_id, item.tribute_id, item.slot, item.item).order_by(
            item.slot, item.number
        )
        self.prompts = ordered(
            prompts, prompts, name.file_name, parts=joined(prompts, prompt_files)
        ).order_by(name.position)
        self.files = ordered(files, *(files.c[field] for field in _FIELDS[files.name])).order_by(files.c.name)


ONE = DocumentReads(of_key)
TRIBUTE = select(tributes).where(of_key(tributes))
SPAN = DocumentReads(in_span)
FILE_DATA = select(files.c.name, files.c.data).where(
    of_key(files), files.c.name.in_(bindparam("names", expanding=True))
)
#: Name, sha256 and bytes of the stored files a replace keeps (those it is given no bytes for).
KEPT_FILES = select(files.c.name, files.c.sha256, files.c.data).where(
    of_key(files), files.c.name.in_(bindparam("names", expanding=True))
)
_TRIBUTE_FIELDS = _FIELDS[tributes.name][2:]
_UPDATE_TRIBUTE = update(tributes).where(of_key(tributes, "key_"))
_UPDATE_ITEM = update(inventory_items).where(
    of_key(inventory_items, "key_"),
    inventory_items.c.slot == bindparam("key_slot"),
    inventory_items.c.number == bindparam("key_number"),
)
_DELETE_ITEMS_AFTER = delete(inventory_items).where(
    of_key(inventory_items),
    inventory_items.c.slot == bindparam("after_slot"),
    inventory_items.c.number > bindparam("after_number"),
)
_FILE_FIELDS = _FIELDS[files.name][3:]
_UPDATE_FILE_INFO = update(files).where(of_key(files, "key_"), files.c.name == bindparam("key_name"))
_DELETE_FILE = delete(files).where(of_key(files), files.c.name == bindparam("file"))


def _key(owner: dict[str, Any], **values: Any) -> dict[str, Any]:
    """An UPDATE's parameters: the tribute's key as ``key_...``, then the values to set."""
    return {"key_guild_id": owner["guild_id"], "key_tribute_id": owner["tribute_id"], **values}


# --------------------------------------------------------------------------- reads
def read(conn: Connection, reads: DocumentReads, params: dict[str, Any], where: str) -> list[TributeBundle]:
    """The documents the four queries of ``reads`` find, in key order."""
    found = [dict(found) for found in conn.execute(reads.tributes, params).mappings()]
    if not found:
        return []
    return assemble(
        found,
        conn.execute(reads.items, params),
        conn.execute(reads.prompts, params).mappings(),
        conn.execute(reads.files, params).mappings(),
        where,
    )


# --------------------------------------------------------------------------- writes
def replace(conn: Connection, document: TributeBundle, data: Mapping[str, bytes]) -> None:
    """Write ``document`` whole over whatever is stored (its files not in ``data`` keep their bytes)."""
    tribute = document.tribute
    owner = {"guild_id": tribute.guild_id, "tribute_id": tribute.tribute_id}
    kept = [info for info in document.files if info.name not in data]
    stored: dict[str, bytes] = {}
    if kept:
        found = conn.execute(KEPT_FILES, dict(owner, names=[info.name for info in kept])).all()
        _require_same_bytes(kept, {name: sha256 for name, sha256, _data in found})
        stored = {name: stored_data for name, _sha256, stored_data in found}
    given = {**stored, **data}
    _require_bytes(document.files, given)
    conn.execute(delete(tributes).where(of_key(tributes)), owner)
    insert_documents(conn, [document], given)


def _require_bytes(infos: Sequence[FileInfo], known: Container[str]) -> None:
    """Refuse, before writing anything, a file neither given nor stored: its bytes are nowhere."""
    for info in infos:
        if info.name not in known:
            raise InvalidInputError(
                f"file {info.name!r} of tribute {info.tribute_id} in guild {info.guild_id}: "
                "no bytes given for a file not stored yet"
            )


def _require_same_bytes(infos: Sequence[FileInfo], stored: Mapping[str, str]) -> None:
    """Refuse, before writing anything, a file given without bytes whose sha256 is not the stored
    one's: its new bytes are nowhere (keeping the old ones would give them the wrong metadata)."""
    for info in infos:
        sha256 = stored.get(info.name)
        if sha256 is not None and sha256 != info.sha256:
            raise StorageError(
                f"file {info.name!r} of tribute {info.tribute_id} in guild {info.guild_id}: "
                f"no bytes given for its new contents (sha256 {info.sha256}, stored {sha256})"
            )


def insert_documents(conn: Connection, documents: Sequence[TributeBundle], file_data: FileData) -> None:
    """Insert documents none of whose rows exist: one ``executemany`` per table."""
    conn.execute(insert(tributes), [row(d.tribute, tributes) for d in documents])
    conn.execute(insert(inventories), [row(d.inventory, inventories) for d in documents])
    items = [
        entry
        for d in documents
        for slot in SLOTS
        for entry in item_rows(d.tribute.guild_id, d.tribute.tribute_id, slot, 1, getattr(d.inventory, slot))
    ]
    _insert_items(conn, items)
    with_prompt = [d.prompt for d in documents if d.prompt is not None]
    if with_prompt:
        conn.execute(insert(prompts), [row(prompt, prompts) for prompt in with_prompt])
        names = [
            {"guild_id": p.guild_id, "tribute_id": p.tribute_id, "position": n, "file_name": name}
            for p in with_prompt
            for n, name in enumerate(p.files, start=1)
        ]
        if names:
            conn.execute(insert(prompt_files), names)
    for document in documents:  # one file at a time: the bytes of a batch are never all in memory
        for info in document.files:
            data = file_data(info) if callable(file_data) else file_data[info.name]
            conn.execute(insert(files), row(info, files, data=data))


def _insert_items(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert item rows, numbering their ``item_key`` (the search index's row id) after the largest."""
    if not rows:
        return
    last = conn.execute(select(func.max(inventory_items.c.item_key))).scalar()
    for key, entry in enumerate(rows, start=int(last or 0) + 1):
        entry["item_key"] = key
    conn.execute(insert(inventory_items), rows)


# --------------------------------------------------------------------------- bulk writes
class RowWriter(Protocol):
    """Writes rows (tuples in the table's column order) into a table: the dialect's fastest way
    (raw ``executemany`` on SQLite, ``COPY`` on PostgreSQL; see :mod:`.dialects`)."""

    def __call__(self, conn: Connection, table: Table, rows: Iterable[tuple[Any, ...]]) -> None: ...


def _tuples(table: Table) -> Callable[[BaseModel], tuple[Any, ...]]:
    """A model's row of ``table`` as a tuple in column order (timestamps as text)."""
    names = _FIELDS[table.name]
    get = attrgetter(*names)
    stamps = [n for n, name in enumerate(names) if name in TIMESTAMPS]

    def values(part: BaseModel) -> tuple[Any, ...]:
        found = get(part)
        if not stamps:
            return tuple(found)
        listed = list(found)
        for n in stamps:
            listed[n] = to_text(listed[n])
        return tuple(listed)

    return values


_TRIBUTE_ROW = _tuples(tributes)
_PROMPT_ROW = _tuples(prompts)
_FILE_ROW = _tuples(files)


def write_documents(
    conn: Connection, write: RowWriter, documents: Sequence[TributeBundle], file_data: FileData
) -> None:
    """Insert documents none of whose rows exist, as :func:`insert_documents` does, through the
    dialect's bulk ``write``: one statement (or ``COPY``) per table, rows as plain tuples."""
    write(conn, tributes, [_TRIBUTE_ROW(d.tribute) for d in documents])
    write(
        conn,
        inventories,
        [
            (d.tribute.guild_id, d.tribute.tribute_id, d.inventory.capacity, d.inventory.equipped_capacity)
            for d in documents
        ],
    )
    last = conn.execute(select(func.max(inventory_items.c.item_key))).scalar()
    write(conn, inventory_items, _item_tuples(documents, int(last or 0) + 1))
    with_prompt = [d.prompt for d in documents if d.prompt is not None]
    if with_prompt:
        write(conn, prompts, [_PROMPT_ROW(p) for p in with_prompt])
        names = [
            (p.guild_id, p.tribute_id, n, name)
            for p in with_prompt
            for n, name in enumerate(p.files, start=1)
        ]
        if names:
            write(conn, prompt_files, names)
    if any(d.files for d in documents):  # a generator: one file's bytes in memory at a time
        write(conn, files, _file_tuples(documents, file_data))


def _item_tuples(documents: Sequence[TributeBundle], first_key: int) -> list[tuple[Any, ...]]:
    """Item rows in ``inventory_items`` column order, ``item_key`` numbered from ``first_key``."""
    rows: list[tuple[Any, ...]] = []
    key = first_key
    for d in documents:
        guild_id, tribute_id = d.tribute.guild_id, d.tribute.tribute_id
        for slot in SLOTS:
            for number, item in enumerate(getattr(d.inventory, slot), start=1):
                rows.append((guild_id, tribute_id, slot, number, item, item.casefold(), key))
                key += 1
    return rows


def _file_tuples(documents: Sequence[TributeBundle], file_data: FileData) -> Iterator[tuple[Any, ...]]:
    for d in documents:
        for info in d.files:
            data = file_data(info) if callable(file_data) else file_data[info.name]
            yield (*_FILE_ROW(info), bytes(data))


def update_document(
    conn: Connection,
    upsert: Upserts,
    document: TributeBundle,
    data: Mapping[str, bytes],
    previous: TributeBundle,
) -> None:
    """Write only the parts of ``document`` that differ from ``previous`` (the stored state)."""
    _require_bytes(document.files, data.keys() | {info.name for info in previous.files})
    _require_same_bytes(
        [info for info in document.files if info.name not in data],
        {info.name: info.sha256 for info in previous.files},
    )
    tribute, inventory, before = document.tribute, document.inventory, previous.inventory
    owner = {"guild_id": tribute.guild_id, "tribute_id": tribute.tribute_id}
    if tribute != previous.tribute:
        values = row(tribute, tributes)
        conn.execute(_UPDATE_TRIBUTE, _key(owner, **{f: values[f] for f in _TRIBUTE_FIELDS}))
    if (inventory.capacity, inventory.equipped_capacity) != (before.capacity, before.equipped_capacity):
        conn.execute(upsert(inventories), row(inventory, inventories))
    for slot in SLOTS:
        _update_slot(conn, owner, slot, getattr(before, slot), getattr(inventory, slot))
    if document.prompt != previous.prompt:
        _update_prompt(conn, upsert, owner, document.prompt, previous.prompt)
    _update_files(conn, upsert, owner, document.files, previous.files, data)


def _update_slot(conn: Connection, owner: dict[str, Any], slot: Slot, old: list[str], new: list[str]) -> None:
    """Items of one slot: changed numbers updated, new ones inserted, the rest deleted."""
    if old == new:
        return
    if len(new) < len(old):
        conn.execute(_DELETE_ITEMS_AFTER, dict(owner, after_slot=slot, after_number=len(new)))
    changed = [
        _key(owner, key_slot=slot, key_number=number, item=item, item_folded=item.casefold())
        for number, (was, item) in enumerate(zip(old, new, strict=False), start=1)
        if was != item
    ]
    if changed:
        conn.execute(_UPDATE_ITEM, changed)
    _insert_items(
        conn, item_rows(owner["guild_id"], owner["tribute_id"], slot, len(old) + 1, new[len(old) :])
    )


def _update_prompt(
    conn: Connection, upsert: Upserts, owner: dict[str, Any], new: Prompt | None, old: Prompt | None
) -> None:
    if new is None:  # its file names go with it (ON DELETE CASCADE)
        conn.execute(delete(prompts).where(of_key(prompts)), owner)
        return
    conn.execute(upsert(prompts), row(new, prompts))
    if old is not None and old.files == new.files:
        return
    if old is not None:
        conn.execute(delete(prompt_files).where(of_key(prompt_files)), owner)
    if new.files:
        names = [dict(owner, position=n, file_name=name) for n, name in enumerate(new.files, start=1)]
        conn.execute(insert(prompt_files), names)


def _update_files(
    conn: Connection,
    upsert: Upserts,
    owner: dict[str, Any],
    new: list[FileInfo],
    old: list[FileInfo],
    data: Mapping[str, bytes],
) -> None:
    """Files by name: given bytes written, changed metadata updated, files no longer listed deleted."""
    stored = {info.name: info for info in old}
    for info in new:
        if info.name in data:
            conn.execute(upsert(files), row(info, files, data=bytes(data[info.name])))
        elif info != stored[info.name]:
            values = row(info, files)
            fields = {f: values[f] for f in _FILE_FIELDS}
            conn.execute(_UPDATE_FILE_INFO, _key(owner, key_name=info.name, **fields))
    listed = {info.name for info in new}
    gone = [dict(owner, file=name) for name in stored if name not in listed]
    if gone:
        conn.execute(_DELETE_FILE, gone)
