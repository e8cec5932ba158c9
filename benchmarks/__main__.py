"""``python -m benchmarks``: copy, memory, search, add-item and composite benchmarks.

For each size N a legacy THGBot directory of N tributes x 10 items is
generated (see :mod:`benchmarks.generate`), then, on that same data:

1. ``tributestore copy thgbot:///LEGACY sqlite:///DB --no-backup`` runs in a child
   process (with verification); rows/s and the child's peak RSS are taken;
2. the same rows go into a fresh file with the same schema and pragmas by raw
   ``sqlite3.executemany`` in one transaction (the physical limit);
3. a tributestore JSON store is filled from the SQLite one (``copy_store``);
4. global inventory search (p50/p95) on SQLite, JSON and the legacy way
   (``json.load`` of inventories.json and a scan, at every call);
5. composite (SQLite primary, the legacy directory as fallback) reads vs the
   SQLite store alone;
6. ``add_item`` (p50/p95) on SQLite and JSON, and the legacy way (load the whole
   file, change it, ``json.dump`` it back indented).

``--markdown FILE`` also writes the tables as Markdown.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tributestore import open_store
from tributestore.copier import copy_store
from tributestore.plugins import registry

from .generate import generate
from .legacy_bot import legacy_add, legacy_search
from .limit import prepare as prepare_limit
from .spawn import measured

#: Search queries: broad ones (each hits about 3% of all items), selective ones
#: (about 0.1%) and misses; short (under 3 characters: no trigram index) and long.
BROAD = ("meat", "kn", "canteen", "(1/3 uses.)")
SELECTIVE = ("rusty spear", "golden trident", "poisoned mace")
MISSES = ("xq", "unobtainium")
QUERIES = BROAD + SELECTIVE + MISSES


def legacy_url(path: Path) -> str:
    """The URL of a legacy THGBot directory: ``thgbot:``, or ``json:`` on a tributestore from before
    the thgbot plugin (so an older checkout can be measured with the same benchmarks)."""
    scheme = "thgbot" if "thgbot" in registry().by_scheme else "json"
    return f"{scheme}:///{path}"


@dataclass
class Result:
    n: int
    rows: int = 0
    items: int = 0
    copy_s: float = 0.0
    copy_rss_mb: float = 0.0
    #: The copy's limit (benchmarks/limit.py): json.load, executemany, bulk FTS build; a whole process.
    limit_s: float = 0.0
    #: The same copy with --no-verify: reading the legacy directory and writing, nothing checked.
    copy_unverified_s: float = 0.0
    limit_rss_mb: float = 0.0
    raw_s: float = 0.0
    raw_plain_s: float = 0.0
    search: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (p50, p95) ms
    #: name -> query -> median ms
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    add: dict[str, tuple[float, float]] = field(default_factory=dict)
    composite: dict[str, tuple[float, float]] = field(default_factory=dict)  # op -> (sqlite, composite)
    json_fill_s: float = 0.0
    hits: dict[str, int] = field(default_factory=dict)

    @property
    def copy_rate(self) -> float:
        return self.rows / self.copy_s

    @property
    def raw_rate(self) -> float:
        return self.rows / self.raw_s


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds (nearest rank)."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed_each(calls: list[Callable[[], object]], budget: float, rounds: int) -> list[list[float]]:
    """Seconds of each call: every call runs once, then more rounds while the budget (s) lasts."""
    samples: list[list[float]] = [[] for _ in calls]
    started = time.perf_counter()
    for number in range(rounds):
        if number and time.perf_counter() - started > budget:
            break
        for call, times in zip(calls, samples, strict=True):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    return samples


def timed(calls: list[Callable[[], object]], budget: float, rounds: int) -> list[float]:
    return [sample for times in timed_each(calls, budget, rounds) for sample in times]


def search_samples(
    result: Result, name: str, search: Callable[[str], object], budget: float, rounds: int
) -> None:
    each = timed_each([partial(search, query) for query in QUERIES], budget, rounds)
    result.search[name] = percentiles([sample for times in each for sample in times])
    result.per_query[name] = {q: statistics.median(t) * 1000 for q, t in zip(QUERIES, each, strict=True)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- copy
def run_copy_measured(
    legacy: Path, database: Path, *options: str, cache: Path | None = None
) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of ``tributestore copy`` in a child process (:mod:`.spawn`).

    ``cache``: the legacy index directory (``TRIBUTESTORE_CACHE_DIR``); a new one means a
    first copy of the directory, the index built from the raw files, as a new user's.
    """
    command = [
        sys.executable,
        "-c",
        "from tributestore.cli import main; main()",
        "copy",
        legacy_url(legacy),
        f"sqlite:///{database}",
        "--no-backup",
        *options,
    ]
    env = dict(os.environ)
    if cache is not None:
        env["TRIBUTESTORE_CACHE_DIR"] = str(cache)
    elapsed, peak, code, stdout, stderr = measured(command, env)
    verified = b"verified: every copied tribute is identical" in stdout or "--no-verify" in options
    if code != 0 or not verified:
        raise RuntimeError(f"copy failed ({code}): {stderr.decode()[-2000:]} {stdout.decode()[-2000:]}")
    return elapsed, peak


def run_child(command: list[str]) -> tuple[float, float, bytes, bytes]:
    """Seconds, peak RSS (MB), stdout and stderr of a child process (:mod:`.spawn`)."""
    elapsed, peak, code, stdout, stderr = measured(command)
    if code != 0:
        raise RuntimeError(f"{command[:3]} failed ({code}): {stderr.decode()[-2000:]}")
    return elapsed, peak, stdout, stderr


def limit_measured(legacy: Path, target: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of the copy's limit (:mod:`benchmarks.limit`) as a whole process."""
    with open_store(f"sqlite:///{target}"):
        pass  # the backend creates the same tables, indexes and FTS table (untimed)
    prepare_limit(target)
    elapsed, rss, _out, _err = run_child(
        [sys.executable, str(Path(__file__).with_name("limit.py")), str(legacy), str(target)]
    )
    return elapsed, rss


def raw_insert(source_db: Path, target: Path, *, fts: bool = True, synchronous: str = "FULL") -> float:
    """Seconds to insert the copy's tribute, inventory and item rows by raw executemany.

    The target gets the backend's own schema (tables, indexes, FTS5 triggers),
    created by opening it as a store; the rows are read into memory first.
    """
    with open_store(f"sqlite:///{target}" + ("" if fts else "?fts=off")):
        pass
    src = sqlite3.connect(source_db)
    tables = {}
    for table in ("guilds", "tributes", "inventories", "inventory_items"):
        columns = [row[1] for row in src.execute(f"PRAGMA table_info({table})")]
        rows = src.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        marks = ", ".join("?" * len(columns))
        tables[f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"] = rows
    src.close()
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for statement, rows in tables.items():
        conn.executemany(statement, rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


# ---------------------------------------------------------------- one size
def bench_size(n: int, work: Path, *, quick: bool) -> Result:
    budget = 5.0 if quick else 20.0
    rounds = 3 if quick else 10
    result = Result(n)
    legacy = work / f"legacy-{n}"
    log(f"[N={n}] generating {legacy}")
    made = generate(legacy, n)
    result.rows = made.rows
    result.items = made.items + made.equipped

    database = work / f"copy-{n}.db"
    log(f"[N={n}] tributestore copy -> {database}")
    result.copy_s, result.copy_rss_mb = run_copy_measured(legacy, database, cache=work / "index-cold")
    log(f"[N={n}] tributestore copy --no-verify (the write path alone; a cold index too)")
    result.copy_unverified_s, _rss = run_copy_measured(
        legacy, work / f"copy-unverified-{n}.db", "--no-verify", cache=work / "index-cold-2"
    )
    with open_store(f"sqlite:///{database}") as store:
        counts = store.counts()
    assert counts.tributes + counts.items + counts.equipped == made.rows, counts

    log(f"[N={n}] the limit: json.load + executemany + bulk trigram build (whole process)")
    result.limit_s, result.limit_rss_mb = limit_measured(legacy, work / f"limit-{n}.db")
    with open_store(f"sqlite:///{work / f'limit-{n}.db'}") as limit_store:
        assert limit_store.counts().items + limit_store.counts().equipped == made.items + made.equipped

    log(f"[N={n}] raw executemany")
    result.raw_s = raw_insert(database, work / f"raw-{n}.db")
    result.raw_plain_s = raw_insert(database, work / f"raw-plain-{n}.db", fts=False)

    json_dir = work / f"json-{n}"
    log(f"[N={n}] filling JSON store {json_dir}")
    started = time.perf_counter()
    fsync = os.fsync
    os.fsync = lambda fd: None  # set-up only (not measured): durability is not needed to fill it
    try:
        with open_store(f"sqlite:///{database}") as source, open_store(f"json:///{json_dir}") as target:
            report = copy_store(source, target, verify=False, batch_size=500)
    finally:
        os.fsync = fsync
    os.sync()
    result.json_fill_s = time.perf_counter() - started
    assert report.written.tributes == n, report

    keys: list[tuple[int, str]] = []
    with open_store(f"sqlite:///{database}") as store:
        every = max(1, n // 200)
        keys = [(t.guild_id, t.tribute_id) for i, t in enumerate(store.iter_tributes()) if i % every == 0]

    log(f"[N={n}] search")
    inventories_file = legacy / "inventories" / "inventories.json"
    expected = {query: len(legacy_search(inventories_file, query)) for query in QUERIES}
    for name, url in (("sqlite", f"sqlite:///{database}"), ("json", f"json:///{json_dir}")):
        with open_store(url) as store:
            for query in QUERIES:  # every approach must find the same items before it is timed
                found = len(store.search_items(query))
                assert found == expected[query], (name, query, found, expected[query])
            search_samples(result, name, store.search_items, budget, rounds)
    search_samples(result, "legacy", lambda q: legacy_search(inventories_file, q), budget, rounds)
    result.hits = expected

    log(f"[N={n}] composite reads")
    composite_url = f"composite:?primary={quote(f'sqlite:///{database}', safe='')}" + (
        f"&fallback={quote(legacy_url(legacy), safe='')}"
    )
    with open_store(f"sqlite:///{database}") as plain, open_store(composite_url) as composite:
        for op in ("get_tribute", "get_inventory"):
            pair = []
            for store in (plain, composite):
                method = getattr(store, op)
                calls: list[Callable[[], object]] = [partial(method, *key) for key in keys]
                for call in calls[:20]:  # warm-up
                    call()
                samples = timed(calls, budget / 2, rounds)
                pair.append(statistics.median(samples) * 1000)
            result.composite[op] = (pair[0], pair[1])

    log(f"[N={n}] add_item")
    add_keys = keys[: 50 if quick else 200]
    for name, url in (("sqlite", f"sqlite:///{database}"), ("json", f"json:///{json_dir}")):
        with open_store(url) as store:
            calls = [partial(store.add_item, *key, "Sponsor gift", force=True) for key in add_keys]
            result.add[name] = percentiles(timed(calls, budget, 1))
    scratch = work / f"legacy-add-{n}.json"
    shutil.copyfile(inventories_file, scratch)
    with scratch.open(encoding="utf-8") as handle:
        legacy_keys = list(json.load(handle))[:: max(1, n // 50)]
    calls = [partial(legacy_add, scratch, key, "Sponsor gift") for key in legacy_keys]
    result.add["legacy"] = percentiles(timed(calls, budget, 1))
    scratch.unlink()
    return result


# ---------------------------------------------------------------- output
def machine() -> list[str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in read("/proc/cpuinfo").splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    mem = next((line.split()[1] for line in read("/proc/meminfo").splitlines() if "MemTotal" in line), "0")
    load = os.getloadavg()
    return [
        f"CPU: {model}, {os.cpu_count()} logical cores",
        f"RAM: {int(mem) / 1024 / 1024:.1f} GiB",
        f"OS: {platform.platform()}",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"load average at the end of the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]


def _class_median(r: Result, name: str, queries: tuple[str, ...]) -> float:
    return statistics.median(r.per_query[name][q] for q in queries)


def tables(results: list[Result]) -> str:
    lines = [
        "Copy legacy JSON -> SQLite (`tributestore copy`, plan + copy + verify, a whole process) vs"
        " the limit (`benchmarks/limit.py`, a whole process: `json.load`, the same rows by"
        " `executemany` in one transaction, the trigram index built once); ratio = limit time /"
        " copy time (goal >= 0.5). The old yardstick (rows re-inserted through the per-row FTS"
        " triggers, timed inside a process) is kept as the last columns:",
        "",
        "| N tributes | rows | copy time | limit time | ratio | copy --no-verify | its ratio |"
        " peak RSS copy | peak RSS limit | old raw rows/s (FTS triggers) | old ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.n:,} | {r.rows:,} | {r.copy_s:.2f} s | {r.limit_s:.2f} s | {r.limit_s / r.copy_s:.2f} | "
            f"{r.copy_unverified_s:.2f} s | {r.limit_s / r.copy_unverified_s:.2f} | "
            f"{r.copy_rss_mb:.0f} MB | {r.limit_rss_mb:.0f} MB | {r.raw_rate:,.0f} | "
            f"{r.copy_rate / r.raw_rate:.2f} |"
        )
    lines += [
        "",
        f"Global inventory search, ms p50 / p95 over all {len(QUERIES)} queries:",
        "",
        "| N tributes | items | sqlite | json | legacy (load + scan) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = [f"{r.search[k][0]:.1f} / {r.search[k][1]:.1f}" for k in ("sqlite", "json", "legacy")]
        lines.append(f"| {r.n:,} | {r.items:,} | {' | '.join(cells)} |")
    lines += [
        "",
        "Search by kind of query, median ms (hits per query at that N); speed-up = legacy / sqlite:",
        "",
        "| N tributes | kind | hits | sqlite | json | legacy | speed-up |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for kind, queries in (("broad", BROAD), ("selective", SELECTIVE), ("miss", MISSES)):
            hits = statistics.median(r.hits[q] for q in queries)
            sql, js, leg = (_class_median(r, name, queries) for name in ("sqlite", "json", "legacy"))
            lines.append(
                f"| {r.n:,} | {kind} | {hits:,.0f} | {sql:.2f} | {js:.1f} | {leg:.1f} | {leg / sql:,.0f}x |"
            )
    lines += [
        "",
        "add_item, ms p50 / p95:",
        "",
        "| N tributes | sqlite | json | legacy (rewrite whole file) |",
        "|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = [f"{r.add[k][0]:.2f} / {r.add[k][1]:.2f}" for k in ("sqlite", "json", "legacy")]
        lines.append(f"| {r.n:,} | {' | '.join(cells)} |")
    lines += [
        "",
        "Composite (sqlite primary holding all, legacy directory as fallback) vs sqlite alone, ms p50:",
        "",
        "| N tributes | get_tribute sqlite | composite | ratio | get_inventory sqlite | composite | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = []
        for op in ("get_tribute", "get_inventory"):
            plain, comp = r.composite[op]
            cells.append(f"{plain:.3f} | {comp:.3f} | {comp / plain:.2f}x")
        lines.append(f"| {r.n:,} | {' | '.join(cells)} |")
    return "\n".join(lines)


TITLES = {
    "startup": "Start-up (whole processes, best and median of alternating runs)",
    "pg_copy": "PostgreSQL bulk path: import_documents (COPY) vs a plain COPY of the same rows",
    "legacy_memory": "Legacy directory: copy and composite open, cold and warm index, peak RSS",
    "search_1m": "Search for a bot: search_items(q, limit=25) vs the legacy load-and-scan",
    "copy_memory": "Copies out of SQLite (to JSON, to PostgreSQL): time and peak RSS",
}


def run_extra(name: str, n: int, work: Path, quick: bool) -> list[dict[str, Any]]:
    """Rows of one of the issue-13 measurements (a module of this package with ``run``)."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        rows: list[dict[str, Any]] = module.run(n, work, quick)
    except Exception as error:  # noqa: BLE001 -- one missing server must not lose a long run
        log(f"[{name}] failed: {error!r}")
        return []
    return rows


def extra_markdown(name: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(not measured: see the log)"
    module = importlib.import_module(f"benchmarks.{name}")
    text: str = module.markdown(rows)
    if name == "startup" and rows:
        text += "\n\nWhere open + one read spends its time (`-X importtime`, cumulative):\n\n"
        text += module.breakdown_markdown(module.breakdown())
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated N (tributes)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (and N=1000 by default)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--work-dir", type=Path, help="keep the generated data here (default: a temp dir)")
    parser.add_argument(
        "--extras",
        default="startup,pg_copy,legacy_memory,search_1m,copy_memory",
        help="the issue-13 measurements to run too (comma-separated; '' for none): startup (once),"
        " pg_copy, legacy_memory, search_1m, copy_memory (per size)",
    )
    args = parser.parse_args(argv)
    extras = [name for name in args.extras.split(",") if name]
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if not args.quick or "--sizes" in (argv or sys.argv)
        else [1000]
    )
    work_root = args.work_dir or Path(tempfile.mkdtemp(prefix="tributestore-bench-"))
    work_root.mkdir(parents=True, exist_ok=True)
    results = []
    extra_tables: dict[str, list[dict[str, Any]]] = {}
    if "startup" in extras:
        log("start-up (whole processes)")
        extra_tables["startup"] = run_extra("startup", 0, work_root, args.quick)
    try:
        for n in sizes:
            work = work_root / f"n{n}"
            if work.exists():
                shutil.rmtree(work)
            work.mkdir()
            results.append(bench_size(n, work, quick=args.quick))
            log(tables(results[-1:]))
            for name in extras:
                if name != "startup":
                    extra_tables.setdefault(name, []).extend(run_extra(name, n, work, args.quick))
                    log(extra_markdown(name, extra_tables[name][-1:]))
            if args.work_dir is None:
                shutil.rmtree(work)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_root, ignore_errors=True)
    from .aio_lag import format_table, run  # the asyncio API: the event loop's lag during writes

    lag = format_table(run(writes=200 if args.quick else 1000))
    sections = [f"### {TITLES[name]}\n\n{extra_markdown(name, rows)}" for name, rows in extra_tables.items()]
    text = "\n".join(
        ["Machine:", *(f"- {line}" for line in machine()), "", tables(results), "", lag, "", *sections]
    )
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
