"""The database's files on disk: created readable by their owner only, and checked for others' write access.

SQLite creates a database's -wal, -shm and -journal files with the mode of the database file itself, so
creating that file 0600 before SQLite first opens it keeps them all private, whatever the umask.
"""

from __future__ import annotations

import logging
import os
import stat

logger = logging.getLogger(__name__)

_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def create_private(path: str) -> None:
    """Create `path` empty, readable and writable by its owner only, unless something is there already.

    An empty file is an empty SQLite database. `O_EXCL` makes this safe against another process creating
    it at the same moment: one of them creates it, and the other opens what it created.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def warn_if_others_may_write(path: str) -> None:
    """Log a warning for the database's directory and each of its files that other users may write.

    Whoever may write them may change the queue's tasks, whose calls workers deserialize and run. The
    sticky bit of a directory such as /tmp does not help: it stops others deleting sitq's files, not
    creating the -wal or -shm file first, as their own, for sitq to write into.
    """
    if os.name != "posix":
        return  # elsewhere the mode bits do not say who may write
    directory = os.path.dirname(path)
    for file in (directory, path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = os.stat(file).st_mode
        except OSError:
            continue
        if not mode & _WRITABLE_BY_OTHERS:
            continue
        if file == directory:
            logger.warning(
                "the directory %s, which holds the SQLite database %s, is writable by other users"
                " (mode %s%s): they could create or replace the database or its -wal and -shm files, and"
                " so change the tasks your workers run; keep the database in a directory only its owner"
                " may write",
                directory,
                os.path.basename(path),
                stat.filemode(mode),
                ", sticky, which does not stop that" if mode & stat.S_ISVTX else "",
            )
        else:
            logger.warning(
                "the SQLite file %s is writable by other users (mode %s): they could change the tasks your"
                " workers run; make it private: chmod 600 %s",
                file,
                stat.filemode(mode),
                file,
            )
