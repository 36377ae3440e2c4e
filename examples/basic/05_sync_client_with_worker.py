"""05: a synchronous client beside an async worker, sharing one SQLite database file.

The main thread is ordinary blocking code, as in a script or a threaded web app: it enqueues and waits
with `SyncTaskQueue`. The worker is async and runs in a background thread with its own event loop.
Each side builds its own `SQLiteBackend` on the same file, because a backend object belongs to the
event loop that uses it. In production the worker would usually be a separate process; the database
file is shared the same way.

Run it with ``python examples/basic/05_sync_client_with_worker.py``. It works in a temporary SQLite
database that is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

from sitq import SQLiteBackend, SyncTaskQueue, Worker


def resize(image: str, width: int) -> str:
    """A blocking function; the worker runs it in a thread of its pool."""
    return f"{image} resized to {width}px"


async def make_thumbnail(image: str) -> str:
    """An async function; a sync client can enqueue it all the same."""
    await asyncio.sleep(0.1)
    return f"thumbnail of {image}"


async def serve(database: Path, ready: threading.Event, stop: threading.Event) -> None:
    """The worker thread's whole life: one event loop, one backend object, one worker."""
    async with Worker(SQLiteBackend(database), max_concurrency=4):
        ready.set()
        # Park this coroutine in a helper thread until the main thread says stop. Leaving the
        # `async with` stops the worker: it finishes its running tasks first.
        await asyncio.to_thread(stop.wait)


def main(database: Path) -> None:
    ready, stop = threading.Event(), threading.Event()
    worker_thread = threading.Thread(target=asyncio.run, args=(serve(database, ready, stop),), name="worker")
    worker_thread.start()
    try:
        if not ready.wait(timeout=10):
            raise RuntimeError("the worker did not start; its thread printed why")
        print("worker running in a background thread")

        # No async, no await: SyncTaskQueue runs its own event loop in a private thread.
        with SyncTaskQueue(SQLiteBackend(database)) as queue:
            task_ids = [queue.enqueue(resize, f"photo-{n}.jpg", width=320) for n in range(3)]
            task_ids.append(queue.enqueue(make_thumbnail, "photo-0.jpg"))
            print(f"enqueued {len(task_ids)} tasks from the main thread")

            for task_id in task_ids:
                result = queue.get_result(task_id, timeout=10)  # blocks until done, or 10 s
                if result is None:
                    print(f"task {task_id} did not finish within 10 s")
                else:
                    print(f"{result.status}: {queue.deserialize_result(result)}")
    finally:
        stop.set()
        worker_thread.join()
    print("worker stopped")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="sitq-example-") as directory:
        main(Path(directory) / "tasks.db")
