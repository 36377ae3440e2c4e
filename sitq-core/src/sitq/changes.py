"""Change notification: how a waiting worker or `get_result` learns at once that the store changed.

A backend owns one `ChangeSignal` and calls `notify()` after each commit it makes (and, where it can,
when another process commits). Waiters subscribe *before* they look at the store and wait afterwards,
so a change between the look and the wait is never missed.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType


class Subscription:
    """One waiter's view of a `ChangeSignal`: an event that is set by every change since the last wait."""

    def __init__(self, signal: ChangeSignal) -> None:
        self._signal = signal
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving changes; `with` does this on exit."""
        self._signal.unsubscribe(self)

    def set(self) -> None:
        """Wake this waiter, from any thread; the owner also uses it to wake itself for its own reasons."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float | None) -> bool:
        """Wait for a change; return False if `timeout` seconds passed first. Clears the event."""
        if self._event.is_set():
            self._event.clear()
            return True
        try:
            if timeout is None:
                await self._event.wait()
            else:
                await asyncio.wait_for(self._event.wait(), max(timeout, 0.0))
        except TimeoutError:
            return False
        self._event.clear()
        return True


class ChangeSignal:
    """The set of subscriptions of one store; `notify()` wakes them all and is safe from any thread."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscriptions)

    def notify(self) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.set()
