"""``python -m benchmarks.aio_lag``: the event loop's lag during 1,000 async writes.

A ticker coroutine sleeps 1 ms at a time and records how late each wake-up is
(the loop's lag: how long a Discord heartbeat or command would wait).  Meanwhile
20 tasks make 1,000 ``add_item`` writes over 10 tributes, for each backend:

- ``aio``: through :class:`tributestore.aio.AsyncTributeStore` (worker threads);
- ``blocking``: the sync store called straight from the coroutines (yielding to
  the loop between writes), which is what a bot without the async API does.

Reported per backend and mode: wall time, writes/s, and the ticker's lag
(p50, p99, max) in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tributestore import TributeStore, open_store
from tributestore.aio import AsyncTributeStore

GUILD = 1395951775160340551
TRIBUTES = [f"D{n}F" for n in range(1, 11)]
TASKS = 20
TICK = 0.001


@dataclass
class LagResult:
    backend: str
    mode: str
    writes: int
    wall_s: float
    lags_ms: list[float]

    @property
    def rate(self) -> float:
        return self.writes / self.wall_s

    def lag(self, quantile: float) -> float:
        ordered = sorted(self.lags_ms)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] if ordered else 0.0


def store_url(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp}/thg.db"
    if backend == "json":
        return f"json:///{tmp}/store"
    open_store(f"json:///{tmp}/f").close()
    primary = quote(f"sqlite:///{tmp}/p.db", safe="")
    fallback = quote(f"json:///{tmp}/f", safe="")
    return f"composite:?primary={primary}&fallback={fallback}"


async def _ticker(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(TICK)
        lags.append(max(0.0, (loop.time() - start - TICK) * 1000))


async def _measure(write: Callable[[str, str], Awaitable[object]], writes: int) -> tuple[float, list[float]]:
    stop, lags = asyncio.Event(), list[float]()
    ticker = asyncio.create_task(_ticker(stop, lags))
    await asyncio.sleep(0.01)
    per_task = writes // TASKS

    async def task(number: int) -> None:
        for n in range(per_task):
            await write(TRIBUTES[(number + n) % len(TRIBUTES)], f"item {number}-{n}")

    started = time.perf_counter()
    await asyncio.gather(*(task(number) for number in range(TASKS)))
    wall = time.perf_counter() - started
    stop.set()
    await ticker
    return wall, lags


def _prepare(url: str) -> TributeStore:
    store = open_store(url)
    for tid in TRIBUTES:
        store.create_tribute(GUILD, tid)
        store.set_capacity(GUILD, tid, capacity=10_000)
    return store


async def _run_aio(url: str, writes: int) -> tuple[float, list[float]]:
    store = AsyncTributeStore(await asyncio.to_thread(_prepare, url))
    try:
        return await _measure(lambda tid, item: store.add_item(GUILD, tid, item), writes)
    finally:
        await store.close()


async def _run_blocking(url: str, writes: int) -> tuple[float, list[float]]:
    store = _prepare(url)

    async def write(tid: str, item: str) -> None:
        store.add_item(GUILD, tid, item)  # blocks the loop for the whole write
        await asyncio.sleep(0)

    try:
        return await _measure(write, writes)
    finally:
        store.close()


def run(writes: int = 1000, backends: tuple[str, ...] = ("sqlite", "json", "composite")) -> list[LagResult]:
    results = []
    for backend in backends:
        for mode, runner in (("aio", _run_aio), ("blocking", _run_blocking)):
            with tempfile.TemporaryDirectory(prefix="aio-lag-") as tmp:
                wall, lags = asyncio.run(runner(store_url(backend, Path(tmp)), writes))
                results.append(LagResult(backend, mode, writes, wall, lags))
    return results


def format_table(results: list[LagResult]) -> str:
    lines = [
        "| backend | mode | writes | wall s | writes/s | lag p50 ms | lag p99 ms | lag max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.mode} | {r.writes} | {r.wall_s:.2f} | {r.rate:.0f} | "
            f"{statistics.median(r.lags_ms) if r.lags_ms else 0:.2f} | {r.lag(0.99):.2f} | "
            f"{max(r.lags_ms, default=0):.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.aio_lag", description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=1000, help="writes per backend and mode (default 1000)")
    parser.add_argument("--backends", default="sqlite,json,composite", help="comma-separated")
    args = parser.parse_args(argv)
    backends = tuple(name.strip() for name in args.backends.split(",") if name.strip())
    print(format_table(run(args.writes, backends)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
