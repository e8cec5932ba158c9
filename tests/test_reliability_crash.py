"""Crash safety: writers and ``tributestore copy`` killed with SIGKILL at random points.

Every trial kills a real child process with SIGKILL, then reopens the store in
this process and checks that ``check()`` finds nothing, that no file is torn
or unreadable, that every write the child acknowledged is there, and that the
one write in flight when it died is either wholly there or wholly absent.

Opening a JSON store replays (or rolls back) a journal a crash left behind, so
the check runs on a fresh open, as the next user of the store would see it.

Trials per scenario: ``TRIBUTESTORE_CRASH_TRIALS`` (default 50); the long run
is ``TRIBUTESTORE_CRASH_TRIALS=200 pytest tests/test_reliability_crash.py``.
Writers are forked from this (already imported) process so a trial costs
milliseconds; the copy runs the real command line in a fresh interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tributestore import NotFoundError, TributeStore, open_store
from tributestore.copier import verify_stores
from tributestore.digest import bundle_digest

TRIALS = int(os.environ.get("TRIBUTESTORE_CRASH_TRIALS", "50"))
#: Wall-clock bound of one scenario (its trials stop early, and the test fails, past it).
SCENARIO_SECONDS = float(os.environ.get("TRIBUTESTORE_CRASH_SECONDS", str(max(120, TRIALS * 3))))
GUILD = 4242
CLI = [sys.executable, "-c", "from tributestore.cli import main; main()"]
#: The CLI with each batch write of a copy followed by a short pause: on a fast disk (tmpfs)
#: a small copy's batches land within a millisecond of each other, faster than a test can
#: aim a kill at the middle.  The writes themselves are the real ones.
PACED_CLI = [
    sys.executable,
    "-c",
    "import time\n"
    "from tributestore.store import TributeStore\n"
    "write = TributeStore.import_many\n"
    "def paced(self, *args, **kwargs):\n"
    "    write(self, *args, **kwargs)\n"
    "    time.sleep(0.005)\n"
    "TributeStore.import_many = paced\n"
    "from tributestore.cli import main\n"
    "main()",
]
SEED = int(os.environ.get("TRIBUTESTORE_CRASH_SEED", str(random.randrange(2**32))))


# ------------------------------------------------------------------ the writer's script
def blob(i: int) -> bytes:
    """File bytes for operation ``i``; several operations share bytes (shared blobs)."""
    return hashlib.sha256(str(i % 4).encode()).digest() * (1 + (i % 4) * 40)


@dataclass
class Model:
    """What a tribute holds after the first ``n`` operations of :func:`run_op`."""

    exists: bool = False
    items: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    prompt: str | None = None


def op_kind(i: int) -> str:
    if i == 0:
        return "create"
    if i % 17 == 0:
        return "delete_file"
    if i % 13 == 0:
        return "remove_item"
    if i % 9 == 0:
        return "prompt"
    if i % 6 == 0:
        return "file"
    return "item"


def apply_op(model: Model, i: int) -> None:
    kind = op_kind(i)
    if kind == "create":
        model.exists = True
    elif kind == "delete_file":
        if model.files:
            del model.files[min(model.files)]
    elif kind == "remove_item":
        if model.items:
            model.items.pop(0)
    elif kind == "prompt":
        model.prompt = f"prompt {i}"
    elif kind == "file":
        model.files[f"f{i:05d}.bin"] = blob(i)
    else:
        model.items.append(f"item {i}")


def run_op(store: TributeStore, tid: str, i: int, model: Model) -> None:
    """Operation ``i`` on the tribute, through the public API (``model`` says what exists)."""
    kind = op_kind(i)
    if kind == "create":
        store.create_tribute(GUILD, tid, name=f"tribute {tid}")
    elif kind == "delete_file":
        if model.files:
            store.delete_file(GUILD, tid, min(model.files))
    elif kind == "remove_item":
        if model.items:
            store.remove_item(GUILD, tid, 1)
    elif kind == "prompt":
        store.set_prompt(GUILD, tid, f"prompt {i}", files=sorted(model.files)[:1])
    elif kind == "file":
        store.add_file(GUILD, tid, f"f{i:05d}.bin", blob(i))
    else:
        store.add_item(GUILD, tid, f"item {i}", force=True)
    apply_op(model, i)


def expected(n: int) -> Model:
    model = Model()
    for i in range(n):
        apply_op(model, i)
    return model


def writer(url: str, tid: str, ack_fd: int) -> None:
    """The child: run operations forever, writing one ack line after each returns."""
    model = Model()
    with open_store(url) as store:
        for i in range(100_000):
            run_op(store, tid, i, model)
            os.write(ack_fd, b"a\n")


# ------------------------------------------------------------------ observing a store
def observe(store: TributeStore, tid: str) -> Model:
    try:
        inventory = store.get_inventory(GUILD, tid)
    except NotFoundError:
        return Model()
    try:
        prompt: str | None = store.get_prompt(GUILD, tid).message
    except NotFoundError:
        prompt = None
    files = {f.name: store.read_file(GUILD, tid, f.name) for f in store.list_files(GUILD, tid)}
    return Model(True, inventory.items, files, prompt)


def unreadable_json_files(root: Path) -> list[str]:
    """Every ``*.json`` file under ``root`` that does not parse (torn or empty)."""
    bad = []
    for path in root.rglob("*.json"):
        try:
            json.loads(path.read_bytes())
        except ValueError as error:
            bad.append(f"{path}: {error}")
    return bad


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def fork_writer(url: str, tid: str) -> tuple[int, int]:
    """Fork a writer child; returns (pid, read end of its ack pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 0
        try:
            os.close(read_fd)
            writer(url, tid, write_fd)
        except BaseException:  # noqa: BLE001 - the child reports anything, then exits
            traceback.print_exc()
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def read_acks(fd: int, wanted: int, timeout: float) -> tuple[int, list[float]]:
    """Read ack lines until ``wanted`` arrived (or EOF/timeout); returns count and arrival times."""
    count, times, buffer = 0, [], b""
    deadline = time.monotonic() + timeout
    while count < wanted and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buffer += chunk
        new = buffer.count(b"\n")
        buffer = buffer.replace(b"\n", b"")
        count += new
        times.extend([time.monotonic()] * new)
    return count, times


def drain(fd: int) -> int:
    """Acks written before the kill but not yet read (the child is dead: read to EOF)."""
    count = 0
    while chunk := os.read(fd, 4096):
        count += chunk.count(b"\n")
    os.close(fd)
    return count


@dataclass
class Figures:
    trials: int = 0
    acked_writes: int = 0
    in_flight_landed: int = 0
    journals_found: int = 0
    figures: dict[str, int] = field(default_factory=dict)


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("json", marks=pytest.mark.backend("json")),
        pytest.param("sqlite", marks=pytest.mark.backend("sqlite")),
    ],
)
def test_writer_killed_at_random_points(tmp_path: Path, backend: str) -> None:
    rng = random.Random(SEED)
    root = tmp_path / "store"
    url = f"json:///{root}" if backend == "json" else f"sqlite:///{tmp_path}/thg.db"
    open_store(url).close()
    figures = Figures()
    finals: dict[str, Model] = {}
    started = time.monotonic()
    for trial in range(TRIALS):
        assert time.monotonic() - started < SCENARIO_SECONDS, f"time bound hit after {trial} trials"
        tid = f"T{trial:04d}"
        journal_before = (root / "journal.json").exists()
        pid, fd = fork_writer(url, tid)
        target = rng.randint(0, 40)
        got, times = read_acks(fd, target, timeout=30)
        # Kill somewhere inside the next write: a random fraction of a typical write's duration.
        typical = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.005
        time.sleep(rng.uniform(0, 1.5 * typical))
        kill(pid)
        acked = got + drain(fd)
        assert acked >= target, f"seed {SEED} trial {trial}: the writer died by itself after {acked} writes"
        figures.trials += 1
        figures.acked_writes += acked
        if backend == "json" and not journal_before and (root / "journal.json").exists():
            figures.journals_found += 1
        with open_store(url) as store:
            assert store.check() == [], f"seed {SEED} trial {trial}"
            state = observe(store, tid)
        if backend == "json":
            assert unreadable_json_files(root) == []
        before, after = expected(acked), expected(acked + 1)
        assert state in (before, after), (
            f"seed {SEED} trial {trial}: {acked} writes acknowledged, the store holds neither that "
            f"state nor the next one: {state}"
        )
        figures.in_flight_landed += state == after and before != after
        finals[tid] = state
    # Later crashes (and their recovery) lost nothing an earlier trial left.
    with open_store(url) as store:
        assert store.check() == []
        for tid, state in finals.items():
            assert observe(store, tid) == state, f"seed {SEED}: {tid} changed after its trial"
    print(
        f"\ncrash/{backend}: seed {SEED}, {figures.trials} kills, {figures.acked_writes} acknowledged "
        f"writes all present, in-flight write landed whole {figures.in_flight_landed} times, "
        f"killed mid-commit (journal left) {figures.journals_found} times"
    )


# ------------------------------------------------------------------ tributestore copy
SOURCE_TRIBUTES = 60


def make_source(url: str) -> None:
    with open_store(url) as store, store.transaction():
        for n in range(SOURCE_TRIBUTES):
            tid = f"S{n:03d}"
            store.create_tribute(GUILD + n % 3, tid, name=f"source {n}")
            for item in range(4):
                store.add_item(GUILD + n % 3, tid, f"item {item} of {tid}")
            name = f"{tid}_1700000000.png"
            store.add_file(GUILD + n % 3, tid, name, b"\x89PNG" + os.urandom(64) * (1 + n % 5))
            store.set_prompt(GUILD + n % 3, tid, f"prompt of {tid}", files=[name])


def written(dst_url: str, dst_path: Path) -> int:
    """How many tributes the destination holds now, read without disturbing the writer."""
    if dst_url.startswith("json:"):
        return sum(1 for _ in dst_path.glob("guilds/*/tributes/*.json"))
    import sqlite3

    if not dst_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{dst_path}?mode=ro", uri=True, timeout=1) as connection:
            return int(connection.execute("select count(*) from tributes").fetchone()[0])
    except sqlite3.Error:
        return 0


def remove(path: Path) -> None:
    """Delete a destination (a JSON directory, or an SQLite file with its -wal and -shm)."""
    if path.is_dir():
        shutil.rmtree(path)
    for extra in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{extra}").unlink(missing_ok=True)


def destination_is_whole(source: TributeStore, dst_url: str, seen: set[tuple[int, str]]) -> int:
    """Check the destination after a kill; returns how many tributes it holds."""
    with open_store(dst_url) as dst:
        assert dst.check() == []
        keys = set()
        for bundle in dst.iter_bundles():
            key = (bundle.tribute.guild_id, bundle.tribute.tribute_id)
            assert bundle_digest(bundle) == bundle_digest(source.export_tribute(*key)), key
            for info in bundle.files:
                assert dst.read_file(*key, info.name) == source.read_file(*key, info.name)
            keys.add(key)
    assert seen <= keys, f"committed tributes lost by a later kill: {sorted(seen - keys)[:5]}"
    seen |= keys
    return len(keys)


@pytest.mark.parametrize(
    ("source_kind", "destination"),
    [
        pytest.param("sqlite", "json", marks=pytest.mark.backend("json")),
        pytest.param("json", "sqlite", marks=pytest.mark.backend("sqlite")),
    ],
)
def test_copy_killed_at_random_points_then_rerun(tmp_path: Path, source_kind: str, destination: str) -> None:
    rng = random.Random(SEED)
    src_url = f"sqlite:///{tmp_path}/src.db" if source_kind == "sqlite" else f"json:///{tmp_path}/src"
    make_source(src_url)
    dst_path = tmp_path / "dst" if destination == "json" else tmp_path / "dst.db"
    dst_url = f"json:///{dst_path}" if destination == "json" else f"sqlite:///{dst_path}"
    arguments = ["copy", src_url, dst_url, "--no-backup", "--batch-size", "1"]
    command = [*PACED_CLI, *arguments]  # the runs that get killed

    def run(cli: list[str] = CLI) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *arguments], capture_output=True, text=True, cwd=tmp_path, timeout=120)

    began = time.monotonic()
    assert run(PACED_CLI).returncode == 0
    full = time.monotonic() - began
    remove(dst_path)

    trials = (TRIALS + 1) // 2  # half of the copy trials per destination backend
    kills = partial = chains = 0
    outcomes: Counter[str] = Counter()  # what the kills met, shown if none landed mid-copy
    started = time.monotonic()
    with open_store(src_url) as source:
        source_digest = [bundle_digest(b) for b in source.iter_bundles()]
        while kills < trials:
            assert time.monotonic() - started < SCENARIO_SECONDS, f"time bound hit after {kills} kills"
            seen: set[tuple[int, str]] = set()
            for attempt in range(min(rng.randint(2, 4), trials - kills)):
                child = subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
                )
                # The first kill of each run aims at the middle of the copy, so every run leaves a
                # partial destination to resume however fast the machine copies (once a run has
                # copied everything, its later kills can only find it whole).
                if attempt and rng.random() < 0.3:  # anywhere: start-up, plan, copy, verify
                    time.sleep(rng.uniform(0, full))
                else:  # inside the copy phase, after a random number of tributes
                    goal = rng.randint(len(seen), SOURCE_TRIBUTES) if attempt else SOURCE_TRIBUTES // 2
                    deadline = time.monotonic() + 2 * full + 5
                    while child.poll() is None and time.monotonic() < deadline:
                        if written(dst_url, dst_path) >= goal:
                            break
                        time.sleep(0.002)
                    else:
                        outcomes["goal not reached"] += 1
                    time.sleep(rng.uniform(0, 0.01))
                exited = child.poll()
                child.kill()
                child.wait(timeout=30)
                kills += 1
                if exited is not None:
                    outcomes[f"exited {exited} before the kill"] += 1
                if not dst_path.exists():
                    outcomes["no destination"] += 1
                    continue
                held = destination_is_whole(source, dst_url, seen)
                outcomes["empty" if held == 0 else "whole" if held == SOURCE_TRIBUTES else "partial"] += 1
                partial += 0 < held < SOURCE_TRIBUTES
            rerun = run()
            assert rerun.returncode == 0, f"seed {SEED}: {rerun.stdout}{rerun.stderr}"
            assert "verified" in rerun.stdout
            with open_store(dst_url) as dst:
                assert verify_stores(source, dst) == [] and dst.check() == []
            chains += 1
            if kills < trials:
                remove(dst_path)
        assert [bundle_digest(b) for b in source.iter_bundles()] == source_digest, "the source changed"
    verify = subprocess.run([*CLI, "verify", src_url, dst_url], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "identical" in verify.stdout, verify.stdout + verify.stderr
    assert partial > 0, f"seed {SEED}: no kill landed in the middle of the copy: {dict(outcomes)}"
    print(
        f"\ncrash/copy {source_kind}->{destination}: seed {SEED}, {kills} kills in {chains} runs to "
        f"completion, {partial} kills left a partial destination ({dict(outcomes)}), every re-run "
        "verified identical"
    )
