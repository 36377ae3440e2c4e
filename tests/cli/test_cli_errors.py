"""Every kind of bad input gets one clear line on stderr and an exit code that names its kind, never a
traceback unless --debug asks for one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitq_command import Sitq

USAGE, NOT_FOUND, BACKEND = 2, 3, 4


@pytest.mark.parametrize("command", [["enqueue", "no_such_module:f"], ["worker", "no_such_module"]])
def test_an_unknown_module(sitq: Sitq, command: list[str]) -> None:
    line = sitq.fails(USAGE, *command)
    assert "cannot import 'no_such_module': no module named 'no_such_module'" in line


def test_a_module_that_fails_to_import_says_why(sitq: Sitq) -> None:
    (sitq.cwd / "broken.py").write_text("raise ValueError('TOKEN is not set')\n")
    (sitq.cwd / "needy.py").write_text("import some_missing_dependency\n")
    line = sitq.fails(USAGE, "worker", "broken")
    assert line.endswith("importing 'broken' raised ValueError: TOKEN is not set")
    assert "No module named 'some_missing_dependency'" in sitq.fails(USAGE, "enqueue", "needy:f")
    debug = sitq("--debug", "worker", "broken")
    assert debug.returncode == USAGE
    assert (
        "Traceback (most recent call last)" in debug.stderr and "ValueError: TOKEN is not set" in debug.stderr
    )


def test_a_function_that_is_not_there(sitq: Sitq) -> None:
    assert "module 'cli_tasks' has no function 'nope'" in sitq.fails(USAGE, "enqueue", "cli_tasks:nope")
    assert "is a int, not a function" in sitq.fails(USAGE, "enqueue", "cli_tasks:NOT_A_FUNCTION")
    assert "as module:function" in sitq.fails(USAGE, "enqueue", "cli_tasks.add")


def test_bad_json_and_times(sitq: Sitq) -> None:
    assert "--kwargs is not valid JSON" in sitq.fails(USAGE, "enqueue", "cli_tasks:add", "--kwargs", "{a: 1}")
    assert "takes a JSON object" in sitq.fails(USAGE, "enqueue", "cli_tasks:add", "--kwargs", "[1, 2]")
    assert "--eta takes a delay" in sitq.fails(USAGE, "enqueue", "cli_tasks:add", "--eta", "tomorrow")
    assert "--older-than takes a number and a unit" in sitq.fails(USAGE, "purge", "--older-than", "7")
    assert sitq.json("stats") == {}, "nothing was enqueued by the failed commands"


def test_usage_errors_exit_2_with_argparse_help(sitq: Sitq) -> None:
    for command in (["list", "--status", "done"], ["list", "--limit", "0"], ["frobnicate"], ["purge"]):
        completed = sitq(*command)
        assert completed.returncode == USAGE and "usage: sitq" in completed.stderr, command
    bare = sitq()
    assert bare.returncode == USAGE and "commands:" in bare.stderr and "exit codes:" in bare.stderr
    assert "task ids, or --workflow ID" in sitq.fails(USAGE, "wait")


def test_an_unknown_task_or_workflow_id(sitq: Sitq) -> None:
    for command in ("show", "cancel", "requeue", "wait"):
        assert "no task with id 'missing'" in sitq.fails(NOT_FOUND, command, "missing")
    sitq.fails(NOT_FOUND, "wait", "--workflow", "missing")
    debug = sitq("show", "missing", "--debug")
    assert debug.returncode == NOT_FOUND and "TaskNotFoundError" in debug.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["info"],
        ["list"],
        ["show", "x"],
        ["enqueue", "cli_tasks:add", "1", "2"],
        ["worker", "cli_tasks"],
    ],
)
def test_an_unreachable_database(sitq: Sitq, tmp_path: Path, command: list[str]) -> None:
    line = sitq.fails(BACKEND, *command, "--url", f"sqlite:///{tmp_path / 'no-such-dir' / 'tasks.db'}")
    assert "no-such-dir" in line


def test_a_file_that_is_not_a_database(sitq: Sitq, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database, " * 100)
    assert "is not a SQLite database" in sitq.fails(
        BACKEND, "stats", "--url", f"sqlite:///{tmp_path / 'notes.txt'}"
    )


def test_a_bad_url(sitq: Sitq) -> None:
    assert "no installed backend serves the URL 'redis://localhost'" in sitq.fails(
        BACKEND, "stats", "--url", "redis://localhost"
    )
    assert "a SQLite URL is" in sitq.fails(BACKEND, "list", "--url", "sqlite://tasks.db")
    assert "a memory URL is" in sitq.fails(BACKEND, "info", SITQ_URL="memory://x/y")
