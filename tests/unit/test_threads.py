"""The threads that run a worker's sync calls, below what the worker's own tests reach: a call cancelled
before a thread takes it, calls submitted together, outcomes delivered in bursts and held for the calls
beside them, closing, and a thread that cannot start."""

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from sample_tasks import multiply

from sitq import threads
from sitq.threads import ThreadPool


def _freed() -> None:
    """Called for a call let go of while running: none here is (the worker's tests have those)."""


async def test_a_call_let_go_of_before_a_thread_takes_it_never_runs_and_holds_no_slot() -> None:
    pool = ThreadPool(1, _freed)
    pool.start()
    gate = threading.Event()
    ran: list[str] = []
    first = pool.submit(gate.wait, (5,), {})
    cancelled = pool.submit(ran.append, ("cancelled",), {})
    cancelled.future.cancel()  # as a timeout or a requested cancellation does
    dropped = pool.submit(ran.append, ("dropped",), {})
    assert not pool.let_go(cancelled) and not pool.let_go(dropped) and pool.held == 0
    gate.set()
    await first.future
    last = pool.submit(ran.append, ("last",), {})
    await asyncio.wait_for(last.future, 5)
    pool.close()
    assert ran == ["last"]


async def test_calls_submitted_together_run_at_once_though_each_blocks() -> None:
    pool = ThreadPool(3, _freed)
    pool.start()
    meeting = threading.Barrier(3, timeout=5)  # broken unless all three calls run at the same time
    for _ in ("with new threads", "with the same threads, idle"):
        calls = [pool.submit(meeting.wait, (), {}) for _ in range(3)]
        await asyncio.wait_for(asyncio.gather(*(call.future for call in calls)), 10)
        assert sorted(call.result() for call in calls) == [0, 1, 2]
        await asyncio.sleep(0.1)  # for the threads to go idle
    pool.close()


async def test_calls_that_finish_while_the_loop_is_busy_wake_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    wakeups: list[Callable[..., object]] = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counted(callback: Callable[..., object], *args: object) -> asyncio.Handle:
        wakeups.append(callback)
        return call_soon_threadsafe(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    pool = ThreadPool(2, _freed)
    pool.start()
    calls = [pool.submit(multiply, (n, 2), {}) for n in range(50)]
    time.sleep(0.3)  # noqa: ASYNC251  # the loop kept busy: the threads run every call meanwhile
    await asyncio.wait_for(asyncio.gather(*(call.future for call in calls)), 5)
    pool.close()
    assert [call.result() for call in calls] == [n * 2 for n in range(50)]
    assert len(wakeups) == 1


async def test_an_outcome_waits_for_the_call_started_beside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "GATHER", 5.0)
    pool = ThreadPool(2, _freed)
    pool.start()
    gate = threading.Event()
    quick = pool.submit(multiply, (2, 3), {})
    slow = pool.submit(gate.wait, (5,), {})
    await asyncio.sleep(0.2)
    assert not quick.future.done()
    gate.set()
    await asyncio.wait_for(slow.future, 5)
    assert quick.future.done() and quick.result() == 6
    pool.close()


async def test_an_outcome_does_not_wait_for_a_call_that_has_run_longer_than_gather(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "GATHER", 0.5)
    pool = ThreadPool(2, _freed)
    pool.start()
    gate = threading.Event()
    slow = pool.submit(gate.wait, (5,), {})
    await asyncio.sleep(0.6)
    quick = pool.submit(multiply, (2, 3), {})
    await asyncio.wait_for(quick.future, 0.3)
    gate.set()
    await asyncio.wait_for(slow.future, 5)
    pool.close()


async def test_closing_ends_idle_threads_at_once_and_busy_ones_when_their_call_returns() -> None:
    pool = ThreadPool(3, _freed)
    pool.start()
    soon, later = threading.Event(), threading.Event()

    def wait_for(event: threading.Event) -> threading.Thread:
        event.wait(5)
        return threading.current_thread()

    calls = [pool.submit(wait_for, (event,), {}) for event in (soon, soon, later)]
    soon.set()
    await asyncio.wait_for(asyncio.gather(calls[0].future, calls[1].future), 5)
    pool.close()
    idle = [calls[0].result(), calls[1].result()]
    for thread in idle:
        thread.join(5)
    assert not any(thread.is_alive() for thread in idle)
    later.set()
    await asyncio.wait_for(calls[2].future, 5)  # still delivered after closing
    busy = calls[2].result()
    busy.join(5)
    assert not busy.is_alive()
    assert all(thread.name.startswith("sitq-task-") and thread.daemon for thread in [*idle, busy])


async def test_a_thread_that_cannot_start_fails_its_call_and_the_next_call_starts_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = ThreadPool(1, _freed)
    pool.start()
    ran: list[str] = []

    def refuse(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        pool.submit(ran.append, ("refused",), {})
    monkeypatch.undo()
    call = pool.submit(ran.append, ("started",), {})
    await asyncio.wait_for(call.future, 5)
    pool.close()
    assert ran == ["started"]
