"""Both built-in backends run the shipped conformance suite unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tributestore.testing import ConformanceSuite


@pytest.mark.backend("json")
class TestJsonBackend(ConformanceSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"json:///{tmp_path}/store"


@pytest.mark.backend("sqlite")
class TestSqliteBackend(ConformanceSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/thg.db"
