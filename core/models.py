"""The Tribute-centric data model (pydantic v2).

A :class:`Guild` holds tributes; every :class:`Inventory`, :class:`Prompt` and
:class:`FileInfo` belongs to exactly one :class:`Tribute`, named by
``(guild_id, tribute_id)``.  Every value is validated here, before a backend
sees it, so a bad id or a negative capacity is rejected before anything is
written.  Use :func:`validated` to build a model and get a one-line
:class:`~tributestore.errors.InvalidInputError` naming the field at fault.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from .errors import InvalidInputError

#: Largest Discord snowflake (and largest SQLite INTEGER).
MAX_SNOWFLAKE = 2**63 - 1
DEFAULT_CAPACITY = 10
DEFAULT_EQUIPPED_CAPACITY = 5
#: An item: the longest text the bot could have stored in one, a slash-command string
#: option (Discord allows up to 6,000 characters).
MAX_ITEM_LENGTH = 6000
#: A prompt message: the bot's add-to-prompt appends without bound, so there is no
#: limit beyond the backends' own (SQLite and PostgreSQL text hold up to 1 GB).
MAX_MESSAGE_LENGTH: int | None = None
#: A tribute's name, user mention or face-claim URL: a slash-command string option too.
MAX_SHORT_TEXT_LENGTH = 6000

_TRIBUTE_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
_FORBIDDEN_IN_NAMES = ("/", "\\", "\x00")


def normalise_tribute_id(value: object) -> object:
    """Tribute ids are case-insensitive: strip, upper-case, spaces become ``_``."""
    if isinstance(value, str):
        return "_".join(value.strip().upper().split(" "))
    return value


def _check_tribute_id(value: str) -> str:
    if not _TRIBUTE_ID_RE.match(value):
        raise ValueError("must be 1-64 characters A-Z, 0-9, '_' or '-', starting with a letter or digit")
    return value


def _check_file_name(value: str) -> str:
    if value in (".", "..") or any(ch in value for ch in _FORBIDDEN_IN_NAMES):
        raise ValueError("must not be '.' or '..' nor contain '/', '\\' or NUL")
    _check_text(value)
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    return value


def _check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must not contain lone surrogates (U+D800-U+DFFF)") from None
    return value


def _check_item(value: str) -> str:
    _check_text(value)
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _utc(value: datetime | None) -> datetime | None:
    """Store every timestamp as an aware UTC datetime (naive ones are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # datetime.max with a negative offset, datetime.min with a positive one
        raise ValueError("is out of range once converted to UTC") from None


Snowflake = Annotated[int, Field(strict=True, ge=0, le=MAX_SNOWFLAKE)]
TributeId = Annotated[
    str,
    BeforeValidator(normalise_tribute_id),
    Field(strict=True),
    AfterValidator(_check_tribute_id),
]
FileName = Annotated[str, Field(strict=True, min_length=1, max_length=255), AfterValidator(_check_file_name)]
ItemText = Annotated[str, Field(strict=True, max_length=MAX_ITEM_LENGTH), AfterValidator(_check_item)]
ShortText = Annotated[str, Field(strict=True, max_length=MAX_SHORT_TEXT_LENGTH), AfterValidator(_check_text)]
Capacity = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
Timestamp = Annotated[datetime | None, AfterValidator(_utc)]


class Model(BaseModel):
    """Shared configuration: unknown fields are errors, assignments are validated."""

    # defer_build: a model's validator is built at its first use, not at import (start-up).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)


class Guild(Model):
    """A Discord server running a game, with its settings."""

    guild_id: Snowflake
    log_channel_id: Snowflake | None = None
    category_id: Snowflake | None = None
    gm_id: Snowflake | None = None
    admin_id: Snowflake | None = None


class Tribute(Model):
    """A tribute (player character) in one guild; ``tribute_id`` like ``D1F``."""

    guild_id: Snowflake
    tribute_id: TributeId
    name: ShortText | None = None
    user_id: Snowflake | None = None
    user_mention: ShortText | None = None
    face_claim_url: ShortText | None = None
    prompt_channel_id: Snowflake | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None

    @property
    def key(self) -> tuple[int, str]:
        """``(guild_id, tribute_id)``: what identifies the tribute (and orders listings)."""
        return (self.guild_id, self.tribute_id)


class Inventory(Model):
    """A tribute's inventory: ordered items (numbered 1..n) and equipped items.

    ``capacity`` is soft: stored data may hold more items than it allows, but
    :meth:`TributeStore.add_item` refuses to go past it unless forced.
    """

    guild_id: Snowflake
    tribute_id: TributeId
    capacity: Capacity = DEFAULT_CAPACITY
    equipped_capacity: Capacity = DEFAULT_EQUIPPED_CAPACITY
    items: list[ItemText] = Field(default_factory=list)
    equipped: list[ItemText] = Field(default_factory=list)

    def numbered(self, slot: Slot = "items") -> dict[int, str]:
        """The items of a slot keyed by their display number (1..n)."""
        return dict(enumerate(getattr(self, slot), start=1))


Slot = Literal["items", "equipped"]


class Prompt(Model):
    """A tribute's prompt (at most one): message, channel and attached files by name.

    ``files`` holds names as the bot keeps them: a name need not be a file of the tribute
    (a legacy prompt's reference to a lost image is kept as the bot showed it, and
    deleting a file leaves the prompt's list as it was).
    """

    guild_id: Snowflake
    tribute_id: TributeId
    message: Annotated[str, Field(strict=True), AfterValidator(_check_text)] = ""
    channel_id: Snowflake | None = None
    files: list[FileName] = Field(default_factory=list)
    created_at: Timestamp = None
    updated_at: Timestamp = None


class FileInfo(Model):
    """Metadata of a tribute-owned file; the bytes are kept by the backend."""

    guild_id: Snowflake
    tribute_id: TributeId
    name: FileName
    kind: Annotated[str, Field(strict=True, pattern=r"^[a-z][a-z0-9_]{0,31}$")] = "attachment"
    media_type: Annotated[str, Field(strict=True, max_length=255, pattern=r"^[\w.+-]+/[\w.+-]+$")] = (
        "application/octet-stream"
    )
    size: Annotated[int, Field(strict=True, ge=0)]
    sha256: Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{64}$")]
    created_at: Timestamp = None


class TributeBundle(Model):
    """Everything one tribute owns, as the copier moves it (file bytes read separately)."""

    tribute: Tribute
    inventory: Inventory
    prompt: Prompt | None = None
    files: list[FileInfo] = Field(default_factory=list)


class ItemHit(Model):
    """One result of a global inventory search."""

    guild_id: Snowflake
    tribute_id: TributeId
    slot: Slot
    number: Annotated[int, Field(strict=True, ge=1, le=MAX_SNOWFLAKE)]
    item: str

    @property
    def position(self) -> HitPosition:
        """Where the hit sorts: (guild_id, tribute_id, 0 for "items" / 1 for "equipped", number)."""
        return (self.guild_id, self.tribute_id, 0 if self.slot == "items" else 1, self.number)


#: The order of search hits: (guild_id, tribute_id, 0 for "items" / 1 for "equipped", number).
HitPosition = tuple[int, str, int, int]


class Counts(Model):
    """How many rows of each entity a store holds."""

    guilds: int = 0
    tributes: int = 0
    items: int = 0
    equipped: int = 0
    prompts: int = 0
    files: int = 0


M = TypeVar("M", bound=BaseModel)


def describe_validation_error(error: ValidationError, what: str | None = None) -> str:
    """One line naming each field at fault, its problem and the value given."""
    parts = []
    for detail in error.errors():
        loc = ".".join(str(part) for part in detail["loc"]) or "value"
        given = shown(detail.get("input"))
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message} (got {given})")
    prefix = f"invalid {what or error.title}: "
    return prefix + "; ".join(parts)


def shown(value: object, limit: int = 60) -> str:
    """A value for an error message, bounded whatever it is (never ``repr()`` of unbounded input).

    Ints past 128 bits are described (their decimal text may be refused by Python's
    conversion limit and is useless in a message); other values are cut at ``limit``.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an int of {value.bit_length()} bits"
    if isinstance(value, str | bytes):
        text = repr(value[: limit + 1])
    elif isinstance(value, int | float | bool | None | datetime):
        text = repr(value)
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validated(model: type[M], data: dict[str, Any] | None = None, **fields: Any) -> M:
    """Build ``model`` from data, raising :class:`InvalidInputError` on bad input."""
    try:
        return model.model_validate({**(data or {}), **fields})
    except ValidationError as error:
        raise InvalidInputError(describe_validation_error(error, model.__name__)) from None


def check_tribute_id(value: object) -> str:
    """Normalise and validate a tribute id given on its own."""
    normalised = normalise_tribute_id(value)
    if not isinstance(normalised, str):
        raise InvalidInputError(f"invalid tribute_id: must be a string (got {shown(value)})")
    try:
        return _check_tribute_id(normalised)
    except ValueError as error:
        raise InvalidInputError(f"invalid tribute_id: {error} (got {shown(value)})") from None


def check_text(value: str, what: str) -> str:
    """Validate text given on its own (no NUL, no lone surrogate): one line naming ``what``."""
    try:
        return _check_text(value)
    except ValueError as error:
        raise InvalidInputError(f"invalid {what}: {error} (got {shown(value)})") from None


def check_guild_id(value: object) -> int:
    """Validate a guild id given on its own (a Discord snowflake, an int)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SNOWFLAKE:
        raise InvalidInputError(f"invalid guild_id: must be an int from 0 to 2**63-1 (got {shown(value)})")
    return value


def check_file_name(value: object) -> str:
    """Validate a file name given on its own."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"invalid file name: must be a non-empty string (got {shown(value)})")
    if len(value) > 255:
        raise InvalidInputError(f"invalid file name: longer than 255 characters (got {shown(value, 40)})")
    try:
        return _check_file_name(value)
    except ValueError as error:
        raise InvalidInputError(f"invalid file name: {error} (got {shown(value)})") from None


def utcnow() -> datetime:
    """Now, as an aware UTC datetime with millisecond precision (stable across backends)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
