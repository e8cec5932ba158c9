"""The built-in file backends run the shipped conformance suite unchanged.

The others run it beside their own tests: the composite in test_composite.py,
PostgreSQL in test_postgres.py, the third-party memory plugin (alone and as a
composite's children) in test_plugins.py.
"""

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
