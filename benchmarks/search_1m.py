"""One page of a search (``limit=25``) at scale: SQLite and PostgreSQL against the legacy bot.

Goal 3 of issue 13: ``store.search_items(query, None, limit=25)`` at 1M items
(100k tributes x 10 items) answers in <= 1/100 of the legacy load-and-scan time
(``json.load`` of inventories.json, then a ``casefold`` scan, at every call) for
every query of 3 characters or more, and in <= 1/10 for 1-2 character queries.

For each query of :data:`QUERIES` a row gives the median milliseconds of the
legacy scan, of SQLite and of PostgreSQL, the ratios (legacy / store: how many
times faster) and whether the goal is met.  Before timing, each store's page is
checked against the legacy scan's first hits (same items, same order), then the query
is run :data:`WARM_UP` times untimed (a bot's steady state, not its first searches).

Call::

    from benchmarks import search_1m
    rows = search_1m.run(100_000, Path("/tmp/work"), quick=False)
    print(search_1m.markdown(rows))

``run`` generates what ``work`` lacks and reuses what it holds:
``work/legacy-N`` (the legacy directory, :func:`benchmarks.generate.generate`),
``work/search-N.db`` (copied from it with ``copy_store``, verification off: the
copy benchmark verifies) and the PostgreSQL schema ``search_n`` (copied from the
SQLite store, then ``VACUUM ANALYZE``: what autovacuum does after a bulk load;
without it the trigram index's pending list is scanned by every search).  A
prepared legacy directory, SQLite store or PostgreSQL URL can be given instead
(``legacy=``, ``sqlite=``, ``postgres=``; ``postgres=None`` skips PostgreSQL, as
does an unreachable server).  As a script::

    python -m benchmarks.search_1m N WORK [--quick] [--legacy DIR] [--sqlite DB]
        [--postgres URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tributestore import TributeStore, open_store
from tributestore.backends.sqlite_backend import search_plan
from tributestore.copier import copy_store
from tributestore.models import ItemHit

from .generate import generate
from .legacy_bot import LegacyHit, legacy_search

#: The queries of ``python -m benchmarks`` (benchmarks/__main__.py), with their kind, and two more.
QUERIES: dict[str, str] = {
    "meat": "broad",
    "kn": "broad",
    "canteen": "broad",
    "(1/3 uses.)": "broad",
    "rusty spear": "selective",
    "golden trident": "selective",
    "poisoned mace": "selective",
    "xq": "miss",
    "unobtainium": "miss",
    # Not in benchmarks/__main__.py: about 1% of the items, where neither a short walk nor the
    # index is cheap (no 2-character substring of the generated items is rarer than that).
    "vy": "medium",
    "heavy": "medium",
}
# Then the selective queries and the long miss once more through the trigram index (kind
# "..., trigram path"): what a store with many distinct texts does (see ``_trigram_path_rows``).
#: Required speed-up over the legacy scan: queries of 3+ characters, and shorter ones.
GOAL_LONG = 100
GOAL_SHORT = 10
PAGE = 25
#: Untimed calls of each query per store before it is timed: a bot serves thousands of
#: searches, and PostgreSQL plans a statement anew for its first executions on a connection
#: (psycopg prepares it at the 5th, the server settles on a plan after 5 more), which
#: made the first rare query of a run 1.5-2x slower for its first 10 calls.
WARM_UP = 10
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1/test"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _median_ms(call: Callable[[], object], rounds: int, budget: float) -> float:
    samples = []
    started = time.perf_counter()
    for number in range(rounds):
        if number >= 3 and time.perf_counter() - started > budget:
            break
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def _legacy_order(hit: LegacyHit, guilds: dict[str, int]) -> tuple[int, str, int, int]:
    key, slot, number, _ = hit
    return (guilds[key.upper()], key.upper(), 0 if slot == "items" else 1, number)


def _page_of(hits: list[ItemHit]) -> list[tuple[int, str, str, int, str]]:
    return [(h.guild_id, h.tribute_id, h.slot, h.number, h.item) for h in hits]


def prepare_sqlite(n: int, work: Path, legacy: Path) -> Path:
    database = work / f"search-{n}.db"
    if not database.exists():
        _log(f"[search N={n}] copying {legacy} -> {database}")
        partial = database.with_suffix(".partial.db")
        partial.unlink(missing_ok=True)
        with open_store(f"thgbot:///{legacy}") as source, open_store(f"sqlite:///{partial}") as target:
            copy_store(source, target, verify=False, batch_size=1000)
        partial.rename(database)
    return database


def prepare_postgres(n: int, server: str, database: Path) -> str | None:
    """The store at ``server`` filled from the SQLite one (once, then ``VACUUM ANALYZE``).

    A URL without ``schema=`` gets the schema ``search_N``.  ``None``: unreachable.
    """
    base, _, query = server.partition("?")
    options = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    schema = options.setdefault("schema", f"search_{n}")
    url = base + "?" + "&".join(f"{key}={value}" for key, value in options.items())
    try:
        with open_store(url) as target, open_store(f"sqlite:///{database}") as source:
            if target.counts() != source.counts():
                _log(f"[search N={n}] copying {database} -> {url}")
                copy_store(source, target, verify=False, batch_size=1000, on_conflict="overwrite")
    except Exception as error:  # noqa: BLE001 - PostgreSQL is optional for this benchmark
        _log(f"[search N={n}] PostgreSQL skipped: {error}")
        return None
    engine = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("inventory_items", "tributes"):
                conn.execute(text(f'VACUUM ANALYZE "{schema}".{table}'))
    finally:
        engine.dispose()
    return url


def run(
    n: int,
    work: Path,
    quick: bool,
    *,
    legacy: Path | None = None,
    sqlite: Path | None = None,
    postgres: str | None = DEFAULT_POSTGRES,
) -> list[dict[str, Any]]:
    """One row per query: median ms of the legacy scan, SQLite and PostgreSQL, ratios, goals."""
    work.mkdir(parents=True, exist_ok=True)
    if legacy is None:
        legacy = work / f"legacy-{n}"
        if not legacy.exists():
            _log(f"[search N={n}] generating {legacy}")
            generate(legacy, n)
    database = sqlite if sqlite is not None else prepare_sqlite(n, work, legacy)
    urls = {"sqlite": f"sqlite:///{database}"}
    if postgres is not None:
        pg_url = prepare_postgres(n, postgres, database)
        if pg_url is not None:
            urls["postgres"] = pg_url

    inventories = legacy / "inventories" / "inventories.json"
    stores = {name: open_store(url) for name, url in urls.items()}
    try:
        guilds = {t.tribute_id: t.guild_id for t in stores["sqlite"].iter_tributes()}
        rows = [
            _measure(n, query, kind, inventories, guilds, stores, quick) for query, kind in QUERIES.items()
        ]
        rows += _trigram_path_rows(n, inventories, guilds, stores, quick)
    finally:
        for store in stores.values():
            store.close()
    return rows


def _trigram_path_rows(
    n: int, inventories: Path, guilds: dict[str, int], stores: dict[str, TributeStore], quick: bool
) -> list[dict[str, Any]]:
    """The rare queries of 3+ characters again, as a store with more distinct texts than a
    long query lists (``search_plan.LONG_QUERY_TEXT_BUDGET``) answers them: through the
    trigram index.  The generated items have 192 distinct texts, which the text index serves."""
    saved = search_plan.LONG_QUERY_TEXT_BUDGET
    search_plan.LONG_QUERY_TEXT_BUDGET = {"sqlite": 0, "postgresql": 0}
    try:
        return [
            _measure(n, query, f"{kind}, trigram path", inventories, guilds, stores, quick)
            for query, kind in QUERIES.items()
            if kind in ("selective", "miss") and len(query) >= 3
        ]
    finally:
        search_plan.LONG_QUERY_TEXT_BUDGET = saved


def _measure(
    n: int,
    query: str,
    kind: str,
    inventories: Path,
    guilds: dict[str, int],
    stores: dict[str, TributeStore],
    quick: bool,
) -> dict[str, Any]:
    """One query's row.  The legacy scan and each store are timed one after the other, so
    a change of the machine's load between queries touches every column alike."""
    rounds, budget = (3, 5.0) if quick else (7, 20.0)
    found = legacy_search(inventories, query)
    ordered = sorted(found, key=lambda hit: _legacy_order(hit, guilds))[:PAGE]
    expected = [(guilds[key.upper()], key.upper(), slot, number, item) for key, slot, number, item in ordered]
    row: dict[str, Any] = {
        "n": n,
        "query": query,
        "kind": kind,
        "hits": len(found),
        "goal": GOAL_LONG if len(query) >= 3 else GOAL_SHORT,
        "legacy_ms": _median_ms(partial(legacy_search, inventories, query), rounds, budget),
    }
    for name, store in stores.items():
        page = _page_of(store.search_items(query, None, limit=PAGE))
        if page != expected:
            raise AssertionError(f"{name}: page of {query!r} differs from the legacy scan's first hits")
        for _ in range(WARM_UP):
            store.search_items(query, None, limit=PAGE)
        ms = _median_ms(partial(store.search_items, query, None, limit=PAGE), rounds * 3, budget)
        row[f"{name}_ms"] = ms
        row[f"{name}_ratio"] = row["legacy_ms"] / ms
        row[f"{name}_met"] = row[f"{name}_ratio"] >= row["goal"]
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (ratios: times faster than the legacy scan)."""
    has_pg = any("postgres_ms" in row for row in rows)
    head = "| N | query | kind | hits | legacy ms | SQLite ms | x | "
    head += "PostgreSQL ms | x | " if has_pg else ""
    head += "goal | met |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        met = [row.get("sqlite_met", False)] + ([row.get("postgres_met", False)] if has_pg else [])
        cells = [
            f"{row['n']:,}",
            f"`{row['query']}`",
            row["kind"],
            f"{row['hits']:,}",
            f"{row['legacy_ms']:.0f}",
            f"{row['sqlite_ms']:.2f}",
            f"{row['sqlite_ratio']:.0f}",
        ]
        if has_pg:
            if "postgres_ms" in row:
                cells += [f"{row['postgres_ms']:.2f}", f"{row['postgres_ratio']:.0f}"]
            else:
                cells += ["-", "-"]
        cells += [f">= {row['goal']}", "yes" if all(met) else "**no**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_1m", description=__doc__)
    parser.add_argument("n", type=int)
    parser.add_argument("work", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--legacy", type=Path)
    parser.add_argument("--sqlite", type=Path)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    rows = run(
        args.n,
        args.work,
        args.quick,
        legacy=args.legacy,
        sqlite=args.sqlite,
        postgres=None if args.no_postgres else args.postgres,
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
