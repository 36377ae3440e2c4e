"""Noticing other processes' commits to a SQLite file: at once, and at no cost while nothing happens.

`PRAGMA data_version` on a connection of its own moves whenever any other connection commits; asked on
the event loop's thread it costs a few microseconds and never waits for a lock. Where Linux offers
inotify, it is asked when the kernel reports a write to the file or its WAL: a commit is a write and
then a sync, so quick looks follow each write until the commit shows. Elsewhere it is polled. Within
this process, `open_files` wakes every backend object on a file when one of them commits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import weakref
from typing import TYPE_CHECKING

from sitq.changes import ChangeSignal

if TYPE_CHECKING:
    from inotify_simple import INotify

logger = logging.getLogger(__name__)

# Without inotify: polling, quickly after a change and backing off to a cheap steady rate.
_FIRST_POLL_DELAY = 0.002
_MAX_POLL_DELAY = 0.1
# With inotify: quick looks for a while after each write, and a look now and then all the same.
_QUICK_LOOK_DELAY = 0.0005
_QUICK_LOOKS_FOR = 0.005
# With inotify, while commits keep coming (within _BUSY_GAP of the last pause's end): pauses between
# wake-ups, doubling from _FIRST_PAUSE to _MAX_PAUSE.
_BUSY_GAP = 0.01
_FIRST_PAUSE = 0.001
_MAX_PAUSE = 0.02
_SAFETY_NET_DELAY = 1.0


class OtherCommits:
    """Wakes a `ChangeSignal`'s subscribers when another connection commits to the file."""

    def __init__(self, path: str, probe: sqlite3.Connection) -> None:
        self._path = path
        self._probe = probe
        self._version = self._data_version()

    @classmethod
    async def open(cls, path: str) -> OtherCommits:
        # busy timeout 0: a look that would wait counts as a change instead.
        probe = await asyncio.to_thread(
            sqlite3.connect, path, isolation_level=None, timeout=0, check_same_thread=False
        )
        return cls(path, probe)

    def close(self) -> None:
        self._probe.close()

    def _data_version(self) -> int | None:
        try:
            ((version,),) = self._probe.execute("PRAGMA data_version").fetchall()
        except sqlite3.Error:
            return None
        return int(version)

    def _changed(self) -> bool:
        version = self._data_version()
        if version is not None and version == self._version:
            return False
        self._version = version
        return True

    async def watch(self, signal: ChangeSignal) -> None:
        """Run while `signal` has subscribers, notifying it of every other connection's commit."""
        writes = _Writes.start(self._path)
        try:
            if writes is None:
                await self._poll(signal)
            else:
                await self._follow(signal, writes)
        finally:
            if writes is not None:
                writes.close()

    async def _poll(self, signal: ChangeSignal) -> None:
        """Without inotify: look quickly after a change, when more usually follow, backing off while
        nothing happens."""
        delay = _FIRST_POLL_DELAY
        while signal.has_subscribers:
            await asyncio.sleep(delay)
            if self._changed():
                signal.notify()
                delay = _FIRST_POLL_DELAY
            else:
                delay = min(delay * 2, _MAX_POLL_DELAY)

    async def _follow(self, signal: ChangeSignal, writes: _Writes) -> None:
        """With inotify: after each write, look for its commit every half millisecond for a while (the
        sync between a commit's write and its showing takes a few milliseconds at most), then less and
        less often; between writes, sleep."""
        loop = asyncio.get_running_loop()
        since_write: float | None = None  # None: no write to look for
        pause, quiet_since = 0.0, loop.time()
        while signal.has_subscribers:
            if since_write is None:
                await writes.wait(_SAFETY_NET_DELAY)
                since_write = 0.0
            if self._changed():
                signal.notify()
                # News that keeps coming (other processes writing steadily) is passed on less and less
                # often, up to a few times a second: waking the waiters for every commit would take more of
                # the CPU they share with the writers than the news is worth. After a quiet spell, at once.
                busy = loop.time() - quiet_since < _BUSY_GAP
                pause = min(max(pause * 2, _FIRST_PAUSE), _MAX_PAUSE) if busy else 0.0
                if pause:
                    await writes.ignore(pause)
                quiet_since = loop.time()
                since_write = None
                continue
            delay = _QUICK_LOOK_DELAY if since_write < _QUICK_LOOKS_FOR else since_write
            if await writes.wait(delay):
                since_write = 0.0  # another write: look quickly again
            elif (since_write := since_write + delay) >= _SAFETY_NET_DELAY:
                since_write = None  # a write that was no commit's (a checkpoint's, say)


class _Writes:
    """Set whenever the database file or its WAL is written, by any process (inotify on its directory,
    since the WAL comes and goes)."""

    def __init__(self, inotify: INotify, names: frozenset[str], overflow: int) -> None:
        self._inotify = inotify
        self._names = names
        self._overflow = overflow
        self._written = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(inotify.fileno(), self._read)

    @classmethod
    def start(cls, path: str) -> _Writes | None:
        """None where inotify is unavailable: not Linux, or a directory that cannot be watched."""
        try:
            from inotify_simple import INotify, flags
        except (ImportError, OSError, AttributeError):  # no inotify in this platform's libc
            return None
        directory, name = os.path.split(path)
        try:
            inotify = INotify(nonblocking=True)
        except OSError:
            return None
        try:
            inotify.add_watch(directory, flags.MODIFY)
        except OSError as exc:
            logger.debug("cannot watch %s for writes (%s); polling instead", directory, exc)
            inotify.close()
            return None
        return cls(inotify, frozenset({name, f"{name}-wal"}), flags.Q_OVERFLOW)

    def _read(self) -> None:
        # An overflowed event queue may have dropped a write: count it as one.
        if any(
            event.name in self._names or event.mask & self._overflow
            for event in self._inotify.read(timeout=0)
        ):
            self._written.set()

    async def wait(self, timeout: float) -> bool:
        """Until the next write (True), or `timeout` seconds (False)."""
        try:
            await asyncio.wait_for(self._written.wait(), timeout)
        except TimeoutError:
            return False
        self._written.clear()
        return True

    async def ignore(self, seconds: float) -> None:
        """Not be woken by writes for a while; the writes meanwhile count as one, at the end."""
        self._loop.remove_reader(self._inotify.fileno())
        try:
            await asyncio.sleep(seconds)
        finally:
            self._loop.add_reader(self._inotify.fileno(), self._read)
        self._read()

    def close(self) -> None:
        self._loop.remove_reader(self._inotify.fileno())
        self._inotify.close()


class _OpenFiles:
    """The change signals of this process's open backends, by real path of their file, so that a commit
    through one object wakes the waiters of every object on that file at once, without polling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signals: dict[str, weakref.WeakSet[ChangeSignal]] = {}

    def add(self, file: str, signal: ChangeSignal) -> None:
        with self._lock:
            self._signals.setdefault(file, weakref.WeakSet()).add(signal)

    def discard(self, file: str, signal: ChangeSignal) -> None:
        with self._lock:
            signals = self._signals.get(file)
            if signals is not None:
                signals.discard(signal)
                if not signals:
                    del self._signals[file]

    def notify(self, file: str) -> None:
        with self._lock:
            signals = list(self._signals.get(file, ()))
        for signal in signals:
            signal.notify()


open_files = _OpenFiles()
