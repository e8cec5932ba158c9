"""The tributestore command: help, clean one-line errors and exit codes, no tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli as run

from tributestore import open_store
from tributestore.backends.thgbot_backend.make_sample import write_sample


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("backends", "stats", "check", "config"):
        assert command in result.stdout


def test_backends_lists_builtins() -> None:
    result = run("backends")
    assert result.returncode == 0
    assert "json" in result.stdout and "sqlite" in result.stdout
    # Example URLs whole, though the output is a pipe (80 columns): they are copied from here.
    assert "  composite: composite:?primary=sqlite:///thg.db&fallback=thgbot:///config\n" in result.stdout
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


def test_a_copy_onto_the_same_store_is_refused(tmp_path: Path) -> None:
    """Another spelling, a symlink or another scheme naming the same place is the same store:
    a copy would verify the store against itself."""
    with open_store(f"sqlite:///{tmp_path}/thg.db") as store:
        store.create_tribute(1, "D1F")
    (tmp_path / "link.db").symlink_to(tmp_path / "thg.db")
    os.link(tmp_path / "thg.db", tmp_path / "hard.db")  # two names, one file
    (tmp_path / "legacy").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    for source, destination in [
        ("sqlite:///thg.db", "sqlite:///./thg.db"),
        ("sqlite:///thg.db", "sqlite:///link.db"),
        ("sqlite:///thg.db", "sqlite:///hard.db"),
        ("thgbot:///legacy", "json:///legacy/"),
        ("postgresql://bot@db.example/thg", "postgresql://other@DB.example:5432/thg"),
    ]:
        result = run("copy", source, destination, cwd=tmp_path)
        assert result.returncode == 2, (source, destination, result.stdout, result.stderr)
        assert "are the same store" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list((tmp_path / "legacy").iterdir()) == []
    # Another schema of the same database is another store (refused later, for the unknown host).
    result = run("copy", "postgresql://bot@db.invalid/thg", "postgresql://bot@db.invalid/thg?schema=b")
    assert "same store" not in result.stderr


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("sqlite:///thg.db", "sqlite:///sub/../thg.db", True),
        ("thgbot:///legacy", "json:///legacy/", True),
        ("sqlite:///thg.db", "sqlite:///other.db", False),
        ("sqlite:///:memory:", "sqlite:///:memory:", False),
        ("postgresql://a@H/thg", "postgresql://b:pw@h:5432/thg?schema=public", True),
        ("postgresql://a@h/thg", "postgresql://a@h:5433/thg", False),
        ("postgresql://a@h/thg", "postgresql://a@h/thg?schema=bot", False),
        ("postgresql:///thg?host=/run/a", "postgresql:///thg?host=/run/b", False),
        ("postgresql:///thg", "sqlite:///thg", False),
        # a plugin's scheme: one path spelled two ways is one store (copy d1 onto d1/ "verified" itself)
        ("composite:?primary=sqlite:///a.db", "composite:?primary=sqlite:///a.db", True),
        ("mystore:////srv/data", "mystore:////srv/data/", True),
        ("mystore:///data", "mystore:///./data", True),
        ("memory://a", "memory://a", True),
        ("memory://a", "memory://b", False),
        ("mystore:///data", "mystore:///data?shard=2", False),
        ("mystore:///data", "otherstore:///data", False),
        ("memory://", "memory://", False),  # nothing names it: not judged
    ],
)
def test_which_urls_name_the_same_store(tmp_path: Path, first: str, second: str, same: bool) -> None:
    from tributestore.urls import parse_store_url, same_place

    assert same_place(parse_store_url(first, tmp_path), parse_store_url(second, tmp_path)) is same


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("sqlite:///thg.db", "sqlite:///sub/../thg.db", True),
        ("sqlite:///thg.db", "sqlite:///other.db", False),
        ("postgresql://a@H/thg", "postgresql://b:pw@h:5432/thg?schema=public", True),
        ("postgresql://a@h/thg", "postgresql://a@h/thg?schema=bot", False),
        (
            "composite:?primary=sqlite:///p.db&fallback=json:///f",
            "composite:?primary=sqlite:///./p.db&fallback=json:///f/",
            True,
        ),
        (
            "composite:?primary=sqlite:///p.db&fallback=json:///f",
            "composite:?primary=sqlite:///q.db&fallback=json:///f",
            False,
        ),
        ("composite:?primary=sqlite:///p.db&fallback=json:///f", "sqlite:///p.db", False),
    ],
)
def test_the_identity_a_backup_records_of_its_store(
    tmp_path: Path, first: str, second: str, same: bool
) -> None:
    """What a backup's manifest records of the store it was taken of (restore compares it with the
    destination): absolute, however the URL was spelled; a password never enters it."""
    from tributestore.plugins import registry
    from tributestore.urls import parse_store_url, same_identity

    one, other = (registry().identity(parse_store_url(url, tmp_path)) for url in (first, second))
    assert one is not None and other is not None
    assert same_identity(one, other) is same
    assert "b:pw" not in str(other)
    assert registry().identity(parse_store_url("sqlite:///:memory:", tmp_path)) is None


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


def test_a_bug_is_one_line_and_exit_code_70_with_the_traceback_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a library error (a bug here or in a plugin): one line naming the exception and where it
    was raised, exit code 70; ``TRIBUTESTORE_DEBUG=1`` lets the traceback through."""
    from tributestore.cli import main
    from tributestore.store import TributeStore

    url = f"sqlite:///{tmp_path}/thg.db"
    open_store(url).close()

    def broken(self: TributeStore) -> None:
        raise RuntimeError("counts went wrong")

    monkeypatch.setattr(TributeStore, "counts", broken)
    monkeypatch.delenv("TRIBUTESTORE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["stats", url])
    assert exited.value.code == 70
    message = capsys.readouterr().err
    assert "internal error: RuntimeError: counts went wrong" in message and "broken" in message
    assert "Traceback" not in message and "TRIBUTESTORE_DEBUG=1" in message

    monkeypatch.setenv("TRIBUTESTORE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="counts went wrong"):
        main(["stats", url])


def test_a_ctrl_c_while_the_process_exits_ends_it_without_a_traceback(tmp_path: Path) -> None:
    """The command's outcome is known (its report printed): a SIGINT arriving during interpreter
    shutdown (here from an exit handler, as a thread pool's join would be interrupted) ends the
    process as SIGINT's default action does, with no KeyboardInterrupt traceback."""
    script = (
        "import atexit, os, signal, sys, time\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(2)))\n"
        "from tributestore.cli import main\n"
        "main()\n"
    )
    url = f"sqlite:///{tmp_path}/thg.db"
    open_store(url).close()
    result = subprocess.run(
        [sys.executable, "-c", script, "stats", url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == -signal.SIGINT, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
    assert "tributes" in result.stdout  # the report came first, whole


def test_a_copy_skipping_its_only_conflict_does_not_claim_the_destination_holds_everything(
    tmp_path: Path,
) -> None:
    source, destination = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    with open_store(source) as store:
        store.create_tribute(111111111111111111, "D1F")
        store.create_tribute(111111111111111111, "D2F")
    assert run("copy", source, destination, "--no-backup").returncode == 0
    with open_store(destination) as store:
        store.add_item(111111111111111111, "D1F", "Knife")
    result = run("copy", source, destination, "--on-conflict", "skip", "--no-backup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already holds every source tribute" not in result.stdout
    assert (
        "nothing written: every source tribute is already identical in the destination but 1, kept as "
        "the destination has it"
    ) in " ".join(result.stdout.split())


def test_a_copy_that_fails_part_way_says_the_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy stopped by an error while it writes (here a bot holds the destination's write lock
    longer than the URL's timeout after the first tributes landed) says what it left and that
    re-running resumes; the re-run finishes, verified."""
    import sqlite3

    from tributestore.cli import main
    from tributestore_memory.hooks import recording

    legacy = tmp_path / "legacy"
    write_sample(legacy)
    db = tmp_path / "thg.db"
    destination = f"sqlite:///{db}?timeout=0.2"
    copy = ["copy", f"thgbot:///{legacy}", destination, "--no-backup", "--batch-size", "1"]
    bot: list[sqlite3.Connection] = []

    class LockAfterTwoCommits(list):  # type: ignore[type-arg]
        def append(self, event: object) -> None:
            super().append(event)
            commits = [e for e in self if e.hook == "transaction_committed" and e.store.url.startswith("sql")]
            if len(commits) == 2 and not bot:  # the guild rows, then the first tribute
                bot.append(sqlite3.connect(db, isolation_level=None))
                bot[0].execute("BEGIN IMMEDIATE")

    with recording() as recorder:
        recorder.events = LockAfterTwoCommits()
        with pytest.raises(SystemExit) as stopped:
            main(copy)
    assert stopped.value.code == 5
    err = capsys.readouterr().err
    assert "is locked" in err and "whole tributes only" in err
    assert "re-running the same command resumes" in err
    assert len([line for line in err.splitlines() if line.startswith("tributestore: error:")]) == 1
    assert "Traceback" not in err
    bot[0].execute("ROLLBACK")
    bot[0].close()
    with open_store(f"sqlite:///{db}", mode="read") as partial:
        assert partial.counts().tributes == 1
    with pytest.raises(SystemExit) as rerun:
        main(copy)
    assert rerun.value.code == 0
    assert "verified independently" in capsys.readouterr().out
