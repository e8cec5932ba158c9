"""What each file of a JSON store holds, encoded and decoded (see layout.py for where they live).

Every decoding error is a :class:`~tributestore.errors.CorruptDataError` (or a
:class:`~tributestore.errors.SchemaVersionError`) naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tributestore.errors import CorruptDataError, SchemaVersionError
from tributestore.models import (
    FileInfo,
    Guild,
    Inventory,
    Prompt,
    Tribute,
    TributeBundle,
    describe_validation_error,
)

from .layout import FORMAT_NAME, SCHEMA_VERSION

M = TypeVar("M", bound=BaseModel)


def encode(document: dict[str, Any]) -> bytes:
    """Indented UTF-8 JSON and a final newline."""
    try:
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them as \\u escapes
        return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    """The JSON object ``raw`` holds."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, a number too long, too deep
        raise CorruptDataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise CorruptDataError(f"{path}: expected a JSON object, got {type(document).__name__}")
    return document


def check_version(path: Path, document: dict[str, Any]) -> None:
    """Refuse a document whose ``schema_version`` is malformed or newer than this code reads."""
    version = document.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CorruptDataError(f"{path}: schema_version must be a positive int (got {version!r})")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: schema_version {version} is newer than this tributestore supports "
            f"({SCHEMA_VERSION}); upgrade tributestore"
        )


def parse_model(path: Path, model: type[M], value: object, what: str) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise CorruptDataError(f"{path}: {describe_validation_error(error, what)}") from None


# --------------------------------------------------------------------------- marker
def marker_bytes() -> bytes:
    return encode({"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION})


def check_marker(path: Path, raw: bytes) -> None:
    """Refuse a marker of another format or of a newer schema."""
    document = parse_json(path, raw)
    if document.get("format") != FORMAT_NAME:
        raise CorruptDataError(f"{path}: format is {document.get('format')!r}, expected {FORMAT_NAME!r}")
    check_version(path, document)


# --------------------------------------------------------------------------- guilds
def guild_bytes(guild: Guild) -> bytes:
    return encode({"schema_version": SCHEMA_VERSION, "guild": guild.model_dump(mode="json")})


def parse_guild(path: Path, raw: bytes, guild_id: int) -> Guild:
    document = parse_json(path, raw)
    check_version(path, document)
    guild = parse_model(path, Guild, document.get("guild"), "guild")
    if guild.guild_id != guild_id:
        raise CorruptDataError(f"{path}: holds guild {guild.guild_id}, but its directory says {guild_id}")
    return guild


# --------------------------------------------------------------------------- tributes
def tribute_bytes(document: TributeBundle) -> bytes:
    """One tribute's whole document: tribute, inventory, prompt and file list (by name)."""
    prompt = document.prompt
    return encode(
        {
            "schema_version": SCHEMA_VERSION,
            "tribute": document.tribute.model_dump(mode="json"),
            "inventory": document.inventory.model_dump(mode="json"),
            "prompt": None if prompt is None else prompt.model_dump(mode="json"),
            "files": [info.model_dump(mode="json") for info in sorted(document.files, key=_by_name)],
        }
    )


def parse_tribute(path: Path, raw: bytes, guild_id: int, tribute_id: str) -> TributeBundle:
    """The document a tribute file holds; every part must belong to the tribute its name says."""
    document = parse_json(path, raw)
    check_version(path, document)
    tribute = parse_model(path, Tribute, document.get("tribute"), "tribute")
    inventory_data = document.get("inventory")
    inventory = (
        Inventory(guild_id=guild_id, tribute_id=tribute_id)
        if inventory_data is None
        else parse_model(path, Inventory, inventory_data, "inventory")
    )
    prompt_data = document.get("prompt")
    prompt = None if prompt_data is None else parse_model(path, Prompt, prompt_data, "prompt")
    files_data = document.get("files") or []
    if not isinstance(files_data, list):
        raise CorruptDataError(f"{path}: files must be a list")
    files = sorted((parse_model(path, FileInfo, item, "file") for item in files_data), key=_by_name)
    owner = (guild_id, tribute_id)
    for part in (tribute, inventory, prompt, *files):
        if part is not None and (part.guild_id, part.tribute_id) != owner:
            raise CorruptDataError(
                f"{path}: holds {type(part).__name__} of tribute {part.tribute_id} in guild "
                f"{part.guild_id}, but its name says tribute {tribute_id} in guild {guild_id}"
            )
    return TributeBundle(tribute=tribute, inventory=inventory, prompt=prompt, files=files)


def _by_name(info: FileInfo) -> str:
    return info.name


# --------------------------------------------------------------------------- small records
def ref_bytes(info: FileInfo) -> bytes:
    """A blob reference marker: the (guild, tribute, file name) owning the blob."""
    return encode({"guild_id": info.guild_id, "tribute_id": info.tribute_id, "name": info.name})


def tombstone_bytes(deleted_at: str, origin_key: str | None) -> bytes:
    return encode({"deleted_at": deleted_at, "origin_key": origin_key})


def tombstone_origin(path: Path, raw: bytes) -> str | None:
    """The origin key a tombstone record names (``None``: none); :class:`CorruptDataError` naming
    the file when the record is not one."""
    try:
        record = json.loads(raw)
    except ValueError as error:
        raise CorruptDataError(f"{path}: not a tombstone record ({error})") from None
    origin = record.get("origin_key") if isinstance(record, dict) else None
    if origin is not None and not isinstance(origin, str):
        raise CorruptDataError(f"{path}: origin_key must be text or null (got {origin!r})")
    return origin
