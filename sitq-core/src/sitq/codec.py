"""Between Python objects and stored bytes: task calls and return values, with errors that say why."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from sitq.errors import PluginNotFoundError, SerializationError, ValidationError
from sitq.models import Result, TaskRecord
from sitq.plugins import Plugins
from sitq.sealing import Part, Sealer
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


def accepted(
    accept: Iterable[str] | None, plugins: Plugins, serializer: Serializer | None = None
) -> frozenset[str] | None:
    """`accept` checked: names of installed serializers, including `serializer` (the one this side writes
    with) when given."""
    if accept is None:
        return None
    if isinstance(accept, str) or not isinstance(accept, Iterable):
        raise ValidationError(
            f"accept takes a list of serializer names, such as ['json'], not {accept!r:.100}"
        )
    names = frozenset(accept)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValidationError(f"accept takes a non-empty list of serializer names, not {accept!r:.100}")
    for name in names:
        plugins.serializer_class(name)  # PluginNotFoundError names the installed ones
    if serializer is not None and serializer.name not in names:
        raise ValidationError(
            f"accept={sorted(names)} leaves out {serializer.name!r}, the serializer this queue writes with; "
            "add it, or choose one of those"
        )
    return names


class Codec:
    """Encodes with the queue's serializer, then seals; opens, then decodes with whichever serializer wrote
    the bytes, if `accept` allows it (None: any installed one)."""

    def __init__(
        self,
        plugins: Plugins,
        serializer: Serializer,
        sealer: Sealer | None = None,
        accept: frozenset[str] | None = None,
    ) -> None:
        self._plugins = plugins
        self.serializer = serializer
        self.sealer = Sealer() if sealer is None else sealer
        self.accept = accept

    def _by_name(self, name: str) -> Serializer:
        if name == self.serializer.name:
            return self.serializer
        try:
            return self._plugins.serializer(name)
        except PluginNotFoundError as exc:
            raise SerializationError(f"this payload was written by the {name!r} serializer: {exc}") from exc

    def encode_call(
        self,
        task_id: str,
        function: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        part: Part = Part.CALL,
    ) -> bytes:
        """The call as stored for task `task_id` (or, with `Part.SCHEDULE`, for the schedule of that id)."""
        try:
            data = self.serializer.dumps((function, tuple(args), dict(kwargs)))
        except Exception as exc:
            already_said = "cloudpickle" in f"{self.serializer.name} {exc}"
            hint = "" if already_said else "; the cloudpickle serializer handles more"
            raise SerializationError(
                f"the {self.serializer.name} serializer cannot store a call to {task_name(function)}: "
                f"{exc}{hint}"
            ) from exc
        return self.sealer.seal(data, task_id, part, self.serializer.name)

    def reseal_scheduled_call(self, schedule_id: str, payload: bytes, serializer: str, task_id: str) -> bytes:
        """A schedule's stored call, verified for the schedule and sealed anew for one task it enqueues.

        The bytes are only opened and sealed, never decoded: firing a schedule imports nothing that the
        stored data names. A payload altered or copied from elsewhere raises `SignatureError` here, as it
        would when its task ran; one sealed with a key this process lacks raises it too."""
        data = self.open(payload, schedule_id, Part.SCHEDULE, serializer)
        return self.sealer.seal(data, task_id, Part.CALL, serializer)

    def open(self, blob: bytes, task_id: str, part: Part, serializer: str) -> bytes:
        """The serializer's bytes inside a stored blob, once its serializer is accepted and its seal holds."""
        if self.accept is not None and serializer not in self.accept:
            raise SerializationError(
                f"the stored {part} of task {task_id} was written by the {serializer!r} serializer, which "
                f"this process does not accept (accept={sorted(self.accept)}); it was not decoded"
            )
        return self.sealer.open(blob, task_id, part, serializer)

    def decode_call(self, task_id: str, payload: bytes, serializer: str) -> Call:
        data = self.open(payload, task_id, Part.CALL, serializer)
        with _Reraised(f"cannot decode the call of task {task_id} with {serializer!r}"):
            function, args, kwargs = self._by_name(serializer).loads(data)
        return function, args, kwargs

    def encode_value(self, task_id: str, value: Any, serializer: str) -> bytes:
        return self.sealer.seal(self.dump_value(value, serializer), task_id, Part.RESULT, serializer)

    def dump_value(self, value: Any, serializer: str) -> bytes:
        """A return value as its serializer writes it, not yet sealed."""
        with _Reraised(
            f"the task returned a {type(value).__name__} that the {serializer} serializer cannot store"
        ):
            return self._by_name(serializer).dumps(value)

    def decode_value(self, task_id: str, data: bytes, serializer: str) -> Any:
        opened = self.open(data, task_id, Part.RESULT, serializer)
        with _Reraised(f"cannot decode the result of task {task_id} with {serializer!r}"):
            return self._by_name(serializer).loads(opened)

    def decode_parent_results(self, parents: ParentResults) -> dict[str, Any]:
        """What a task that takes `parent_results` is given: its parents' return values by task id."""
        return {
            task_id: self.decode_value(task_id, result, serializer) for task_id, result, serializer in parents
        }

    def open_parent_results(self, parents: ParentResults) -> ParentResults:
        """The parents' results opened, for a child process that decodes them without the keys."""
        return tuple(
            (task_id, self.open(result, task_id, Part.RESULT, serializer), serializer)
            for task_id, result, serializer in parents
        )

    def to_result(self, record: TaskRecord) -> Result:
        result = record.result
        value = None if result is None else self.decode_value(record.id, result, record.serializer)
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


class _Reraised:
    """Turn whatever a serializer raises into a `SerializationError` that says what was being done.

    A class, not a `contextlib.contextmanager`: it wraps every call and result a worker decodes, and a
    generator-based one costs several times as much to enter and leave."""

    def __init__(self, doing: str) -> None:
        self._doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, SerializationError):
            raise SerializationError(f"{self._doing}: {type(exc).__name__}: {exc}") from exc
