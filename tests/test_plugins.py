"""Plugin discovery through the ``tributestore`` entry-point group."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from tributestore import open_store
from tributestore.errors import UnknownBackendError
from tributestore.plugins import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, registry
from tributestore.testing import ConformanceSuite


def test_builtins_are_declared_as_entry_points_like_any_plugin() -> None:
    declared = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    for name, module in DEFAULT_PLUGINS:
        assert declared.get(name) == module


def test_registry_lists_builtin_and_thirdparty_backends() -> None:
    found = registry()
    assert {"json", "sqlite", "memory"} <= set(found.by_name)
    assert found.plugin_of["memory"] == "memory"
    assert found.load_errors == []


def test_unknown_backend_lists_installed_ones() -> None:
    with pytest.raises(UnknownBackendError) as raised:
        open_store("mongodb://localhost/thg")
    message = str(raised.value)
    assert "'mongodb'" in message and "json" in message and "sqlite" in message and "memory" in message


class TestThirdPartyMemoryBackend(ConformanceSuite):
    """The test package in tests/thirdparty_plugin, found only through its entry point."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"memory://{tmp_path.name}"
