"""PostgreSQL URLs: libpq's form, with sitq's own options taken out before asyncpg sees the rest.

``postgresql://user:password@host:port/database?schema=NAME&listen=false&pool_size=4``; a socket host is
``postgresql:///database?host=/var/run/postgresql`` or ``postgresql://%2Fvar%2Frun%2Fpostgresql/database``.
Only the options listed here are accepted: asyncpg would pass an unknown one to the server as a setting,
where a misspelt option fails obscurely or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlencode, urlsplit, urlunsplit

from sitq.errors import ConfigurationError
from sitq.urls import query_options, redacted

SCHEMES = ("postgresql", "postgres")
DEFAULT_POOL_SIZE = 4
DEFAULT_CONNECT_TIMEOUT = 10.0

SITQ_OPTIONS = ("schema", "listen", "pool_size", "connect_timeout")
"""Read by sitq: the schema of its tables, LISTEN or not, connections per process, seconds to connect."""
DRIVER_OPTIONS = (
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "target_session_attrs",
    "application_name",
)
"""libpq's options that asyncpg reads (application_name reaches the server as a setting)."""
_FORMS = (
    "'postgresql://user:password@host:5432/database', 'postgresql:///database?host=/var/run/postgresql'"
    " or 'postgresql://%2Fvar%2Frun%2Fpostgresql/database'"
)


@dataclass(frozen=True)
class Location:
    """Where a URL points, for a person: never the password."""

    host: str
    port: str
    database: str
    user: str

    def __str__(self) -> str:
        return f"database {self.database!r} at {self.host}:{self.port} as user {self.user!r}"


@dataclass(frozen=True)
class ParsedURL:
    dsn: str
    """The URL without sitq's options: what asyncpg connects with."""
    options: dict[str, str]
    """sitq's options as given (the backend's constructor checks their values)."""
    location: Location


def parse(url: str) -> ParsedURL:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(f"a PostgreSQL URL starts with 'postgresql://' ({_FORMS}), not {url!r:.200}")
    given = query_options(
        url,
        kind="PostgreSQL",
        valid=SITQ_OPTIONS + DRIVER_OPTIONS,
        listing=(
            f"sitq's options are {', '.join(SITQ_OPTIONS)}, and the connection's {', '.join(DRIVER_OPTIONS)}"
        ),
        forms=_FORMS,
    )
    options = {key: value for key, value in given if key in SITQ_OPTIONS}
    driver = {key: value for key, value in given if key in DRIVER_OPTIONS}
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(driver), ""))
    return ParsedURL(dsn=dsn, options=options, location=_location(parts, driver))


def _location(parts: SplitResult, driver: dict[str, str]) -> Location:
    # urlsplit lowercases the host: a socket directory keeps its case from the netloc itself.
    netloc_host = parts.netloc.rpartition("@")[2]
    if netloc_host.startswith("["):
        netloc_host = netloc_host.partition("]")[0] + "]"
    else:
        netloc_host = netloc_host.partition(":")[0]
    host = driver.get("host") or unquote(netloc_host) or "the default socket"
    user = driver.get("user") or unquote(parts.username or "") or "(the login user)"
    database = driver.get("dbname") or unquote(parts.path.removeprefix("/")) or user
    try:
        port = driver.get("port") or str(parts.port or 5432)
    except ValueError:
        raise ConfigurationError(
            f"the port of {redacted(parts.geturl())!r} is not a number; use {_FORMS}"
        ) from None
    return Location(host=host, port=port, database=database, user=user)


def flag(name: str, value: str) -> bool:
    """A true/false option of a URL."""
    match value.lower():
        case "true" | "1" | "yes" | "on":
            return True
        case "false" | "0" | "no" | "off":
            return False
    raise ConfigurationError(f"{name} is 'true' or 'false', not {value!r}")


def number(name: str, value: str, *, kind: type[int] | type[float]) -> float:
    """A numeric option of a URL (the constructor checks its range)."""
    try:
        return kind(value)
    except ValueError:
        raise ConfigurationError(f"{name} is a number, such as '?{name}=4', not {value!r}") from None
