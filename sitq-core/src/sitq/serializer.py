"""The `Serializer` protocol and the two the standard library can back: `json` and `pickle`.

A serializer turns a task's call (function, args, kwargs) and its return value into bytes and back.
Its `name` is stored beside every payload, so a worker decodes each one with the serializer that wrote it.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, ClassVar, Protocol, runtime_checkable

from sitq import registry
from sitq.errors import SerializationError
from sitq.secret import Secret


@runtime_checkable
class Serializer(Protocol):
    """Turns task calls and results into bytes and back; built with no arguments when found by name."""

    name: ClassVar[str]
    """The plugin name stored with each payload, such as ``"cloudpickle"``."""

    def dumps(self, obj: Any) -> bytes:
        """Encode `obj`; raise any exception for what this format cannot hold."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what `dumps` produced."""
        ...


class PickleSerializer:
    """The standard library's pickle: module-level functions by reference, no lambdas or closures."""

    name: ClassVar[str] = "pickle"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=self.protocol)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


_CALLABLE_KEY = "__sitq_callable__"


class JsonSerializer:
    """JSON for plain data: functions travel as ``"module:qualname"``, the rest must be JSON.

    Readable by any language, and safe to load: a payload can name only a function that the loading
    process knows as a task (see `sitq.register_tasks`), never import a module or call anything else.
    Functions this process encodes become known to it. No lambdas, closures or custom objects; tuples
    come back as lists. A `sitq.Secret` travels as ``{"__sitq_secret__": value}``.
    """

    name: ClassVar[str] = "json"

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, default=_encode_object, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data, object_hook=_decode_object)


_SECRET_KEY = "__sitq_secret__"


def _encode_object(obj: Any) -> dict[str, Any]:
    """What JSON has no type for: a secret, or a function."""
    if isinstance(obj, Secret):
        return {_SECRET_KEY: obj.reveal()}
    return _encode_callable(obj)


def _decode_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _SECRET_KEY in obj:
        return Secret(obj[_SECRET_KEY])
    return _decode_callable(obj)


def _encode_callable(obj: Any) -> dict[str, str]:
    if not callable(obj):
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")
    name = registry.know(obj)
    if name is None:
        raise TypeError(
            f"json can only store functions importable by name, not {getattr(obj, '__qualname__', obj)!r}; "
            "define it at module level, or use the cloudpickle serializer"
        )
    return {_CALLABLE_KEY: name}


def _decode_callable(obj: dict[str, Any]) -> Any:
    if len(obj) != 1 or _CALLABLE_KEY not in obj:
        return obj
    name = obj[_CALLABLE_KEY]
    if not isinstance(name, str):
        raise SerializationError(f"a json payload names a function by a string, not by {type(name).__name__}")
    return registry.resolve(name)
