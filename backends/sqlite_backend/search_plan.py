"""One page of an inventory search, planned so a bot's page costs milliseconds at a million items.

A page is the first ``limit`` hits after a position, in key order (guild, tribute,
"items" before "equipped", number).  Neither plain plan is good for every query:

- **walk**: read items in key order (the primary key index), test each, stop at
  ``limit`` hits: a broad query (a few percent of the items hit) answers after a
  few hundred rows, a rare one or a miss reads the whole table;
- **index then sort**: ask the trigram index (FTS5 on SQLite, ``pg_trgm`` on
  PostgreSQL) for every hit, fetch and sort them, keep ``limit``: a rare query or
  a miss answers at once, a broad one fetches and sorts tens of thousands of rows.

So a page is answered in steps (:func:`search_page`), all in the caller's read transaction:

1. **a window**: the items of the next :data:`WINDOW_TRIBUTES` tributes after the
   position are walked in key order.  When the window holds ``limit`` hits (every
   broad query) or is the end of the data, that is the page;
2. **a second window** when the first found some hits, but too few: sized from them
   to fill the page, if that is at most :data:`SECOND_WINDOW_MAX` tributes (a query
   hitting about one item in 40 to 2,000 has thousands of hits for the index to
   fetch and sort, more work than walking a few thousand rows);
3. **the rest**, after the windows.  First the index of folded texts (:data:`TEXT_INDEX`,
   made with the search index, :func:`ensure_text_index`): its distinct texts are listed
   by a loose index scan (one seek per distinct text, at most :data:`DISTINCT_BUDGET` for
   a query of 1-2 characters, :data:`LONG_QUERY_TEXT_BUDGET` for a longer one) and
   tested in Python; the index holds each item's key after its text, so the keys of the
   matching texts' items are sorted there and only the page's rows are read.  Inventories
   repeat their texts (``Meat (2/3 uses.)`` a thousand times): at 1M items of 192
   distinct texts a rare query's page costs 3-4 ms this way on SQLite (8-10 ms on
   PostgreSQL), against 14-20 ms through the trigram index, which gives every hit's
   row to be read and sorted.  A store with
   too many distinct texts (:class:`TextIndexState` remembers it for a while) asks the
   trigram index for a query of 3 or more characters (a rare one has few hits), and
   scans for a shorter one, which no trigram serves (cheaper than walking the key
   index when the query is rare, the case left here), then sorts.

Results are always exactly Python's ``folded_query in item.casefold()``: every
plan keeps the exact substring test on ``item_folded``; an index only narrows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    RowMapping,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    select,
    text,
    tuple_,
)

from tributestore.errors import InvalidInputError
from tributestore.models import HitPosition

from . import search
from .common import OLD_TEXT_INDEX as OLD_TEXT_INDEX
from .common import TEXT_INDEX as TEXT_INDEX
from .schema import inventory_items, tributes

#: ``check``'s line for a store without :data:`TEXT_INDEX` (opened for writing, one is built).
TEXT_INDEX_MISSING = (
    f"index of folded texts {TEXT_INDEX} is missing (searches of 1-2 characters and rare ones are "
    "slower); the next open for writing builds it"
)

#: Tributes whose items are walked first (about 10 items each: a query hitting one item in
#: 30 usually fills a page of 25 there, in well under a millisecond; one hitting one in 40
#: to 2,000 goes on to a second window; a rarer one costs this window and the index).
WINDOW_TRIBUTES = 100
#: Largest second window (tributes) walked rather than asking the index: about 20,000 items.
SECOND_WINDOW_MAX = 2_000
#: Most distinct folded texts a short query lists (loose index scan, one seek each: about
#: 2-5 us on SQLite, 10-50 us on PostgreSQL) before it scans instead.
DISTINCT_BUDGET = {"sqlite": 5_000, "postgresql": 1_000}
#: Most distinct folded texts a query of 3 or more characters lists (about 2 ms on SQLite,
#: 3 ms on PostgreSQL) before it asks the trigram index instead (7 to 17 ms for a query
#: hitting one item in 1,000, at 1M items: it fetches and sorts every hit's row).
LONG_QUERY_TEXT_BUDGET = {"sqlite": 1_000, "postgresql": 250}
#: Seconds a store found to hold more distinct texts than that is not listed again.
TOO_MANY_TEXTS_SECONDS = 300.0
#: Most matching distinct texts whose items are fetched through the text index.
MATCHED_TEXTS_BUDGET = 500
#: A slot value above both of a position's slot values (0 items, 1 equipped).
_PAST_TRIBUTE = 2

_items = inventory_items.c
_slot_order = case((_items.slot == "items", 0), else_=1)
_owner = tuple_(_items.guild_id, _items.tribute_id)
_position = tuple_(_items.guild_id, _items.tribute_id, _slot_order, _items.number)
_unindexed_position = tuple_(_items.guild_id + 0, _items.tribute_id, _slot_order, _items.number)
_after = tuple_(
    bindparam("after_guild", type_=BigInteger()),
    bindparam("after_tribute", type_=String()),
    bindparam("after_slot", type_=Integer()),
    bindparam("after_number", type_=Integer()),
)
_after_owner = tuple_(
    bindparam("after_guild", type_=BigInteger()), bindparam("after_tribute", type_=String())
)
_guild = bindparam("guild_id", type_=BigInteger())
_query = bindparam("query", type_=String())

HitSelect = Select[tuple[int, str, str, int, str]]
_statements: dict[tuple[str, ...], Any] = {}


def _contains(dialect: str) -> ColumnElement[bool]:
    """The exact test: ``item_folded`` contains the bound ``query``.

    SQLite tests ``LIKE`` first (bound ``like``, :func:`search.like_pattern`): twice as
    fast as ``instr`` on a miss.  Its ASCII case folding cannot add a hit (folded text
    holds no ASCII capital), and ``instr`` keeps the result exact anyway.
    """
    if dialect == "postgresql":
        return func.strpos(_items.item_folded, _query) > 0
    like = _items.item_folded.like(bindparam("like", type_=String()), escape="\\")
    return and_(like, func.instr(_items.item_folded, _query) > 0)


def _hits(dialect: str, by_guild: bool, *conditions: ColumnElement[bool]) -> HitSelect:
    """Hits after the bound position, in key order, at most ``limit``."""
    statement = (
        select(_items.guild_id, _items.tribute_id, _items.slot, _items.number, _items.item)
        .where(_contains(dialect), *conditions)
        # The first, redundant, bound is the one an index range can use (the CASE cannot).
        .where(_owner >= _after_owner, _position > _after)
        .order_by(_items.guild_id, _items.tribute_id, _slot_order, _items.number)
        .limit(bindparam("limit", type_=Integer()))
    )
    if by_guild:
        statement = statement.where(_items.guild_id == _guild)
    return statement


def _cached(key: tuple[str, ...], build: Any) -> Any:
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = build()
    return statement


def _tributes_from_position(by_guild: bool) -> Select[tuple[int, str]]:
    """The keys of the tributes from the position's tribute on, in key order."""
    owner = tuple_(tributes.c.guild_id, tributes.c.tribute_id)
    statement = (
        select(tributes.c.guild_id, tributes.c.tribute_id)
        .where(owner >= _after_owner)
        .order_by(tributes.c.guild_id, tributes.c.tribute_id)
    )
    return statement.where(tributes.c.guild_id == _guild) if by_guild else statement


def window_end_statement(by_guild: bool) -> Select[tuple[int, str]]:
    """The last tribute of the window: the ``window``-th from the position's tribute."""

    def build() -> Select[tuple[int, str]]:
        return _tributes_from_position(by_guild).offset(bindparam("window_last", type_=Integer())).limit(1)

    result: Select[tuple[int, str]] = _cached(("window end", str(by_guild)), build)
    return result


def window_statement(dialect: str, by_guild: bool) -> HitSelect:
    """Hits in the items of the window: the ``window`` tributes from the position's.

    A join with the window's tributes (one primary key seek per tribute), not a range
    ``(guild_id, tribute_id) <= end``: PostgreSQL ends a row comparison's index scan
    only at the end of the first column (the whole guild).
    """

    def build() -> HitSelect:
        window = _tributes_from_position(by_guild).limit(bindparam("window", type_=Integer()))
        win = window.subquery("window")
        same = (_items.guild_id == win.c.guild_id) & (_items.tribute_id == win.c.tribute_id)
        return (
            select(_items.guild_id, _items.tribute_id, _items.slot, _items.number, _items.item)
            .join_from(inventory_items, win, same)
            .where(_contains(dialect), _position > _after)
            .order_by(_items.guild_id, _items.tribute_id, _slot_order, _items.number)
            .limit(bindparam("limit", type_=Integer()))
        )

    result: HitSelect = _cached(("window", dialect, str(by_guild)), build)
    return result


def scan_statement(dialect: str, by_guild: bool) -> HitSelect:
    """Hits found by testing every item in table order, then sorted: no key-order walk.

    Comparing and sorting on ``guild_id + 0`` keeps the planner off the primary key index (whose order
    it would otherwise follow to stop early, item by item through the index: two to four
    times slower than a table scan when the query is rare or a miss).
    """

    def build() -> HitSelect:
        statement = (
            select(_items.guild_id, _items.tribute_id, _items.slot, _items.number, _items.item)
            .where(_contains(dialect), _unindexed_position > _after)
            .order_by(_items.guild_id + 0, _items.tribute_id, _slot_order, _items.number)
            .limit(bindparam("limit", type_=Integer()))
        )
        return statement.where(_items.guild_id == _guild) if by_guild else statement

    result: HitSelect = _cached(("scan", dialect, str(by_guild)), build)
    return result


def indexed_statement(dialect: str, by_guild: bool) -> HitSelect:
    """Hits the trigram index finds (bound ``phrase`` on SQLite, ``pattern`` on PostgreSQL)."""

    def build() -> HitSelect:
        narrow = search.trigram_condition() if dialect == "postgresql" else search.fts_condition()
        return _hits(dialect, by_guild, narrow)

    result: HitSelect = _cached(("indexed", dialect, str(by_guild)), build)
    return result


def texts_statement(dialect: str, by_guild: bool) -> HitSelect:
    """Hits among the items whose folded text is one of the bound ``texts``.

    :data:`TEXT_INDEX` holds each item's folded text and then its key, so the page's keys
    are found and sorted in the index alone; only the page's own rows are read.  (Its
    collation is named on PostgreSQL; on SQLite the guild filter is kept away from the
    primary key's index, which the planner would otherwise take for it: a walk of the guild.)
    """

    def build() -> HitSelect:
        folded = _items.item_folded.collate("C") if dialect == "postgresql" else _items.item_folded
        keys = (
            select(_items.guild_id, _items.tribute_id, _items.slot, _items.number)
            .where(folded.in_(bindparam("texts", expanding=True)), _contains(dialect))
            .where(_owner >= _after_owner, _position > _after)
            .order_by(_items.guild_id, _items.tribute_id, _slot_order, _items.number)
            .limit(bindparam("limit", type_=Integer()))
        )
        if by_guild:  # ``+ 0``: an equality the primary key's index cannot serve
            keys = keys.where(_items.guild_id + 0 == _guild)
        page = keys.subquery("page")
        same = and_(*(_items[name] == page.c[name] for name in ("guild_id", "tribute_id", "slot", "number")))
        return (
            select(_items.guild_id, _items.tribute_id, _items.slot, _items.number, _items.item)
            .join_from(inventory_items, page, same)
            .order_by(_items.guild_id, _items.tribute_id, _slot_order, _items.number)
        )

    result: HitSelect = _cached(("texts", dialect, str(by_guild)), build)
    return result


def _distinct_texts_sql(dialect: str) -> str:
    """A loose index scan: each distinct ``item_folded`` by one seek in :data:`TEXT_INDEX`.

    At most ``budget`` texts; the recursion stops at the last text (NULL).
    """
    if dialect == "postgresql":
        return """
        WITH RECURSIVE texts(value, step) AS (
            (SELECT item_folded COLLATE "C", 1 FROM inventory_items
              ORDER BY item_folded COLLATE "C" LIMIT 1)
            UNION ALL
            SELECT (SELECT i.item_folded COLLATE "C" FROM inventory_items AS i
                     WHERE i.item_folded COLLATE "C" > t.value
                     ORDER BY i.item_folded COLLATE "C" LIMIT 1), t.step + 1
              FROM texts AS t WHERE t.value IS NOT NULL AND t.step <= :budget)
        SELECT value FROM texts WHERE value IS NOT NULL"""
    return f"""
        WITH RECURSIVE texts(value, step) AS (
            SELECT (SELECT min(item_folded) FROM inventory_items INDEXED BY {TEXT_INDEX}), 1
            UNION ALL
            SELECT (SELECT min(item_folded) FROM inventory_items INDEXED BY {TEXT_INDEX}
                     WHERE item_folded > t.value), t.step + 1
              FROM texts AS t WHERE t.value IS NOT NULL AND t.step <= :budget)
        SELECT value FROM texts WHERE value IS NOT NULL"""


def has_text_index(conn: Connection) -> bool:
    """Whether :data:`TEXT_INDEX` exists (in the current schema on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        sql = search.HAS_INDEX_SQL
    else:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :name"
    return conn.execute(text(sql), {"name": TEXT_INDEX}).first() is not None


def ensure_text_index(conn: Connection) -> None:
    """Create :data:`TEXT_INDEX` when missing (in a write transaction; fills it from the
    items), and drop its earlier form, which it replaces.

    ``COLLATE "C"`` on PostgreSQL: code point order, as the loose scan compares.
    """
    column = 'item_folded COLLATE "C"' if conn.dialect.name == "postgresql" else "item_folded"
    conn.execute(text(f"DROP INDEX IF EXISTS {OLD_TEXT_INDEX}"))
    conn.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {TEXT_INDEX} "
            f"ON inventory_items ({column}, guild_id, tribute_id, slot, number)"
        )
    )


def matching_texts(conn: Connection, folded_query: str, budget: int) -> list[str] | None:
    """The distinct folded texts containing the query; ``None``: more than ``budget`` texts."""
    found = conn.execute(text(_distinct_texts_sql(conn.dialect.name)), {"budget": budget}).scalars()
    texts = []
    listed = 0
    for value in found:
        listed += 1
        if folded_query in value:
            texts.append(value)
    if listed > budget:
        return None
    return texts


@dataclass
class TextIndexState:
    """What a store's searches learned of its text index: whether it exists (remembered on
    PostgreSQL only), and whether the store holds too many distinct texts to list for a query
    of 3 or more characters (which then asks the trigram index at once), believed until
    :data:`TOO_MANY_TEXTS_SECONDS` have passed: one wasted listing every few minutes at most."""

    too_many_until: float = 0.0
    #: Whether PostgreSQL's text index was seen: it stays (a bulk import there keeps its
    #: indexes), so it is not looked up again.  SQLite's is dropped during a bulk import.
    text_index_seen: bool = False

    def has_text_index(self, conn: Connection) -> bool:
        if self.text_index_seen:
            return True
        found = has_text_index(conn)
        self.text_index_seen = found and conn.dialect.name == "postgresql"
        return found

    def worth_listing(self) -> bool:
        return time.monotonic() >= self.too_many_until

    def found_too_many(self) -> None:
        self.too_many_until = time.monotonic() + TOO_MANY_TEXTS_SECONDS


def position_params(after: HitPosition | None) -> dict[str, Any]:
    guild, tribute, slot, number = after if after is not None else (-1, "", 0, 0)
    return {"after_guild": guild, "after_tribute": tribute, "after_slot": slot, "after_number": number}


def search_page(
    conn: Connection,
    folded_query: str,
    guild_id: int | None,
    after: HitPosition | None,
    limit: int,
    *,
    use_index: bool,
    window: int = WINDOW_TRIBUTES,
    text_state: TextIndexState | None = None,
) -> list[RowMapping]:
    """At most ``limit`` hits after ``after`` (see the module documentation), as rows of
    ``guild_id, tribute_id, slot, number, item``.  The caller holds one read transaction.

    ``use_index``: whether the trigram index may be asked (it exists); ``window``: how
    many tributes are walked first (tests make it small, to reach the other plans).
    """
    if window < 1 or limit < 1:
        raise InvalidInputError(f"invalid search: window and limit must be positive (got {window}, {limit})")
    dialect = conn.dialect.name
    by_guild = guild_id is not None
    params: dict[str, Any] = {
        "query": folded_query,
        "like": search.like_pattern(folded_query),
        "limit": limit,
        "window": window,
        "window_last": window - 1,
        **position_params(after),
    }
    if by_guild:
        params["guild_id"] = guild_id
    hits: list[RowMapping] = []
    for walked in range(2):
        hits += conn.execute(window_statement(dialect, by_guild), params).mappings().all()
        if len(hits) >= limit:
            return hits[:limit]
        end = conn.execute(window_end_statement(by_guild), params).first()
        if end is None:  # the window reached the end of the data
            return hits
        # What is left comes after the window's last tribute.
        past_window: HitPosition = (int(end.guild_id), str(end.tribute_id), _PAST_TRIBUTE, 0)
        params.update(limit=limit - len(hits), **position_params(past_window))
        # A second window when the hits so far say it fills the page cheaply (a query
        # hitting between about 1 item in 400 and 1 in 2,000): the walk costs the rows
        # it reads, the index every hit it has, and such a query has thousands.
        needed = _second_window(len(hits), limit, params["window"]) if walked == 0 else None
        if needed is None:
            break
        params.update(window=needed, window_last=needed - 1)
    text_state = text_state if text_state is not None else TextIndexState()
    return hits + _rest(conn, dialect, folded_query, by_guild, params, use_index, text_state)


def _second_window(found: int, limit: int, window: int) -> int | None:
    """Tributes a second window needs to fill the page (twice the estimate from the
    ``found`` hits of the first ``window`` tributes); ``None``: ask the index instead."""
    if found == 0:
        return None
    needed = math.ceil(2 * (limit - found) * window / found)
    return needed if needed <= SECOND_WINDOW_MAX else None


def _rest(
    conn: Connection,
    dialect: str,
    folded_query: str,
    by_guild: bool,
    params: dict[str, Any],
    use_index: bool,
    text_state: TextIndexState,
) -> list[RowMapping]:
    """Hits after the window: through the text index, the trigram index, or by a scan.

    The text index first, when the store holds few distinct texts (as inventories do:
    ``Meat (2/3 uses.)`` a thousand times): the matching texts are found in Python and
    their items' keys sorted in the index.  Otherwise a query of 3 or more characters asks
    the trigram index, a shorter one scans.
    """
    long_query = use_index and len(folded_query) >= search.MIN_FTS_QUERY
    if (not long_query or text_state.worth_listing()) and text_state.has_text_index(conn):
        budget = (LONG_QUERY_TEXT_BUDGET if long_query else DISTINCT_BUDGET).get(dialect, 250)
        texts = matching_texts(conn, folded_query, budget)
        if texts is None and long_query:
            text_state.found_too_many()
        if texts is not None and len(texts) <= MATCHED_TEXTS_BUDGET:
            if not texts:
                return []
            statement = texts_statement(dialect, by_guild)
            return list(conn.execute(statement, dict(params, texts=texts)).mappings())
    if long_query:
        if dialect == "postgresql":
            params["pattern"] = search.like_pattern(folded_query)
        else:
            params["phrase"] = search.fts_phrase(folded_query)
        return list(conn.execute(indexed_statement(dialect, by_guild), params).mappings())
    return list(conn.execute(scan_statement(dialect, by_guild), params).mappings())
