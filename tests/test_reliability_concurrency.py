"""Concurrency: 4 processes x 250 writes to the same tribute, on every backend and the composite.

Each process is a fresh interpreter (``subprocess``) that waits for a start
file, so all four contend for the store at once.  Each adds 250 numbered items
to one tribute (``force=True``, capacity ignored) and, every 25 writes, also
reads (inventory, search, listing) while the others write.  Afterwards the
tribute must hold every item exactly once, each process's items in the order
it wrote them, and ``check()`` must find nothing.

``TRIBUTESTORE_CONCURRENCY_WRITES`` changes the writes per process (default 250).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pytest

from tributestore import open_store

PROCESSES = 4
WRITES = int(os.environ.get("TRIBUTESTORE_CONCURRENCY_WRITES", "250"))
TIMEOUT = 240
GUILD = 1395951775160340551  # a guild of the sample legacy directory
SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"

WORKER = """
import sys, time
from pathlib import Path
from tributestore import open_store

url, guild, tribute, proc, writes, go = sys.argv[1:7]
guild, proc, writes = int(guild), int(proc), int(writes)
deadline = time.monotonic() + 60
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("start file never appeared")
    time.sleep(0.001)
with open_store(url) as store:
    for n in range(writes):
        store.add_item(guild, tribute, f"p{proc} #{n:04d}", force=True)
        if n % 25 == 0:
            assert f"p{proc} #{n:04d}" in store.get_inventory(guild, tribute).items
            assert store.search_items(f"p{proc} #{n:04d}", guild_id=guild)
            assert any(t.tribute_id == tribute for t in store.list_tributes(guild))
print("done", proc)
"""


def composite_url(primary: str, fallback: str) -> str:
    return f"composite:?primary={quote(primary, safe='')}&fallback={quote(fallback, safe='')}"


def hammer(tmp_path: Path, url: str, tribute: str) -> float:
    """Run the four writers against ``url``; returns the wall-clock seconds they took."""
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(GUILD), tribute, str(proc), str(WRITES), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for proc in range(PROCESSES)
    ]
    time.sleep(0.5)  # let them import and wait
    began = time.monotonic()
    go.touch()
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=TIMEOUT)
            assert worker.returncode == 0, err
            assert out.startswith("done"), out + err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return time.monotonic() - began


def assert_every_write_once(items: list[str], before: list[str]) -> None:
    assert items[: len(before)] == before, "items present before the run were changed"
    new = items[len(before) :]
    assert len(new) == PROCESSES * WRITES, f"{len(new)} items, expected {PROCESSES * WRITES}"
    duplicates = [item for item, count in Counter(new).items() if count > 1]
    assert not duplicates, duplicates[:5]
    for proc in range(PROCESSES):
        own = [item for item in new if item.startswith(f"p{proc} #")]
        assert own == [f"p{proc} #{n:04d}" for n in range(WRITES)], f"process {proc} lost or reordered"


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("json", marks=pytest.mark.backend("json")),
        pytest.param("sqlite", marks=pytest.mark.backend("sqlite")),
        pytest.param("composite", marks=[pytest.mark.backend("composite"), pytest.mark.backend("sqlite")]),
        pytest.param(
            "composite-json-primary", marks=[pytest.mark.backend("composite"), pytest.mark.backend("json")]
        ),
    ],
)
def test_four_processes_one_tribute(tmp_path: Path, backend: str) -> None:
    if backend.startswith("composite"):  # a fallback is only read: it must exist
        open_store(f"json:///{tmp_path}/js").close()
        open_store(f"sqlite:///{tmp_path}/thg.db").close()
    url = {
        "json": f"json:///{tmp_path}/js",
        "sqlite": f"sqlite:///{tmp_path}/thg.db",
        "composite": composite_url(f"sqlite:///{tmp_path}/thg.db", f"json:///{tmp_path}/js"),
        "composite-json-primary": composite_url(f"json:///{tmp_path}/js", f"sqlite:///{tmp_path}/thg.db"),
    }[backend]
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F", name="contended")
    seconds = hammer(tmp_path, url, "D1F")
    with open_store(url) as store:
        assert store.check() == []
        assert_every_write_once(store.get_inventory(GUILD, "D1F").items, [])
        assert store.counts().items == PROCESSES * WRITES
    print(f"\nconcurrency/{backend}: {PROCESSES} x {WRITES} writes in {seconds:.1f}s, none lost")


@pytest.mark.backend("composite")
@pytest.mark.backend("sqlite")
def test_four_processes_promote_one_legacy_tribute(tmp_path: Path) -> None:
    """The tribute lives only in the read-only legacy fallback: the first write copies it up."""
    with resources.as_file(SAMPLE) as sample:
        legacy = Path(shutil.copytree(sample, tmp_path / "legacy"))
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy}")
    with open_store(f"thgbot:///{legacy}") as store:
        before = store.export_tribute(GUILD, "D1F")
        legacy_files = {f.name: store.read_file(GUILD, "D1F", f.name) for f in before.files}
        # What the legacy data itself asks the operator to decide (unassigned tributes, kept versions).
        legacy_problems = [f"fallback: {problem}" for problem in store.check()]
    assert before.inventory.items, "the sample's D1F should hold items"
    seconds = hammer(tmp_path, url, "D1F")
    with open_store(url) as store:
        assert store.check() == legacy_problems, "the writers damaged the primary or the fallback"
        after = store.export_tribute(GUILD, "D1F")
        assert_every_write_once(after.inventory.items, before.inventory.items)
        assert after.inventory.equipped == before.inventory.equipped
        assert after.tribute == before.tribute and after.prompt == before.prompt
        assert {f.name: store.read_file(GUILD, "D1F", f.name) for f in after.files} == legacy_files
        assert store.details()["tributes only in the fallback"] == store.counts().tributes - 1
    with open_store(f"sqlite:///{tmp_path}/thg.db") as primary:
        assert [t.tribute_id for t in primary.iter_tributes()] == ["D1F"], "promoted once, alone"
    with open_store(f"thgbot:///{legacy}") as store:
        assert store.export_tribute(GUILD, "D1F") == before, "the legacy fallback was written"
    print(f"\nconcurrency/composite legacy promotion: {PROCESSES} x {WRITES} writes in {seconds:.1f}s")
