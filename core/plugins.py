"""Plugin loading and the typed facade over pluggy.

Nothing else in tributestore touches ``pm.hook``: it asks :func:`registry`.
The plugin manager is built lazily on first use: built-in plugins from
:data:`DEFAULT_PLUGINS`, then third-party ones from the entry-point group
``tributestore``.  A third-party plugin that fails to import does not break
the others: the failure is kept in :attr:`BackendRegistry.load_errors` and
shown by ``tributestore backends``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import threading
from dataclasses import dataclass, field
from typing import cast

import pluggy

from . import hookspecs
from .errors import ConfigError, UnknownBackendError
from .hookspecs import PROJECT_NAME, BackendSpec, Opener
from .store import TributeStore
from .urls import OpenMode, StoreURL

log = logging.getLogger("tributestore")

#: Entry-point group third-party plugins declare themselves in.
ENTRY_POINT_GROUP = PROJECT_NAME

#: Built-in plugins, registered by these names (their entry points share them).
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("json", "tributestore.backends.json_backend.plugin"),
    ("sqlite", "tributestore.backends.sqlite_backend.plugin"),
    ("composite", "tributestore.backends.composite_backend.plugin"),
)


@dataclass
class BackendRegistry:
    """The backends every loaded plugin registered, by name and by URL scheme."""

    by_name: dict[str, BackendSpec] = field(default_factory=dict)
    by_scheme: dict[str, BackendSpec] = field(default_factory=dict)
    #: Which plugin registered each backend.
    plugin_of: dict[str, str] = field(default_factory=dict)
    load_errors: list[str] = field(default_factory=list)

    def add(self, spec: BackendSpec, plugin: str) -> None:
        if not isinstance(spec, BackendSpec):
            raise ConfigError(f"plugin {plugin} registered {spec!r}, not a BackendSpec")
        for scheme in spec.schemes:
            owner = self.by_scheme.get(scheme)
            if owner is not None:
                raise ConfigError(
                    f"URL scheme {scheme!r} is claimed by backend {owner.name!r} "
                    f"(plugin {self.plugin_of[owner.name]}) and by {spec.name!r} (plugin {plugin})"
                )
            self.by_scheme[scheme] = spec
        self.by_name[spec.name] = spec
        self.plugin_of[spec.name] = plugin

    def for_url(self, url: StoreURL) -> BackendSpec:
        spec = self.by_scheme.get(url.scheme) or self.by_scheme.get(url.backend)
        if spec is None:
            installed = ", ".join(sorted(self.by_scheme)) or "none"
            raise UnknownBackendError(
                f"no backend for URL scheme {url.scheme!r} in {url.display!r}; installed: {installed}"
            )
        return spec

    def open(self, url: StoreURL, mode: OpenMode | None = None) -> TributeStore:
        """Open ``url`` with its backend, in ``mode`` (default: the URL's own).

        A store the open created is logged once (a WARNING of the
        ``tributestore`` logger naming where), so a mistyped path in a bot's
        configuration shows on its first start.
        """
        if mode is not None and mode != url.mode:
            url = dataclasses.replace(url, mode=mode)
        spec = self.for_url(url)
        if spec.options is not None:
            url.check_options(spec.options, spec.name)
        store = resolve_opener(spec)(url)
        if store.created:
            log.warning("created a new %s store at %s (%s)", spec.name, store.created, url.display)
        return store


def resolve_opener(spec: BackendSpec) -> Opener:
    """The opener callable, importing ``module:function`` strings on first use."""
    if not isinstance(spec.opener, str):
        return spec.opener
    module_name, _, attr = spec.opener.partition(":")
    try:
        return cast(Opener, getattr(importlib.import_module(module_name), attr))
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"backend {spec.name!r}: cannot load opener {spec.opener!r}: {error}") from None


def _build_plugin_manager(load_errors: list[str]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name, module in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module), name=name)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(entry_point.name) is not None or pm.is_blocked(entry_point.name):
            continue
        try:
            pm.register(entry_point.load(), name=entry_point.name)
        except Exception as error:  # noqa: BLE001 - a broken plugin must not break the others
            load_errors.append(f"plugin {entry_point.name} ({entry_point.value}): {error}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise ConfigError(f"plugin {error.plugin!r}: {error}") from None
    return pm


_lock = threading.Lock()
_registry: BackendRegistry | None = None


def registry() -> BackendRegistry:
    """The backends of all installed plugins (loaded once, on first call)."""
    global _registry
    with _lock:
        if _registry is None:
            found = BackendRegistry()
            pm = _build_plugin_manager(found.load_errors)
            plugins = pm.get_plugins()
            for plugin in plugins:
                # One call per plugin, so a scheme clash can name the plugins involved.
                name = pm.get_name(plugin) or repr(plugin)
                others = [other for other in plugins if other is not plugin]
                call = pm.subset_hook_caller("tributestore_register_backends", others)
                try:
                    call(register=lambda spec, _name=name: found.add(spec, _name))
                except ConfigError:
                    raise
                except Exception as error:  # noqa: BLE001 - named, not a traceback
                    raise ConfigError(f"plugin {name}: registering its backends failed: {error}") from None
            _registry = found
        return _registry


def reset_registry() -> None:
    """Forget loaded plugins (tests that install or remove a plugin call this)."""
    global _registry
    with _lock:
        _registry = None
