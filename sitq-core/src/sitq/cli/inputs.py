"""Turning what a person types into Python values: task arguments, times, durations, and their code.

Every function raises `CliError` with a message that says what was expected, never a bare traceback.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from sitq.cli.errors import CliError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
DURATION_FORMS = "a number and a unit (s, m, h, d or w), such as 30s, 5m, 2h, 7d or 1h30m"


def parse_argument(text: str) -> Any:
    """A positional task argument: its JSON value when it parses as JSON (``42``, ``true``,
    ``[1, 2]``, ``"42"``), else the text itself, so plain words need no quoting."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_kwargs(text: str) -> dict[str, Any]:
    """``--kwargs``: a JSON object of keyword arguments."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--kwargs is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise CliError(f"--kwargs takes a JSON object such as '{{\"retries\": 3}}', not {text!r}")
    return value


def parse_duration(text: str, option: str) -> timedelta:
    """A length of time such as ``30s``, ``5m``, ``2h``, ``7d`` or ``1h30m``."""
    parts = list(_DURATION_PART.finditer(text.strip()))
    if not parts or "".join(part[0] for part in parts) != text.strip():
        raise CliError(f"{option} takes {DURATION_FORMS}; not {text!r}")
    return timedelta(seconds=sum(float(part[1]) * _UNITS[part[2]] for part in parts))


def parse_eta(text: str, now: datetime) -> datetime:
    """``--eta``: a delay from `now` (``30s``, ``5m``, ``2h``), or an ISO 8601 date and time; one without
    a UTC offset is local time, as a person at this terminal means it."""
    if _DURATION_PART.match(text.strip()):
        return now + parse_duration(text, "--eta")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"--eta takes a delay ({DURATION_FORMS}) or an ISO date and time such as "
            f"2030-01-31T09:00 or 2030-01-31T09:00:00+00:00; not {text!r}"
        ) from None
    return when.astimezone() if when.tzinfo is None else when


def import_module(name: str) -> ModuleType:
    """Import the user's module as ``python -m`` would find it: the current directory comes first on
    sys.path. A path to a ``.py`` file works too, imported by its name from its directory."""
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise CliError(f"no such file: {name}")
        directory, name = str(path.resolve().parent), path.stem
    else:
        directory = os.getcwd()
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise CliError(
                f"cannot import {name!r}: no module named {exc.name!r} in the current directory or on "
                "sys.path (run sitq from your project's directory, or set PYTHONPATH)"
            ) from exc
        raise CliError(f"importing {name!r} failed: {exc}") from exc
    except Exception as exc:
        raise CliError(f"importing {name!r} raised {type(exc).__name__}: {exc}") from exc


def import_function(spec: str) -> Callable[..., Any]:
    """The task function named ``module:function`` (the function may be dotted: ``module:Class.method``)."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CliError(f"name the task function as module:function, such as tasks:send_email; not {spec!r}")
    found: Any = import_module(module_name)
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no function {attribute!r}") from None
    if not callable(found):
        raise CliError(f"{spec} is a {type(found).__name__}, not a function")
    return found  # type: ignore[no-any-return]  # checked callable just above
