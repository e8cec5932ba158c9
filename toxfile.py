"""tox inline plugin (tox 4 loads ``toxfile.py`` from the project root by itself).

1. Interpreters: every CPython 3 that pyenv installed is offered to tox's discovery
   (as if given with ``--discover``), so ``py311``/``py312``/``py313`` are found with a
   plain PATH: no ``PYENV_VERSION``, no ``pyenv local``, no PATH edits.  pyenv's shims
   only expose the active versions, and the ``virtualenv-pyenv`` discovery plugin fails
   on the ``<0`` interpreter spec current tox passes to virtualenv, hence this hook.
2. CI: with ``CI`` set to a true value (``CI=true``, as CI services set it) a missing
   interpreter fails the run instead of being skipped, unless ``--skip-missing-interpreters``
   (or ``TOX_SKIP_MISSING_INTERPRETERS``) says otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tox.plugin import impl

if TYPE_CHECKING:
    from tox.config.sets import ConfigSet
    from tox.session.state import State

_RELEASE = re.compile(r"^3\.(\d+)\.(\d+)$")  # CPython releases only (no -dev, t, pypy, envs)


def in_ci() -> bool:
    """``CI`` is set to a true value."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def pyenv_root() -> Path | None:
    if root := os.environ.get("PYENV_ROOT"):
        return Path(root)
    if pyenv := shutil.which("pyenv"):
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            pass
        else:
            if out.stdout.strip():
                return Path(out.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def pyenv_pythons() -> list[str]:
    """The ``python3`` of each CPython 3 release pyenv installed, newest first."""
    root = pyenv_root()
    if root is None or not (root / "versions").is_dir():
        return []
    found = []
    for version_dir in (root / "versions").iterdir():
        match = _RELEASE.match(version_dir.name)
        executable = version_dir / "bin" / "python3"
        if match and os.access(executable, os.X_OK):
            found.append(((int(match[1]), int(match[2])), str(executable)))
    return [executable for _, executable in sorted(found, reverse=True)]


@impl
def tox_add_core_config(core_conf: ConfigSet, state: State) -> None:
    options = state.conf.options
    wanted = getattr(options, "discover", None) or []
    options.discover = [*wanted, *(exe for exe in pyenv_pythons() if exe not in wanted)]
    if in_ci() and getattr(options, "skip_missing_interpreters", "config") == "config":
        options.skip_missing_interpreters = "false"
