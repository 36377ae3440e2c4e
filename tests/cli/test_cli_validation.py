"""The `sitq` command checks what it is given as the Python API does: one line and exit 2, nothing stored."""

from __future__ import annotations

import pytest
from sitq_command import Sitq


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "--queue", " padded"), "queue must be a non-empty str of at most 200 printable characters"),
        (("list", "--queue", "tab\there"), "queue must be a non-empty str"),
        (("list", "--limit", "20000"), "limit must be a whole number >= 1 and <= 10000"),
        (("purge", "--older-than", "1d", "--queue", "a\nb"), "queue must be a non-empty str"),
        (("enqueue", "cli_tasks:add", "1", "--queue", "x" * 201), "queue must be a non-empty str"),
        (("enqueue", "cli_tasks:add", "1"), "the arguments do not fit cli_tasks.add(a: 'int', b: 'int')"),
        (("enqueue", "cli_tasks:add", "1", "2", "--kwargs", '{"c": 3}'), "unexpected keyword argument 'c'"),
        (
            ("worker", "cli_tasks", "--burst", "--queue", "new\nline"),
            "each of queues must be a non-empty str",
        ),
    ],
)
def test_bad_values_are_refused_in_one_line(sitq: Sitq, args: tuple[str, ...], message: str) -> None:
    assert message in sitq.fails(2, *args)
    assert sitq.json("list")["tasks"] == []


def test_a_worker_stores_results_up_to_its_result_bytes(sitq: Sitq) -> None:
    text = "x" * 2000
    task_id = sitq.enqueue("cli_tasks:echo", text)
    sitq.ok("worker", "cli_tasks", "--burst", "--result-bytes", "1K")
    failed = sitq.json("show", task_id)
    assert failed["status"] == "failed" and "result" not in failed
    assert failed["error"].startswith("PayloadTooLargeError: the task's return value is 2,0")
    assert "over the limit of 1,024 bytes" in failed["error"]

    sitq.ok("requeue", task_id)
    sitq.ok("worker", "cli_tasks", "--burst", "--result-bytes", "none", "--error-chars", "2K")
    assert sitq.json("show", task_id)["result"] == {"args": [text], "kwargs": {}}


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--result-bytes", "10X"), "expected a size such as 50M, 512K or 1048576, or none, not '10X'"),
        (("--result-bytes", "0"), "expected a size such as 50M"),
        (("--error-chars", "10"), "error_chars must be a whole number >= 1000"),
    ],
)
def test_a_bad_size_is_refused(sitq: Sitq, option: tuple[str, str], message: str) -> None:
    completed = sitq("worker", "cli_tasks", "--burst", *option)
    assert completed.returncode == 2 and message in completed.stderr, completed.stderr
