"""Run a child process and take its wall time and its own peak RSS.

Linux gives an ``exec``-ed process the peak RSS of the memory it replaced: a child
spawned (vfork + exec) by a benchmark process that holds a large data set reports at
least that process's peak as its own ``ru_maxrss``.  So the child is started through a
small launcher (``python -S``, a few MB), whose own peak is the only floor left; the
launcher times the child and passes its ``os.wait4`` figures back.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import IO

LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
with open(sys.argv[1], "w") as report:
    report.write(f"{elapsed} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, bytes, bytes]:
    """Seconds, peak RSS (MB), exit code, stdout and stderr of ``command`` (its first item a path)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        report = Path(scratch) / "report"
        launcher = [sys.executable, "-S", "-c", LAUNCHER, str(report), *command]
        pid = os.posix_spawn(sys.executable, launcher, env or os.environ, file_actions=_redirect(out, err))
        _pid, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not report.exists():
            raise RuntimeError(f"the launcher of {command[:3]} failed: {_read(err)[-2000:]!r}")
        elapsed, peak_kb, code = report.read_text().split()
        return float(elapsed), int(peak_kb) / 1024, int(code), _read(out), _read(err)


def _read(handle: IO[bytes]) -> bytes:
    handle.seek(0)
    return handle.read()


def _redirect(out: IO[bytes], err: IO[bytes]) -> list[tuple[int, int, int]]:
    return [
        (os.POSIX_SPAWN_DUP2, out.fileno(), 1),  # type: ignore[attr-defined]
        (os.POSIX_SPAWN_DUP2, err.fileno(), 2),  # type: ignore[attr-defined]
    ]
