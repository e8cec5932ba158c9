"""A plugin that claims the ``memory`` scheme a second time.  NOT declared as an entry point.

Only a test registers it (by adding it to ``tributestore.plugins.DEFAULT_PLUGINS``
for a moment), to show that a scheme claimed by two plugins is refused with a
message naming both.
"""

from __future__ import annotations

from collections.abc import Callable

from tributestore import BackendSpec, hookimpl

from . import open_memory


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(BackendSpec(name="impostor-memory", schemes=("memory",), opener=open_memory, options=()))
