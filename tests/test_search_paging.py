"""Paged search (``search_plan``): every plan returns exactly the hits of a plain Python scan.

The data is deterministic: two guilds, tributes with items and equipped items,
texts shorter than a trigram, LIKE and FTS5 special characters, non-ASCII text
whose ``casefold`` differs from ``lower``, and rare items only in the last
tributes (so a page must look past the first window).  Each query is checked
page by page (``after`` = the last hit of the page before) for several page
sizes and window sizes (a window of one tribute reaches the index, text-index
and scan plans with little data), with and without the guild filter, on SQLite
(trigram index, no index, with the folded-text index) and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import sql_backend, statements_of

from tributestore import TributeStore, open_store
from tributestore.backends.sqlite_backend import search_plan
from tributestore.backends.sqlite_backend.store import SqlBackend
from tributestore.errors import InvalidInputError
from tributestore.models import HitPosition, ItemHit

GUILD_A = 1395951775160340551
GUILD_B = 7
# Sorted by code point on every dialect: "-" < "0" < "9" < "A" < "_".
TRIBUTE_IDS = ["A-1", "A1", "A9", "AZ", "A_1", *[f"T{n:02d}" for n in range(20)]]
COMMON = [
    "Meat (1/3 uses.)",
    "Hunting KNIFE",
    "Canteen",
    "Rope",
    "a",
    "kn",
    "Ab",
    "100% cotton_shirt",
    'say "hi"',
    "back\\slash",
    "Straße map",
    "ﬃ lamp",
    "İzmir rug",
]
QUERIES = [
    # three characters or more: broad, selective, rare, miss, special characters
    "meat",
    "knife",
    "(1/3 uses.)",
    "rusty spear",
    "unobtainium",
    "nothing here",
    "0% c",
    "n_s",
    '"hi"',
    "k\\s",
    "strasse",
    "ffi",
    "i̇zm",
    # one or two characters: broad, rare, miss, short texts themselves
    "a",
    "kn",
    "ab",
    "zq",
    "xq",
    "%",
    "_",
    '"',
    "ss",
    "é",
]


def _items_of(guild: int, index: int) -> tuple[list[str], list[str]]:
    """The items and equipped items of the ``index``-th tribute of ``guild`` (deterministic)."""
    if index % 7 == 3 and index < len(TRIBUTE_IDS) - 3:
        return [], []  # a tribute without items
    items = [COMMON[(index * 5 + k * 3 + guild % 5) % len(COMMON)] for k in range(index % 4 + 1)]
    equipped = [COMMON[(index + k) % len(COMMON)] for k in range(index % 3)]
    if index >= len(TRIBUTE_IDS) - 3:  # rare items, only at the end
        items.append("Rusty spear")
        equipped.append("zq")
    if guild == GUILD_B and index == len(TRIBUTE_IDS) - 1:
        items.append("Unobtainium ore")
    return items, equipped


def _layout() -> dict[tuple[int, str], tuple[list[str], list[str]]]:
    layout = {}
    for guild in (GUILD_A, GUILD_B):
        ids = TRIBUTE_IDS if guild == GUILD_A else TRIBUTE_IDS[::2]
        for index, tribute in enumerate(ids):
            layout[guild, tribute] = _items_of(guild, index if guild == GUILD_A else index * 2)
    return layout


LAYOUT = _layout()


def expected(query: str, guild_id: int | None) -> list[tuple[int, str, str, int, str]]:
    """The plain scan: ``folded query in item.casefold()``, in key order."""
    folded = query.casefold()
    hits = []
    for (guild, tribute), (items, equipped) in sorted(LAYOUT.items()):
        if guild_id is not None and guild != guild_id:
            continue
        for slot, texts in (("items", items), ("equipped", equipped)):
            for number, item in enumerate(texts, start=1):
                if folded in item.casefold():
                    hits.append((guild, tribute, slot, number, item))
    return hits


def fill(store: TributeStore) -> None:
    with store.transaction():
        for guild in (GUILD_A, GUILD_B):
            store.put_guild(guild)
        for (guild, tribute), (items, equipped) in LAYOUT.items():
            store.create_tribute(guild, tribute)
            for item in items:
                store.add_item(guild, tribute, item, force=True)
            for item in equipped:
                store.add_item(guild, tribute, item, equipped=True, force=True)


def as_tuples(hits: list[ItemHit]) -> list[tuple[int, str, str, int, str]]:
    return [(h.guild_id, h.tribute_id, h.slot, h.number, h.item) for h in hits]


def plan_pages(
    backend: SqlBackend,
    query: str,
    guild_id: int | None,
    limit: int,
    window: int,
    text_state: search_plan.TextIndexState | None = None,
) -> list[tuple[int, str, str, int, str]]:
    """Every hit, fetched ``limit`` at a time straight from :func:`search_plan.search_page`."""
    found: list[tuple[int, str, str, int, str]] = []
    after: HitPosition | None = None
    while True:
        with backend.connection() as conn:
            rows = search_plan.search_page(
                conn,
                query.casefold(),
                guild_id,
                after,
                limit,
                use_index=backend.use_fts,
                window=window,
                text_state=text_state,
            )
        page = [(r["guild_id"], r["tribute_id"], r["slot"], r["number"], r["item"]) for r in rows]
        assert len(page) <= limit
        positions = [(g, t, 0 if slot == "items" else 1, n) for g, t, slot, n, _ in page]
        assert positions == sorted(set(positions)), "a page must be in order, without repeats"
        assert after is None or not positions or positions[0] > after, "a page must start after the last"
        found.extend(page)
        if len(page) < limit:
            return found
        guild, tribute, slot, number, _ = page[-1]
        after = (guild, tribute, 0 if slot == "items" else 1, number)


def store_pages(store: TributeStore, query: str, guild_id: int | None, limit: int) -> list[ItemHit]:
    """Every hit through the public API, ``limit`` at a time."""
    found: list[ItemHit] = []
    while True:
        page = store.search_items(query, guild_id, limit=limit, after=found[-1] if found else None)
        if found and page:
            assert page[0].position > found[-1].position, "a page must start after the last"
        found.extend(page)
        if len(page) < limit:
            return found


def check_every_plan(store: TributeStore, queries: list[str] = QUERIES) -> None:
    backend = sql_backend(store)
    for query in queries:
        for guild_id in (None, GUILD_A, GUILD_B):
            want = expected(query, guild_id)
            assert as_tuples(store.search_items(query, guild_id)) == want, (query, guild_id)
            for limit in (1, 3, 25):
                assert as_tuples(store_pages(store, query, guild_id, limit)) == want, (query, guild_id, limit)
                for window in (1, 3, search_plan.WINDOW_TRIBUTES):
                    got = plan_pages(backend, query, guild_id, limit, window)
                    assert got == want, (query, guild_id, limit, window)


def add_text_index(store: TributeStore) -> None:
    backend = sql_backend(store)
    with store.transaction(), backend.connection() as conn:
        search_plan.ensure_text_index(conn)
    with backend.connection() as conn:
        assert search_plan.has_text_index(conn)


def test_the_data_reaches_every_case() -> None:
    """The checks below can fail: rare hits only late, misses, short texts, many broad hits."""
    assert expected("rusty spear", None)[0][1] == TRIBUTE_IDS[-3]
    assert [(guild, tribute) for guild, tribute, *_ in expected("unobtainium", None)] == [
        (GUILD_B, TRIBUTE_IDS[-1])
    ]
    assert expected("xq", None) == [] and expected("nothing here", None) == []
    assert any(len(hit[4]) < 3 for hit in expected("a", None))
    assert len(expected("a", None)) > 25
    assert any(slot == "equipped" for _, _, slot, _, _ in expected("zq", None))


# ------------------------------------------------------------------ SQLite
@pytest.fixture(params=["fts", "no index"])
def sqlite_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TributeStore]:
    option = "" if request.param == "fts" else "?fts=off"
    with open_store(f"sqlite:///{tmp_path / 'search.db'}{option}") as store:
        fill(store)
        yield store


@pytest.mark.backend("sqlite")
def test_sqlite_pages_match_python(sqlite_store: TributeStore) -> None:
    check_every_plan(sqlite_store)


def check_with_text_index(store: TributeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    add_text_index(store)
    check_every_plan(store)
    # Too many distinct texts for the loose index scan: queries of 3 or more characters ask
    # the trigram index, shorter ones scan; as exactly.
    monkeypatch.setattr(search_plan, "LONG_QUERY_TEXT_BUDGET", {"sqlite": 3, "postgresql": 3})
    check_every_plan(store, [query for query in QUERIES if len(query.casefold()) >= 3])
    monkeypatch.setattr(search_plan, "DISTINCT_BUDGET", {"sqlite": 3, "postgresql": 3})
    check_every_plan(store, [query for query in QUERIES if len(query.casefold()) < 3])


def check_texts_before_trigrams(store: TributeStore, monkeypatch: pytest.MonkeyPatch, trigram: str) -> None:
    """A rare query of 3 or more characters finds its few matching texts in the text index and
    sorts their items' keys there (the trigram index, whose every hit's row would be read and
    sorted, is not asked); with too many distinct texts it asks the trigram index, and does not
    list the texts again for a while."""
    backend = sql_backend(store)
    want = expected("rusty spear", None)
    memo = search_plan.TextIndexState()

    def pages() -> list[tuple[int, str, str, int, str]]:
        return plan_pages(backend, "rusty spear", None, 25, 1, memo)

    def sql_of(call: Callable[[], object]) -> list[str]:
        return [sql for sql, _ in statements_of(store, call)]

    assert backend.use_fts
    sent = sql_of(pages)
    assert any("WITH RECURSIVE texts" in sql for sql in sent)
    assert not any(trigram in sql for sql in sent), sent
    assert memo.worth_listing() and pages() == want

    monkeypatch.setattr(search_plan, "LONG_QUERY_TEXT_BUDGET", {"sqlite": 3, "postgresql": 3})
    sent = sql_of(pages)
    assert any("WITH RECURSIVE texts" in sql for sql in sent) and any(trigram in sql for sql in sent)
    assert not memo.worth_listing(), "too many texts: not listed again for a while"
    sent = sql_of(pages)
    assert not any("WITH RECURSIVE texts" in sql for sql in sent) and any(trigram in sql for sql in sent)
    assert pages() == want


@pytest.mark.backend("sqlite")
def test_sqlite_rare_queries_ask_the_text_index_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(f"sqlite:///{tmp_path / 'search.db'}") as store:
        fill(store)
        check_texts_before_trigrams(store, monkeypatch, search_plan.search.FTS_TABLE)


@pytest.mark.backend("sqlite")
def test_sqlite_sorts_a_text_page_in_the_text_index(tmp_path: Path) -> None:
    """SQLite's planner takes the text index for the page's keys (reading no row), with one
    text or several, with or without the guild filter: not the primary key's order."""
    with open_store(f"sqlite:///{tmp_path / 'search.db'}") as store:
        fill(store)
        backend = sql_backend(store)
        for by_guild in (False, True):
            for texts in (["rusty spear"], ["rope", "rusty spear", "canteen"]):
                statement = search_plan.texts_statement("sqlite", by_guild)
                params = dict(search_plan.position_params(None), query="r", like="%r%", limit=25, texts=texts)
                if by_guild:
                    params["guild_id"] = GUILD_A

                def page(query: Any = statement, values: dict[str, Any] = params) -> None:
                    with backend.connection() as conn:
                        assert conn.execute(query, values).all()

                sql, parameters = statements_of(store, page)[-1]
                with backend.connection() as conn:
                    plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
                details = [row[3] for row in plan]
                assert any(f"COVERING INDEX {search_plan.TEXT_INDEX}" in d for d in details), details


@pytest.mark.backend("sqlite")
def test_a_store_with_the_earlier_text_index_gets_the_new_one(tmp_path: Path) -> None:
    """A store made before the text index held the keys: its index is replaced when it is
    opened (the search accelerator is brought up to date as the full-text index is)."""
    path = tmp_path / "search.db"
    with open_store(f"sqlite:///{path}") as store:
        fill(store)
    raw = sqlite3.connect(path)
    raw.execute(f"DROP INDEX {search_plan.TEXT_INDEX}")
    raw.execute(f"CREATE INDEX {search_plan.OLD_TEXT_INDEX} ON inventory_items (item_folded)")
    raw.commit()

    def indexes() -> set[str]:
        found = raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'inventory_items'"
        )
        return {name for (name,) in found} & {search_plan.TEXT_INDEX, search_plan.OLD_TEXT_INDEX}

    assert indexes() == {search_plan.OLD_TEXT_INDEX}
    with open_store(f"sqlite:///{path}") as store:
        assert indexes() == {search_plan.TEXT_INDEX}
        check_every_plan(store)
    raw.close()


@pytest.mark.backend("sqlite")
def test_sqlite_with_text_index(sqlite_store: TributeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    check_with_text_index(sqlite_store, monkeypatch)


@pytest.mark.backend("sqlite")
def test_sqlite_pages_follow_changes(sqlite_store: TributeStore) -> None:
    """A page reflects writes made since the previous one (no stale index or cache)."""
    first = sqlite_store.search_items("rusty spear", GUILD_A, limit=2)
    sqlite_store.add_item(GUILD_A, "A-1", "RUSTY SPEAR tip", force=True)
    again = sqlite_store.search_items("rusty spear", GUILD_A, limit=2)
    assert again[0].tribute_id == "A-1" and again[1] == first[0]
    sqlite_store.delete_tribute(GUILD_A, TRIBUTE_IDS[-3])
    rest = store_pages(sqlite_store, "rusty spear", None, 1)
    assert rest == sqlite_store.search_items("rusty spear")
    assert (GUILD_A, "A-1") in {(h.guild_id, h.tribute_id) for h in rest}
    assert (GUILD_A, TRIBUTE_IDS[-3]) not in {(h.guild_id, h.tribute_id) for h in rest}


@pytest.mark.backend("sqlite")
def test_window_and_limit_must_be_positive(sqlite_store: TributeStore) -> None:
    backend = sql_backend(sqlite_store)
    with backend.connection() as conn, pytest.raises(InvalidInputError, match="window"):
        search_plan.search_page(conn, "a", None, None, 25, use_index=True, window=0)


# ------------------------------------------------------------------ PostgreSQL
@pytest.fixture
def postgres_store(schema_url: str) -> Iterator[TributeStore]:
    with open_store(schema_url) as store:
        fill(store)
        yield store


@pytest.mark.backend("postgres")
def test_postgres_pages_match_python(postgres_store: TributeStore) -> None:
    check_every_plan(postgres_store)


@pytest.mark.backend("postgres")
def test_postgres_with_text_index(postgres_store: TributeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    check_with_text_index(postgres_store, monkeypatch)


@pytest.mark.backend("postgres")
def test_postgres_rare_queries_ask_the_text_index_first(
    postgres_store: TributeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_texts_before_trigrams(postgres_store, monkeypatch, "LIKE")
