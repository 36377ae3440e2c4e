"""What tasks held back by a concurrency limit cost the claims of other tasks (issue 13's bar: about nothing).

Each measure starts from a fresh store holding `--tasks` claimable tasks without limits; the "held back"
one also holds `--held` (10,000) pending tasks of one key with ``concurrency_limit=1`` whose slot another
worker holds, so every one of them waits. The clock runs around claiming every free task through the
`Backend` protocol, as a worker's loop does (each claim also records the previous claim's outcomes), in
claims of `--batch` tasks, and the report gives microseconds per claimed task, of the clock and of the
process's CPU (less disturbed by whatever else the machine runs), and the ratios of the two cases.
Measures alternate, `--repeat` times each; the report shows medians.

    python bench/held_back.py [--backend sqlite|postgres] [--tasks 2000] [--held 10000] [--batch 1,10]
                              [--repeat 5] [--postgres-url URL] [--out bench/results/limits]

Runs in any environment with this repository's sitq installed (sitq-postgres and a server for
``--backend postgres``); it writes results.json and results.md into --out and prints the Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import sitq
from sitq import Task, TaskQueue, TaskStatus
from sitq.models import TaskOutcome, utcnow

BENCH = Path(__file__).resolve().parent
LEASE = timedelta(hours=1)
CHUNK = 1_000
"""Tasks per `enqueue_many` while filling the store, before the clock starts."""


@sitq.task()
def noop() -> None:
    """Never run: the measure claims tasks and reports them done."""


@sitq.task(concurrency_key="tenant", concurrency_limit=1)
def limited() -> None:
    """Never run either: its key's one slot is taken, so all of them wait."""


def store_url(args: argparse.Namespace, directory: Path) -> str:
    if args.backend == "postgres":
        return f"{args.postgres_url}?schema=bench_{uuid.uuid4().hex[:12]}"
    return f"sqlite:///{directory / f'{uuid.uuid4().hex}.db'}"


def settle(url: str) -> None:
    """Write SQLite's WAL back into the file before the clock starts, so that the checkpoint of the
    fill (ten times larger with the held-back tasks) does not run during the measure."""
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def drop(url: str) -> None:
    if "?schema=" in url:
        import asyncpg

        base, schema = url.split("?schema=")
        connection = await asyncpg.connect(base)
        try:
            await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await connection.close()


async def measure(
    args: argparse.Namespace, directory: Path, *, held: bool, batch: int
) -> tuple[float, float]:
    """Microseconds per claimed task, of the clock and of this process's CPU (every thread's: SQLite's
    runs in aiosqlite's), claiming every free task in claims of `batch`."""
    url = store_url(args, directory)
    async with TaskQueue(url) as queue:
        if held:
            ids = []
            for start in range(0, args.held, CHUNK):
                ids += await queue.enqueue_many([Task(limited) for _ in range(min(CHUNK, args.held - start))])
            taken = await queue.backend.claim_task(ids[0], worker_id="holder", now=utcnow(), lease=LEASE)
            assert taken is not None
        for start in range(0, args.tasks, CHUNK):
            await queue.enqueue_many([Task(noop) for _ in range(min(CHUNK, args.tasks - start))])
        settle(url)
        backend, claimed, outcomes = queue.backend, 0, []
        began, cpu = time.perf_counter(), time.process_time()
        while True:
            now = utcnow()
            tasks = await backend.claim(
                worker_id="w", now=now, lease=LEASE, limit=batch, queues=["default"], outcomes=outcomes
            )
            if not tasks:
                break
            claimed += len(tasks)
            outcomes = [TaskOutcome(task.id, "w", TaskStatus.SUCCESS, now) for task in tasks]
            # (the last outcomes go unrecorded: the clock is about claims)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        assert claimed == args.tasks, f"claimed {claimed} of {args.tasks}: a held-back task was claimed"
    await drop(url)
    return elapsed / claimed * 1e6, cpu / claimed * 1e6


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, dict[str, list[list[float]]]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for batch in args.batch:
            runs = results.setdefault(str(batch), {"without": [], "held": []})
            for _ in range(args.repeat):
                for held in (False, True):
                    wall, cpu = await measure(args, Path(directory), held=held, batch=batch)
                    runs["held" if held else "without"].append([wall, cpu])
                    case = "held back" if held else "without"
                    print(f"batch {batch}, {case}: {wall:.1f} µs per task, {cpu:.1f} µs of CPU")
    settings = {key: value for key, value in vars(args).items() if key not in ("out", "dir")}
    return {"machine": machine(), "settings": settings, "results": results}


def report(data: dict[str, Any]) -> str:
    settings, machine_ = data["settings"], data["machine"]
    lines = [
        f"# Claims with tasks held back by a concurrency limit ({settings['backend']})",
        "",
        f"{machine_['cpu']}, {machine_['cores']} cores, {machine_['os']}, Python {machine_['python']}, "
        f"SQLite {machine_['sqlite']}; {machine_['date']}. Medians of {settings['repeat']} runs, each "
        f"claiming {settings['tasks']:,} free tasks; held back: {settings['held']:,} pending tasks of one "
        "key at its limit.",
        "",
        "| Claim | without held-back tasks | with held-back tasks | ratio | CPU without | CPU with | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for batch, runs in data["results"].items():
        wall, cpu = (
            [statistics.median(run[i] for run in runs[case]) for case in ("without", "held")] for i in (0, 1)
        )
        lines.append(
            f"| {batch} per claim | {wall[0]:.0f} µs/task | {wall[1]:.0f} µs/task | {wall[1] / wall[0]:.2f} "
            f"| {cpu[0]:.0f} µs/task | {cpu[1]:.0f} µs/task | {cpu[1] / cpu[0]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--tasks", type=int, default=2_000, help="free tasks claimed per measure (2,000)")
    parser.add_argument("--held", type=int, default=10_000, help="tasks held back (10,000)")
    parser.add_argument("--batch", default="1,10", help="tasks per claim, comma-separated (1,10)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measure (5)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SITQ_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--dir", default=None, help="where SQLite files go (the system's temporary dir)")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/limits[/postgres]")
    args = parser.parse_args()
    args.batch = [int(size) for size in args.batch.split(",")]
    out = args.out or BENCH / "results" / "limits" / ("postgres" if args.backend == "postgres" else "")
    data = asyncio.run(run(args))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "results.md").write_text(markdown := report(data))
    print(markdown)


if __name__ == "__main__":
    main()
