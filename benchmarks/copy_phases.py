"""Where a legacy -> SQLite copy spends its time, phase by phase (issue 13, "what remains").

``python -m benchmarks.copy_phases LEGACY_DIR WORK_DIR`` runs the phases of
``tributestore copy`` one after the other in this process, with the public API, and
prints the seconds of each: the legacy index built from the raw files (cold: a new
cache directory), reading the source documents, validating them at the store's
boundary, the bulk import (rows written, search index built once), reading the
destination back, the verification (both stores streamed and compared) and the
independent check of the raw files.  Interpreter start-up and imports are timed too.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

from tributestore import open_store  # noqa: E402 - timed: the imports are a phase
from tributestore.copier import verify_stores  # noqa: E402
from tributestore.store import check_bundle  # noqa: E402


def phases(legacy: Path, work: Path) -> list[tuple[str, float]]:
    """``(phase, seconds)`` of a copy of ``legacy`` into a new SQLite file under ``work``."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["TRIBUTESTORE_CACHE_DIR"] = str(work / "index")
    timings = [("imports", time.perf_counter() - STARTED)]
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings.append((name, now - clock))
        clock = now

    source = open_store(f"thgbot:///{legacy}")
    lap("open the legacy directory (index built from the raw files)")
    bundles = list(source.iter_bundles())
    lap("read the source documents")
    for bundle in bundles:
        check_bundle(bundle)
    lap("validate them at the store's boundary")
    destination = open_store(f"sqlite:///{work / 'copy.db'}")
    lap("open (create) the destination")
    with destination.bulk_import(len(bundles)):
        for guild in source.list_guilds():
            destination.put_guild(guild.guild_id, **guild.model_dump(exclude={"guild_id"}))
        for start in range(0, len(bundles), 1000):
            destination.import_many(bundles[start : start + 1000], source.read_bundle_file)
    lap("bulk import (rows, then the search index built once)")
    for _bundle in destination.iter_bundles():
        pass
    lap("read the destination back")
    differences = verify_stores(source, destination)
    lap("verify (both stores streamed and compared)")
    missed = source.independent_check(destination)
    lap("independent check of the raw files")
    if differences or missed:
        raise SystemExit(f"the copy differs: {(differences + (missed or []))[:5]}")
    destination.close()
    source.close()
    return timings


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m benchmarks.copy_phases LEGACY_DIR WORK_DIR")
    timings = phases(Path(argv[0]), Path(argv[1]))
    total = sum(seconds for _name, seconds in timings)
    print("| phase | seconds | share |\n|---|---:|---:|")
    for name, seconds in timings:
        print(f"| {name} | {seconds:.2f} | {seconds / total:.0%} |")
    print(f"| total | {total:.2f} | |")


if __name__ == "__main__":
    main(sys.argv[1:])
