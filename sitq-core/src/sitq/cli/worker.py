"""`sitq worker`: import the user's module, then run a `Worker` until SIGINT/SIGTERM (or, with ``--burst``,
until nothing is due), logging one line per task outcome for the person watching. The module's functions
are registered as tasks, which the `json` serializer may then call.

The lines come from `OutcomeLog`, a lifecycle-hook observer handed to the worker like any plugin: the
command uses the same public hooks a third party would.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sitq.cli.connect import resolve_url
from sitq.cli.errors import ExitCode
from sitq.cli.inputs import import_module
from sitq.cli.output import Output
from sitq.cli.tables import seconds
from sitq.models import Limits
from sitq.registry import register_tasks
from sitq.worker import Worker

logger = logging.getLogger(__name__)


class OutcomeLog:
    """Logs each task's outcome in one line: successes, retries and cancellations at INFO, failures
    (time-outs included) at WARNING, so ``--log-level WARNING`` shows only what went wrong."""

    def __init__(self, url: str, queues: tuple[str, ...], processes: int | None = None) -> None:
        self.url = url
        self.queues = queues
        self.processes = processes

    def sitq_worker_started(self, worker_id: str, max_concurrency: int) -> None:
        logger.info(
            "worker %s started on %s, queues %s, up to %d task(s) at once%s",
            worker_id,
            self.url,
            ", ".join(self.queues),
            max_concurrency,
            f", in {self.processes} child process(es)" if self.processes else "",
        )

    def sitq_worker_stopped(self, worker_id: str) -> None:
        logger.info("worker %s stopped", worker_id)

    def sitq_task_started(self, task_id: str, task_name: str, queue: str, attempt: int) -> None:
        logger.debug("task %s started, attempt %d", _label(task_id, task_name, queue), attempt)

    def sitq_task_succeeded(self, task_id: str, task_name: str, queue: str, duration: float) -> None:
        logger.info("task %s succeeded in %s", _label(task_id, task_name, queue), seconds(duration))

    def sitq_task_failed(self, task_id: str, task_name: str, queue: str, duration: float, error: str) -> None:
        logger.warning(
            "task %s failed after %s: %s", _label(task_id, task_name, queue), seconds(duration), error
        )

    def sitq_task_retried(
        self, task_id: str, task_name: str, queue: str, attempt: int, delay: float, error: str
    ) -> None:
        logger.info(
            "task %s will retry in %s: attempt %d raised %s",
            _label(task_id, task_name, queue),
            seconds(delay),
            attempt,
            error,
        )

    def sitq_task_timed_out(self, task_id: str, task_name: str, queue: str, timeout: float) -> None:
        # Not an outcome of its own: a retried or failed line follows.
        logger.debug(
            "task %s ran past its timeout of %s", _label(task_id, task_name, queue), seconds(timeout)
        )

    def sitq_task_cancelled(self, task_id: str, task_name: str, queue: str, worker_id: str | None) -> None:
        logger.info("task %s cancelled", _label(task_id, task_name, queue))


def _label(task_id: str, task_name: str, queue: str) -> str:
    return f"{task_id} ({task_name})" if queue == "default" else f"{task_id} ({task_name}, queue {queue})"


def configure_logging(level: str, output: Output) -> None:
    """Log to stderr: through rich in a terminal, as plain timestamped lines in a file or a pipe."""
    handler: logging.Handler
    if output.err.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=output.err, show_path=False, markup=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    if logging.getLevelName(level) > logging.DEBUG:
        # The worker's own INFO lines repeat what OutcomeLog says; its warnings and errors still show.
        logging.getLogger("sitq.worker").setLevel(max(logging.WARNING, logging.getLevelName(level)))


async def worker(args: argparse.Namespace, output: Output) -> ExitCode:
    """Run a worker in the foreground; SIGINT or SIGTERM stops it gracefully (a second one at once, giving
    the running tasks back), and it then exits 0."""
    register_tasks(import_module(args.module))
    url, _ = resolve_url(args.url)
    queues = tuple(args.queue or ("default",))
    configure_logging(args.log_level, output)
    running = Worker(
        url,
        max_concurrency=args.concurrency,
        processes=args.processes,
        queues=queues,
        grace_period=args.grace_period,
        lease=args.lease,
        plugins=[OutcomeLog(url, queues, args.processes)],
        limits=Limits(result_bytes=args.result_bytes, error_chars=args.error_chars),
        accept=args.accept,
    )
    await running.run(burst=args.burst)
    return ExitCode.OK
