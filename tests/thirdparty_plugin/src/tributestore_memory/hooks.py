"""The test plugin's store hooks, declared as their own entry point (``memory_hooks``).

They prove that tributestore calls each hook of a plugin it found only through
its entry point.  They apply to every store of the process, whatever its
backend, and stay inert unless asked:

- while a test runs inside :func:`recording`, every ``tributestore_store_opened``
  and ``tributestore_transaction_committed`` call is appended to the recorder's
  ``events`` (and can be made to fail, to show what a failing hook does);
- ``tributestore_check`` reports, when the environment variable
  :data:`MAX_ITEMS_ENV` holds a number, every tribute holding more items
  (carried and equipped) than that: a house rule of a game, checked by a plugin;
- ``tributestore_register_commands`` adds ``tributestore house-rules URL --max-items N``,
  the same rule checked on demand.

Only public names of tributestore are used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import click

from tributestore import TributeStore, hookimpl, open_store
from tributestore.hookspecs import Changes

#: A number: ``tributestore_check`` reports tributes holding more items than that.
MAX_ITEMS_ENV = "TRIBUTESTORE_MEMORY_MAX_ITEMS"

__all__ = [
    "MAX_ITEMS_ENV",
    "Event",
    "Recorder",
    "recording",
    "house_rules",
    "over_limit",
    "tributestore_check",
    "tributestore_register_commands",
    "tributestore_store_opened",
    "tributestore_transaction_committed",
]


@dataclass(frozen=True)
class Event:
    """One hook call: which hook, for which store, with what changes."""

    hook: Literal["store_opened", "transaction_committed"]
    store: TributeStore
    changes: Changes | None = None


@dataclass
class Recorder:
    """What the hooks saw while it was recording, and how they should fail."""

    events: list[Event] = field(default_factory=list)
    #: When set, ``tributestore_store_opened`` raises ``RuntimeError(fail_opened)``.
    fail_opened: str | None = None
    #: When set, ``tributestore_transaction_committed`` raises ``RuntimeError(fail_committed)``.
    fail_committed: str | None = None

    def of(self, hook: str, store: TributeStore | None = None) -> list[Event]:
        """The events of one hook (for one store)."""
        return [e for e in self.events if e.hook == hook and (store is None or e.store is store)]


RECORDERS: list[Recorder] = []
RECORDERS_LOCK = threading.Lock()


@contextmanager
def recording(*, fail_opened: str | None = None, fail_committed: str | None = None) -> Iterator[Recorder]:
    """Record every store hook call of the process while the block runs."""
    recorder = Recorder(fail_opened=fail_opened, fail_committed=fail_committed)
    with RECORDERS_LOCK:
        RECORDERS.append(recorder)
    try:
        yield recorder
    finally:
        with RECORDERS_LOCK:
            RECORDERS.remove(recorder)


def active() -> list[Recorder]:
    with RECORDERS_LOCK:
        return list(RECORDERS)


@hookimpl
def tributestore_store_opened(store: TributeStore) -> None:
    for recorder in active():
        recorder.events.append(Event("store_opened", store))
        if recorder.fail_opened is not None:
            raise RuntimeError(recorder.fail_opened)


@hookimpl
def tributestore_transaction_committed(store: TributeStore, changes: Changes) -> None:
    for recorder in active():
        recorder.events.append(Event("transaction_committed", store, changes))
        if recorder.fail_committed is not None:
            raise RuntimeError(recorder.fail_committed)


def over_limit(store: TributeStore, limit: int) -> list[str]:
    """Every tribute of ``store`` holding more than ``limit`` items, carried and equipped."""
    problems = []
    for bundle in store.iter_bundles():
        held = len(bundle.inventory.items) + len(bundle.inventory.equipped)
        if held > limit:
            tribute = bundle.tribute
            problems.append(
                f"tribute {tribute.tribute_id} in guild {tribute.guild_id} holds {held} items, "
                f"more than the house limit of {limit}"
            )
    return problems


@hookimpl
def tributestore_check(store: TributeStore) -> list[str]:
    limit = os.environ.get(MAX_ITEMS_ENV, "").strip()
    if not limit:
        return []
    if limit == "raise":  # a plugin whose check breaks (the tests see that the others are heard)
        raise RuntimeError("the house rules cannot be read")
    if limit == "text":  # a plugin returning one string instead of a list
        return "not a list"  # type: ignore[return-value]
    if not limit.isdigit():
        return [f"{MAX_ITEMS_ENV}={limit!r} is not a number of items"]
    return [f"{problem} ({MAX_ITEMS_ENV})" for problem in over_limit(store, int(limit))]


@click.command("house-rules")
@click.argument("url")
@click.option("--max-items", type=click.IntRange(min=0), required=True, help="Items a tribute may hold.")
@click.pass_context
def house_rules(context: click.Context, url: str, max_items: int) -> None:
    """List the tributes of the store at URL holding more than --max-items items (test plugin)."""
    with open_store(url, mode="read") as store:
        problems = over_limit(store, max_items)
    for problem in problems:
        click.echo(problem)
    if problems:
        context.exit(1)
    click.echo(f"every tribute holds at most {max_items} items")


@hookimpl
def tributestore_register_commands(cli: click.Group) -> None:
    cli.add_command(house_rules)
