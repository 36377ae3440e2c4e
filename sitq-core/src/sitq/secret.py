"""`Secret`: a task argument that must not leak, and the `Redactor` through which a worker hands it to the
task and keeps it out of what a failed attempt records.

Named `secret`, not `secrets`, so that it never shadows the standard library's module.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from sitq.failures import Failure

T = TypeVar("T")

MASK = "********"
"""What a secret's value is shown as: in its `repr`, and in place of the value in a failed attempt's
error and traceback."""


class Secret(Generic[T]):
    """A task argument whose value never shows: ``await queue.enqueue(log_in, "ann", Secret(password))``.

    Printed, logged or formatted, it is ``Secret('********')``, so errors that show arguments (a bad
    `Task`, say) and `sitq show` never show the value. Given as an argument of its own (not inside a list
    or a dict), the task receives the plain value, and the worker masks that value in the error and the
    traceback of a failed attempt before storing, logging or passing them to hooks. A secret nested in
    another argument reaches the task as a `Secret`: `reveal()` gives its value, which is not masked.

    It hides the value from eyes, not from storage: the value is stored with the call like any argument,
    readable by whoever can read the queue's store. Every serializer carries it. Two secrets are equal
    when their values are; a secret is always true, whatever its value.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """The plain value: call it only where the value is used, never where it could be printed."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return bool(self._value == other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Callable[[T], Secret[T]], tuple[T]]:
        # Explicit, so that every pickle protocol (and copy) can take a class with __slots__.
        return Secret, (self._value,)


class Redactor:
    """For one run of a task: gives the task its secrets' plain values, and masks those values in what
    its failure says. Used the same way by a worker running the task itself and by a child process."""

    __slots__ = ("_shown_as",)

    def __init__(self) -> None:
        self._shown_as: tuple[str, ...] = ()

    def unwrap(
        self, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[Sequence[Any], Mapping[str, Any]]:
        """The decoded call's arguments with each `Secret` among them replaced by its value; the call is
        returned as it is when it has none (the common case costs one pass over the arguments)."""
        found = [value for value in itertools.chain(args, kwargs.values()) if isinstance(value, Secret)]
        if not found:
            return args, kwargs
        self._shown_as = _texts(secret.reveal() for secret in found)
        return [_plain(value) for value in args], {name: _plain(value) for name, value in kwargs.items()}

    def redact(self, failure: Failure) -> Failure:
        """`failure` with every secret's value masked in its error line and its traceback."""
        if not self._shown_as:
            return failure
        return dataclasses.replace(
            failure, error=self._masked(failure.error), traceback=self._masked(failure.traceback)
        )

    def _masked(self, text: str) -> str:
        for shown in self._shown_as:
            text = text.replace(shown, MASK)
        return text


def _plain(value: Any) -> Any:
    return value.reveal() if isinstance(value, Secret) else value


def _texts(values: Iterable[Any]) -> tuple[str, ...]:
    """How each value can appear in a message: its `str` (an f-string) and its `repr` (a `KeyError`, a
    ``{value!r}``, which escapes what `str` does not), longest first, so that a secret that contains
    another is masked whole."""
    shown = {text for value in values for text in (str(value), repr(value)) if text}
    return tuple(sorted(shown, key=len, reverse=True))
