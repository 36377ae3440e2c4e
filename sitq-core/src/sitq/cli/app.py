"""The `sitq` command line: its arguments, and the one place that turns exceptions into exit codes.

argparse rather than click: it is in the standard library, so the ``cli`` extra adds only rich, and its
subcommands, help and usage errors (exit 2) are all this command needs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from sitq.cli import commands, schedules
from sitq.cli.errors import ExitCode, classify
from sitq.cli.inputs import DURATION_FORMS
from sitq.cli.output import Output
from sitq.cli.wait import wait
from sitq.cli.worker import worker
from sitq.models import Limits, TaskStatus

Handler = Callable[[argparse.Namespace, Output], Coroutine[Any, Any, ExitCode]]

_EPILOG = """\
The backend URL is --url, else $SITQ_URL, else sqlite:///sitq.db.

exit codes:
  0   done (wait: every task succeeded)
  1   the answer is no: a task did not succeed (wait), or could not be cancelled or requeued
  2   bad usage or input: unknown option, bad JSON, unknown module or function; or the cli extra is missing
  3   no task or workflow with that id, or no schedule of that name
  4   the backend cannot be used: bad URL, missing plugin, unreachable or unreadable database
  5   wait --timeout ran out first
  70  an unexpected error (--debug shows the traceback)
  130 interrupted (a worker stops gracefully on Ctrl-C and exits 0)
"""


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return number


def _seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, such as 30 or 0.5, not {text!r}")
    return number


_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def _size(text: str) -> int | None:
    """A size such as 1048576, 512K, 50M or 2G (binary units), or ``none`` for no limit."""
    if text.strip().lower() == "none":
        return None
    digits, unit = text.strip().upper().removesuffix("B"), ""
    if digits[-1:] in _SIZE_UNITS:
        digits, unit = digits[:-1], digits[-1]
    if not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 50M, 512K or 1048576, or none, not {text!r}"
        )
    return int(digits) * _SIZE_UNITS[unit]


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; docs/cli.md documents each, and a test keeps the two in step."""
    parser = argparse.ArgumentParser(
        prog="sitq",
        description="Run sitq workers, and inspect and administer sitq queues.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument(
        "--url", help="backend URL, before or after the command (default: $SITQ_URL, else sqlite:///sitq.db)"
    )
    subcommands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS, so that `sitq --debug COMMAND` is not undone by the subcommand's default.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    backend = argparse.ArgumentParser(add_help=False)
    # SUPPRESS here too: `sitq --url URL COMMAND` is kept unless the command is given its own.
    backend.add_argument(
        "--url", default=argparse.SUPPRESS, help="backend URL (default: $SITQ_URL, else sqlite:///sitq.db)"
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")

    def command(
        name: str, handler: Handler, summary: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(name, help=summary, description=summary, parents=[common, *parents])
        sub.set_defaults(handler=handler)
        return sub

    sub = command("worker", worker, "run a worker until SIGINT/SIGTERM (or --burst)", backend)
    sub.add_argument(
        "module", metavar="MODULE", help="your tasks' module (dotted, or a .py file), imported first"
    )
    sub.add_argument(
        "--queue", action="append", metavar="Q", help="a queue to serve; repeat for more (default: default)"
    )
    sub.add_argument(
        "--concurrency",
        type=_positive,
        metavar="N",
        help="tasks run at once (default: 10, or as many as --processes, which it cannot exceed)",
    )
    sub.add_argument(
        "--processes",
        type=_positive,
        metavar="N",
        help="run tasks in N child processes, one at a time each, instead of in the worker's own",
    )
    sub.add_argument("--burst", action="store_true", help="run what is due, then exit")
    sub.add_argument(
        "--accept",
        action="append",
        metavar="SERIALIZER",
        help="decode only tasks written by this serializer; repeat for more (default: any installed)",
    )
    sub.add_argument(
        "--grace-period",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, how long running tasks may finish before they are given back (default: 30)",
    )
    sub.add_argument(
        "--lease",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long a task stays reserved for this worker if it dies; renewed while it runs (default: 60)",
    )
    sub.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        metavar="L",
        help="DEBUG, INFO (default: one line per task outcome), WARNING or ERROR",
    )
    limits = Limits()
    for option, default, summary in (
        ("--result-bytes", limits.result_bytes, "the largest return value stored (default: 10M)"),
        ("--error-chars", limits.error_chars, "errors and tracebacks are cut to this (default: 64K)"),
    ):
        sub.add_argument(
            option, type=_size, default=default, metavar="SIZE", help=f"{summary}; none for no limit"
        )

    sub = command(
        "enqueue", commands.enqueue, "enqueue a call to module:function; print its task id", backend, as_json
    )
    sub.add_argument(
        "function", metavar="MODULE:FUNCTION", help="the task function, such as tasks:send_email"
    )
    sub.add_argument(
        "arguments",
        nargs="*",
        metavar="ARG",
        help="positional arguments: each is JSON if it parses (42, true, [1,2], '\"42\"'), else text",
    )
    sub.add_argument("--kwargs", metavar="JSON", help='keyword arguments as a JSON object: \'{"to": "ann"}\'')
    sub.add_argument(
        "--eta", metavar="WHEN", help="run no sooner than: a delay (30s, 5m, 2h) or an ISO datetime"
    )
    sub.add_argument(
        "--priority", type=int, metavar="N", help="higher runs first (default: the function's, else 0)"
    )
    sub.add_argument("--queue", metavar="Q", help="the queue (default: the function's, else default)")
    sub.add_argument(
        "--unique-key",
        metavar="KEY",
        help="store nothing, and print its id, if a task with KEY waits or runs",
    )
    sub.add_argument(
        "--unique-for",
        metavar="DURATION",
        help=f"with --unique-key, also a task with KEY that succeeded this long ago: {DURATION_FORMS}",
    )

    sub = command("list", commands.list_tasks, "list tasks, oldest first", backend, as_json)
    sub.add_argument(
        "--status",
        action="append",
        choices=[status.value for status in TaskStatus],
        metavar="S",
        help=f"only tasks in this status; repeat for more ({', '.join(TaskStatus)})",
    )
    sub.add_argument("--queue", metavar="Q", help="only tasks of this queue")
    sub.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N tasks (default: 50)")
    sub.add_argument(
        "--after", metavar="ID", help="start after this task id: the last one of the previous page"
    )

    sub = command(
        "show", commands.show, "show one task: options, times, attempts, traceback, result", backend, as_json
    )
    sub.add_argument("task_id", metavar="ID")

    command("stats", commands.stats, "count tasks by queue and status", backend, as_json)

    sub = command(
        "cancel", commands.cancel, "cancel a task (a running one is stopped by its worker)", backend, as_json
    )
    sub.add_argument("task_id", metavar="ID")

    sub = command(
        "requeue", commands.requeue, "run a failed, timed-out or cancelled task again", backend, as_json
    )
    sub.add_argument("task_id", metavar="ID")

    sub = command("purge", commands.purge, "delete tasks that finished long enough ago", backend, as_json)
    sub.add_argument(
        "--older-than", required=True, metavar="DURATION", help=f"how long ago: {DURATION_FORMS}"
    )
    sub.add_argument("--queue", metavar="Q", help="only tasks of this queue")

    command(
        "compact",
        commands.compact,
        "give the space of purged tasks and of the write-ahead log back to the file system",
        backend,
        as_json,
    )

    sub = command(
        "wait",
        wait,
        "wait for tasks or a workflow with a progress bar; exit 0 if all succeeded",
        backend,
        as_json,
    )
    sub.add_argument("task_ids", nargs="*", metavar="ID", help="the tasks to wait for")
    sub.add_argument("--workflow", metavar="ID", help="wait for every task of this workflow instead")
    sub.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long (exit 5)")

    sub = command(
        "schedule",
        schedules.list_schedules,
        "list (the default), add, pause, resume or remove periodic tasks",
        backend,
        as_json,
    )
    schedules.add_actions(sub, [common, backend, as_json])

    command("plugins", commands.plugins, "list installed plugins and what they provide", as_json)

    command(
        "info",
        commands.info,
        "show the backend: URL, schema version, durability, queue counts",
        backend,
        as_json,
    )
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sitq-core")
    except PackageNotFoundError:
        return "(not installed)"


def run(argv: Sequence[str]) -> int:
    """Run one command and return its exit status; errors become one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    output = Output(json_mode=getattr(args, "json", False))
    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args, output))
    except BrokenPipeError:
        # The reader went away (`sitq list | head`): nothing is wrong, and nothing more can be written.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except (Exception, KeyboardInterrupt) as exc:
        code, message = classify(exc)
        if args.debug:
            traceback.print_exception(exc)
        output.error(message)
        return code
