"""The tributestore command: help, clean one-line errors and exit codes, no tracebacks."""

from __future__ import annotations

from pathlib import Path

from helpers import run_cli as run


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("backends", "stats", "check", "config"):
        assert command in result.stdout


def test_backends_lists_builtins() -> None:
    result = run("backends")
    assert result.returncode == 0
    assert "json" in result.stdout and "sqlite" in result.stdout
    # Every plugin is listed with its hooks (pluggy's introspection), hook-only plugins too.
    assert "  thgbot: register_backends, register_commands\n" in result.stdout
    assert "  memory_hooks: check, register_commands, store_opened, transaction_committed\n" in result.stdout


def test_stats_of_a_store(tmp_path: Path) -> None:
    from tributestore import open_store

    with open_store(f"sqlite:///{tmp_path}/thg.db") as store:
        store.create_tribute(1, "D1F")
        store.add_item(1, "D1F", "Knife")
    result = run("stats", f"sqlite:///{tmp_path}/thg.db")
    assert result.returncode == 0, result.stderr
    assert "tributes" in result.stdout and "1" in result.stdout


def test_unknown_backend_is_one_clean_line(tmp_path: Path) -> None:
    result = run("stats", "mongodb://x/y", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "mongodb" in result.stderr and "installed:" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_store_is_a_clean_error(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 100)
    result = run("stats", f"sqlite:///{bad}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "garbage.db" in result.stderr


def test_passwords_never_appear_in_messages(tmp_path: Path) -> None:
    from urllib.parse import quote

    # A bad option is reported with the URL, before any driver is needed.
    result = run("stats", "json://bot:s3cret@host/x?create=maybe", cwd=tmp_path)
    assert result.returncode == 2 and "s3cret" not in result.stderr and "bot:***@" in result.stderr
    nested = quote("postgresql://bot:s3cret@127.0.0.1:1/x", safe="")
    result = run(
        "stats", f"composite:?primary={nested}&fallback=json:///fb&fallback_errors=maybe", cwd=tmp_path
    )
    assert result.returncode == 2 and "s3cret" not in result.stderr and "fallback_errors" in result.stderr


def test_odd_characters_in_paths_are_printed_literally(tmp_path: Path) -> None:
    path = tmp_path / "q[/b]x[bold].db"
    from tributestore import open_store

    open_store(f"sqlite:///{path}").close()
    result = run("check", f"sqlite:///{path}")
    assert result.returncode == 0, result.stderr
    assert "q[/b]x[bold].db" in result.stdout and "Traceback" not in result.stderr


def test_bad_durations_are_clean_errors(tmp_path: Path) -> None:
    for url in (f"json:///{tmp_path}/j?lock_timeout=inf", f"sqlite:///{tmp_path}/s.db?timeout=nan"):
        result = run("stats", url)
        assert result.returncode == 2 and "seconds" in result.stderr and "Traceback" not in result.stderr
