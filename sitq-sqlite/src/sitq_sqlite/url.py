"""SQLite URLs: SQLAlchemy's form, ``sqlite:///relative/tasks.db`` or ``sqlite:////absolute/tasks.db``,
with sitq's options in the query (``?synchronous=normal&busy_timeout=5``); any other option is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from sitq.errors import ConfigurationError
from sitq.urls import query_options

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
    given = dict(
        query_options(
            url,
            kind="SQLite",
            valid=_OPTIONS,
            listing=f"the options are {' and '.join(map(repr, _OPTIONS))}",
            forms=_FORMS,
        )
    )
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
