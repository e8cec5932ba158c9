"""Per-tribute content digests, to compare two stores without trusting either."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .models import TributeBundle
from .store import TributeStore, bytes_match

Key = tuple[int, str]
#: The tribute part of a :class:`Difference` key that is about the guild row itself.
GUILD_ROW = "*"


def bundle_digest(bundle: TributeBundle) -> str:
    """sha256 of a canonical JSON form of everything the tribute owns.

    File contents enter through their sha256 (checked against the bytes by
    :func:`file_problems`), so equal digests mean equal content.
    """
    canonical = json.dumps(bundle.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_content(left: TributeBundle, right: TributeBundle) -> bool:
    """Whether two bundles have the same content (equal :func:`bundle_digest`).

    Equal models are the common case and cost a field-by-field comparison; only
    unequal ones are compared by digest (values that differ in Python but not in
    their canonical JSON, such as ``1`` and ``1.0``, still count as the same).
    """
    return left == right or bundle_digest(left) == bundle_digest(right)


def file_problems(store: TributeStore, bundle: TributeBundle) -> list[str]:
    """Files of the bundle whose stored bytes do not match their size and sha256."""
    problems = []
    for info in bundle.files:
        data = store.read_bundle_file(info)
        if not bytes_match(info, data):
            problems.append(
                f"{store.url}: file {info.name!r} of tribute {info.tribute_id} in guild "
                f"{info.guild_id}: bytes do not match size/sha256"
            )
    return problems


def describe_difference(left: TributeBundle, right: TributeBundle) -> str:
    """Which parts of two bundles of the same tribute differ (for reports)."""
    parts = [
        name
        for name in ("tribute", "inventory", "prompt", "files")
        if getattr(left, name) != getattr(right, name)
    ]
    return ", ".join(parts) or "content"


@dataclass
class Difference:
    key: Key
    what: str

    def __str__(self) -> str:
        if self.key[1] == GUILD_ROW:
            return f"guild {self.key[0]}: {self.what}"
        return f"tribute {self.key[1]} in guild {self.key[0]}: {self.what}"


def compare_stores(
    source: TributeStore,
    destination: TributeStore,
    *,
    subset: bool = False,
    check_bytes: bool = True,
    on_source_tribute: Callable[[], None] | None = None,
    on_destination_document: Callable[[TributeBundle], None] | None = None,
) -> Iterator[Difference]:
    """Stream the differences between two stores, tribute by tribute.

    Both stores list tributes ordered by (guild_id, tribute_id), so this is a
    merge join in constant memory.  With ``subset``, tributes only in the
    destination are not differences (a copy into a non-empty store).
    Guild settings are compared too.  ``on_destination_document`` is given
    every document of the destination, once, as the join reads it.
    """
    dest_guilds = {g.guild_id: g for g in destination.list_guilds()}
    for guild in source.list_guilds():
        other = dest_guilds.pop(guild.guild_id, None)
        if other is None:
            yield Difference((guild.guild_id, GUILD_ROW), "guild missing in destination")
        elif other != guild:
            yield Difference((guild.guild_id, GUILD_ROW), "guild settings differ")
    if not subset:
        for guild_id in dest_guilds:
            yield Difference((guild_id, GUILD_ROW), "guild only in destination")

    left_iter, right_iter = source.iter_bundles(), destination.iter_bundles()
    if on_destination_document is not None:
        right_iter = _observed(right_iter, on_destination_document)
    left, right = next(left_iter, None), next(right_iter, None)
    while left is not None or right is not None:
        left_key = _key(left)
        right_key = _key(right)
        if right is None or (left is not None and left_key < right_key):
            yield Difference(left_key, "missing in destination")
            left = next(left_iter, None)
            if on_source_tribute:
                on_source_tribute()
        elif left is None or right_key < left_key:
            if not subset:
                yield Difference(right_key, "only in destination")
            right = next(right_iter, None)
        else:
            if not same_content(left, right):
                yield Difference(left_key, describe_difference(left, right) + " differ")
            elif check_bytes:
                for problem in file_problems(source, left) + file_problems(destination, right):
                    yield Difference(left_key, problem)
            left, right = next(left_iter, None), next(right_iter, None)
            if on_source_tribute:
                on_source_tribute()


def _observed(
    bundles: Iterator[TributeBundle], see: Callable[[TributeBundle], None]
) -> Iterator[TributeBundle]:
    for bundle in bundles:
        see(bundle)
        yield bundle


def _key(bundle: TributeBundle | None) -> Key:
    if bundle is None:
        return (-1, "")
    return bundle.tribute.key
