"""The tests' own PostgreSQL server (postgres_server.py): a throwaway server starts, answers and goes away."""

from __future__ import annotations

import importlib.util

import postgres_server
import pytest


@pytest.mark.backend("postgres")
def test_throwaway_server_starts_answers_and_is_removed() -> None:
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("needs psycopg: pip install tributestore[postgres]")
    bindir = postgres_server.find_binaries()
    if bindir is None:
        if postgres_server.in_ci():
            pytest.fail(f"CI=true: initdb/pg_ctl are not installed; {postgres_server.HOW_TO}")
        pytest.skip("initdb/pg_ctl are not installed")
    with postgres_server.throwaway_server(bindir) as url:
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        assert url.endswith("/test")
        assert postgres_server.answers(url) is None
        with postgres_server._connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("test",)
    assert postgres_server.answers(url) is not None


@pytest.mark.backend("postgres")
def test_a_server_that_does_not_answer_is_reported_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("needs psycopg: pip install tributestore[postgres]")
    monkeypatch.setenv(postgres_server.URL_VARIABLE, "postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(postgres_server.NoServer) as raised, postgres_server.provide():
        pass
    message = str(raised.value)
    assert "\n" not in message
    assert postgres_server.URL_VARIABLE in message
