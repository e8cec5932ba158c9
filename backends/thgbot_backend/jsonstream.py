"""Stream the top-level entries of a big JSON object file, with :mod:`json`'s own parser.

``inventories.json`` of a large bot is tens of megabytes; loading it whole
holds every entry at once.  :func:`iter_object` reads the file in chunks and
parses one top-level ``"key": value`` at a time with the standard library's
C scanner (``JSONDecoder.scan_once``), configured with the caller's hooks, so
each value is exactly what ``json.loads(text, object_pairs_hook=...,
parse_int=...)`` gives for it (``NaN``, lone surrogate escapes, huge numbers,
duplicate keys inside an entry: all as there).

Anything unusual (not an object, invalid UTF-8 or JSON, a duplicate
top-level key, an error raised by a hook, nesting too deep) raises
:class:`StreamError` and nothing more precise: the caller then parses the
whole file the plain way, which names the problem exactly as before.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
#: The standard library's string scanner (not in its type stubs).
scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_WS = re.compile(r"[ \t\n\r]*")


class StreamError(Exception):
    """The file is not a plain, valid JSON object (parse it whole to learn why)."""


class DuplicateKeyError(StreamError):
    """A key repeated in one object: ``entry`` is the top-level key whose value holds that
    object (``None``: the top-level object itself)."""

    def __init__(self, key: str, entry: str | None) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key
        self.entry = entry


class _NeedMore(Exception):
    pass


def iter_object(
    path: Path,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any],
    parse_int: Callable[[str], Any],
    *,
    keys_only: bool = False,
) -> Iterator[tuple[str, Any]]:
    """The (key, value) pairs of the JSON object file ``path``, in file order, streamed.

    With ``keys_only`` the values are still parsed (the whole file is
    checked) but ``None`` is yielded in their place.
    """
    decoder = json.JSONDecoder(object_pairs_hook=object_pairs_hook, parse_int=parse_int)
    scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]
    seen: set[str] = set()
    try:
        handle = path.open("rb")
    except OSError as error:
        raise StreamError(str(error)) from None
    with handle:
        reader = _Buffer(handle)
        try:
            yield from _entries(reader, scan, seen, keys_only)
        except (UnicodeDecodeError, RecursionError, OSError) as error:
            raise StreamError(str(error)) from None


class _Buffer:
    """Decoded text of the file, refilled on demand; ``pos`` is where parsing stands."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self.text = ""
        self.pos = 0
        self.eof = False

    def more(self) -> None:
        """Drop what is parsed, read the next chunk; :class:`StreamError` at the end of the file."""
        if self.eof:
            raise StreamError("unexpected end of the file")
        # at least as much as is pending: an entry longer than a chunk costs O(n), not O(n**2)
        chunk = self.handle.read(max(CHUNK, len(self.text) - self.pos))
        decoded = self.decoder.decode(chunk, final=not chunk)
        if not chunk:
            self.eof = True
        self.text = self.text[self.pos :] + decoded
        self.pos = 0

    def skip(self, at: int) -> int:
        """The position of the first non-blank character from ``at``, reading more when needed."""
        while True:
            end = _WS.match(self.text, at)
            at = end.end() if end else at
            if at < len(self.text) or self.eof:
                return at
            offset = at - self.pos
            self.more()
            at = self.pos + offset


def _entries(
    buf: _Buffer, scan: Callable[[str, int], tuple[Any, int]], seen: set[str], keys_only: bool
) -> Iterator[tuple[str, Any]]:
    at = buf.skip(0)
    if at >= len(buf.text) or buf.text[at] != "{":
        raise StreamError("not a JSON object")
    buf.pos = at + 1
    first = True
    while True:
        while True:  # one entry (or the closing brace), reading more until it is whole
            try:
                done, key, value, end = _entry(buf, scan, first)
                break
            except _NeedMore:
                buf.more()
        if done:
            buf.pos = end
            break
        if key in seen:
            raise DuplicateKeyError(key, None)
        seen.add(key)
        buf.pos = end
        first = False
        yield key, None if keys_only else value
    at = buf.pos
    while True:  # only white space may follow
        at = buf.skip(at)
        if at < len(buf.text):
            raise StreamError("extra data after the object")
        if buf.eof:
            return


def _entry(
    buf: _Buffer, scan: Callable[[str, int], tuple[Any, int]], first: bool
) -> tuple[bool, str, Any, int]:
    """(closed, key, value, end) of the entry at ``buf.pos``; :class:`_NeedMore` when cut short."""
    text = buf.text

    def blank(at: int) -> int:
        found = _WS.match(text, at)
        at = found.end() if found else at
        if at >= len(text):
            if buf.eof:
                raise StreamError("unexpected end of the file")
            raise _NeedMore
        return at

    at = blank(buf.pos)
    if not first:
        if text[at] == "}":
            return True, "", None, at + 1
        if text[at] != ",":
            raise StreamError("expected , or }")
        at = blank(at + 1)
    elif text[at] == "}":
        return True, "", None, at + 1
    if text[at] != '"':
        raise StreamError("expected a key")
    key = ""
    try:
        key, at = scanstring(text, at + 1, True)
        at = blank(at)
        if text[at] != ":":
            raise StreamError("expected :")
        at = blank(at + 1)
        value, at = scan(text, at)
    except (json.JSONDecodeError, StopIteration) as error:
        if buf.eof:
            raise StreamError(str(error)) from None
        raise _NeedMore from None
    except _NeedMore:
        raise
    except StreamError:
        raise
    except (
        ValueError,
        TypeError,
        RecursionError,
    ) as error:  # a hook's error (duplicate key, ...): the whole parse names it
        repeated = getattr(error, "duplicate_key", None)
        if isinstance(repeated, str):
            raise DuplicateKeyError(repeated, key) from None
        raise StreamError(str(error)) from None
    blank(at)  # a number is complete only when something follows it
    return False, key, value, at
