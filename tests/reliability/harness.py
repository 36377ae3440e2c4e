"""The reliability suite's harness: backends to run on, worker processes, signals, and the execution ledger.

A reliability test runs sitq as production does, in processes of its own, does something hostile to them
(SIGKILL, SIGSTOP, SIGTERM, a task that kills its process), and then checks two records against each
other: what the store says (through the public `TaskQueue` API) and what really ran, from a ledger that
sitq never touches.

- `BACKENDS` names every backend the suite runs on; the `backend` fixture (conftest.py) is parametrized
  over it, so every test that takes it runs once per backend. A backend author adds one entry: a context
  manager that makes a fresh, empty store in a directory, yields its `BackendUnderTest` (URL and integrity
  check) and removes the store afterwards.
- `Ledger` (fixture `ledger`) is an append-only file. The task functions of `reliability.tasks` take its
  path as their first argument and append one line as they start and one as they end, each in a single
  `O_APPEND` write: ``start|end KEY ATTEMPT PID``. `Ledger.executions()` pairs them up: per task key, every
  execution in order, with its attempt, its process, and whether it ran to the end or was cut off.
- `Fleet` (fixture `fleet`) starts worker processes (``python -m reliability.worker``: a `sitq.Worker`
  with a short lease, so that a dead worker's tasks are taken over within seconds) and producer processes
  (``python -m reliability.producer``), sends them signals, remembers which pids it killed, and kills
  whatever is left when the test ends, pass or fail. Their output goes to files in the test's directory
  and is quoted when a wait fails.
- `eventually()` and `settle()` wait with generous deadlines, and fail at once, saying why, if a worker
  that must stay up exits.

The folder has no `__init__.py`: with tests/ on the path (pytest's `pythonpath`, and PYTHONPATH in the
processes the fleet starts) it imports as the namespace package `reliability`, so a worker process finds
`reliability.tasks` by the same name as the test that enqueued its functions, while the test modules
keep their plain names.

A test that uses them::

    async def test_something(backend, fleet, ledger, queue):
        worker = fleet.start_worker()
        task_id = await queue.enqueue(work, str(ledger), "a", 0.5)
        tasks = await settle(queue, alive=[worker])
        assert [e.completed for e in ledger.executions()["a"]] == [True]
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import postgres_server

from sitq import TaskInfo, TaskQueue, TaskStatus

TESTS = Path(__file__).resolve().parent.parent
LEASE = 3.0
"""The workers' lease in seconds: a dead worker's tasks are taken over this long after its last renewal."""
DEADLINE = 120.0
"""How long any wait may take on a loaded two-core machine before the test fails."""


# Backends


@dataclass(frozen=True)
class BackendUnderTest:
    name: str
    url: str
    integrity_problems: Callable[[], list[str]]
    """What the backend's own consistency check finds wrong with the store; empty when it is sound."""


@contextlib.contextmanager
def sqlite_backend(directory: Path) -> Iterator[BackendUnderTest]:
    path = directory / "tasks.db"

    def integrity_problems() -> list[str]:
        with contextlib.closing(sqlite3.connect(path)) as db:
            found = [row[0] for row in db.execute("PRAGMA integrity_check")]
        return [] if found == ["ok"] else found

    yield BackendUnderTest("sqlite", f"sqlite:///{path}", integrity_problems)


# Each check names what would be wrong, and selects the ids of the tasks it is wrong for. `{s}` is the schema.
_POSTGRES_CHECKS = {
    "unknown status": "SELECT id FROM {s}.tasks WHERE status NOT IN"
    " ('pending', 'in_progress', 'success', 'failed', 'cancelled', 'timeout')",
    "in progress without a worker, a start, a lease or an attempt": "SELECT id FROM {s}.tasks"
    " WHERE status = 'in_progress'"
    " AND (worker_id IS NULL OR started_at IS NULL OR lease_expires_at IS NULL OR attempts < 1)",
    "not in progress, yet held by a worker or asked to cancel": "SELECT id FROM {s}.tasks"
    " WHERE status <> 'in_progress' AND (worker_id IS NOT NULL OR lease_expires_at IS NOT NULL"
    " OR cancel_requested)",
    "finished without finished_at, or unfinished with one": "SELECT id FROM {s}.tasks"
    " WHERE (status IN ('success', 'failed', 'cancelled', 'timeout')) <> (finished_at IS NOT NULL)",
    "more attempts than allowed, or pending with none left": "SELECT id FROM {s}.tasks"
    " WHERE attempts > max_attempts OR (status = 'pending' AND attempts >= max_attempts)",
    "pending with a wrong count of unmet parents": "SELECT id FROM {s}.tasks AS child"
    " WHERE status = 'pending' AND unmet <> (SELECT count(*) FROM {s}.dependencies"
    " JOIN {s}.tasks AS parent ON parent.seq = dependencies.parent_seq"
    " WHERE dependencies.task_seq = child.seq AND parent.status <> 'success')",
    "pending though a parent ended without success": "SELECT child.id FROM {s}.tasks AS child"
    " JOIN {s}.dependencies ON dependencies.task_seq = child.seq"
    " JOIN {s}.tasks AS parent ON parent.seq = dependencies.parent_seq"
    " WHERE child.status = 'pending' AND parent.status IN ('failed', 'cancelled', 'timeout')",
    "depending on a parent it does not name": "SELECT child.id FROM {s}.dependencies"
    " JOIN {s}.tasks AS child ON child.seq = dependencies.task_seq"
    " JOIN {s}.tasks AS parent ON parent.seq = dependencies.parent_seq"
    " WHERE NOT coalesce(child.depends_on ? parent.id, false)",
    # Every attempt that ended has a history row (a requeue counts attempts from zero again, the rows stay).
    "an ended attempt missing from the history": "SELECT id FROM {s}.tasks"
    " WHERE attempts - (status = 'in_progress')::int"
    " > (SELECT count(*) FROM {s}.attempts WHERE attempts.task_seq = tasks.seq)",
    # A late outcome of an attempt whose lease was taken over must be refused, not recorded a second time.
    "an attempt that ended twice": "SELECT DISTINCT tasks.id FROM {s}.attempts"
    " JOIN {s}.tasks ON tasks.seq = attempts.task_seq"
    " GROUP BY tasks.id, attempts.attempt, attempts.worker_id, attempts.started_at HAVING count(*) > 1",
}


async def _postgres_problems(server: str, schema: str) -> list[str]:
    found = []
    for problem, query in _POSTGRES_CHECKS.items():
        rows = await postgres_server.execute(query.replace("{s}", f'"{schema}"'), url=server)
        if rows:
            found.append(f"{len(rows)} task(s) {problem}: {', '.join(row[0] for row in rows[:5])}")
    return found


@contextlib.contextmanager
def postgres_backend(directory: Path) -> Iterator[BackendUnderTest]:
    """A fresh schema of the test server (skipping without one, see `postgres_server`); its integrity
    check is what the backend's schema implies about a store at rest: leases only on running tasks,
    finished times only on finished ones, dependency counters that match the edges, one history row per
    ended attempt."""
    server = postgres_server.require_server()
    with postgres_server.fresh_schema() as schema:
        yield BackendUnderTest(
            "postgres",
            postgres_server.with_options(server, schema=schema),
            lambda: postgres_server.run(_postgres_problems(server, schema)),
        )


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[BackendUnderTest]]] = {
    "postgres": postgres_backend,
    "sqlite": sqlite_backend,
}
"""Every backend the suite runs on, by name: a fresh, empty store in the given directory."""


# The ledger


@dataclass(frozen=True)
class Execution:
    """One run of a task's function, as the ledger saw it."""

    key: str
    attempt: int
    pid: int
    completed: bool
    """False if the run was cut off: it wrote its start line but never its end line."""


class Ledger:
    """The execution ledger: an append-only file kept outside sitq, written by `reliability.tasks`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def executions(self) -> dict[str, list[Execution]]:
        """Every execution of every task key, in the order they started."""
        if not self.path.exists():
            return {}
        started: dict[tuple[str, int, int], None] = {}  # a set that keeps the order
        ended: set[tuple[str, int, int]] = set()
        for line in self.path.read_text().splitlines():
            event, key, attempt, pid = line.split()
            run = (key, int(attempt), int(pid))
            if event == "start":
                started[run] = None
            else:
                assert event == "end" and run in started, f"an end without a start in the ledger: {line}"
                ended.add(run)
        by_key: dict[str, list[Execution]] = {}
        for run in started:
            by_key.setdefault(run[0], []).append(Execution(*run, completed=run in ended))
        return by_key

    def of(self, key: str) -> list[Execution]:
        return self.executions().get(key, [])


# Processes


@dataclass
class Child:
    """A process the fleet started. Its output goes to files: a pipe nobody reads could fill and block it."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def send(self, signum: signal.Signals) -> None:
        self.popen.send_signal(signum)

    async def exit_code(self, timeout: float = DEADLINE) -> int:
        """Wait for the process to exit, without blocking the test's event loop."""
        try:
            return await asyncio.to_thread(self.popen.wait, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.describe()}\ndid not exit within {timeout}s") from None

    def output(self) -> str:
        return self.stdout.read_text()

    def errors(self) -> str:
        return self.stderr.read_text()

    def leftovers(self) -> list[int]:
        """The live processes (zombies aside) of this one's process group: its children, if it has any,
        and itself while it runs. Read from /proc, so on Linux only."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):  # the process has exited since the listing
                pid, fields = stat.read_text().split(" (", 1)
                state, _, group = fields.rsplit(") ", 1)[1].split()[:3]
                if int(group) == self.pid and state != "Z":
                    found.append(int(pid))
        return found

    def describe(self) -> str:
        code = self.popen.poll()
        state = "running" if code is None else f"exited with {code}"
        return f"{self.name} (pid {self.pid}, {state}), stderr:\n{self.errors()[-3000:]}"


class Fleet:
    """Worker and producer processes on one backend, and the signals sent to them."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory
        self.children: list[Child] = []
        self.killed: set[int] = set()
        """The pids this fleet killed with SIGKILL."""

    def start_worker(
        self,
        *,
        concurrency: int | None = 4,
        lease: float = LEASE,
        grace_period: float = 30.0,
        poll_interval: float = 0.2,
        processes: int | None = None,
    ) -> Child:
        """Start ``python -m reliability.worker``: a `sitq.Worker` with these options (`concurrency` is its
        `max_concurrency`; None leaves it and `processes` to the Worker's defaults)."""
        options = [f"--lease={lease}", f"--grace-period={grace_period}", f"--poll-interval={poll_interval}"]
        if concurrency is not None:
            options.append(f"--concurrency={concurrency}")
        if processes is not None:
            options.append(f"--processes={processes}")
        return self._start("worker", self.url, *options)

    def start_producer(self, *args: str) -> Child:
        """Start ``python -m reliability.producer`` with this URL and `args` (see its module)."""
        return self._start("producer", self.url, *args)

    async def kill(self, child: Child) -> None:
        """SIGKILL, as the OOM killer or a power cut would, and wait until the process is gone."""
        child.send(signal.SIGKILL)
        self.killed.add(child.pid)
        await child.exit_code()

    async def stop(self, child: Child) -> int:
        """SIGTERM, then wait for the graceful stop; return the exit status."""
        child.send(signal.SIGTERM)
        return await child.exit_code()

    def workers(self) -> list[Child]:
        return [child for child in self.children if child.name.startswith("worker")]

    def close(self) -> None:
        """Kill whatever is still running (stopped ones too), with its own children, so that no test
        leaves a process behind."""
        for child in self.children:
            if child.running:
                child.popen.kill()
            child.popen.wait()
            if child.leftovers():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)

    def _start(self, program: str, *args: str) -> Child:
        name = f"{program}-{len(self.children)}"
        stdout, stderr = self.directory / f"{name}.out", self.directory / f"{name}.err"
        env = {**os.environ, "PYTHONPATH": str(TESTS)}
        with stdout.open("wb") as out, stderr.open("wb") as err:
            popen = subprocess.Popen(
                [sys.executable, "-m", f"reliability.{program}", *args],
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # a process group of its own, with whatever children it starts
            )
        child = Child(name, popen, stdout, stderr)
        self.children.append(child)
        return child


# Waiting


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    timeout: float = DEADLINE,
    alive: Iterable[Child] = (),
) -> None:
    """Wait until `condition()` holds; fail if it does not within `timeout`, or if one of the `alive`
    processes exits first (quoting its stderr)."""
    alive = list(alive)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        for child in alive:
            if not child.running:
                raise AssertionError(f"waiting until {what}, {child.describe()}")
        if loop.time() > deadline:
            running = "\n".join(child.describe() for child in alive)
            raise AssertionError(f"still not {what} after {timeout}s\n{running}")
        await asyncio.sleep(0.05)


async def settle(
    queue: TaskQueue, *, timeout: float = DEADLINE, alive: Iterable[Child] = ()
) -> dict[str, TaskInfo]:
    """Wait until no task is pending or in progress; return every task by id."""

    async def settled() -> bool:
        by_queue = await queue.stats()
        return all(status.is_finished for counts in by_queue.values() for status, n in counts.items() if n)

    await eventually(settled, "every task has finished", timeout=timeout, alive=alive)
    tasks: dict[str, TaskInfo] = {}
    while page := await queue.list_tasks(limit=500, after=next(reversed(tasks), None)):
        tasks.update((info.id, info) for info in page)
    return tasks


async def started(ledger: Ledger, *keys: str, alive: Iterable[Child] = ()) -> None:
    """Wait until every task key has an execution in the ledger."""
    await eventually(
        lambda: all(key in ledger.executions() for key in keys), f"{', '.join(keys)} started", alive=alive
    )


def worker_pid(worker_id: str) -> int:
    """The process id in a worker id (``host:pid:random``)."""
    return int(worker_id.rsplit(":", 2)[1])


def statuses(tasks: Iterable[TaskInfo]) -> dict[TaskStatus, int]:
    counts: dict[TaskStatus, int] = {}
    for info in tasks:
        counts[info.status] = counts.get(info.status, 0) + 1
    return counts
