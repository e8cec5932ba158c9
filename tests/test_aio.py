"""tributestore.aio: awaitable store, writes off the event loop, serialised, never torn by cancellation."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from helpers import local_store_url

from tributestore import (
    CapacityError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    TributeStore,
    open_store,
)
from tributestore.aio import AsyncTributeStore, StoreClosedError, open_async_store

GUILD = 1395951775160340551
BACKENDS = [pytest.param(name, marks=pytest.mark.backend(name)) for name in ("sqlite", "json", "composite")]


store_url = local_store_url


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path)


class RecordingStore:
    """A thin proxy around a real store: records the thread of every method call."""

    def __init__(self, store: TributeStore) -> None:
        self._store = store
        self.threads: Counter[int] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.threads[threading.get_ident()] += 1
            return attribute(*args, **kwargs)

        return call


class LoopIOWatch:
    """An audit hook noting file and database opens under ``root`` made on the watched thread."""

    EVENTS = ("open", "os.", "sqlite3.", "shutil.")

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.thread: int | None = None
        self.seen: list[tuple[str, str]] = []
        sys.addaudithook(self._hook)  # hooks cannot be removed: _hook is inert once thread is None

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.thread is None or threading.get_ident() != self.thread:
            return
        if event.startswith(self.EVENTS) and any(self.root in str(arg) for arg in args):
            self.seen.append((event, str(args[0])))


def test_every_public_method_is_a_coroutine_with_the_same_name(tmp_path: Path) -> None:
    public = {
        name
        for name, value in inspect.getmembers(TributeStore)
        if callable(value) and not name.startswith("_")
    }
    public -= {"transaction", "snapshot"}  # documented: run_in_transaction(fn) instead

    async def main() -> None:
        async with open_async_store(f"sqlite:///{tmp_path}/x.db") as store:
            for name in sorted(public):
                assert inspect.iscoroutinefunction(getattr(store, name)), name
            assert inspect.iscoroutinefunction(store.run_in_transaction)
            with pytest.raises(AttributeError):
                store.transaction  # noqa: B018

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_and_errors_are_the_sync_ones(tmp_path: Path, backend: str) -> None:
    async def main() -> None:
        async with open_async_store(store_url(backend, tmp_path)) as store:
            tribute = await store.create_tribute(GUILD, "d1f", name="Glimmer")
            assert tribute.tribute_id == "D1F"
            await store.set_capacity(GUILD, "D1F", capacity=1)
            inventory = await store.add_item(GUILD, "D1F", "Rope")
            assert inventory.items == ["Rope"]
            with pytest.raises(CapacityError):
                await store.add_item(GUILD, "D1F", "Canteen")
            with pytest.raises(NotFoundError):
                await store.get_inventory(GUILD, "D9M")
            await store.add_file(GUILD, "D1F", "a.png", b"png")
            assert await store.read_file(GUILD, "D1F", "a.png") == b"png"
            assert [t.tribute_id for t in await store.iter_tributes()] == ["D1F"]
            assert (await store.counts()).items == 1
        assert store.closed
        with pytest.raises(StoreClosedError):
            await store.get_tribute(GUILD, "D1F")
        with pytest.raises(StorageError):  # what the sync store raises after close: one handler for both
            await store.get_tribute(GUILD, "D1F")
        with pytest.raises(StorageError):
            store.sync.get_tribute(GUILD, "D1F")

    asyncio.run(main())


def test_200_concurrent_writes_lose_nothing_and_never_touch_storage_on_the_loop(
    url: str, tmp_path: Path
) -> None:
    tributes = ["D1F", "D1M", "D2F", "D2M", "D3F"]
    tasks, per_task = 10, 20  # 200 writes
    watch = LoopIOWatch(tmp_path)

    async def writer(store: AsyncTributeStore, task: int) -> None:
        for n in range(per_task):
            tid = tributes[(task + n) % len(tributes)]
            await store.add_item(GUILD, tid, f"t{task}-{n}", force=True)

    async def main() -> RecordingStore:
        loop_thread = threading.get_ident()
        recording = RecordingStore(await asyncio.to_thread(open_store, url))
        store = AsyncTributeStore(cast(TributeStore, recording))
        watch.thread = loop_thread
        try:
            for tid in tributes:
                await store.create_tribute(GUILD, tid)
            await asyncio.gather(*(writer(store, task) for task in range(tasks)))
            for tid in tributes:
                items = (await store.get_inventory(GUILD, tid)).items
                expected = {
                    f"t{task}-{n}"
                    for task in range(tasks)
                    for n in range(per_task)
                    if tributes[(task + n) % len(tributes)] == tid
                }
                assert sorted(items) == sorted(expected)  # no lost update, no duplicate
            await store.close()
        finally:
            watch.thread = None
        assert loop_thread not in recording.threads, "a store call ran on the event loop's thread"
        return recording

    recording = asyncio.run(main())
    assert sum(recording.threads.values()) >= 200 + 5 + 5
    assert watch.seen == [], f"storage I/O on the event loop's thread: {watch.seen[:5]}"
    with open_store(url) as reopened:
        assert reopened.counts().items == tasks * per_task


def test_writes_run_in_call_order_one_at_a_time(url: str) -> None:
    async def main() -> None:
        async with open_async_store(url) as store:
            await store.create_tribute(GUILD, "D1F")
            active, overlaps = [0], [0]

            def traced(item: str) -> Callable[[TributeStore], None]:
                def fn(sync: TributeStore) -> None:
                    active[0] += 1
                    overlaps[0] = max(overlaps[0], active[0])
                    sync.add_item(GUILD, "D1F", item, force=True)
                    active[0] -= 1

                return fn

            # started in this order, without awaiting in between
            pending = [asyncio.ensure_future(store.run_in_transaction(traced(f"i{n}"))) for n in range(30)]
            await asyncio.gather(*pending)
            assert overlaps[0] == 1
            assert (await store.get_inventory(GUILD, "D1F")).items == [f"i{n}" for n in range(30)]

    asyncio.run(main())


def test_a_cancelled_write_still_completes_wholly(url: str) -> None:
    started, release = threading.Event(), threading.Event()

    def two_items(sync: TributeStore) -> None:
        sync.add_item(GUILD, "D1F", "first")
        started.set()
        release.wait(10)
        sync.add_item(GUILD, "D1F", "second")

    async def main() -> None:
        store = await open_async_store(url)
        await store.create_tribute(GUILD, "D1F")
        running = asyncio.create_task(store.run_in_transaction(two_items))
        await asyncio.to_thread(started.wait, 10)
        queued = asyncio.create_task(store.add_item(GUILD, "D1F", "queued"))
        await asyncio.sleep(0)  # the queued write is submitted behind the running one
        never = asyncio.create_task(store.add_item(GUILD, "D1F", "never"))
        for task in (running, queued, never):
            task.cancel()  # `never` is cancelled before its coroutine starts: nothing submitted
        for task in (running, queued, never):
            with pytest.raises(asyncio.CancelledError):
                await task
        release.set()
        await store.close()  # waits for the cancelled tasks' writes

    asyncio.run(main())
    with open_store(url) as reopened:
        assert reopened.get_inventory(GUILD, "D1F").items == ["first", "second", "queued"]


def test_run_in_transaction_is_all_or_nothing(url: str) -> None:
    def half(sync: TributeStore) -> None:
        sync.add_item(GUILD, "D1F", "Rope")
        sync.remove_item(GUILD, "D1F", 5)  # NotFoundError: the whole transaction rolls back

    async def main() -> None:
        async with open_async_store(url) as store:
            await store.create_tribute(GUILD, "D1F")
            with pytest.raises(NotFoundError):
                await store.run_in_transaction(half)
            assert (await store.get_inventory(GUILD, "D1F")).items == []
            moved = await store.run_in_transaction(lambda sync: sync.add_item(GUILD, "D1F", "Knife").items)
            assert moved == ["Knife"]

    asyncio.run(main())


def test_open_async_store_follows_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTESTORE_URL", f"sqlite:///{tmp_path}/configured.db")

    async def main() -> str:
        async with open_async_store() as store:
            await store.create_tribute(GUILD, "D1F")
            return store.url

    assert "configured.db" in asyncio.run(main())
    assert (tmp_path / "configured.db").exists()


def test_the_watch_sees_storage_io_made_on_its_thread(url: str, tmp_path: Path) -> None:
    """Control: the audit-hook watch used above does catch a sync store working on its thread."""
    watch = LoopIOWatch(tmp_path)
    watch.thread = threading.get_ident()
    try:
        with open_store(url) as store:
            store.create_tribute(GUILD, "D1F")
    finally:
        watch.thread = None
    assert watch.seen


@pytest.mark.parametrize("readers", [0, -1, "4", 2.0, True, None, 10**6])
def test_bad_readers_are_refused_before_anything_is_opened(tmp_path: Path, readers: object) -> None:
    with pytest.raises(InvalidInputError, match="readers must be a whole number"):
        open_async_store(f"sqlite:///{tmp_path}/thg.db", readers=readers)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_run_in_transaction_refuses_what_is_not_a_function(url: str) -> None:
    async def main() -> None:
        async with open_async_store(url) as store:
            with pytest.raises(InvalidInputError, match="run_in_transaction needs a function"):
                await store.run_in_transaction(None)  # type: ignore[arg-type]

    asyncio.run(main())
