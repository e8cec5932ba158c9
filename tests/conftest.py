"""Backend selection for the tox matrix.

Tests marked ``@pytest.mark.backend("json")`` (or "sqlite", ...) run only when
that backend is listed in ``TRIBUTESTORE_TEST_BACKENDS`` (comma-separated);
with the variable unset, every backend's tests run.  Unmarked tests run too,
unless ``TRIBUTESTORE_TEST_UNMARKED=0``: tox sets it in the sqlite and composite
environments, so the tests of no one backend run once per Python (in its json
environment) rather than three times.
A selected test that needs the PostgreSQL server gets it from postgres_server.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator

import postgres_server
import pytest
from sqlalchemy import Engine, create_engine, text

from tributestore.backends.sqlite_backend.dialects import sqlalchemy_url
from tributestore.urls import parse_store_url


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backend(name): test of one backend, selected by tox factor")
    # The thgbot plugin's legacy indexes go to a directory of this run (children inherit it),
    # never to the user's cache directory.
    if "TRIBUTESTORE_CACHE_DIR" not in os.environ:
        cache = tempfile.mkdtemp(prefix="tributestore-test-cache-")
        os.environ["TRIBUTESTORE_CACHE_DIR"] = cache
        config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = {name.strip() for name in os.environ.get("TRIBUTESTORE_TEST_BACKENDS", "").split(",")}
    wanted.discard("")
    unmarked = os.environ.get("TRIBUTESTORE_TEST_UNMARKED", "1").strip() != "0"
    if wanted or not unmarked:
        selected, deselected = [], []
        for item in items:
            markers = [m.args[0] for m in item.iter_markers("backend")]
            keep = (not wanted or any(m in wanted for m in markers)) if markers else unmarked
            (selected if keep else deselected).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected
    # The PostgreSQL server, once, when a selected test needs it (postgres_server.py).
    postgres_server.prepare(config, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    postgres_server.fold_skip(item, report)
    return report


# ---------------------------------------------------------------- PostgreSQL fixtures
@pytest.fixture(scope="session")
def server_url(request: pytest.FixtureRequest) -> str:
    return postgres_server.session_url(request.config)


@pytest.fixture(scope="session")
def admin(server_url: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(parse_store_url(server_url)))
    yield engine
    engine.dispose()


@pytest.fixture
def schema_url(server_url: str, admin: Engine) -> Iterator[str]:
    """The server URL with a fresh, unique ``?schema=``; the schema is dropped afterwards."""
    name = f"tributestore_test_{uuid.uuid4().hex[:12]}"
    yield server_url + ("&" if "?" in server_url else "?") + f"schema={name}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
