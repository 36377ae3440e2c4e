"""A producer process of the reliability suite: ``python -m reliability.producer URL LEDGER PREFIX COUNT``.

It enqueues COUNT tasks keyed PREFIX-0, PREFIX-1, ... in batches, async (`tasks.work`) and sync
(`tasks.work_sync`) in turn, each taking a time drawn from `--seed`, and prints their ids, one a line,
as it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import random

from reliability.tasks import work, work_sync

from sitq import Task, TaskQueue

BATCH = 50


async def produce(args: argparse.Namespace) -> None:
    draw = random.Random(args.seed)
    async with TaskQueue(args.url) as queue:
        for first in range(0, args.count, BATCH):
            batch = [
                Task(
                    work_sync if n % 2 else work,
                    [args.ledger, f"{args.prefix}-{n}", draw.uniform(args.min_seconds, args.max_seconds)],
                    max_attempts=args.max_attempts,
                )
                for n in range(first, min(first + BATCH, args.count))
            ]
            print("\n".join(await queue.enqueue_many(batch)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m reliability.producer")
    parser.add_argument("url")
    parser.add_argument("ledger")
    parser.add_argument("prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--min-seconds", type=float, required=True)
    parser.add_argument("--max-seconds", type=float, required=True)
    parser.add_argument("--max-attempts", type=int, required=True)
    asyncio.run(produce(parser.parse_args()))


if __name__ == "__main__":
    main()
