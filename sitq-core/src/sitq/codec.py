"""Between Python objects and stored bytes: task calls and return values, with errors that say why."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sitq.errors import PluginNotFoundError, SerializationError
from sitq.models import Result, TaskRecord
from sitq.plugins import Plugins
from sitq.serializer import Serializer

Call = tuple[Callable[..., Any], Sequence[Any], Mapping[str, Any]]
ParentResults = tuple[tuple[str, bytes, str], ...]
"""The stored results of a task's parents: (task id, result bytes, serializer name) each."""


def task_name(function: Callable[..., Any]) -> str:
    """A readable name for logs, hooks and listings: ``module.qualname`` where there is one."""
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    module = getattr(function, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


def takes_parent_results(function: Callable[..., Any]) -> bool:
    """Whether a task of a workflow is called with its parents' results, as `parent_results=`."""
    try:
        return "parent_results" in inspect.signature(function).parameters
    except (TypeError, ValueError):  # some builtins have no signature to inspect
        return False


class Codec:
    """Encodes with the queue's serializer; decodes with whichever serializer wrote the bytes."""

    def __init__(self, plugins: Plugins, serializer: Serializer) -> None:
        self._plugins = plugins
        self.serializer = serializer

    def _by_name(self, name: str) -> Serializer:
        if name == self.serializer.name:
            return self.serializer
        try:
            return self._plugins.serializer(name)
        except PluginNotFoundError as exc:
            raise SerializationError(f"this payload was written by the {name!r} serializer: {exc}") from exc

    def encode_call(
        self, function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> bytes:
        try:
            return self.serializer.dumps((function, tuple(args), dict(kwargs)))
        except Exception as exc:
            already_said = "cloudpickle" in f"{self.serializer.name} {exc}"
            hint = "" if already_said else "; the cloudpickle serializer handles more"
            raise SerializationError(
                f"the {self.serializer.name} serializer cannot store a call to {task_name(function)}: "
                f"{exc}{hint}"
            ) from exc

    def decode_call(self, payload: bytes, serializer: str) -> Call:
        with _reraised(f"cannot decode this task's call with {serializer!r}"):
            function, args, kwargs = self._by_name(serializer).loads(payload)
        return function, args, kwargs

    def encode_value(self, value: Any, serializer: str) -> bytes:
        with _reraised(
            f"the task returned a {type(value).__name__} that the {serializer} serializer cannot store"
        ):
            return self._by_name(serializer).dumps(value)

    def decode_value(self, data: bytes, serializer: str) -> Any:
        with _reraised(f"cannot decode this task's result with {serializer!r}"):
            return self._by_name(serializer).loads(data)

    def decode_parent_results(self, parents: ParentResults) -> dict[str, Any]:
        """What a task that takes `parent_results` is given: its parents' return values by task id."""
        return {task_id: self.decode_value(result, serializer) for task_id, result, serializer in parents}

    def to_result(self, record: TaskRecord) -> Result:
        value = None if record.result is None else self.decode_value(record.result, record.serializer)
        return Result(
            task_id=record.id,
            status=record.status,
            value=value,
            error=record.error,
            traceback=record.traceback,
            enqueued_at=record.enqueued_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
        )


@contextlib.contextmanager
def _reraised(doing: str) -> Iterator[None]:
    """Turn whatever a serializer raises into a `SerializationError` that says what was being done."""
    try:
        yield
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"{doing}: {type(exc).__name__}: {exc}") from exc
