"""Process mode: a pool of child processes that run one task at a time each, so that a task that kills its
process (a signal, `os._exit`, a crash in native code) costs only its own attempt.

The worker keeps claiming, lease renewal, recording, hooks and keys. A child gets a task's call as its
serializer wrote it (verified by the worker) and that serializer's name, decodes and calls the task, and
sends back the encoded return value (which the worker seals) or the failure described in plain data: the
worker never unpickles the task's call nor anything the task made. Children are started with `spawn`
(forking a process that runs threads and an event loop is unsafe), each fed through its own pipe by a
thread of the worker, so that large calls and results never block the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import faulthandler
import functools
import inspect
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final

from sitq import registry
from sitq.codec import Codec, ParentResults, takes_parent_results
from sitq.errors import TaskCrashedError, WorkerError
from sitq.failures import FailedInChild, Failure
from sitq.models import RetryPolicy
from sitq.plugins import default_plugins
from sitq.secret import Redactor
from sitq.serializer import Serializer
from sitq.tasks import TaskContext, enter_task, reset_task

logger = logging.getLogger(__name__)

_READY: Final = "ready"
_CONTEXT = multiprocessing.get_context("spawn")
_JOIN_SECONDS = 5.0
"""How long a child that closed its pipe, or was asked to exit, gets to do so before it is killed."""
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_RESTART_BACKOFF = (1.0, 30.0)
"""First and longest wait between attempts to start a child that failed to start."""


@dataclass(frozen=True)
class Job:
    """One task, as the worker sends it to a child: plain data, and the task's call and its parents' results
    as their serializer wrote them (opened and verified by the worker, which alone holds the keys)."""

    payload: bytes
    serializer: str
    context: TaskContext
    retry: RetryPolicy
    parents: ParentResults = ()


# In the child


def serve(
    connection: Connection, serializer_class: type[Serializer], fault_path: str, tasks: registry.Known
) -> None:
    """A child's main function: run the jobs that come through `connection`, one at a time, until the
    worker closes it. `tasks` is what the worker knew as tasks when it started the child."""
    registry.inherit(tasks)
    # The worker decides when its children stop: a Ctrl-C in the terminal, or a SIGTERM sent to every
    # process of a service, must not kill the tasks that the worker lets finish within its grace period.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    _exit_with_parent()
    with open(fault_path, "w") as faults:
        # A crash in native code leaves the task's Python stack in the file, for the attempt's record.
        faulthandler.enable(faults, all_threads=False)
        codec = Codec(default_plugins(), serializer_class())
        with asyncio.Runner() as runner:
            try:
                connection.send(_READY)
                while True:
                    connection.send(_run(connection.recv(), codec, runner))
            except (EOFError, OSError):  # the worker closed the pipe, or is gone
                return


def _run(job: Job, codec: Codec, runner: asyncio.Runner) -> bytes | Failure:
    """Decode and call the task, async ones on the child's own loop; any exception fails the attempt,
    described with the task's secrets masked, before it leaves the child."""
    token = enter_task(job.context)
    redactor = Redactor()
    try:
        function, args, kwargs = codec.decode_call(job.context.task_id, job.payload, job.serializer)
        args, kwargs = redactor.unwrap(args, kwargs)
        if job.parents and takes_parent_results(function):
            kwargs = {**kwargs, "parent_results": codec.decode_parent_results(job.parents)}
        value = function(*args, **kwargs)
        if inspect.isawaitable(value):
            value = runner.run(_awaited(value), context=contextvars.copy_context())
        return codec.dump_value(value, job.serializer)
    except BaseException as exc:  # in a child of its own, even SystemExit is the task's failure
        return redactor.redact(Failure.of(exc, job.retry))
    finally:
        reset_task(token)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _exit_with_parent() -> None:
    """Exit as soon as the worker dies, even while a task runs: its lease ends and it runs elsewhere."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform == "linux":
        # The kernel kills the child when the worker's thread that started it ends, even while the task
        # holds the GIL, which the watching thread below would need.
        import ctypes  # only children need it

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:  # other systems, and a worker that died before prctl
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="sitq-parent-watch", daemon=True).start()


# In the worker


class Child:
    """The worker's handle on one child process."""

    def __init__(self, process: BaseProcess, connection: Connection, fault_path: str) -> None:
        self.process = process
        self._connection = connection
        self._fault_path = fault_path

    def wait_ready(self) -> int | None:
        """Block until the child is ready for jobs: None, or the exit code it died with instead."""
        try:
            if self._connection.recv() == _READY:
                return None
        except (EOFError, OSError):
            pass
        return self._reap()

    def exchange(self, job: Job) -> bytes | Failure | int | None:
        """Block while the child runs the job: its reply, or the exit code it died with instead."""
        try:
            self._connection.send(job)
            reply: bytes | Failure = self._connection.recv()
        except (EOFError, OSError):
            return self._reap()
        return reply

    def _reap(self) -> int | None:
        """The child's exit code, once it has exited; killed first if it is still alive after a while."""
        self.process.join(_JOIN_SECONDS)
        if not multiprocessing.connection.wait([self.process.sentinel], 0):  # alive, yet its pipe closed
            self.kill()
            self.process.join()
        # Starting a process makes multiprocessing poll every child, from the thread that starts it: that
        # poll may have collected this child's exit status and not yet stored it, leaving join() nothing
        # to collect. Its exit code is then a moment away.
        deadline = time.monotonic() + _JOIN_SECONDS
        while self.process.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.001)
        return self.process.exitcode

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # already gone, or already closed
            self.process.kill()

    def faults(self) -> str:
        """What faulthandler wrote when the child crashed: the task's Python stack down from where it
        crashed, without the frames of sitq and multiprocessing that called it; or ''."""
        try:
            with open(self._fault_path) as faults:
                text = faults.read()
        except OSError:
            return ""
        return text.split(f'  File "{__file__}"', 1)[0].strip()

    def finish(self) -> None:
        """Let go of a child that has exited: its pipe, its process object, its fault file."""
        self._connection.close()
        with contextlib.suppress(ValueError):  # still running: the finalizer closes it later
            self.process.close()
        with contextlib.suppress(OSError):
            os.unlink(self._fault_path)
        _LIVE.discard(self)

    def stop(self) -> None:
        """Ask an idle child to exit (its pipe closes), and kill it if it does not."""
        self._connection.close()
        self._reap()
        self.finish()


_LIVE: set[Child] = set()


@functools.cache
def _kill_leftovers_at_exit() -> None:
    # Registered after multiprocessing's own exit handler, so it runs first: that one would wait forever
    # for children that ignore SIGTERM and whose worker was never stopped.
    atexit.register(_kill_leftovers)


def _kill_leftovers() -> None:
    for child in list(_LIVE):
        child.kill()
        child.process.join()
        child.finish()


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, in words: "killed by SIGKILL (signal 9)", "exited with code 3"."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "a signal"
        return f"killed by {name} (signal {-exitcode})"
    return f"exited with code {exitcode}"


class ProcessPool:
    """`size` child processes, each running one job at a time; a child that dies is replaced."""

    def __init__(self, size: int, serializer: Serializer) -> None:
        self.size = size
        self._serializer_class = type(serializer)
        self._idle: asyncio.Queue[Child] = asyncio.Queue()
        self._children: set[Child] = set()
        self._starting: set[asyncio.Task[None]] = set()
        self._threads = ThreadPoolExecutor(2 * size, thread_name_prefix="sitq-child-pipe")
        self._closed = False

    async def start(self) -> None:
        """Start every child and wait until each is ready; `WorkerError` if one cannot start."""
        _kill_leftovers_at_exit()
        started = await asyncio.gather(*(self._start_child() for _ in range(self.size)))
        failed = [exitcode for child, exitcode in started if child is None]
        if failed:
            await self.close()
            raise WorkerError(
                f"the worker's child processes could not start ({describe_exit(failed[0])}); their error is "
                "on the worker's stderr. A script that starts a worker in process mode must do so under "
                "`if __name__ == '__main__':`, as children import the script again"
            )
        for child, _ in started:
            assert child is not None
            self._idle.put_nowait(child)

    async def _start_child(self) -> tuple[Child | None, int | None]:
        """A new child once it is ready, or None and the exit code it died with at start."""
        handle, fault_path = tempfile.mkstemp(prefix="sitq-child-", suffix=".faults")  # owner-only
        os.close(handle)
        ours, theirs = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=serve,
            args=(theirs, self._serializer_class, fault_path, registry.known()),
            name="sitq-task-process",
        )
        process.start()  # a millisecond; no await before the child is tracked, so none can lose it
        theirs.close()  # so that the child's death reads as the end of the pipe
        child = Child(process, ours, fault_path)
        _LIVE.add(child)
        waiting = self._threads.submit(child.wait_ready)
        try:
            exitcode = await asyncio.wrap_future(waiting)
        except asyncio.CancelledError:
            child.kill()
            await asyncio.wait([asyncio.wrap_future(waiting)])
            child.finish()
            raise
        if exitcode is not None or not child.process.is_alive():
            child.finish()
            return None, exitcode
        self._children.add(child)
        return child, None

    def _replace(self) -> None:
        if not self._closed:
            starting = asyncio.create_task(self._restart(), name="sitq-child-start")
            self._starting.add(starting)
            starting.add_done_callback(self._starting.discard)

    async def _restart(self) -> None:
        """Start a child in place of one that died, waiting longer after each failure to start."""
        wait, longest = _RESTART_BACKOFF
        while True:
            child, exitcode = await self._start_child()
            if child is not None:
                self._idle.put_nowait(child)
                return
            logger.error(
                "a child process of the worker could not start (%s; its error is on the worker's stderr); "
                "trying again in %ss",
                describe_exit(exitcode),
                wait,
            )
            await asyncio.sleep(wait)
            wait = min(wait * 2, longest)

    @contextlib.asynccontextmanager
    async def child(self) -> AsyncIterator[Child]:
        """A ready child for one job, waited for if none is idle; one that died is replaced after."""
        while not (child := await self._idle.get()).process.is_alive():
            self._gone(child)  # it died while idle, through no fault of the task
        try:
            yield child
        finally:
            if child.process.is_alive():
                self._idle.put_nowait(child)
            else:
                self._gone(child)

    def _gone(self, child: Child) -> None:
        self._children.discard(child)
        child.finish()
        self._replace()

    async def run(self, child: Child, job: Job) -> bytes:
        """The task's encoded return value; `FailedInChild` if it raised or its process died.

        Cancelled (a timeout, a cancellation, the end of a grace period), the child is killed with its task.
        """
        exchange = self._threads.submit(child.exchange, job)
        try:
            reply = await asyncio.wrap_future(exchange)
        except asyncio.CancelledError:
            child.kill()
            await asyncio.wait([asyncio.wrap_future(exchange)])
            raise
        if isinstance(reply, bytes):
            return reply
        if isinstance(reply, Failure):
            raise FailedInChild(reply)
        how = describe_exit(reply)
        logger.warning("child process %s died running a task (%s); starting another", child.process.pid, how)
        crash = TaskCrashedError(f"the process running the task died: {how}")
        error = f"{type(crash).__name__}: {crash}"
        faults = child.faults()
        raise FailedInChild(
            Failure(
                error=error,
                traceback=f"{error}\n\n{faults}\n" if faults else f"{error}\n",
                delay=None,
                retryable=job.retry.retries(crash),
            )
        )

    async def close(self) -> None:
        """Stop every child: idle ones exit as their pipes close; any still running a job are killed."""
        self._closed = True
        for starting in self._starting:
            starting.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        idle = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        for busy in self._children.difference(idle):
            busy.kill()  # the thread that feeds it sees its pipe end, and `child()` lets go of it
        self._children.difference_update(idle)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._threads, child.stop) for child in idle))
        self._threads.shutdown(wait=False)
