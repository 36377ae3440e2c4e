"""Waking idle workers through PostgreSQL's LISTEN/NOTIFY: one listening connection per process.

Every enqueue and every recorded outcome sends a notification on the schema's channel, inside its own
transaction, so that it arrives when that transaction commits. A notification only signals: it carries
nothing, and whoever wakes looks at the tables again; a lost one costs at most the worker's periodic look
(`Worker(poll_interval=...)`). The listening connection is a connection of its own, outside the pool,
since it must stay open and idle; when the server closes it (a restart, `pg_terminate_backend`, a network
fault) it is opened again, after a wait that doubles up to a few seconds, and everyone is woken once it is
back, for what was committed while nobody listened. Every backend object of a process on the same
database and schema (a queue and a worker built from one URL, say) shares that connection: `listen`
joins it, `unlisten` leaves it, and the last to leave closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sitq.backoff import Backoff
from sitq.changes import ChangeSignal

if TYPE_CHECKING:
    import asyncpg

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "sitq."
"""A schema's channel is this prefix and its name: workers of other schemas are not woken."""
_HEALTH_CHECK = 30.0
"""Seconds between looks at an idle listening connection, for a fault the socket did not report."""
_MAX_RECONNECT_DELAY = 5.0


def channel(schema: str) -> str:
    return f"{CHANNEL_PREFIX}{schema}"


class Listener:
    """Keeps one LISTEN connection open on `channel`, notifying every joined signal of each notification."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._signals: set[ChangeSignal] = set()
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self._reconnects = Backoff(f"listening on PostgreSQL channel {channel!r}", cap=_MAX_RECONNECT_DELAY)

    @property
    def connection(self) -> asyncpg.Connection | None:
        """The listening connection while it is open (tests terminate it to show it comes back)."""
        return self._connection

    def start(self) -> None:
        """Start listening in the running loop, unless already listening there."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._task.get_loop() is loop:
            return
        self._task = loop.create_task(self._run(), name=f"sitq-postgres listener on {self._channel}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        # A task left in a loop that has since ended (see sitq.backend.SharedConnection) ended with it.
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        import asyncpg

        while True:
            try:
                await self._listen()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                delay = self._reconnects.failed(exc)
            else:
                delay = self._reconnects.failed(ConnectionError("the server closed the connection"))
            await asyncio.sleep(delay)

    async def _listen(self) -> None:
        """Listen until the connection is lost; close it whatever ends this."""
        lost = asyncio.Event()
        connection = await self._connect()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(self._channel, self._notified)
            self._connection = connection
            self._reconnects.succeeded()
            self._notified()  # what was committed while nobody listened
            while not lost.is_set() and not connection.is_closed():
                try:
                    await asyncio.wait_for(lost.wait(), _HEALTH_CHECK)
                except TimeoutError:
                    await connection.execute("SELECT 1", timeout=_HEALTH_CHECK)
        finally:
            self._connection = None
            connection.terminate()

    def _notified(self, *_: object) -> None:
        for signal in list(self._signals):
            signal.notify()


_Key = tuple[str, str, asyncio.AbstractEventLoop]
_listeners: dict[_Key, Listener] = {}


def listen(
    dsn: str, channel: str, connect: Callable[[], Awaitable[asyncpg.Connection]], signal: ChangeSignal
) -> Listener:
    """Have `signal` notified of `channel` on the database of `dsn`, through the process's listening
    connection there in the running loop, started by the first to ask."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _listeners if key[2].is_closed()]:
        del _listeners[key]  # left behind by a loop that ended without closing its backends
    listener = _listeners.setdefault((dsn, channel, loop), Listener(connect, channel))
    listener._signals.add(signal)
    listener.start()
    return listener


async def unlisten(dsn: str, listener: Listener, signal: ChangeSignal) -> None:
    """Stop notifying `signal`; the last signal to leave closes the listening connection."""
    listener._signals.discard(signal)
    if listener._signals:
        return
    for key, found in list(_listeners.items()):
        if found is listener and key[0] == dsn:
            del _listeners[key]
    await listener.stop()
