"""One racer of the unique-keys race: ``python -m integration.unique_racer URL KEYS SEED``.

It connects, prints ``ready``, waits for a line on stdin (so that both racers start together), then
enqueues a task for each of the keys ``key-0`` ... ``key-{KEYS-1}`` in an order drawn from SEED: half
as concurrent single enqueues (which the queue groups into shared writes), half as concurrent batches of
ten (`enqueue_many`), and prints the id each key got as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from sample_tasks import add

from sitq import Task, TaskQueue

BATCH = 10
CONCURRENCY = 16


async def race(url: str, count: int, seed: int) -> dict[str, str]:
    keys = [f"key-{n}" for n in range(count)]
    random.Random(seed).shuffle(keys)
    singles, batched = keys[: count // 2], keys[count // 2 :]
    ids: dict[str, str] = {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(key: str) -> None:
        async with gate:
            ids[key] = await queue.enqueue(Task(add, [1, 2], unique_key=key))

    async def batch(chunk: list[str]) -> None:
        async with gate:
            got = await queue.enqueue_many([Task(add, [1, 2], unique_key=key) for key in chunk])
            ids.update(zip(chunk, got, strict=True))

    async with TaskQueue(url) as queue:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(
            *(one(key) for key in singles),
            *(batch(batched[i : i + BATCH]) for i in range(0, len(batched), BATCH)),
        )
    return ids


def main() -> None:
    url, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asyncio.run(race(url, count, seed))), flush=True)


if __name__ == "__main__":
    main()
