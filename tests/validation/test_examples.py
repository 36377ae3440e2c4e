"""Every program in examples/basic runs on its own, exits 0, and prints what its docstring promises; and
does the same on a fresh PostgreSQL schema, its `SQLiteBackend(database)` replaced by that schema's URL
(`programs.on_postgres`): outgrowing one machine is meant to change one URL and no other code."""

import re
import subprocess
from pathlib import Path

import pytest
from programs import on_postgres, run_program

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "basic"

# What each example must print: enough to show it did its job, not so much that wording changes break it.
EXPECTED_OUTPUT = {
    "01_end_to_end.py": [
        "worker started",
        "success, value 'Hello, World!'",
        "success, value 'Hello, sitq!'",
        "success, value 6",
        "worker stopped",
    ],
    "02_eta_delayed_execution.py": ["naive eta refused: eta must be timezone-aware", "'in 1.5 seconds'"],
    "03_bounded_concurrency.py": [
        "max_concurrency=1: 8 tasks",
        "at most 1 running at once",
        "at most 2 running at once",
        "at most 8 running at once",
    ],
    "04_failures_and_tracebacks.py": [
        "good price: status=success is_error=False",
        "bad price: status=failed is_error=True",
        "error: ValueError: could not convert string to float: 'twelve'",
        "error: ValueError: cannot charge -5 to acct-1",
        "error: SerializationError: ",
        'raise ValueError(f"cannot charge {amount} to {account}")',
        "unwrap() raised TaskExecutionError",
        "get_result() raised TaskNotFoundError",
        "value: 'charged 5 to acct-1'",
    ],
    "05_sync_client_with_worker.py": [
        "worker running in a background thread",
        "success: photo-2.jpg resized to 320px",
        "success: thumbnail of photo-0.jpg",
        "worker stopped",
    ],
    "06_retries_and_timeouts.py": [
        "fetch_rates: attempt 1 failed (ConnectionError: rates service unreachable on attempt 1); "
        "retried in 0.1s",
        "fetch_rates: attempt 2 failed (ConnectionError: rates service unreachable on attempt 2); "
        "retried in 0.2s",
        "fetch_rates: success, value 'EUR rates fetched on attempt 3'",
        "attempt 1: failed ConnectionError: rates service unreachable on attempt 1",
        "attempt 3: success",
        "build_report: attempt 1 timed out after 0.2s",
        "build_report: status timeout, error TaskTimeoutError: the attempt ran longer than its 0.2s timeout",
        "send_digest: attempt 1 failed (Retry: the mail server said: try again later); retried in 0.2s",
        "send_digest: success, value 'digest sent to ops@example.com on attempt 2 of 2'",
        "outcomes: ['failed', 'success']",
    ],
    "07_cancellation.py": [
        "send_reminder cancelled by the caller of cancel()",
        "cancel(reminder) returned cancelled",
        "reminder: status cancelled, attempts 0",
        "cancel(job) returned in_progress",
        "crawl: cancelled after",
        "crawl cancelled by its worker",
        "crawl: status cancelled, error TaskCancelledError: cancelled on request while running",
        "cancel(done) returned success",
        "cancel('no-such-task') raised TaskNotFoundError",
    ],
    "08_workflow.py": [
        "with 5 tasks",
        "archive: notified: 3 rows processed | report: 3 rows, largest 3",
        "finished: True, succeeded: True",
    ],
    "09_unique_tasks.py": [
        "three requests, one task: True",
        "first run: charged 500 cents to acct-1",
        "retry after success: same task True, value 'charged 500 cents to acct-1'",
        "the charge ran 1 time(s) for 4 requests",
        "after a failure (ValueError: cannot charge 0 cents): new task True",
        "one batch, one key twice: True",
        "stored key 'nightly-acct-3', unique_for 3600.0s",
    ],
    "10_periodic_tasks.py": [
        "nightly-report: next run 02:30 Europe/Paris",
        "fired at its tick: 1 task, due 02:30",
        "fired again for the same tick: 0 tasks",
        "result: 'sales report for emea'",
        "fired while paused: 0",
        "after three days down: 1 task(s) enqueued",
        "left: ['nightly-report']",
    ],
    "11_limits.py": [
        "key 'tenant-7', limit 2",
        "tenant 7: 6 reports, at most 2 at once",
        "tenant 8: 6 reports, at most 2 at once",
        "the third partner call waited for the window: True",
        'refused: rate_limit must be a sitq.RateLimit or a rate such as "10/s", "100/m"',
    ],
    "api_demo.py": [
        "sitq.TaskQueue",
        "SQLiteBackend(path",
        "sqlite ",
        "value=42",
        "value=100",
        "returns None",
    ],
}


def run_example(name: str, cwd: Path, postgres: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the example as it is or, given a URL, on that PostgreSQL schema instead of SQLite."""
    if postgres is None:
        return run_program(EXAMPLES / name, cwd)
    script = cwd.parent / f"postgres_{name}"  # outside cwd, which the example must leave empty
    script.write_text(on_postgres((EXAMPLES / name).read_text(), postgres))
    return run_program(script, cwd, env={"SITQ_URL": postgres})


def test_every_example_is_checked() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs(name: str, tmp_path: Path, postgres: str | None) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    completed = run_example(name, cwd, postgres)
    report = (
        f"{name} exited {completed.returncode}\n"
        f"--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    )
    assert completed.returncode == 0, report
    assert "Traceback" not in completed.stderr, report
    for expected in EXPECTED_OUTPUT[name]:
        assert expected in completed.stdout, f"expected {expected!r} in the output of {report}"
    assert list(cwd.iterdir()) == [], f"{name} left files in its working directory"


def test_eta_example_never_starts_a_task_early(tmp_path: Path) -> None:
    completed = run_example("02_eta_delayed_execution.py", tmp_path)
    assert completed.returncode == 0, completed.stderr
    started = {
        match["value"]: float(match["seconds"])
        for match in re.finditer(r"'(?P<value>[^']+)'\s+started after (?P<seconds>[\d.]+)s", completed.stdout)
    }
    assert started["in 0.5 seconds"] >= 0.5
    assert started["in 1 second, given in UTC+9"] >= 1.0
    assert started["in 1.5 seconds"] >= 1.5
    assert started["right away"] < 1.0 and started["an hour late"] < 1.0
