"""SQLite URLs: SQLAlchemy's form, ``sqlite:///relative/tasks.db`` or ``sqlite:////absolute/tasks.db``,
with sitq's options in the query (``?synchronous=normal&busy_timeout=5``); any other option is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from sitq.errors import ConfigurationError

Synchronous = Literal["full", "normal"]
BUSY_TIMEOUT = 30.0
"""Seconds a statement waits for another connection's write lock, unless told otherwise."""
_FORMS = (
    "'sqlite:///relative/tasks.db' or 'sqlite:////absolute/tasks.db', optionally with"
    " '?synchronous=normal' and/or '?busy_timeout=SECONDS'"
)
_OPTIONS = ("synchronous", "busy_timeout")


@dataclass(frozen=True)
class SQLiteURL:
    path: str
    synchronous: Synchronous
    busy_timeout: float


def parse(url: str) -> SQLiteURL:
    """The path and options of a SQLite URL; `ConfigurationError` naming the forms for a malformed one."""
    parts = urlsplit(url)
    path = unquote(parts.path.removeprefix("/"))
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/") or not path:
        raise ConfigurationError(f"a SQLite URL is {_FORMS}, not {url!r}")
    if parts.fragment:
        raise ConfigurationError(f"a SQLite URL has no '#' part, but {url!r} does; use {_FORMS}")
    try:
        options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigurationError(f"cannot read the query of {url!r} ({exc}); use {_FORMS}") from exc
    keys = [key for key, _ in options]
    for key in keys:
        if key not in _OPTIONS:
            raise ConfigurationError(
                f"unknown option {key!r} in {url!r}: the options are "
                f"{' and '.join(map(repr, _OPTIONS))}; use {_FORMS}"
            )
        if keys.count(key) > 1:
            raise ConfigurationError(f"{url!r} gives {key!r} more than once; give it once")
    given = dict(options)
    synchronous: Synchronous
    match given.get("synchronous", "full"):
        case "full" | "normal" as value:
            synchronous = value
        case value:
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', not {value!r}, in {url!r}")
    return SQLiteURL(path, synchronous, _seconds(given.get("busy_timeout", BUSY_TIMEOUT)))


def _seconds(value: str | float) -> float:
    """The ``busy_timeout`` of a URL: a number of seconds (the backend's constructor checks its range)."""
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(
            f"busy_timeout is a number of seconds, such as '?busy_timeout=5', not {value!r}"
        ) from None
