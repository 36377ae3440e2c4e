"""Plugin discovery, registries and hook dispatch, through the same path third parties use."""

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import sitq
from sitq import ConfigurationError, MemoryBackend, PluginNotFoundError, TaskQueue, Worker, hookimpl
from sitq.plugins import Plugins, _installed_plugins, plugins_with


class _ShadowMemory(MemoryBackend):
    name: ClassVar[str] = "memory"


class _RenamedBackend:
    @staticmethod
    def sitq_register_backends() -> list[type[Any]]:
        return [_ShadowMemory]


def test_builtins_and_installed_plugins_are_registered() -> None:
    plugins = plugins_with(())
    assert {"memory", "sqlite"} <= set(plugins.backends)
    assert {"json", "pickle", "cloudpickle", "dill"} <= set(plugins.serializers)
    assert plugins.default_serializer().name == "cloudpickle"


def test_plugin_provided_names_resolve_lazily_to_the_plugin_classes() -> None:
    from sitq.backends.sqlite import SQLiteBackend
    from sitq.serialization import CloudpickleSerializer, DillSerializer
    from sitq_cloudpickle import CloudpickleSerializer as Direct
    from sitq_sqlite import SQLiteBackend as DirectBackend

    assert sitq.SQLiteBackend is SQLiteBackend is DirectBackend
    assert CloudpickleSerializer is Direct
    assert DillSerializer.name == "dill"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        sitq.Nope  # noqa: B018 - the attribute access is the test


def test_two_plugins_with_one_backend_name_are_refused_naming_both() -> None:
    plugins = Plugins([_RenamedBackend()])
    with pytest.raises(
        ConfigurationError, match="two plugins provide the backend 'memory': passed explicitly and sitq-core"
    ):
        plugins.backends  # noqa: B018 - building the registry is the test


def test_a_misspelled_hook_is_refused() -> None:
    class Typo:
        def sitq_task_succeded(self, task_id: str) -> None: ...

    with pytest.raises(ConfigurationError, match="sitq_task_succeded"):
        TaskQueue("memory://", plugins=[Typo()])


def test_unknown_names_and_schemes_list_what_is_available() -> None:
    plugins = plugins_with(())
    with pytest.raises(
        PluginNotFoundError, match="called 'yaml'; available: cloudpickle, dill, json, pickle"
    ):
        plugins.serializer("yaml")
    with pytest.raises(
        ConfigurationError, match="installed schemes are: memory, postgres, postgresql, sqlite"
    ):
        TaskQueue("redis://localhost")


@pytest.fixture
def broken_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real installed distribution whose plugin module fails to import."""
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('half-installed')\n")
    dist_info = tmp_path / "sitq_broken-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: sitq-broken\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[sitq]\nbroken = broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _installed_plugins.cache_clear()
    yield
    sys.modules.pop("broken_plugin", None)
    _installed_plugins.cache_clear()


@pytest.mark.usefixtures("broken_distribution")
def test_a_plugin_that_fails_to_load_is_named_with_its_distribution() -> None:
    with pytest.raises(
        ConfigurationError, match=r"'broken' \(sitq-broken 1.0\) failed to load.*half-installed"
    ):
        Plugins()


class _Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def sitq_worker_started(self, worker_id: str) -> None:
        self.seen.append("sync")

    async def sitq_worker_stopped(self) -> None:
        self.seen.append("async")


class _Broken:
    def sitq_worker_started(self) -> None:
        raise RuntimeError("observer bug")


async def test_hooks_accept_sync_and_async_implementations_and_log_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observer = _Observer()
    worker = Worker(MemoryBackend(), plugins=[_Broken(), observer])
    with caplog.at_level(logging.ERROR, logger="sitq.plugins"):
        await worker.start()
        await worker.stop()
    assert observer.seen == ["sync", "async"]
    assert "sitq plugin '_Broken' failed in sitq_worker_started" in caplog.text
    assert "observer bug" in caplog.text


def test_explicit_plugins_do_not_leak_into_the_default_manager() -> None:
    observer = _Observer()
    TaskQueue("memory://", plugins=[observer])
    assert not plugins_with(())._pm.is_registered(observer)


def test_importing_sitq_loads_no_plugin() -> None:
    heavy = ("sitq_", "aiosqlite", "cloudpickle", "dill", "importlib.metadata")
    probe = f"import sys, sitq\nprint(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert output == "[]\n"


class _Ordered:
    def __init__(self, label: str, calls: list[str]) -> None:
        self.label, self.calls = label, calls


def test_observers_run_in_pluggy_order_tryfirst_first_trylast_last() -> None:
    calls: list[str] = []

    class First(_Ordered):
        @hookimpl(tryfirst=True)
        def sitq_worker_stopped(self) -> None:
            self.calls.append(self.label)

    class Plain(_Ordered):
        def sitq_worker_stopped(self) -> None:
            self.calls.append(self.label)

    class Last(_Ordered):
        @hookimpl(trylast=True)
        def sitq_worker_stopped(self) -> None:
            self.calls.append(self.label)

    plugins = Plugins([Last("last", calls), Plain("plain", calls), First("first", calls)])
    asyncio.run(plugins.worker_stopped(worker_id="w"))
    assert calls == ["first", "plain", "last"]


def test_a_registration_hook_that_raises_is_named() -> None:
    class Faulty:
        def sitq_register_serializers(self) -> list[type[Any]]:
            raise KeyError("missing setting")

    with pytest.raises(ConfigurationError, match=r"'Faulty' .*failed to register serializers: KeyError"):
        TaskQueue("memory://", plugins=[Faulty()])


def test_discovering_plugins_imports_none_of_their_heavy_dependencies() -> None:
    probe = (
        "import sys\n"
        "from sitq.plugins import default_plugins\n"
        "plugins = default_plugins()\n"
        "assert 'sqlite' in plugins.backends and {'cloudpickle', 'dill'} <= set(plugins.serializers)\n"
        "print(sorted(m for m in ('aiosqlite', 'cloudpickle', 'dill') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert output == "[]\n"
