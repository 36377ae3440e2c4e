"""What every backend's URL shares: sitq's options in its query, checked alike, and a form fit to show.

A backend's `from_url` reads its options with `query_options`, so that a misspelt, repeated or unreadable
option is refused in the same words everywhere; messages and `sitq info` show a URL through `redacted`.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qsl, urlsplit

from sitq.errors import ConfigurationError


def redacted(url: str) -> str:
    """The URL with its password, if it has one, shown as ``***``: for messages and `sitq info`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def query_options(
    url: str, *, kind: str, valid: Collection[str], listing: str, forms: str
) -> list[tuple[str, str]]:
    """The options in the query of `url`, a `kind` URL (such as "SQLite"), in their order.

    Raises `ConfigurationError` for a '#' part, a query that does not parse, an option not in `valid`
    (`listing` names the valid ones for a person) and an option given twice; each message shows the URL
    without its password and ends with `forms`, the URL's forms.
    """
    shown = redacted(url)
    parts = urlsplit(url)
    if parts.fragment:
        raise ConfigurationError(f"a {kind} URL has no '#' part, but {shown!r} does; use {forms}")
    try:
        options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigurationError(f"cannot read the query of {shown!r} ({exc}); use {forms}") from exc
    keys = [key for key, _ in options]
    for key in keys:
        if key not in valid:
            raise ConfigurationError(f"unknown option {key!r} in {shown!r}: {listing}; use {forms}")
        if keys.count(key) > 1:
            raise ConfigurationError(f"{shown!r} gives {key!r} more than once; give it once")
    return options
