"""`ThreadPool`: runs a worker's sync calls in long-lived threads, and hands their outcomes back to the
event loop in bursts.

A concurrent.futures executor wrapped for asyncio costs, per call, a submission that wakes a thread of its
own and a wakeup of the loop to resolve its future. Here a call wakes a thread only if none is between two
calls already (that one takes it next), and a thread that takes a call wakes a helper only for the calls
still waiting behind it (one of them may block). A thread that finishes a call while the loop has yet to
collect earlier outcomes adds its own to them instead of waking the loop again, and the loop holds the
outcomes of a burst of calls until the last of them returns (`GATHER` at most), so that the worker records
them in one write: outcomes that reach it apart are recorded apart, and each write claims tasks only for
the slots its own outcomes free, so the burst would stay split for good.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import enum
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

GATHER = 0.001
"""The longest the loop holds the outcomes of calls that have returned for those of the calls beside them,
and how recently a call must have started to be waited for: one that has run longer is no quick call."""


class _Delivery(enum.Enum):
    """Where the outcomes of the calls that have returned stand, between the threads and the loop."""

    NONE = enum.auto()  # none is waiting for the loop: the next call to return tells it
    TOLD = enum.auto()  # the loop has been told to collect them
    HELD = enum.auto()  # the loop holds them for the calls beside them; the last of those tells it


class ThreadCall:
    """One sync call: its `future` is resolved on the loop once a thread has run it, and `result()` then
    gives its outcome.

    The outcome is not set on the future: a task awaiting a future that holds an exception has it thrown
    into its coroutines, and a GeneratorExit thrown in closes them instead of reaching their handlers.
    """

    __slots__ = ("args", "context", "error", "function", "future", "held", "kwargs", "started", "value")

    def __init__(
        self,
        future: asyncio.Future[None],
        function: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> None:
        self.future = future
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.context = contextvars.copy_context()  # so that `sitq.current_task()` works in the thread
        self.started = 0.0  # when a thread took it (`time.monotonic`)
        self.held = False  # on the loop: let go of while running, so it holds its slot until it returns
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.context.run(self.function, *self.args, **self.kwargs)
        except BaseException as exc:  # whatever the call raises is its outcome, raised by `result()`
            self.error = exc

    def result(self) -> Any:
        """What the call returned, or raise what it raised."""
        if self.error is not None:
            raise self.error
        return self.value


class ThreadPool:
    """Up to `size` daemon threads, started as calls need them, that run the calls submitted on the loop.

    `freed` is called on the loop when a call that was let go of while running (see `let_go`) returns.
    """

    def __init__(self, size: int, freed: Callable[[], None]) -> None:
        self._size = size
        self._freed = freed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held = 0
        self._holding: asyncio.TimerHandle | None = None
        self._named = 0
        # What the threads share, under the lock: the calls no thread has taken yet; those taken that run
        # for a caller still waiting, in the order they were taken; the parked threads (each waits on a
        # lock of its own until it is released); how many threads live, and how many of them look for a
        # call; whether idle threads should end; the calls returned since the loop last collected them,
        # and where those stand.
        self._lock = threading.Lock()
        self._waiting: collections.deque[ThreadCall] = collections.deque()
        self._running: dict[ThreadCall, None] = {}
        self._idle: list[threading.Lock] = []
        self._threads = 0
        self._looking = 0
        self._closed = False
        self._finished: list[ThreadCall] = []
        self._delivery = _Delivery.NONE

    @property
    def held(self) -> int:
        """Calls let go of while running: their threads cannot be stopped, and each keeps its slot."""
        return self._held

    def start(self) -> None:
        """Serve the running loop (again, after `close`)."""
        self._loop = asyncio.get_running_loop()
        with self._lock:
            self._closed = False
        self._deliver()  # what a thread could not hand to a loop that has closed since

    def close(self) -> None:
        """Make the idle threads end, and the others once their call returns; waits for none of them."""
        with self._lock:
            self._closed = True
            parked, self._idle = self._idle, []
            self._looking += len(parked)
        for park in parked:
            park.release()

    def submit(
        self, function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> ThreadCall:
        """Queue a call for a thread; it does not run if its future is cancelled before a thread takes it."""
        assert self._loop is not None, "start() the pool first"
        call = ThreadCall(self._loop.create_future(), function, args, kwargs)
        with self._lock:
            self._waiting.append(call)
            rouse = self._rouse()
        if rouse is not None:
            try:
                rouse()
            except BaseException:
                call.future.cancel()  # not to run later, when no one waits for it
                raise
        return call

    def let_go(self, call: ThreadCall) -> bool:
        """Stop waiting for a call: if no thread has taken it yet, none will. True if its thread still runs
        it, and so keeps its slot (counted in `held`) until it returns."""
        call.future.cancel()
        if not call.future.cancelled():
            return False  # resolved: its thread has returned
        with self._lock:
            call.held = call in self._running
            if call.held:
                del self._running[call]  # no outcome waits for it any more
        if call.held:
            self._held += 1
        return call.held

    def _rouse(self) -> Callable[[], None] | None:
        """Under the lock, with calls waiting: wake an idle thread if none is looking for them already; start
        one if they outnumber the threads that will take them (the looking ones, and the idle ones that a
        thread taking a call wakes for the calls behind it). Returns what wakes or starts it, to call once
        the lock is released. So the pool grows on the loop, as calls are submitted: starting a thread
        waits for it, which a thread about to run its own call should not."""
        if not self._looking and self._idle:
            self._looking += 1
            return self._idle.pop().release
        if len(self._waiting) <= self._looking + len(self._idle) or self._threads == self._size:
            return None
        self._threads += 1
        self._looking += 1
        self._named += 1
        thread = threading.Thread(target=self._serve, name=f"sitq-task-{self._named}", daemon=True)
        return functools.partial(self._start, thread)

    def _start(self, thread: threading.Thread) -> None:
        """Start a thread `_rouse` counted; if it cannot start, uncount it, so that the next call tries."""
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads -= 1
                self._looking -= 1
            raise

    def _serve(self) -> None:
        park = threading.Lock()
        park.acquire()
        while True:
            with self._lock:
                call = self._take()
                self._looking -= 1
                if call is None:
                    if self._closed:
                        self._threads -= 1
                        return
                    self._idle.append(park)
                    rouse = None
                else:
                    rouse = self._rouse() if self._waiting else None
            if call is None:
                park.acquire()  # until released by `submit`, `close` or a thread rousing a helper
                continue
            if rouse is not None:
                with contextlib.suppress(RuntimeError):  # no helper started: this thread takes them later
                    rouse()
            call.run()
            with self._lock:
                self._running.pop(call, None)  # there unless let go of
                self._looking += 1
                self._finished.append(call)
                tell = self._delivery is _Delivery.NONE or (
                    self._delivery is _Delivery.HELD and self._settled()
                )
                if tell:
                    self._delivery = _Delivery.TOLD
            if tell:
                self._tell_loop()

    def _take(self) -> ThreadCall | None:
        """Under the lock: the next waiting call still wanted."""
        while self._waiting:
            call = self._waiting.popleft()
            if not call.future.cancelled():
                call.started = time.monotonic()
                self._running[call] = None
                return call
        return None

    def _settled(self) -> bool:
        """Under the lock: whether the outcomes that have returned need wait for no other call: none waits
        for a thread, and none runs that started within `GATHER`."""
        if self._waiting:
            return False
        latest = next(reversed(self._running), None)  # the last taken of those still running
        return latest is None or time.monotonic() - latest.started >= GATHER

    def _tell_loop(self) -> None:
        """In a thread: have the loop collect the calls that have returned."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._collect)
        except RuntimeError:  # the loop has closed: `start` delivers them on the next one
            with self._lock:
                self._delivery = _Delivery.NONE

    def _collect(self) -> None:
        """On the loop, when told: deliver, unless quick calls may still return beside those that have
        (then hold them until the last returns, `GATHER` at most)."""
        assert self._loop is not None
        with self._lock:
            hold = self._holding is None and not self._settled()
            if hold:
                self._delivery = _Delivery.HELD
        if hold:
            self._holding = self._loop.call_later(GATHER, self._deliver)
        else:
            self._deliver()

    def _deliver(self) -> None:
        """On the loop: resolve the futures of the calls that have returned since the last delivery."""
        if self._holding is not None:
            self._holding.cancel()
            self._holding = None
        with self._lock:
            finished, self._finished = self._finished, []
            self._delivery = _Delivery.NONE
        freed = False
        for call in finished:
            if call.held:
                self._held -= 1
                freed = True
            elif not call.future.done():
                call.future.set_result(None)
        if freed:
            self._freed()
