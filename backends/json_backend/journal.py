"""Journaled commits of a JSON store and the generation counter lock-free readers validate against.

A commit turns a buffer of ``path -> new bytes`` (``None``: delete) into files:

1. ``.generation`` is made odd (a commit is touching files);
2. ``journal.json`` (state ``prepare``) lists the temporary files about to be written;
3. every new file is written whole beside its target, fsync'd, directories fsync'd;
4. ``journal.json`` (state ``commit``) lists the renames and deletions;
5. they are applied, the journal is removed and ``.generation`` made even again.

A crash before step 4 leaves a ``prepare`` journal, whose temporaries
:meth:`Journal.replay` removes (rolled back); a crash after it leaves a
``commit`` journal, which it applies again (rolled forward).  Every function
here expects the caller to hold the store's write lock.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from tributestore.errors import CorruptDataError, StorageError

from .atomic import TEMP_SUFFIX, atomic_write, fsync_dir, make_dirs, remove_empty_dirs, write_fsync
from .documents import encode, parse_json
from .layout import JOURNAL_NAME, Layout

#: A buffered change: new bytes, or ``None`` for a deletion.
Change = bytes | None
T = TypeVar("T")

#: A commit writing more files than this fsyncs them from a few threads at once: the
#: filesystem then makes many of them durable in one journal flush instead of one each
#: (10k tribute files: about 15 times faster), and the commit still waits for every one.
PARALLEL_FSYNC_MIN = 8
FSYNC_THREADS = 8


class Journal:
    """Commits and crash recovery of the store rooted at ``layout.root``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.root = layout.root

    # ------------------------------------------------------------ generation
    def generation(self) -> int:
        """The commit counter (0 when never written): odd while a commit is touching files."""
        path = self.layout.generation
        try:
            with open(path, "rb") as handle:
                raw = handle.read(32)
        except FileNotFoundError:
            return 0
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error.strerror}") from None
        try:
            return int(raw.split(b"\n", 1)[0] or b"0")
        except ValueError:
            return -1  # torn or damaged: odd, never equal to a value read before

    def set_generation(self, *, busy: bool) -> None:
        """Make the counter odd (``busy``: a commit starts touching files) or even (done).

        Not fsync'd: it only tells concurrent readers that something changed.
        """
        current = max(self.generation(), 0)
        if busy:
            new = current + (1 if current % 2 == 0 else 2)
        elif current % 2:
            new = current + 1
        else:
            return
        fd = os.open(self.layout.generation, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"%019d\n" % new, 0)
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- commit
    def commit(self, buffer: Mapping[Path, Change]) -> None:
        """Write every change of ``buffer`` durably, all or (after a crash and a replay) none."""
        layout = self.layout
        txid = uuid.uuid4().hex
        writes = sorted(
            ((path, data) for path, data in buffer.items() if data is not None),
            key=lambda entry: (layout.kind_rank(entry[0]), str(entry[0])),
        )
        deletes = sorted(
            (path for path, data in buffer.items() if data is None),
            key=lambda path: (-layout.kind_rank(path), str(path)),
        )
        renames = [(path.parent / f".{path.name}.{txid}{TEMP_SUFFIX}", path) for path, _ in writes]
        try:
            self.set_generation(busy=True)  # lock-free readers overlapping from here on read again
            temps = [layout.rel(temp) for temp, _ in renames]
            atomic_write(layout.journal, encode({"state": "prepare", "txid": txid, "temps": temps}))
        except OSError as error:
            raise StorageError(f"cannot write {layout.journal}: {error.strerror}") from None
        try:
            self._prepare(renames, writes)
            atomic_write(
                layout.journal,
                encode(
                    {
                        "state": "commit",
                        "txid": txid,
                        "renames": [[layout.rel(t), layout.rel(p)] for t, p in renames],
                        "deletes": [layout.rel(p) for p in deletes],
                    }
                ),
            )
        except OSError as error:
            self.replay()  # rolls the prepared temporaries back
            raise StorageError(f"cannot commit to {self.root}: {error}") from None
        try:
            self._apply(renames, deletes)
        except OSError as error:
            raise StorageError(
                f"commit to {self.root} interrupted ({error}); it will be completed from "
                f"{JOURNAL_NAME} when the store is next used"
            ) from None

    def _prepare(self, renames: list[tuple[Path, Path]], writes: list[tuple[Path, bytes]]) -> None:
        dirs: dict[Path, None] = {}
        for _, target in renames:
            if target.parent not in dirs:
                make_dirs(target.parent)
                dirs[target.parent] = None
        temps = [(temp, data) for (temp, _), (_, data) in zip(renames, writes, strict=True)]
        _each(lambda entry: write_fsync(*entry), temps)
        _each(fsync_dir, dirs)

    def _apply(self, renames: list[tuple[Path, Path]], deletes: list[Path]) -> None:
        dirs: set[Path] = set()
        for temp, target in renames:
            if temp.exists():
                make_dirs(target.parent)
                os.replace(temp, target)
                dirs.add(target.parent)
        for path in deletes:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            dirs.add(path.parent)
        _each(fsync_dir, sorted(dirs))
        self.layout.journal.unlink()
        fsync_dir(self.root)
        for path in deletes:
            remove_empty_dirs(path.parent, self.root)
        self.set_generation(busy=False)

    # -------------------------------------------------------------- recovery
    def root_temps(self) -> list[Path]:
        """Temporaries of :func:`atomic_write` (journal, marker) a crash left in the root.

        The journal does not list them (they are written before it exists, or are it).
        """
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return [self.root / n for n in names if n.startswith(".") and n.endswith(TEMP_SUFFIX)]

    def needs_recovery(self) -> bool:
        """Whether a crash (or a live writer's commit) left a journal, temporaries or an odd counter."""
        return self.layout.journal.exists() or bool(self.root_temps()) or self.generation() % 2 != 0

    def replay(self) -> None:
        """Finish (or undo) a commit a crash interrupted."""
        layout = self.layout
        for temp in self.root_temps():  # only a lock holder writes them: these are dead
            with suppress(FileNotFoundError):
                temp.unlink()
        try:
            raw = layout.journal.read_bytes()
        except FileNotFoundError:
            if self.generation() % 2:  # a crash between the journal's removal and this
                with suppress(OSError):
                    self.set_generation(busy=False)
            return
        except OSError as error:
            raise StorageError(f"cannot read {layout.journal}: {error.strerror}") from None
        journal = parse_json(layout.journal, raw)
        state = journal.get("state")
        try:
            if state == "prepare":
                self._roll_back([layout.from_rel(rel) for rel in journal.get("temps", [])])
            elif state == "commit":
                renames = [(layout.from_rel(t), layout.from_rel(p)) for t, p in journal.get("renames", [])]
                self._apply(renames, [layout.from_rel(p) for p in journal.get("deletes", [])])
            else:
                raise CorruptDataError(f"{layout.journal}: unknown state {state!r}")
        except (TypeError, ValueError) as error:
            raise CorruptDataError(f"{layout.journal}: malformed journal ({error})") from None
        except OSError as error:
            raise StorageError(f"cannot replay {layout.journal}: {error}") from None

    def _roll_back(self, temps: list[Path]) -> None:
        for temp in temps:
            with suppress(FileNotFoundError):
                temp.unlink()
        # The commit may have created directories for its files (a new guild's):
        # remove those left empty, or check() would see a guild with no guild.json.
        for temp in temps:
            remove_empty_dirs(temp.parent, self.root)
        self.layout.journal.unlink()
        fsync_dir(self.root)
        self.set_generation(busy=False)


def _each(action: Callable[[T], None], entries: Iterable[T]) -> None:
    """``action`` on every entry; from :data:`FSYNC_THREADS` threads when there are many.

    Every call has finished when this returns; the first error is raised then.
    """
    entries = list(entries)
    if len(entries) < PARALLEL_FSYNC_MIN:
        for entry in entries:
            action(entry)
        return
    with (
        _interrupts_held(),
        ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="tributestore-fsync") as pool,
    ):
        for _ in pool.map(action, entries):
            pass


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ctrl-C (SIGINT) held back while the block runs, delivered when it ends.

    A KeyboardInterrupt raised in this thread while it was inside the thread pool's own
    locks (submitting work) left one held: the pool's workers and its shutdown then waited
    for each other forever (found: Ctrl-C during a copy into a JSON store hung the copy,
    about once in 200 tries).  The workers inherit the mask, so none takes the signal.
    """
    block = getattr(signal, "pthread_sigmask", None)  # absent on Windows
    if block is None:
        yield
        return
    previous = block(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        block(signal.SIG_SETMASK, previous)
