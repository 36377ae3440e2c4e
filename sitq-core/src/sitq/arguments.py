"""The checks of what public calls are given, one rule per kind of argument, each in one place.

Every check raises `ValidationError` naming the argument, what it got and how to fix it, so that bad
input fails in the caller's process, at the call, and never reaches a backend (where a NUL in a name or
an integer past 64 bits becomes a driver error, or a row that no filter can find again).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sitq.errors import ValidationError

MAX_NAME_CHARS = 200
"""The longest queue, task or workflow name: room for any ``module.qualname``, short enough for a table
column, a log line and a metrics label."""

MAX_ID_CHARS = 200
"""The longest string taken as a task or workflow id (sitq's own ids are 32 hex digits)."""

MIN_INT, MAX_INT = -(2**31), 2**31 - 1
"""The range of the whole numbers a task stores (`priority`, `max_attempts`): 32 bits, which every
storage holds exactly."""

MAX_SECONDS = 100 * 365 * 86400.0
"""The longest duration sitq takes, in seconds or as a timedelta: 100 years. Longer ones would overflow
a date or a timer, and "never" is said with None."""

MAX_KEY_CHARS = 255
"""The longest unique key: room for an HTTP idempotency key (Stripe takes 255) or a digest of a request,
short enough to index."""

MAX_LIST_LIMIT = 10_000
"""The most tasks `list_tasks` returns at once; page through more with `after`."""

MAX_CONCURRENCY = 10_000
"""The most tasks one worker runs at once (each sync one holds a thread)."""

_NAME_RULE = (
    f"a non-empty str of at most {MAX_NAME_CHARS} printable characters, without spaces at either end "
    "(no control characters such as NUL or newline)"
)


def check_name(value: object, argument: str) -> str:
    """A queue, task or workflow name: `_NAME_RULE`, the one rule for every name sitq stores.

    Printable (`str.isprintable`) excludes control, format and surrogate characters, which a terminal
    cannot show, a database may cut short or refuse to encode, and nobody can type in a filter; spaces
    at the ends would make two names look the same. So every name that can be stored can be listed.
    """
    if (
        type(value) is str
        and 0 < len(value) <= MAX_NAME_CHARS
        and value.isprintable()
        and value.strip() == value
    ):
        return value
    raise ValidationError(f"{argument} must be {_NAME_RULE}; got {shown(value)}")


def check_names(values: object, argument: str) -> tuple[str, ...]:
    """A non-empty list or tuple of names (a lone str is refused: it is not five one-letter queues)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise ValidationError(f"{argument} must be a list of names, such as ['default'], not {shown(values)}")
    return tuple(check_name(value, f"each of {argument}") for value in values)


def check_id(value: object, argument: str = "task_id") -> str:
    """A task or workflow id: the str that `enqueue` or `submit` returned."""
    if type(value) is str and 0 < len(value) <= MAX_ID_CHARS and value.isprintable():
        return value
    raise ValidationError(
        f"{argument} must be the id string that enqueue() or submit() returned "
        f"(printable, at most {MAX_ID_CHARS} characters), not {shown(value)}"
    )


def check_ids(values: object, argument: str) -> tuple[str, ...]:
    """A list or tuple of task ids."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError(f"{argument} takes a list of task ids, not {shown(values)}")
    return tuple(check_id(value, f"each of {argument}") for value in values)


def check_unique_key(value: object, argument: str) -> str:
    """A unique key: a non-empty str of printable characters (so it can be shown and typed in a filter)."""
    if type(value) is str and 0 < len(value) <= MAX_KEY_CHARS and value.isprintable():
        return value
    raise ValidationError(
        f"{argument} must be a non-empty str of at most {MAX_KEY_CHARS} printable characters, such as "
        f"'invoice-42', not {shown(value)}"
    )


def check_unique_for(value: object) -> float:
    """How long a succeeded task keeps its unique key: a timedelta or seconds, from 0 to 100 years."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SECONDS:
        raise ValidationError(
            "unique_for must be a timedelta or a number of seconds from 0 to 100 years, such as "
            f"timedelta(hours=1), or None for no window after success; not {shown(value)}"
        )
    return float(seconds)


def check_int(value: object, argument: str, low: int = MIN_INT, high: int = MAX_INT) -> int:
    """A whole number from `low` to `high` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{argument} must be a whole number >= {low} and <= {high}, not {shown(value)}")
    return value


def check_seconds(value: object, argument: str, *, zero: bool = False, none: str = "") -> float:
    """A finite number of seconds above 0 (or from 0, with `zero`), at most `MAX_SECONDS`; `none` says
    what None means where it is allowed instead."""
    low = ">= 0" if zero else "> 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (value >= 0 if zero else value > 0)
        or not value <= MAX_SECONDS
    ):
        raise ValidationError(
            f"{argument} must be a number of seconds {low} and at most {MAX_SECONDS:.0f} (100 years)"
            f"{f', or None {none}' if none else ''}, not {shown(value)}"
        )
    return float(value)


def check_duration(value: object, argument: str, example: str) -> timedelta:
    """A timedelta from 0 to `MAX_SECONDS`."""
    if not isinstance(value, timedelta) or not timedelta(0) <= value <= timedelta(seconds=MAX_SECONDS):
        raise ValidationError(
            f"{argument} must be a timedelta from 0 to 100 years, such as {example}, not {shown(value)}"
        )
    return value


def check_bool(value: object, argument: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{argument} must be True or False, not {shown(value)}")
    return value


def check_callable(value: object, argument: str) -> Callable[..., Any]:
    if not callable(value):
        raise ValidationError(f"{argument} must be a function or another callable, not {shown(value)}")
    return value


def shown(value: object) -> str:
    """`repr` of a bad value, cut short: the message of a hostile 100 MB string stays one line."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


# Binding a call to its function's signature. Signatures are cached by function and the shapes of call
# known to bind (how many positional arguments, which keywords) by function too: binding depends on the
# shape alone, so enqueue's hot path pays for two dictionary lookups, not for `inspect`.


class _Facts:
    """What is known about one function: its signature (None if it has none) and the shapes that bind."""

    __slots__ = ("binds", "signature")

    def __init__(self, signature: inspect.Signature | None) -> None:
        self.signature = signature
        self.binds: set[tuple[int, tuple[str, ...]]] = set()


_MAX_SHAPES = 64
# By id, with a weak reference to tell a live function from a dead one whose id was reused: cheaper to
# look up than a WeakKeyDictionary, which makes a new weak reference for every lookup.
_facts: dict[int, tuple[weakref.ref[Callable[..., Any]], _Facts]] = {}
# What can be cached: objects that stay the same object from call to call, and can be weakly referenced.
_CACHEABLE = (types.FunctionType, types.BuiltinFunctionType, type)


def _remember(target: Callable[..., Any], facts: _Facts) -> None:
    key = id(target)

    def forget(_: object) -> None:
        if (entry := _facts.get(key)) is not None and entry[0]() is None:
            del _facts[key]

    # A builtin of an extension may not be weakly referenceable: then it is not cached.
    with contextlib.suppress(TypeError):
        _facts[key] = (weakref.ref(target, forget), facts)


def check_call(
    function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], *, parent_results: bool
) -> None:
    """Refuse a call that could never bind to `function`'s parameters, which would only fail on a worker.

    `parent_results` says whether the worker will add that keyword (a task with parents, whose function
    takes it). A function without an inspectable signature (some builtins) is not checked. A decorated
    function is checked against the decorator's own signature, not the one it wraps, since the decorator
    may add or consume arguments: a call is refused only when it certainly fails.
    """
    target: Callable[..., Any]
    if type(function) is types.FunctionType:  # the common case, first: enqueue is a hot path
        target, count, keywords = function, len(args), tuple(kwargs)
    else:
        target, count, keywords = _unwrapped(function)
        count, keywords = count + len(args), (*keywords, *kwargs)
    entry = _facts.get(id(target))
    if entry is not None and entry[0]() is target:
        facts = entry[1]
    else:
        facts = _Facts(_signature(target))
        if isinstance(target, _CACHEABLE):
            _remember(target, facts)
    signature = facts.signature
    if signature is None:
        return
    if parent_results and "parent_results" in signature.parameters:
        keywords += ("parent_results",)
    shape = (count, keywords)
    if shape in facts.binds:
        return
    try:
        signature.bind(*range(shape[0]), **dict.fromkeys(keywords))
    except TypeError as exc:
        from sitq.codec import task_name  # codec imports models, which imports this module

        raise ValidationError(
            f"the arguments do not fit {task_name(target)}{signature}: {exc}; pass what the function "
            "takes (this call would fail on the worker)"
        ) from None
    if len(facts.binds) < _MAX_SHAPES:
        facts.binds.add(shape)


_NO_KEYWORDS: tuple[str, ...] = ()


def _unwrapped(function: Callable[..., Any]) -> tuple[Callable[..., Any], int, tuple[str, ...]]:
    """The plain function a call ends in, with how many positional arguments and which keywords the
    layers around it add: a bound method its object, a `functools.partial` its own arguments. These
    layers are new objects each time, so the cache is keyed by what they wrap."""
    count, keywords = 0, _NO_KEYWORDS
    while True:
        if type(function) is types.MethodType:
            count, function = count + 1, function.__func__
        elif type(function) is functools.partial:
            count, keywords = count + len(function.args), (*keywords, *function.keywords)
            function = function.func
        elif not isinstance(function, _CACHEABLE) and isinstance(
            # B004: this fetches the method to key the cache by; callability is known already.
            call := getattr(type(function), "__call__", None),  # noqa: B004
            types.FunctionType,
        ):
            return call, count + 1, keywords  # an instance of a class with __call__
        else:
            return function, count, keywords


def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(function, follow_wrapped=False)
    except (TypeError, ValueError):  # some builtins and extension types have none to inspect
        return None
