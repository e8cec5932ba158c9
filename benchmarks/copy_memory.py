"""Peak memory and time of copies out of a SQLite store: ``sqlite -> json`` and ``sqlite -> postgresql``.

At ``n`` tributes (a legacy directory from :mod:`benchmarks.generate`, copied once
into ``work/copy-src-N.db``, not measured), each copy runs as
``tributestore copy sqlite:///SRC DEST --no-backup`` (verification included) in a
child process reaped by ``os.wait4``: its wall time and peak RSS
(``ru_maxrss``) are recorded.  The JSON destination is a fresh directory, the
PostgreSQL one a fresh schema of ``TRIBUTESTORE_BENCH_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1/test``; skipped when the server is not reachable),
dropped afterwards.  Goal (issue #13): peak RSS <= 150 MB at 100k tributes, growing
at most 1.5x from 10k to 100k.  Times and RSS are the best of 3 runs (1 in quick
mode).  Call ``run(n, work, quick)`` for each size, then ``markdown(rows)``.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .generate import generate
from .spawn import measured

SERVER = os.environ.get("TRIBUTESTORE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
VERIFIED = b"verified: every copied tribute is identical"


def copy_measured(source: str, destination: str, *, prelude: str = "") -> tuple[float, float]:
    """Seconds and peak RSS (MB) of ``tributestore copy SOURCE DESTINATION --no-backup`` in a child
    (``prelude``: Python run first in the child, to measure a variant)."""
    command = [sys.executable, "-c", f"{prelude}\nfrom tributestore.cli import main; main()"]
    command += ["copy", source, destination, "--no-backup"]
    elapsed, peak, code, stdout, stderr = measured(command)
    if code != 0 or VERIFIED not in stdout:
        raise RuntimeError(f"copy to {destination} failed ({code}): {stderr.decode()[-2000:]}")
    return elapsed, peak


def source_store(n: int, work: Path) -> Path:
    """A SQLite store of ``n`` generated tributes (made once, reused)."""
    database = work / f"copy-src-{n}.db"
    if database.exists():
        return database
    from tributestore import open_store
    from tributestore.copier import copy_store

    legacy = work / f"copy-legacy-{n}"
    if not (legacy / "inventories" / "inventories.json").exists():
        generate(legacy, n)
    partial = database.with_suffix(".part.db")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    with open_store(f"thgbot:///{legacy}") as source, open_store(f"sqlite:///{partial}") as target:
        copy_store(source, target, verify=False)
    partial.rename(database)
    for leftover in partial.parent.glob(f"{partial.name}-*"):  # the closed store's lock queue file
        leftover.unlink()
    return database


def _postgres_reachable() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(SERVER, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _drop_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _to_json(source: Path, work: Path, prelude: str = "") -> tuple[float, float]:
    target = work / f"copy-json-{uuid.uuid4().hex[:8]}"
    try:
        return copy_measured(f"sqlite:///{source}", f"json:///{target}", prelude=prelude)
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _to_postgres(source: Path, prelude: str = "") -> tuple[float, float]:
    name = f"bench_copymem_{uuid.uuid4().hex[:10]}"
    url = f"{SERVER}{'&' if '?' in SERVER else '?'}schema={name}"
    try:
        return copy_measured(f"sqlite:///{source}", url, prelude=prelude)
    finally:
        _drop_schema(name)


def run(n: int, work: Path, quick: bool) -> list[dict[str, Any]]:
    """One row per destination: n, seconds and peak RSS (MB), best of 3 runs (1 when ``quick``)."""
    work.mkdir(parents=True, exist_ok=True)
    source = source_store(n, work)
    rounds = 1 if quick else 3
    copies: list[tuple[str, Callable[[], tuple[float, float]]]] = [
        ("sqlite -> json", lambda: _to_json(source, work))
    ]
    if _postgres_reachable():
        copies.append(("sqlite -> postgresql", lambda: _to_postgres(source)))
    rows = []
    for name, copy in copies:
        runs = [copy() for _ in range(rounds)]
        rows.append(
            {
                "copy": name,
                "n": n,
                "seconds": min(s for s, _ in runs),
                "peak_rss_mb": min(m for _, m in runs),
                "runs": rounds,
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """A table of the rows of one or more :func:`run` calls, with the 10k -> 100k growth of RSS."""
    lines = [
        "| copy | tributes | seconds | peak RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r["copy"], r["n"])):
        lines.append(f"| {row['copy']} | {row['n']:,} | {row['seconds']:.2f} | {row['peak_rss_mb']:.0f} |")
    by_copy: dict[str, dict[int, float]] = {}
    for row in rows:
        by_copy.setdefault(row["copy"], {})[row["n"]] = row["peak_rss_mb"]
    growth = [
        f"{name}: x{sizes[100_000] / sizes[10_000]:.2f} from 10k to 100k"
        for name, sizes in sorted(by_copy.items())
        if 10_000 in sizes and 100_000 in sizes
    ]
    if growth:
        lines += ["", "Peak RSS growth (goal <= x1.5, <= 150 MB at 100k): " + "; ".join(growth) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    """``python -m benchmarks.copy_memory WORK N [N ...] [--quick]``"""
    quick = "--quick" in argv
    args = [a for a in argv if a != "--quick"]
    work, sizes = Path(args[0]), [int(a) for a in args[1:]]
    rows = [row for n in sizes for row in run(n, work, quick)]
    print(markdown(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
