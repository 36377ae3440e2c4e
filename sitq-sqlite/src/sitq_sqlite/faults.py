"""Driver errors in plain words: what failed, on which file, why, and what to do about it.

SQLite tells a full disk, a read-only file and a lock held too long apart by result codes, not by its
messages. Each becomes the `sitq` error of its kind, with the cause that can be seen on disk (the free
space, this process's file size limit, which file or directory it may not write) and the fix; any other
driver error becomes a plain `BackendError` carrying SQLite's own words. The driver's exception is always
the `__cause__`, so nothing SQLite said is lost.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import sys

from sitq.errors import BackendError, StorageBusyError, StorageFullError, StorageReadOnlyError

if sys.platform != "win32":
    import pwd
    import resource

logger = logging.getLogger(__name__)

# Less free space than this on the database's file system is taken as the cause of an I/O error.
_NEARLY_FULL = 1 << 20
# A write fails within one WAL frame (a page of up to 64 KiB and its header) of a file size limit.
_LARGEST_WRITE = 65536 + 24
_KEPT = "Tasks committed before are kept, and sitq carries on once there is room"


def backend_error(what: str, path: str, exc: sqlite3.Error, *, busy_timeout: float) -> BackendError:
    """The error to raise `from exc`; `what` says what failed and names the database."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        return StorageFullError(f"{what} failed: {_out_of_room(path) or _full(path)}. {_KEPT}")
    if primary == sqlite3.SQLITE_IOERR and (room := _out_of_room(path)):
        return StorageFullError(f"{what} failed: {room}. {_KEPT}. SQLite said: {_said(exc)}")
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM) and (
        unwritable := _unwritable(path)
    ):
        return StorageReadOnlyError(f"{what} failed: {unwritable}")
    if primary == sqlite3.SQLITE_READONLY:
        return StorageReadOnlyError(
            f"{what} failed: SQLite cannot write it: {_said(exc)}. Check who may write {path!r}, its -wal "
            "and -shm files and its directory"
        )
    if primary == sqlite3.SQLITE_BUSY:
        return StorageBusyError(
            f"{what} failed: the database is locked: another connection has held its write lock for longer "
            f"than the busy timeout of {busy_timeout:g}s. Find what holds it (a long transaction, or a "
            f"sqlite3 shell left inside BEGIN; `fuser {path}` lists the processes that have the file open), "
            "or let sitq wait longer: '?busy_timeout=SECONDS' in the URL, or "
            "SQLiteBackend(path, busy_timeout=SECONDS)"
        )
    return BackendError(f"{what} failed: {_said(exc)}")


def rollback_failed(cause: BaseException, failed: sqlite3.Error) -> None:
    """Say that rolling back after `cause` failed too, without replacing `cause` as the error raised."""
    cause.add_note(f"rolling back after this error failed too: {_said(failed)}")
    logger.warning("rolling back after %r failed too: %s", cause, _said(failed))


def cannot_open(path: str, exc: sqlite3.Error | OSError) -> BackendError:
    """The error for a database file that cannot be created or opened at all."""
    what = f"cannot open the SQLite database {path!r}"
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        return BackendError(f"{what}: the directory {directory!r} does not exist; create it first")
    if os.path.isdir(path):
        return BackendError(f"{what}: that is a directory; give the path of a database file")
    if unwritable := _unwritable(path):
        return StorageReadOnlyError(f"{what}: {unwritable}")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{what}: {_out_of_room(path) or exc}")
    return BackendError(f"{what}: {_said(exc) if isinstance(exc, sqlite3.Error) else exc}")


def _said(exc: sqlite3.Error) -> str:
    """SQLite's message with its result code's name, which says more than the message for I/O errors."""
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)


def _full(path: str) -> str:
    return (
        f"the disk is full (SQLite: database or disk is full). Free space on the file system that holds "
        f"{os.path.dirname(path)!r}, or in SQLite's temporary directory"
    )


def _out_of_room(path: str) -> str | None:
    """Why a write found no room, if the file system or this process's file size limit shows it."""
    directory = os.path.dirname(path)
    try:
        stats = os.statvfs(directory)
    except (OSError, AttributeError):  # AttributeError: Windows has no statvfs
        pass
    else:
        free = stats.f_bavail * stats.f_frsize
        if free < _NEARLY_FULL:
            return (
                f"the disk is full: the file system that holds {directory!r} has {free} bytes free. "
                f"Free space there (`df -h {directory}` shows it)"
            )
    if sys.platform == "win32":
        return None
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    largest = max((_size(file) for file in _files(path)), default=0)
    if limit != resource.RLIM_INFINITY and largest + _LARGEST_WRITE >= limit:
        return (
            f"the database has reached this process's file size limit: it may not write files larger "
            f"than {limit} bytes (`ulimit -f`, RLIMIT_FSIZE). Raise the limit where sitq is started "
            "(`ulimit -f unlimited`, or LimitFSIZE=infinity in a systemd unit)"
        )
    return None


def _unwritable(path: str) -> str | None:
    """Which of the database's files, or its directory, this process may not write, and how to fix it."""
    directory = os.path.dirname(path)
    try:
        read_only_mount = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: Windows has no statvfs
        read_only_mount = False
    if read_only_mount:
        return (
            f"the file system that holds {directory!r} is mounted read-only; remount it read-write, or "
            "keep the database on a writable one"
        )
    denied = [f"the file {file!r}" for file in _files(path) if os.path.exists(file) and not _may_write(file)]
    if not _may_write(directory):
        denied.append(
            f"the directory {directory!r} (SQLite creates the database there, and in WAL mode its -wal and "
            "-shm files beside it)"
        )
    if not denied:
        return None
    return (
        f"this process ({_user()}) may not write {' nor '.join(denied)}; give that user write access "
        "(chown or chmod u+w), or run sitq as the user who owns the database"
    )


def _files(path: str) -> tuple[str, ...]:
    return (path, f"{path}-wal", f"{path}-shm")


def _size(file: str) -> int:
    try:
        return os.path.getsize(file)
    except OSError:
        return 0


def _may_write(file: str) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(file, os.W_OK, effective_ids=True)
    return os.access(file, os.W_OK)


def _user() -> str:
    if sys.platform == "win32":
        return "this user"
    uid = os.geteuid()
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"
