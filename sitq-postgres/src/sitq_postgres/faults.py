"""Driver errors as `sitq.BackendError`s that say what failed and how to fix it.

Callers raise what these return `from` the driver's exception, so the cause always survives.
"""

from __future__ import annotations

import logging

import asyncpg

from sitq.errors import BackendError, StorageBusyError, StorageFullError, StorageReadOnlyError

logger = logging.getLogger(__name__)

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)
"""What asyncpg raises for a failing server or connection (a lost socket is an OSError)."""
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, ValueError)
"""What opening a pool raises for a bad server or URL (asyncpg refuses a malformed DSN with ValueError)."""


def cannot_connect(where: str, exc: BaseException) -> BackendError:
    """The error for a failed first connection to `where` (a `url.Location`, as text)."""
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return BackendError(f"cannot open {where}: {exc}; create the database (createdb) or fix the URL")
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return BackendError(
            f"PostgreSQL refused the credentials for {where}: {exc}; check the user and password in the "
            "URL (or the passfile) and the server's pg_hba.conf"
        )
    if isinstance(exc, TimeoutError):
        return BackendError(
            f"connecting to {where} timed out; check that the server is up and reachable, or give it "
            "longer with '?connect_timeout=SECONDS'"
        )
    if isinstance(exc, OSError):
        return BackendError(
            f"cannot reach the PostgreSQL server for {where} ({exc}); check that it is running and that "
            "the URL's host and port (or socket directory) are right"
        )
    return backend_error(f"connecting to {where}", exc)


def backend_error(what: str, exc: BaseException) -> BackendError:
    """The `BackendError` (of the kind the fault is) to raise from a driver error; `what` failed."""
    if isinstance(exc, asyncpg.DiskFullError):
        return StorageFullError(
            f"{what} failed: the PostgreSQL server has no room left ({exc}); free disk space on the "
            "server, then the work resumes (what was committed before is kept)"
        )
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        return StorageReadOnlyError(
            f"{what} failed: the PostgreSQL server accepts no writes ({exc}); point sitq at the primary, "
            "not a standby, or make the database writable"
        )
    if isinstance(exc, asyncpg.LockNotAvailableError | asyncpg.QueryCanceledError):
        return StorageBusyError(
            f"{what} failed: PostgreSQL gave up waiting for a lock ({exc}); another session holds sitq's "
            "rows too long: find it in pg_stat_activity, or raise the server's lock_timeout and "
            "statement_timeout if they are set low"
        )
    if isinstance(exc, asyncpg.UniqueViolationError):
        return BackendError(f"{what} failed: a task with this id is already stored ({exc.detail or exc})")
    return BackendError(f"{what} failed: {type(exc).__name__}: {exc}")


def rollback_failed(cause: BaseException, failed: BaseException) -> None:
    """Note a ROLLBACK that failed after `cause`, which stays the error raised."""
    cause.add_note(f"rolling back failed too: {failed}")
    logger.warning("rolling back after %r failed too: %s", cause, failed)
