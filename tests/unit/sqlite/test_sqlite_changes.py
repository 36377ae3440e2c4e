"""Change notification and concurrent claiming, within a process and across real processes."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sitq.models import NewTask, TaskOutcome, TaskStatus
from sitq_sqlite import SQLiteBackend, watch

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)
QUEUES = ("default",)
WOKEN = 5.0  # seconds to wait for a wake-up that must come
QUIET = 0.05  # seconds to wait to show that none comes


def new_task(task_id: str) -> NewTask:
    return NewTask(task_id, "tests.job", b"call", "pickle", T0, T0)


def watchers() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("sitq-sqlite change watcher")]


async def python(code: str, *args: str) -> str:
    """Run `code` in a new interpreter and return what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode()


ENQUEUE_IN_ANOTHER_PROCESS = """
import asyncio, sys
from datetime import UTC, datetime
from sitq.models import NewTask
from sitq_sqlite import SQLiteBackend

async def main():
    backend = SQLiteBackend(sys.argv[1])
    await backend.connect()
    now = datetime.now(UTC)
    await backend.enqueue([NewTask(sys.argv[2], "tests.job", b"call", "pickle", now, now)])
    await backend.close()

asyncio.run(main())
"""


async def test_own_commits_wake_subscribers(backend: SQLiteBackend) -> None:
    with backend.subscribe() as subscription:
        await backend.enqueue([new_task("a")])
        assert await subscription.wait(WOKEN)

        await backend.claim(worker_id="w", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        await backend.complete([TaskOutcome("a", "w", TaskStatus.SUCCESS, T0, b"ok")])
        assert await subscription.wait(WOKEN)


async def test_writes_that_change_nothing_wake_no_one(backend: SQLiteBackend) -> None:
    """An idle worker's empty claims must not wake it again, or it would spin. (A claim or renewal that
    changes rows may wake waiters: the file's change counter cannot tell whose commit it was.)"""
    await backend.enqueue([new_task("a"), new_task("b")])
    assert len(await backend.claim(worker_id="w", now=T0, lease=LEASE, limit=1, queues=QUEUES)) == 1
    assert await backend.claim_task("b", worker_id="w", now=T0, lease=LEASE) is not None

    with backend.subscribe() as subscription:
        await subscription.wait(QUIET)  # the watcher's first look may see the commits above
        assert await backend.claim(worker_id="w", now=T0, lease=LEASE, limit=1, queues=QUEUES) == []
        assert await backend.claim_task("a", worker_id="w2", now=T0, lease=LEASE) is None
        await backend.enqueue([])
        await backend.complete([])
        await backend.release(["a"], worker_id="not the holder", now=T0)
        assert await backend.cancel("nope", now=T0) is None

        assert not await subscription.wait(QUIET)


async def test_cancelling_releasing_and_failing_a_lost_task_wake_subscribers(backend: SQLiteBackend) -> None:
    await backend.enqueue([new_task("a"), new_task("b"), new_task("c")])
    await backend.claim(worker_id="w", now=T0, lease=LEASE, limit=2, queues=QUEUES)

    with backend.subscribe() as subscription:
        assert await backend.cancel("c", now=T0) is TaskStatus.CANCELLED
        assert await subscription.wait(WOKEN)
        await backend.release(["a"], worker_id="w", now=T0)
        assert await subscription.wait(WOKEN)
        # b's worker died: with no attempts left, b fails, and someone may be waiting for it.
        assert [record.id for record in await backend.recover_lost(now=T0 + 2 * LEASE)] == ["b"]
        assert await subscription.wait(WOKEN)
        record = await backend.get("b")
        assert record is not None and record.status is TaskStatus.FAILED


async def test_other_objects_on_the_file_are_woken_at_once(
    tmp_path: Path, backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the cross-process watcher slowed to a minute, only the in-process registry can wake in time.
    monkeypatch.setattr(watch._Writes, "start", lambda path: None)
    monkeypatch.setattr(watch, "_FIRST_POLL_DELAY", 60.0)
    (tmp_path / "link").symlink_to(tmp_path)
    same_file = SQLiteBackend(tmp_path / "link" / "tasks.db")
    other_file = SQLiteBackend(tmp_path / "other.db")
    await same_file.connect()
    await other_file.connect()

    with same_file.subscribe() as same, other_file.subscribe() as other:
        await backend.enqueue([new_task("a")])

        assert await same.wait(WOKEN)
        assert not await other.wait(QUIET)

    await same_file.close()
    await other_file.close()


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
async def test_commits_in_another_process_wake_subscribers(
    tmp_path: Path, backend: SQLiteBackend, inotify: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not inotify:  # as on a platform without inotify
        monkeypatch.setattr(watch._Writes, "start", lambda path: None)
    with backend.subscribe() as subscription:
        await asyncio.sleep(0.2)  # long enough for the watcher to stop polling and wait for a write
        await python(ENQUEUE_IN_ANOTHER_PROCESS, str(tmp_path / "tasks.db"), "from-afar")

        assert await subscription.wait(WOKEN)
    assert await backend.get("from-afar") is not None


ENQUEUE_A_BURST_THEN_ONE_MORE = """
import asyncio, sys, time
from datetime import UTC, datetime
from sitq.models import NewTask
from sitq_sqlite import SQLiteBackend

async def main():
    backend = SQLiteBackend(sys.argv[1], synchronous="normal")
    await backend.connect()
    for i in range(100):
        now = datetime.now(UTC)
        await backend.enqueue([NewTask(f"burst-{i}", "tests.job", b"call", "pickle", now, now)])
    print("burst done", flush=True)
    sys.stdin.readline()
    now = datetime.now(UTC)
    await backend.enqueue([NewTask("late", "tests.job", b"call", "pickle", now, now)])
    await backend.close()

asyncio.run(main())
"""


async def test_a_commit_after_a_burst_of_them_still_wakes_subscribers(
    tmp_path: Path, backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process commits steadily, wake-ups are spaced out; the commit after it stops is
    still seen, by itself (not by the watcher's once-a-second safety net, put off here)."""
    monkeypatch.setattr(watch, "_SAFETY_NET_DELAY", 60.0)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ENQUEUE_A_BURST_THEN_ONE_MORE,
        str(tmp_path / "tasks.db"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    with backend.subscribe() as subscription:
        assert await process.stdout.readline() == b"burst done\n"
        while await subscription.wait(QUIET):  # the burst's wake-ups, spaced out
            pass
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        assert await subscription.wait(WOKEN)
        assert await process.wait() == 0
    assert await backend.get("late") is not None


async def test_the_watcher_runs_only_while_someone_waits(tmp_path: Path, backend: SQLiteBackend) -> None:
    assert watchers() == []
    with backend.subscribe():
        assert len(watchers()) == 1
    for _ in range(300):  # it notices the last subscriber leaving within its longest wait, a second
        if not watchers():
            break
        await asyncio.sleep(0.01)
    assert watchers() == []

    with backend.subscribe() as subscription:
        await python(ENQUEUE_IN_ANOTHER_PROCESS, str(tmp_path / "tasks.db"), "after-restart")
        assert await subscription.wait(WOKEN)


async def test_closing_stops_the_watcher_and_reconnecting_restarts_it(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "tasks.db")
    with backend.subscribe() as subscription:
        assert watchers() == []  # nothing to watch before connecting
        await backend.connect()
        assert len(watchers()) == 1

        await backend.close()
        assert watchers() == []

        await backend.connect()
        await python(ENQUEUE_IN_ANOTHER_PROCESS, str(tmp_path / "tasks.db"), "x")
        assert await subscription.wait(WOKEN)
        await backend.close()
    assert watchers() == []


async def test_two_objects_claiming_concurrently_never_share_a_task(
    tmp_path: Path, backend: SQLiteBackend
) -> None:
    await backend.enqueue([new_task(f"t{i}") for i in range(300)])
    other = SQLiteBackend(tmp_path / "tasks.db", synchronous="normal")
    await other.connect()

    async def drain(claimer: SQLiteBackend, worker_id: str) -> list[str]:
        ids: list[str] = []
        while batch := await claimer.claim(worker_id=worker_id, now=T0, lease=LEASE, limit=3, queues=QUEUES):
            ids.extend(task.id for task in batch)
            # As a worker runs its tasks between claims; else one claimer may win every race for the lock
            # while the other's busy handler sleeps, and the test would prove nothing.
            await asyncio.sleep(0.002)
        return ids

    first, second = await asyncio.gather(drain(backend, "w1"), drain(other, "w2"))
    await other.close()

    assert first
    assert second
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(f"t{i}" for i in range(300))


CLAIM_IN_ANOTHER_PROCESS = """
import asyncio, json, sys
from datetime import UTC, datetime, timedelta
from sitq_sqlite import SQLiteBackend

async def main():
    backend = SQLiteBackend(sys.argv[1], synchronous="normal")
    await backend.connect()
    print("ready", flush=True)
    sys.stdin.readline()
    ids = []
    now = datetime(2030, 1, 1, tzinfo=UTC)
    claim = dict(worker_id=sys.argv[2], now=now, lease=timedelta(minutes=5), limit=2, queues=["default"])
    while batch := await backend.claim(**claim):
        ids.extend(task.id for task in batch)
    await backend.close()
    print(json.dumps(ids))

asyncio.run(main())
"""


async def test_two_processes_claiming_concurrently_never_share_a_task(
    tmp_path: Path, backend: SQLiteBackend
) -> None:
    ids = [f"t{i}" for i in range(1000)]
    await backend.enqueue([new_task(task_id) for task_id in ids])
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLAIM_IN_ANOTHER_PROCESS,
            str(tmp_path / "tasks.db"),
            f"w{n}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(2)
    ]
    for process in processes:  # start both claiming together
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    outputs = await asyncio.gather(*(process.communicate(b"go\n") for process in processes))

    first, second = (json.loads(out) for out, _ in outputs)
    assert [process.returncode for process in processes] == [0, 0]
    assert first
    assert second
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(ids)
