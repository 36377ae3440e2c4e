"""What a person sees: the command in a pseudo-terminal draws coloured rich tables, panels and a live
progress bar; piped, it writes the same words without escape codes."""

from __future__ import annotations

import re

from sitq_command import Sitq

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def visible(written: str) -> str:
    return ESCAPE.sub("", written).replace("\r", "")


def test_tables_are_coloured_in_a_terminal_and_plain_in_a_pipe(sitq: Sitq) -> None:
    good = sitq.enqueue("cli_tasks:add", "1", "2")
    bad = sitq.enqueue("cli_tasks:fail", "boom")
    sitq.ok("worker", "cli_tasks", "--burst")

    status, written = sitq.in_terminal("list", columns=140)
    assert status == 0
    assert re.search(r"\x1b\[[0-9;]*31m\s*failed", written), "a failed task is red"
    assert re.search(r"\x1b\[[0-9;]*32m\s*success", written), "a succeeded task is green"
    screen = visible(written)
    header = next(line for line in screen.splitlines() if " id " in f" {line} ")
    assert header.split() == ["id", "name", "status", "tries", "queue", "enqueued", "finished", "error"]
    assert "━━━━" in screen and good in screen and "RuntimeError: boom" in screen

    narrow = visible(sitq.in_terminal("list", columns=80)[1])
    assert all(len(line) <= 80 for line in narrow.splitlines()) and bad in narrow, narrow

    piped = sitq.ok("list")
    assert "\x1b[" not in piped and good in piped and "RuntimeError: boom" in piped


def test_show_draws_the_task_its_attempts_and_its_traceback(sitq: Sitq) -> None:
    bad = sitq.enqueue("cli_tasks:fail", "boom")
    sitq.ok("worker", "cli_tasks", "--burst")
    status, written = sitq.in_terminal("show", bad)
    screen = visible(written)
    assert status == 0
    assert f"╭─ task {bad}" in screen and "╭─ traceback" in screen
    assert re.search(r"│ status\s+failed", screen) and re.search(
        r"#\s+worker\s+started\s+took\s+outcome", screen
    )
    assert "\x1b[1;31mfailed" in written, "the status is bold red"


def test_stats_in_a_terminal_colours_each_status_heading(sitq: Sitq) -> None:
    sitq.enqueue("cli_tasks:add", "1", "2")
    sitq.enqueue("cli_tasks:add", "1", "2", "--queue", "other")
    status, written = sitq.in_terminal("stats", columns=80)
    screen = visible(written)
    assert status == 0 and "\x1b[1;33mpending" in written
    assert re.search(r"default\s+1\s+-\s+-\s+-\s+-\s+-\s+1", screen)
    assert re.search(r"all\s+2\s+0\s+0\s+0\s+0\s+0\s+2", screen)


def test_wait_draws_a_progress_bar_then_a_summary(sitq: Sitq) -> None:
    ids = [sitq.enqueue("cli_tasks:sleep", "0.3") for _ in range(3)]
    with sitq.worker("--concurrency", "1"):
        status, written = sitq.in_terminal("wait", *ids)
    screen = visible(written)
    assert status == 0, screen
    assert "waiting for 3 task(s)" in screen and "3/3" in screen and "━" in screen
    assert "\x1b[1;32m3 task(s): 3 of 3 finished (3 success); all succeeded" in written


def test_the_worker_logs_through_rich_in_a_terminal(sitq: Sitq) -> None:
    task_id = sitq.enqueue("cli_tasks:add", "1", "2")
    status, written = sitq.in_terminal("worker", "cli_tasks", "--burst", columns=200)
    screen = visible(written)
    assert status == 0
    assert re.search(rf"INFO\s+task {task_id} \(cli_tasks\.add\) succeeded in", screen), screen
