"""Subscriptions wake on changes, from the loop's thread or any other, and never miss one."""

import asyncio
import threading

from sitq.changes import ChangeSignal


async def test_wait_times_out_without_a_change_and_returns_at_once_after_one() -> None:
    signal = ChangeSignal()
    with signal.subscribe() as changes:
        assert not await changes.wait(0.01)
        signal.notify()
        assert await changes.wait(None)
        assert not await changes.wait(0)


async def test_a_change_before_the_wait_is_not_missed() -> None:
    signal = ChangeSignal()
    with signal.subscribe() as changes:
        signal.notify()
        await asyncio.sleep(0)
        assert await changes.wait(0)


async def test_notify_from_another_thread_wakes_the_loop() -> None:
    signal = ChangeSignal()
    with signal.subscribe() as changes:
        threading.Thread(target=signal.notify).start()
        assert await changes.wait(5)


async def test_unsubscribed_waiters_are_forgotten() -> None:
    signal = ChangeSignal()
    with signal.subscribe():
        assert signal.has_subscribers
    assert not signal.has_subscribers
