"""Small helpers several test modules share: running the real CLI, and the three local store URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from tributestore import open_store

CLI = [sys.executable, "-c", "from tributestore.cli import main; main()"]


def run_cli(*args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``tributestore ARGS`` in a subprocess (in ``cwd``), its output as text."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, input=stdin, timeout=300)


def local_store_url(backend: str, tmp: Path) -> str:
    """A fresh ``sqlite``, ``json`` or ``composite`` (SQLite primary, empty JSON fallback) in ``tmp``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp}/thg.db"
    if backend == "json":
        return f"json:///{tmp}/store"
    open_store(f"json:///{tmp}/f").close()  # an empty fallback: a fallback is only read, it must exist
    primary = quote(f"sqlite:///{tmp}/p.db", safe="")
    fallback = quote(f"json:///{tmp}/f", safe="")
    return f"composite:?primary={primary}&fallback={fallback}"
