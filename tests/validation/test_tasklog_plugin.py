"""The example plugin examples/plugins/sitq-tasklog works: passed explicitly from its source tree, and,
where it is installed (tox installs it), found through its entry point with no `plugins=` argument."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from sitq import MemoryBackend, TaskQueue, Worker

TASKLOG_SRC = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "sitq-tasklog" / "src"


def divide(a: int, b: int) -> float:
    return a / b


@pytest.fixture
def tasklog(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """`sitq_tasklog.plugin`, importable from the source tree, with its counts at zero."""
    monkeypatch.syspath_prepend(str(TASKLOG_SRC))
    plugin = importlib.import_module("sitq_tasklog.plugin")
    counts = sys.modules["sitq_tasklog"].counts
    counts.clear()
    yield plugin
    counts.clear()


async def run_one_success_and_one_failure(queue: TaskQueue) -> tuple[str, str]:
    async with queue, Worker(queue, max_concurrency=2):
        ok = await queue.enqueue(divide, 1, 4)
        bad = await queue.enqueue(divide, 1, 0)
        assert (await queue.get_result(ok, timeout=10)) is not None
        assert (await queue.get_result(bad, timeout=10)) is not None
    return ok, bad


async def test_passed_explicitly_it_logs_each_outcome_and_counts_every_event(
    tasklog: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sitq_tasklog")
    ok, bad = await run_one_success_and_one_failure(TaskQueue(MemoryBackend(), plugins=[tasklog]))

    counts = sys.modules["sitq_tasklog"].counts
    assert dict(counts) == {
        "task_enqueued": 2,
        "worker_started": 1,
        "task_started": 2,
        "task_succeeded": 1,
        "task_failed": 1,
        "worker_stopped": 1,  # an async implementation: counted only if sitq awaited it
    }
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sitq_tasklog"]
    succeeded = [text for level, text in logged if level == "INFO" and text.startswith(f"task {ok} ")]
    failed = [text for level, text in logged if level == "WARNING" and text.startswith(f"task {bad} ")]
    assert len(succeeded) == 1 and " succeeded in " in succeeded[0] and "after waiting" in succeeded[0]
    assert len(failed) == 1 and failed[0].endswith("ZeroDivisionError: division by zero")
    assert any("Traceback (most recent call last)" in text for level, text in logged if level == "DEBUG")
    assert any("stopped; this process has seen 1 succeeded and 1 failed tasks" in text for _, text in logged)


def test_a_task_run_again_is_logged_with_its_attempt(
    tasklog: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sitq_tasklog")
    tasklog.sitq_task_started(task_id="t1", task_name="app.job", attempt=2, enqueued_at=datetime.now(UTC))
    tasklog.sitq_task_succeeded(task_id="t1", task_name="app.job", duration=0.5)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "task t1 (app.job) started again: attempt 2"
    assert messages[1].startswith("task t1 (app.job) succeeded in 0.500s after waiting ")


def test_without_logging_configured_it_writes_nothing(tasklog: ModuleType) -> None:
    handlers = logging.getLogger("sitq_tasklog").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


async def test_installed_it_is_found_through_its_entry_point(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue("require_tasklog_installed")  # in the test's body, so that CI reports a failure
    import sitq_tasklog
    import sitq_tasklog.plugin

    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="sitq") if ep.name == "tasklog"]
    assert entry_point.load() is sitq_tasklog.plugin
    assert entry_point.dist is not None and entry_point.dist.name == "sitq-tasklog"

    sitq_tasklog.counts.clear()
    caplog.set_level(logging.INFO, logger="sitq_tasklog")
    ok, bad = await run_one_success_and_one_failure(TaskQueue(MemoryBackend()))  # no plugins= argument

    assert sitq_tasklog.counts["task_succeeded"] == 1 and sitq_tasklog.counts["task_failed"] == 1
    messages = [record.getMessage() for record in caplog.records if record.name == "sitq_tasklog"]
    assert any(message.startswith(f"task {ok} ") for message in messages)
    assert any(message.startswith(f"task {bad} ") for message in messages)
    sitq_tasklog.counts.clear()
