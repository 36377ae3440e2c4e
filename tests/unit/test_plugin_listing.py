"""`Plugins.installed()`: what `sitq plugins` shows, so that a user can see which plugin serves what."""

from __future__ import annotations

import importlib.metadata
from typing import ClassVar

from sitq.plugins import Plugins


class _Observer:
    def sitq_task_failed(self, task_id: str) -> None: ...

    async def sitq_worker_started(self, worker_id: str) -> None: ...


class _Reverse:
    name: ClassVar[str] = "reverse"

    def dumps(self, obj: object) -> bytes:
        return repr(obj).encode()[::-1]

    def loads(self, data: bytes) -> object:
        return data[::-1].decode()


class _SerializerPlugin:
    def sitq_register_serializers(self) -> list[type[_Reverse]]:
        return [_Reverse]


def test_builtins_are_listed_first_with_core_and_its_version() -> None:
    [builtins, *_] = Plugins().installed()
    assert (builtins.distribution, builtins.version) == ("sitq-core", importlib.metadata.version("sitq-core"))
    assert (builtins.backends, builtins.serializers, builtins.hooks) == (("memory",), ("json", "pickle"), ())


def test_explicit_plugins_show_their_hooks_and_registrations() -> None:
    listed = {info.name: info for info in Plugins([_Observer(), _SerializerPlugin()]).installed()}
    observer, serializers = listed["_Observer"], listed["_SerializerPlugin"]
    assert observer.distribution == "passed explicitly" and observer.version is None
    assert observer.hooks == ("sitq_task_failed", "sitq_worker_started")  # in hookspecs order
    assert (serializers.serializers, serializers.hooks) == (("reverse",), ())


def test_installed_entry_points_name_their_distribution() -> None:
    listed = {info.name: info for info in Plugins().installed()}
    for entry_point in importlib.metadata.entry_points(group="sitq"):
        assert entry_point.dist is not None
        info = listed[entry_point.name]
        assert (info.distribution, info.version) == (entry_point.dist.name, entry_point.dist.version)
