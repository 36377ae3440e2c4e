"""The functions this process knows as tasks: the only ones a `json` payload may name.

Whoever can write a task row chooses the names in its payload, so decoding one never imports a module nor
looks into one that nobody registered. A name resolves only to a function registered here (by
`@sitq.task`, `register_tasks`, `sitq worker MODULE`, or by this process encoding it), or to a callable
of a registered module whose own ``module:qualname`` is exactly the name asked for, never to one that
module merely imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sitq.arguments import shown
from sitq.errors import SerializationError, ValidationError

_functions: dict[str, Callable[..., Any]] = {}
_modules: dict[str, ModuleType] = {}
_inherited_functions: set[str] = set()
_inherited_modules: set[str] = set()
"""What the worker knew when it started this child process, by name: imported on first need."""


def reference(function: object) -> str | None:
    """``module:qualname`` of a function importable by name; None for a lambda, a closure, a function of
    ``__main__``, or a callable object without a qualified name of its own."""
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or not qualname:
        return None
    if module in ("__main__", "__mp_main__") or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def register_tasks(*targets: Callable[..., Any] | ModuleType) -> None:
    """Let the `json` serializer call these functions, or the functions and classes of these modules,
    when a stored payload names them.

    `@sitq.task` registers the function it decorates, and `sitq worker MODULE` that module. Call this in
    a worker process of your own before its worker starts (and in a client that reads results holding
    functions). A module allows only what it defines itself: ``os.system``, imported by a registered
    module, stays refused.
    """
    for target in targets:
        if isinstance(target, ModuleType):
            _modules[target.__name__] = target
            continue
        name = reference(target) if callable(target) else None
        if name is None:
            raise ValidationError(
                "register_tasks() takes modules, and functions defined at the top level of a module other "
                f"than __main__ (json names them by module:qualname), not {shown(target)}"
            )
        _functions[name] = target


def know(function: Callable[..., Any]) -> str | None:
    """Register `function` when it has a name to be found by, and return that name."""
    name = reference(function)
    if name is not None:
        _functions[name] = function
    return name


def resolve(name: str) -> Callable[..., Any]:
    """The task function called `name`; `SerializationError` saying how to allow it when unknown."""
    found = _functions.get(name)
    if found is None:
        found = _find(name)
    if found is None:
        raise SerializationError(
            f"the payload names the function {shown(name)}, which this process does not know as a task: "
            "it was neither imported nor called. To allow it, decorate it with @sitq.task, pass its "
            "module to `sitq worker`, or call sitq.register_tasks() with the function or its module"
        )
    return found


def _find(name: str) -> Callable[..., Any] | None:
    """A callable of a registered module, or one the worker knew, found by its name and then cached."""
    module_name, _, qualname = name.partition(":")
    module = _modules.get(module_name)
    if module is None:
        if module_name not in _inherited_modules and name not in _inherited_functions:
            return None
        module = importlib.import_module(module_name)
    found: object = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return None
    if not callable(found) or reference(found) != name:
        return None
    _functions[name] = found
    return found


@dataclass(frozen=True)
class Known:
    """What a worker knows, by name, for a child process it starts to know the same."""

    functions: frozenset[str]
    modules: frozenset[str]


def known() -> Known:
    # copy() is one step under the GIL: a task's thread may be registering a function meanwhile.
    return Known(frozenset(_functions.copy()), frozenset(_modules.copy()))


def inherit(names: Known) -> None:
    """In a child process: know what the worker knew. The names come from the worker, never from stored
    data; each module is imported when a payload first names one of its functions."""
    _inherited_functions.update(names.functions)
    _inherited_modules.update(names.modules)
