"""SyncTaskQueue: blocking calls from plain threads, and a clear refusal inside an event loop."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sample_tasks import multiply

from sitq import MemoryBackend, Result, SyncTaskQueue, SyncTaskQueueError, TaskNotFoundError, Worker


def _serve(url: str, stop: threading.Event) -> None:
    """A worker on its own event loop in its own thread, as a separate process would run one."""

    async def main() -> None:
        async with Worker(url):
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


@pytest.fixture
def worker_thread() -> str:
    url = "memory://sync-tests"
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(url, stop))
    thread.start()
    yield url
    stop.set()
    thread.join()


def test_blocking_calls_return_what_the_async_queue_would(worker_thread: str) -> None:
    with SyncTaskQueue(worker_thread) as queue:
        task_id = queue.enqueue(multiply, 6, 7)
        result = queue.get_result(task_id, timeout=5)
        assert isinstance(result, Result) and result.status == "success"
        assert queue.deserialize_result(result) == 42
        assert queue.get_status(task_id) == "success"
        with pytest.raises(TaskNotFoundError):
            queue.get_result("no-such-task")


def test_one_instance_serves_many_threads(worker_thread: str) -> None:
    with SyncTaskQueue(worker_thread) as queue, ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: queue.enqueue(multiply, i, 2), range(40)))
        results = list(pool.map(lambda task_id: queue.get_result(task_id, timeout=10), ids))
    assert [result.value for result in results if result] == [i * 2 for i in range(40)]


def test_get_result_times_out_with_none() -> None:
    with SyncTaskQueue(MemoryBackend()) as queue:
        assert queue.get_result(queue.enqueue(multiply, 1, 1), timeout=0.05) is None


async def test_inside_a_running_event_loop_it_says_to_use_task_queue() -> None:
    queue = SyncTaskQueue(MemoryBackend())
    with pytest.raises(SyncTaskQueueError, match="use `await` on a TaskQueue there instead"):
        queue.enqueue(multiply, 1, 2)
    queue.close()


def test_close_is_idempotent_and_the_queue_reopens() -> None:
    queue = SyncTaskQueue(MemoryBackend())
    queue.close()
    queue.enqueue(multiply, 1, 2)
    queue.close()
    queue.close()
    with queue:
        queue.enqueue(multiply, 1, 2)


def test_an_interrupt_inside_a_call_reaches_its_caller_and_the_queue_carries_on() -> None:
    async def interrupted() -> None:
        raise KeyboardInterrupt

    with SyncTaskQueue(MemoryBackend()) as queue:
        with pytest.raises(KeyboardInterrupt):
            queue._call(interrupted)
        assert queue.get_status(queue.enqueue(multiply, 1, 2)) == "pending"
