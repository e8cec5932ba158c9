"""The conformance suite every tributestore backend runs unchanged.

Subclass :class:`ConformanceSuite` in a test module and provide a
``store_url`` fixture (or override ``store`` and ``reopen`` for a backend
that is not opened by URL)::

    import pytest
    from tributestore.testing import ConformanceSuite

    class TestMyBackend(ConformanceSuite):
        @pytest.fixture
        def store_url(self, tmp_path):
            return f"mybackend:///{tmp_path}/data"

The suite needs pytest and hypothesis (``pip install tributestore[test]``).
"""

from .suite import (
    BundleTests,
    ChangeTests,
    ConformanceSuite,
    ContractTests,
    FileTests,
    GuildTests,
    InventoryTests,
    OpenModeTests,
    PromptTests,
    PropertyTests,
    SearchTests,
    StoreFixtures,
    TransactionTests,
    TributeTests,
)

__all__ = [
    "BundleTests",
    "ChangeTests",
    "ConformanceSuite",
    "ContractTests",
    "FileTests",
    "GuildTests",
    "InventoryTests",
    "OpenModeTests",
    "PromptTests",
    "PropertyTests",
    "SearchTests",
    "StoreFixtures",
    "TransactionTests",
    "TributeTests",
]
