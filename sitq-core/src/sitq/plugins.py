"""The plugin manager: entry-point discovery, the backend and serializer registries, typed hook calls.

This is the only module that touches pluggy's hook relay; the rest of sitq calls the typed methods of
`Plugins`. Entry points in the group ``sitq`` are loaded once per process, on first need, never at import.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

import pluggy

from sitq import builtin_plugins, hookspecs
from sitq.backend import Backend
from sitq.errors import ConfigurationError, PluginNotFoundError, ValidationError
from sitq.serializer import Serializer
from sitq.urls import redacted

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sitq"
URL_VARIABLE = "SITQ_URL"
DEFAULT_URL = "sqlite:///sitq.db"

Kind = Literal["backend", "serializer"]

# The plugins the sitq project publishes itself, so that a missing one comes with an install hint.
KNOWN_DISTRIBUTIONS = {
    "sqlite": "sitq-sqlite",
    "postgres": "sitq-postgres",
    "cloudpickle": "sitq-cloudpickle",
    "dill": "sitq-dill",
}
# URL schemes of those plugins that differ from the plugin's name.
KNOWN_SCHEMES = {"postgresql": "postgres"}

# Names importable from sitq's own modules that a plugin provides: attribute -> (kind, plugin name).
PLUGIN_EXPORTS: dict[str, tuple[Kind, str]] = {
    "SQLiteBackend": ("backend", "sqlite"),
    "PostgresBackend": ("backend", "postgres"),
    "CloudpickleSerializer": ("serializer", "cloudpickle"),
    "DillSerializer": ("serializer", "dill"),
}

_LIFECYCLE_HOOKS = (
    "sitq_task_enqueued",
    "sitq_task_started",
    "sitq_task_succeeded",
    "sitq_task_failed",
    "sitq_task_retried",
    "sitq_task_timed_out",
    "sitq_task_cancelled",
    "sitq_worker_started",
    "sitq_worker_stopped",
)

_Registered = TypeVar("_Registered", type[Backend], type[Serializer])


class _PluginManager(pluggy.PluginManager):
    """Takes any ``sitq_*`` callable as a hook implementation, marked or not, as pytest does."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("sitq_") and callable(getattr(plugin, name, None)):
            return {
                "wrapper": False,
                "hookwrapper": False,
                "optionalhook": False,
                "tryfirst": False,
                "trylast": False,
                "specname": None,
            }
        return opts


class _Provider(NamedTuple):
    """Where a plugin came from: its distribution (or how it was given) and that distribution's version."""

    distribution: str
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}" if self.version else self.distribution


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin and what it provides, as `sitq plugins` lists it."""

    name: str
    distribution: str
    """The distribution that installed it (``sitq-core`` for the built-ins), or ``passed explicitly``."""
    version: str | None
    backends: tuple[str, ...]
    serializers: tuple[str, ...]
    hooks: tuple[str, ...]
    """The lifecycle hooks it implements, in the order `hookspecs` lists them."""


@functools.cache
def _core_provider() -> _Provider:
    import importlib.metadata  # only when plugins are first needed, as in _installed_plugins

    try:
        return _Provider("sitq-core", importlib.metadata.version("sitq-core"))
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return _Provider("sitq-core")


@functools.cache
def _installed_plugins() -> tuple[tuple[str, object, _Provider], ...]:
    """Load every entry point of the group once: (plugin name, plugin object, providing distribution)."""
    import importlib.metadata  # costs a tenth of sitq's import time, so only when plugins are first needed

    loaded = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        provider = _Provider(dist.name, dist.version) if dist else _Provider(entry_point.value)
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"the sitq plugin {entry_point.name!r} ({provider}) failed to load: {exc!r}; "
                "reinstall or uninstall it"
            ) from exc
        loaded.append((entry_point.name, plugin, provider))
    return tuple(loaded)


class Plugins:
    """One pluggy manager: the built-ins, every installed plugin, and any passed in explicitly."""

    def __init__(self, extra: Sequence[object] = ()) -> None:
        self._pm = _PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._providers: dict[str, _Provider] = {}
        self._add(builtin_plugins, "sitq.builtins", _core_provider())
        for name, plugin, provider in _installed_plugins():
            self._add(plugin, name, provider)
        for plugin in extra:
            self._add(plugin, self._unique_name(plugin), _Provider("passed explicitly"))
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise ConfigurationError(f"a sitq plugin implements a hook that does not exist: {exc}") from exc
        self._observers = {
            hook: [
                _Observer.of(impl) for impl in _in_call_order(getattr(self._pm.hook, hook).get_hookimpls())
            ]
            for hook in _LIFECYCLE_HOOKS
        }
        self._serializers: dict[str, Serializer] = {}

    def _unique_name(self, plugin: object) -> str:
        """A readable name for logs and errors: the module's or the class's, numbered if taken."""
        base = getattr(plugin, "__name__", None) or type(plugin).__name__
        name, number = base, 1
        while self._pm.has_plugin(name):
            number += 1
            name = f"{base}#{number}"
        return name

    def _add(self, plugin: object, name: str, provider: _Provider) -> None:
        if self._pm.is_registered(plugin):
            return
        try:
            registered = self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise ConfigurationError(f"cannot register sitq plugin {plugin!r} ({provider}): {exc}") from exc
        if registered is not None:
            self._providers[registered] = provider

    # Registries

    @functools.cached_property
    def backends(self) -> dict[str, type[Backend]]:
        """Every available backend class by name."""
        return self._collect("backend", self._pm.hook.sitq_register_backends)

    @functools.cached_property
    def serializers(self) -> dict[str, type[Serializer]]:
        """Every available serializer class by name."""
        return self._collect("serializer", self._pm.hook.sitq_register_serializers)

    def _collect(self, kind: Kind, hook: pluggy.HookCaller) -> dict[str, Any]:
        found: dict[str, Any] = {}
        provided_by: dict[str, str] = {}
        for impl in _in_call_order(hook.get_hookimpls()):
            provider = str(self._providers.get(impl.plugin_name, impl.plugin_name))
            try:
                classes: list[Any] = list(impl.function())  # type: ignore[call-overload] # a non-iterable raises, caught below
            except Exception as exc:
                raise ConfigurationError(
                    f"the sitq plugin {impl.plugin_name!r} ({provider}) failed to register {kind}s: {exc!r}"
                ) from exc
            for cls in classes:
                if cls.name in found:
                    raise ConfigurationError(
                        f"two plugins provide the {kind} {cls.name!r}: {provided_by[cls.name]} and "
                        f"{provider}; remove one of them"
                    )
                found[cls.name] = cls
                provided_by[cls.name] = provider
        return found

    def installed(self) -> list[PluginInfo]:
        """Every registered plugin in the order it was registered, with its distribution and what it
        provides: what `sitq plugins` shows, so a user can see which plugin serves what."""
        provides: dict[tuple[str, str], tuple[str, ...]] = {}
        # The registries first: they raise a clear ConfigurationError for a broken or clashing plugin.
        for kind, registry in (("backends", self.backends), ("serializers", self.serializers)):
            hook = getattr(self._pm.hook, f"sitq_register_{kind}")
            for impl in hook.get_hookimpls():
                names = [cls.name for cls in impl.function()]
                provides[kind, impl.plugin_name] = tuple(name for name in names if name in registry)
        plugins = []
        for name, plugin in self._pm.list_name_plugin():
            provider = self._providers.get(name, _Provider("unknown"))
            implemented = {caller.name for caller in self._pm.get_hookcallers(plugin) or ()}
            plugins.append(
                PluginInfo(
                    name=name,
                    distribution=provider.distribution,
                    version=provider.version,
                    backends=provides.get(("backends", name), ()),
                    serializers=provides.get(("serializers", name), ()),
                    hooks=tuple(hook for hook in _LIFECYCLE_HOOKS if hook in implemented),
                )
            )
        return plugins

    def backend_class(self, name: str) -> type[Backend]:
        return _lookup("backend", name, self.backends)

    def serializer_class(self, name: str) -> type[Serializer]:
        return _lookup("serializer", name, self.serializers)

    def backend_from_url(self, url: str) -> Backend:
        """Build the backend that serves this URL's scheme, unconnected."""
        scheme = urlsplit(url).scheme
        for cls in self.backends.values():
            if scheme in cls.url_schemes:
                return cls.from_url(url)
        if (known := KNOWN_SCHEMES.get(scheme, scheme)) in KNOWN_DISTRIBUTIONS:
            raise _missing("backend", known)
        schemes = sorted(s for cls in self.backends.values() for s in cls.url_schemes)
        raise ConfigurationError(
            f"no installed backend serves the URL {redacted(url)!r}; URLs look like 'scheme://...' and the "
            f"installed schemes are: {', '.join(schemes)}"
        )

    def resolve_backend(self, backend: Backend | str | None) -> Backend:
        """A backend object as given, or built from a URL: the argument, else $SITQ_URL, else sitq.db."""
        if backend is None:
            backend = os.environ.get(URL_VARIABLE) or DEFAULT_URL
        if isinstance(backend, str):
            return self.backend_from_url(backend)
        if not isinstance(backend, Backend):
            raise ValidationError(
                f"backend must be a backend object or a URL such as 'sqlite:///tasks.db', not {backend!r}"
            )
        return backend

    def resolve_serializer(self, serializer: Serializer | str | None) -> Serializer:
        """A serializer object as given, one built by plugin name, or the default."""
        if serializer is None:
            return self.default_serializer()
        if isinstance(serializer, str):
            return self.serializer(serializer)
        if not isinstance(serializer, Serializer):
            raise ValidationError(
                f"serializer must be a serializer object or a name such as 'cloudpickle', not {serializer!r}"
            )
        return serializer

    def serializer(self, name: str) -> Serializer:
        """The shared instance of the serializer called `name`."""
        if name not in self._serializers:
            self._serializers[name] = self.serializer_class(name)()
        return self._serializers[name]

    def default_serializer(self) -> Serializer:
        """cloudpickle when installed, since it handles lambdas and closures; else the stdlib pickle."""
        return self.serializer("cloudpickle" if "cloudpickle" in self.serializers else "pickle")

    # Lifecycle events: each implementation is called on its own, awaited if it returns an awaitable,
    # and its exceptions are logged, so that one observer can neither fail a task nor silence another.
    # With no observer, an event costs one dict lookup: the arguments are gathered (from `locals()`)
    # only when someone listens.

    async def task_enqueued(self, *, task_id: str, task_name: str, queue: str, eta: datetime) -> None:
        if observers := self._observers["sitq_task_enqueued"]:
            await _notify(observers, "sitq_task_enqueued", locals())

    async def task_started(
        self, *, task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, enqueued_at: datetime
    ) -> None:
        if observers := self._observers["sitq_task_started"]:
            await _notify(observers, "sitq_task_started", locals())

    async def task_succeeded(
        self, *, task_id: str, task_name: str, queue: str, worker_id: str, duration: float
    ) -> None:
        if observers := self._observers["sitq_task_succeeded"]:
            await _notify(observers, "sitq_task_succeeded", locals())

    async def task_failed(
        self,
        *,
        task_id: str,
        task_name: str,
        queue: str,
        worker_id: str,
        duration: float,
        error: str,
        traceback: str,
    ) -> None:
        if observers := self._observers["sitq_task_failed"]:
            await _notify(observers, "sitq_task_failed", locals())

    async def task_retried(
        self,
        *,
        task_id: str,
        task_name: str,
        queue: str,
        worker_id: str,
        attempt: int,
        delay: float,
        error: str,
    ) -> None:
        if observers := self._observers["sitq_task_retried"]:
            await _notify(observers, "sitq_task_retried", locals())

    async def task_timed_out(
        self, *, task_id: str, task_name: str, queue: str, worker_id: str, attempt: int, timeout: float
    ) -> None:
        if observers := self._observers["sitq_task_timed_out"]:
            await _notify(observers, "sitq_task_timed_out", locals())

    async def task_cancelled(
        self, *, task_id: str, task_name: str, queue: str, worker_id: str | None
    ) -> None:
        if observers := self._observers["sitq_task_cancelled"]:
            await _notify(observers, "sitq_task_cancelled", locals())

    async def worker_started(self, *, worker_id: str, max_concurrency: int) -> None:
        if observers := self._observers["sitq_worker_started"]:
            await _notify(observers, "sitq_worker_started", locals())

    async def worker_stopped(self, *, worker_id: str) -> None:
        if observers := self._observers["sitq_worker_stopped"]:
            await _notify(observers, "sitq_worker_stopped", locals())


def _in_call_order(impls: list[pluggy.HookImpl]) -> list[pluggy.HookImpl]:
    """pluggy lists implementations in reverse call order (`tryfirst` ones last): undo that."""
    return impls[::-1]


class _Observer(NamedTuple):
    """A lifecycle hook implementation, ready to call: it runs for every task, so it is kept cheap."""

    function: Callable[..., Any]
    arguments: Callable[[dict[str, Any]], tuple[Any, ...]]
    plugin_name: str

    @classmethod
    def of(cls, impl: pluggy.HookImpl) -> _Observer:
        names = impl.argnames
        arguments: Callable[[dict[str, Any]], tuple[Any, ...]]
        if len(names) > 1:
            arguments = operator.itemgetter(*names)
        else:  # itemgetter returns a lone value for one name, and takes no fewer
            arguments = lambda given: tuple(given[name] for name in names)  # noqa: E731  # one-liner twin
        return cls(impl.function, arguments, impl.plugin_name)


async def _notify(observers: list[_Observer], hook: str, arguments: dict[str, Any]) -> None:
    for function, wanted, plugin_name in observers:
        try:
            outcome = function(*wanted(arguments))
            if outcome is not None and inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("sitq plugin %r failed in %s; carrying on", plugin_name, hook)


def _lookup(kind: Kind, name: str, registry: dict[str, _Registered]) -> _Registered:
    if name in registry:
        return registry[name]
    if name in KNOWN_DISTRIBUTIONS:
        raise _missing(kind, name)
    raise PluginNotFoundError(
        f"no installed plugin provides a {kind} called {name!r}; available: {', '.join(sorted(registry))}"
    )


def _missing(kind: Kind, name: str) -> PluginNotFoundError:
    distribution = KNOWN_DISTRIBUTIONS[name]
    return PluginNotFoundError(
        f"the {name} {kind} is provided by the {distribution} plugin, which is not installed: "
        f"pip install {distribution}",
        name=distribution,
    )


@functools.cache
def default_plugins() -> Plugins:
    """The process-wide manager of built-in and installed plugins, made on first need."""
    return Plugins()


def plugins_with(extra: Sequence[object]) -> Plugins:
    """The default manager, or a new one that also holds `extra` (for `plugins=[...]` arguments)."""
    if isinstance(extra, str | bytes) or not isinstance(extra, Sequence):
        raise ValidationError(f"plugins must be a list of plugin objects, not {extra!r:.200}")
    return Plugins(extra) if extra else default_plugins()


def export(name: str) -> type[Any]:
    """Resolve a plugin-provided name such as `SQLiteBackend`, with an install hint when it is missing."""
    kind, plugin = PLUGIN_EXPORTS[name]
    registry = default_plugins()
    return registry.backend_class(plugin) if kind == "backend" else registry.serializer_class(plugin)


def lazy_exports(module: str, names: set[str]) -> Callable[[str], Any]:
    """A module `__getattr__` that resolves `names` through the plugin registry on first access."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return export(name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def lazy_imports(module: str, sources: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` importing each name from its source module on first access.

    For a plugin package's `__init__`: loading the entry point imports the package, and this keeps that
    import from pulling in the plugin's heavy dependency before anything is asked of it.
    """

    def __getattr__(name: str) -> Any:
        if name in sources:
            return getattr(importlib.import_module(sources[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
