"""Plugin loading and the typed facade over pluggy.

Nothing else in tributestore touches ``pm.hook``: it asks :func:`registry`,
whose :class:`PluginHooks` calls each hook with typed arguments.  The plugin
manager is built lazily on first use and lives as long as the registry:
built-in plugins from :data:`DEFAULT_PLUGINS`, then third-party ones from the
entry-point group ``tributestore``.  A third-party plugin that fails to import,
implements a hook no spec knows (a misspelled name) or fails registering its
backends costs its own backends and hooks only: the failure is kept in
:attr:`BackendRegistry.load_errors`, logged once (a WARNING of the
``tributestore`` logger: a ``note:`` line on the command line) and listed by
``tributestore backends``.  Every plugin hears of a commit, whichever of them fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import pluggy

from . import hookspecs
from .errors import ConfigError, StorageError, TributeStoreError, UnknownBackendError
from .hookspecs import PROJECT_NAME, BackendSpec, Changes, Opener

if TYPE_CHECKING:
    from collections.abc import Callable

    import click

    from .backend import Backend
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
    ("thgbot", "tributestore.backends.thgbot_backend.plugin"),
)


class PluginHooks:
    """The typed facade over the plugin manager's hooks (the only caller of ``pm.hook``)."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._hook = pm.hook

    @property
    def wants_changes(self) -> bool:
        """Whether any plugin listens to committed changes (else the store does not collect them)."""
        return bool(self._hook.tributestore_transaction_committed.get_hookimpls())

    def store_opened(self, store: TributeStore) -> None:
        self._hook.tributestore_store_opened(store=store)

    def transaction_committed(self, store: TributeStore, changes: Changes) -> list[str]:
        """Every plugin hears of the commit, whichever of them fails (pluggy would stop at the
        first error, and an audit log registered earlier would miss the change): what failed,
        one line per plugin."""
        arguments = {"store": store, "changes": changes}
        failures: list[str] = []
        # pluggy's own order: the plugin registered last is called first.
        for impl in reversed(self._hook.tributestore_transaction_committed.get_hookimpls()):
            try:
                impl.function(**{name: arguments[name] for name in impl.argnames})
            except Exception as error:  # noqa: BLE001 - committed already: reported, not raised
                failures.append(f"plugin {impl.plugin_name}: {type(error).__name__}: {error}")
        return failures

    def register_commands(self, cli: click.Group) -> None:
        self._hook.tributestore_register_commands(cli=cli)

    def extra_checks(self, store: TributeStore) -> list[str]:
        """Every plugin's problems; a plugin whose check fails, or returns no list of texts, is
        one problem naming it (the others, and the store's own problems, are still reported)."""
        problems: list[str] = []
        arguments = {"store": store}
        for impl in reversed(self._hook.tributestore_check.get_hookimpls()):
            try:
                found = impl.function(**{name: arguments[name] for name in impl.argnames})
            except Exception as error:  # noqa: BLE001 - one plugin's failure hides nothing else
                problems.append(
                    f"plugin {impl.plugin_name}: its check failed: {type(error).__name__}: {error}"
                )
                continue
            if found is None:
                continue
            if isinstance(found, str | bytes) or not isinstance(found, list | tuple):
                problems.append(
                    f"plugin {impl.plugin_name}: its check returned {type(found).__name__}, "
                    "not a list of problems"
                )
                continue
            problems.extend(str(problem) for problem in found)
        return problems


@dataclass
class BackendRegistry:
    """The backends every loaded plugin registered, by name and by URL scheme."""

    by_name: dict[str, BackendSpec] = field(default_factory=dict)
    by_scheme: dict[str, BackendSpec] = field(default_factory=dict)
    #: Which plugin registered each backend.
    plugin_of: dict[str, str] = field(default_factory=dict)
    load_errors: list[str] = field(default_factory=list)
    #: The hooks of every loaded plugin; ``None`` for a registry built by hand (tests).
    hooks: PluginHooks | None = None
    #: Every loaded plugin by name, with the hooks it implements (pluggy's introspection).
    plugin_hooks: dict[str, list[str]] = field(default_factory=dict)

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
        """Open ``url`` with its backend, in ``mode`` (default: the URL's own), as a store.

        A store the open created is logged once (a WARNING of the
        ``tributestore`` logger naming where), so a mistyped path in a bot's
        configuration shows on its first start.  Plugins hear of it through
        ``tributestore_store_opened``.
        """
        from .store import TributeStore

        backend = self.open_backend(url, mode)
        store = TributeStore(backend, hooks=self.hooks)
        store.opened_url = url
        if self.hooks is not None:
            try:
                self.hooks.store_opened(store)
            except BaseException:
                store.close()
                raise
        return store

    def open_backend(self, url: StoreURL, mode: OpenMode | None = None) -> Backend:
        """The backend of ``url`` opened in ``mode`` (its children, if any, opened first)."""
        if mode is not None and mode != url.mode:
            url = dataclasses.replace(url, mode=mode)
        spec = self.for_url(url)
        opener = resolve_opener(spec)
        try:
            if spec.options is not None:
                url.check_options(spec.options, spec.name)
            backend = self._open_with_children(spec, url, opener) if spec.children else opener(url)
        except TributeStoreError as error:
            hint = self.hint(url, spec)
            if hint is None or hint in str(error):
                raise
            raise type(error)(f"{error}; {hint}") from None
        from .backend import Backend as BackendProtocol  # local: the models load with it

        opened: object = backend  # what a plugin's opener gave, whatever its annotation says
        if not isinstance(opened, BackendProtocol):  # a plugin's bug, said as its own (never ours)
            close = getattr(opened, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()
            raise StorageError(
                f"backend {spec.name!r} (plugin {self.plugin_of.get(spec.name, '?')}): its opener returned "
                f"{type(opened).__name__}, not a tributestore Backend (a bug of that plugin: report it "
                "there)"
            )
        if backend.created and not spec.children:  # a composite's children said it themselves
            log.warning("created a new %s store at %s (%s)", spec.name, backend.created, url.display)
        return backend

    def check_url(self, url: StoreURL) -> BackendSpec:
        """Check ``url`` as opening it would, without creating anything: its backend, options
        and their values, and its children's URLs (:class:`ConfigError` names the first problem,
        with what another backend says the path is, as opening says it); then that each store
        opened for reading (a composite's fallback) exists, with the error opening gives (see
        :meth:`_refuse_missing`).  The backend's spec."""
        spec = self._check_url(url)
        self._refuse_missing(url)
        return spec

    def identity(self, url: StoreURL) -> dict[str, object] | None:
        """An absolute identity of the store ``url`` names (see :func:`~tributestore.urls.place_of`);
        a store with children (a composite) is its children's; ``None`` when it has none known."""
        from .urls import place_of

        place = place_of(url)
        if place is not None:
            return dict(place)
        try:
            spec = self.for_url(url)
            children = {option: self.identity(_child_url(spec, url, option)) for option in spec.children}
        except TributeStoreError:
            return None
        if not children or any(child is None for child in children.values()):
            return None
        return {"kind": url.backend, "children": children}

    def _check_url(self, url: StoreURL) -> BackendSpec:
        spec = self.for_url(url)
        try:
            if spec.options is not None:
                url.check_options(spec.options, spec.name)
            if spec.check_url is not None:
                check = spec.check_url
                if isinstance(check, str):
                    check = cast("Callable[[StoreURL], None]", _imported(check, spec.name))
                check(url)
        except TributeStoreError as error:
            hint = self.hint(url, spec)
            if hint is None or hint in str(error):
                raise
            raise type(error)(f"{error}; {hint}") from None
        for option in spec.children:
            self._check_url(_child_url(spec, url, option))
        return spec

    def child_urls(self, url: StoreURL) -> list[tuple[str, StoreURL]]:
        """The child stores of ``url`` (a composite's fallback and primary), each by its option,
        in the mode opening ``url`` opens it in; ``[]`` for a store without children."""
        spec = self.for_url(url)
        return [(option, _child_url(spec, url, option)) for option in spec.children]

    def _refuse_missing(self, url: StoreURL) -> None:
        """Each built-in file store of ``url`` (itself, its children) that is opened for reading
        (a composite's fallback) and whose path does not exist, refused with the error opening
        it gives: its backend opened for reading refuses it before creating anything (the
        open-mode contract; it is closed at once should it exist after all).  Children first,
        in the order they are opened."""
        from .urls import FILE_SCHEMES

        for _option, child in self.child_urls(url):
            self._refuse_missing(child)
        if not url.must_exist or url.backend not in FILE_SCHEMES:
            return
        if url.netloc or not url.path or url.path == ":memory:":
            return
        path = url.local_path()
        try:
            if path.exists() or path.is_symlink():
                return
        except OSError:  # not looked up here: opening says what the system refused
            return
        self.open_backend(url).close()

    def _open_with_children(self, spec: BackendSpec, url: StoreURL, opener: Opener) -> Backend:
        children: dict[str, Backend] = {}
        try:
            for option in spec.children:
                children[option] = self.open_backend(_child_url(spec, url, option))
            return opener(url, children)
        except BaseException:
            for child in children.values():
                child.close()
            raise

    def hint(self, url: StoreURL, failed: BackendSpec | None = None) -> str | None:
        """What another backend says ``url`` points at (e.g. a legacy directory and its URL)."""
        for spec in self.by_name.values():
            if spec is failed:
                continue
            try:
                hint = spec.hint(url)
            except Exception:  # noqa: BLE001 - a hint is a courtesy, never a new failure
                hint = None
            if hint:
                return hint
        return None


def _child_url(spec: BackendSpec, url: StoreURL, option: str) -> StoreURL:
    """The URL of a child store (option ``option`` of ``url``), in the mode it is opened in."""
    from .urls import parse_store_url

    value = url.option(option)
    if not value:
        raise ConfigError(f"{spec.name} store {url.display!r} needs a {option} URL (option {option}=...)")
    mode = spec.child_mode(url, option) if spec.child_mode else url.mode
    return dataclasses.replace(parse_store_url(value, url.base_dir), mode=mode)


def resolve_opener(spec: BackendSpec) -> Opener:
    """The opener callable, importing ``module:function`` strings on first use."""
    if not isinstance(spec.opener, str):
        return spec.opener
    return cast(Opener, _imported(spec.opener, spec.name))


def _imported(target: str, backend: str) -> object:
    """The function a ``module:function`` string of a backend's spec names."""
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"backend {backend!r}: cannot load {target!r}: {error}") from None


def _build_plugin_manager(load_errors: list[str]) -> pluggy.PluginManager:
    import importlib.metadata  # local: only building the registry reads the entry points

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
    while True:  # a hook no spec knows (a misspelled name) costs its plugin only, named
        try:
            pm.check_pending()
            return pm
        except pluggy.PluginValidationError as error:
            name = pm.get_name(error.plugin) or repr(error.plugin)
            if name in _builtin_names():
                raise ConfigError(f"plugin {name}: {error}") from None
            pm.unregister(error.plugin)
            load_errors.append(f"plugin {name}: not loaded: {error}")


_lock = threading.Lock()
_registry: BackendRegistry | None = None


def registry() -> BackendRegistry:
    """The backends and hooks of all installed plugins (loaded once, on first call)."""
    global _registry
    with _lock:
        if _registry is None:
            found = BackendRegistry()
            pm = _build_plugin_manager(found.load_errors)
            # pluggy's own introspection says which plugin each implementation belongs to, so a
            # scheme clash can name both plugins.
            for impl in pm.hook.tributestore_register_backends.get_hookimpls():
                try:
                    impl.function(register=functools.partial(_register, found, impl.plugin_name))
                except Exception as error:  # noqa: BLE001 - named, not a traceback
                    if impl.plugin_name in _builtin_names():
                        raise ConfigError(
                            f"plugin {impl.plugin_name}: registering its backends failed: {error}"
                        ) from None
                    # A broken third-party plugin costs its own backends only.
                    found.load_errors.append(
                        f"plugin {impl.plugin_name}: registering its backends failed: "
                        f"{type(error).__name__}: {error}"
                    )
            for problem in found.load_errors:  # said wherever the registry is used, once
                log.warning("%s ('tributestore backends' lists the plugins)", problem)
            found.hooks = PluginHooks(pm)
            for name, plugin in pm.list_name_plugin():
                callers = pm.get_hookcallers(plugin) or []
                found.plugin_hooks[name] = sorted(caller.name for caller in callers)
            _registry = found
        return _registry


def _builtin_names() -> set[str]:
    """The built-in plugins' names: one of them failing is a broken installation, not a plugin."""
    return {name for name, _ in DEFAULT_PLUGINS}


def _register(found: BackendRegistry, plugin: str, spec: BackendSpec) -> None:
    found.add(spec, plugin)


def reset_registry() -> None:
    """Forget loaded plugins (tests that install or remove a plugin call this)."""
    global _registry
    with _lock:
        _registry = None
