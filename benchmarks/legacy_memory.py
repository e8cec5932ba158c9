"""Memory and time of reading a legacy THGBot directory: a copy, and a bot's composite open.

For a generated legacy directory of ``n`` tributes (``benchmarks.generate``), each measured
in a child process (peak RSS from ``os.wait4``'s ``ru_maxrss``):

- ``copy``: ``tributestore copy thgbot:///DIR sqlite:///DB --no-backup`` (verification and the
  independent check included), first with no legacy index yet (cold: the index is built), then
  with it (warm);
- ``composite open``: a bot's start-up during the transition window, opening
  ``composite:?primary=sqlite:///DB&fallback=thgbot:///DIR`` and reading one tribute, cold and warm.

The legacy index goes to a cache directory of its own under ``work`` (``TRIBUTESTORE_CACHE_DIR``).
Run ``python -m benchmarks.legacy_memory N [WORK] [--quick]``; the lead wires :func:`run` and
:func:`markdown` into ``python -m benchmarks``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .generate import generate
from .spawn import measured

_OPEN_SCRIPT = """
import sys, time
started = time.perf_counter()
from tributestore import open_store
imported = time.perf_counter()
store = open_store(sys.argv[1], mode="write")
opened = time.perf_counter()
store.get_tribute(int(sys.argv[2]), sys.argv[3])
read = time.perf_counter()
print(f"{imported - started:.4f} {opened - imported:.4f} {read - opened:.4f}")
store.close()
"""


def _url(path: Path) -> str:
    return quote(str(path.absolute()))


def _child(command: list[str], cache: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and stdout of a child process (reaped by ``os.wait4``)."""
    env = {**os.environ, "TRIBUTESTORE_CACHE_DIR": str(cache)}
    elapsed, peak, code, out, err = measured(command, env)
    stdout, stderr = out.decode(), err.decode()
    if code != 0:
        raise RuntimeError(f"{command[1:4]} failed ({code}): {stderr[-2000:]} {stdout[-2000:]}")
    return elapsed, peak, stdout


def _some_tribute(legacy: Path) -> tuple[int, str]:
    with sqlite3.connect(legacy / "thgbot.db") as conn:
        guild, tribute = conn.execute(
            "SELECT guild_id, tribute_id FROM tributes ORDER BY rowid LIMIT 1"
        ).fetchone()
    return int(guild), str(tribute).strip().upper().replace(" ", "_")


def run(n: int, work: Path, quick: bool) -> list[dict[str, Any]]:
    """Rows of figures for a legacy directory of ``n`` tributes (generated under ``work`` once)."""
    work.mkdir(parents=True, exist_ok=True)
    legacy = work / f"legacy-{n}"
    if not (legacy / "thgbot.db").is_file():
        shutil.rmtree(legacy, ignore_errors=True)
        generate(legacy, n)
    cache = work / f"index-cache-{n}"
    rounds = 1 if quick else 3
    rows: list[dict[str, Any]] = []

    def measure(what: str, command: list[str], cold: bool, before: Path | None = None) -> dict[str, Any]:
        best: dict[str, Any] | None = None
        for _ in range(rounds):
            if cold:
                shutil.rmtree(cache, ignore_errors=True)
            if before is not None:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{before}{suffix}").unlink(missing_ok=True)
            seconds, peak, stdout = _child(command, cache)
            row = {
                "n": n,
                "what": what,
                "index": "cold" if cold else "warm",
                "seconds": seconds,
                "peak_mb": peak,
            }
            if stdout.count(" ") == 2 and "open" in what:
                imported, opened, read = (float(part) for part in stdout.split())
                row.update(import_s=imported, open_s=opened, first_read_s=read)
            if best is None or seconds < best["seconds"]:
                best = {**row, "peak_mb": min(peak, best["peak_mb"]) if best else peak}
            elif peak < best["peak_mb"]:
                best["peak_mb"] = peak
        assert best is not None
        return best

    target = work / f"copy-{n}.db"
    copy = [sys.executable, "-c", "from tributestore.cli import main; main()"]
    copy += ["copy", f"thgbot:///{_url(legacy)}", f"sqlite:///{_url(target)}", "--no-backup"]
    rows.append(measure("copy legacy -> SQLite", copy, cold=True, before=target))
    rows.append(measure("copy legacy -> SQLite", copy, cold=False, before=target))

    guild, tribute = _some_tribute(legacy)
    primary = work / f"primary-{n}.db"
    url = f"composite:?primary=sqlite:///{_url(primary)}&fallback=thgbot:///{_url(legacy)}"
    bot = [sys.executable, "-c", _OPEN_SCRIPT, url, str(guild), tribute]
    # cold: a first start (no index, no primary yet); warm: a restart (both exist)
    rows.append(measure("composite open + 1 read", bot, cold=True, before=primary))
    rows.append(measure("composite open + 1 read", bot, cold=False))
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| tributes | what | legacy index | seconds | peak RSS MB | open s | first read s |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        open_s = f"{row['open_s']:.3f}" if "open_s" in row else ""
        read_s = f"{row['first_read_s']:.4f}" if "first_read_s" in row else ""
        lines.append(
            f"| {row['n']:,} | {row['what']} | {row['index']} | {row['seconds']:.2f} | "
            f"{row['peak_mb']:.0f} | {open_s} | {read_s} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    quick = "--quick" in args
    args = [arg for arg in args if arg != "--quick"]
    n = int(args[0]) if args else 1000
    work = Path(args[1]) if len(args) > 1 else Path(tempfile.gettempdir()) / "tributestore-legacy-memory"
    print(markdown(run(n, work, quick)))


if __name__ == "__main__":
    main()
