"""The plugin that contributes core's own backend and serializers, through the same hooks as any other."""

from __future__ import annotations

from sitq.backend import Backend
from sitq.hookspecs import hookimpl
from sitq.serializer import JsonSerializer, PickleSerializer, Serializer


@hookimpl
def sitq_register_backends() -> list[type[Backend]]:
    from sitq.backends.memory import MemoryBackend

    return [MemoryBackend]


@hookimpl
def sitq_register_serializers() -> list[type[Serializer]]:
    return [JsonSerializer, PickleSerializer]
