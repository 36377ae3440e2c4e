"""A worker process of the reliability suite: ``python -m reliability.worker URL [options]``.

It builds a `sitq.Worker` through the public API and runs it until SIGTERM or SIGINT, logging warnings
and errors to stderr. `harness.Fleet` starts it with tests/ on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from sitq import Worker


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m reliability.worker")
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, help="max_concurrency (default: the Worker's)")
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--grace-period", type=float, required=True)
    parser.add_argument("--poll-interval", type=float, required=True)
    parser.add_argument("--processes", type=int, help="run tasks in this many child processes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(name)s: %(message)s")
    # Only what is asked for, so that the defaults are the very ones a user gets.
    given = {"max_concurrency": args.concurrency, "processes": args.processes}
    options: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    worker = Worker(
        args.url,
        lease=args.lease,
        grace_period=args.grace_period,
        poll_interval=args.poll_interval,
        **options,
    )
    asyncio.run(worker.run())


if __name__ == "__main__":
    main()
