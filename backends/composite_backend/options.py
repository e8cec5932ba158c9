"""The composite's URL options, checked before either child store is opened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tributestore.errors import ConfigError
from tributestore.urls import OpenMode, StoreURL, parse_store_url, same_place

#: The URL options naming the two child stores, in the order the registry opens them: the
#: fallback first, so a missing one (read mode) is refused before the primary is created.
CHILDREN = ("fallback", "primary")


@dataclass(frozen=True)
class CompositeOptions:
    """``promote_on_read``, ``dual_write`` and ``fallback_errors`` of a composite URL."""

    promote_on_read: bool = False
    dual_write: bool = False
    fallback_errors: Literal["fail", "warn"] = "fail"

    @classmethod
    def of(cls, url: StoreURL) -> CompositeOptions:
        """The URL's options; :class:`ConfigError` naming the URL for a missing or bad one."""
        for role in ("primary", "fallback"):
            if not url.option(role):
                raise ConfigError(f"composite store {url.display!r} needs a {role} URL (option {role}=...)")
        primary, fallback = (parse_store_url(url.options[role], url.base_dir) for role in CHILDREN[::-1])
        if same_place(primary, fallback):
            raise ConfigError(
                f"composite store {url.display!r}: primary {primary.display!r} and fallback "
                f"{fallback.display!r} are the same store (the fallback is the store the primary replaces)"
            )
        errors = url.option("fallback_errors", "fail")
        if errors not in ("fail", "warn"):
            raise ConfigError(
                f"composite store {url.display!r}: fallback_errors must be fail or warn (got {errors!r})"
            )
        return cls(
            promote_on_read=url.flag("promote_on_read"),
            dual_write=url.flag("dual_write"),
            fallback_errors="warn" if errors == "warn" else "fail",
        )


def check_url(url: StoreURL) -> None:
    """The composite's own options (its children are checked by the registry), nothing opened."""
    CompositeOptions.of(url)


def child_mode(url: StoreURL, option: str) -> OpenMode:
    """The open mode of a child: the primary's is the composite's own; the fallback must already
    exist (``read``) unless ``dual_write`` writes to it from a composite opened for writing.

    Called by the registry before it opens each child, so bad options are refused before
    anything is opened or created.
    """
    options = CompositeOptions.of(url)
    if option == "fallback":
        return "write" if options.dual_write and not url.must_exist else "read"
    return url.mode
