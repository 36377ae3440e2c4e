"""The command against a SQLite file shared by processes: a worker in the background, and enqueueing and
inspecting from other `sitq` processes, as on a real machine."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cli_tasks
from sitq_command import BackgroundWorker, Sitq

from sitq import TaskQueue, Workflow
from sitq_sqlite.schema import MIGRATIONS


def test_a_background_worker_runs_what_other_processes_enqueue(sitq: Sitq) -> None:
    with sitq.worker() as worker:
        good = sitq.enqueue("cli_tasks:add", "2", "3")
        bad = sitq.enqueue("cli_tasks:fail", "boom")
        waited = sitq("wait", good, bad)
        assert waited.returncode == 1, waited.stderr
        assert "not all succeeded" in waited.stdout
        assert sitq("wait", good).returncode == 0
        shown = sitq.json("show", good)
        failed = sitq.json("show", bad)
        human = sitq.ok("show", bad)
    assert worker.stop() == 0
    assert (shown["status"], shown["result"], shown["name"]) == ("success", 5, "cli_tasks.add")
    assert (failed["status"], failed["error"]) == ("failed", "RuntimeError: boom")
    assert "raise RuntimeError(message)" in failed["traceback"]
    assert [attempt["outcome"] for attempt in failed["history"]] == ["failed"]
    for expected in ("Traceback (most recent call last)", "RuntimeError: boom", "attempts", "failed"):
        assert expected in human
    # One line per outcome, in the command's own words (the installed tasklog plugin may add its own).
    log = worker.log.splitlines()
    assert (
        sum(
            bool(re.search(rf"task {good} \(cli_tasks\.add\) succeeded in [\d.]+ m?s$", line)) for line in log
        )
        == 1
    )
    failures = [line for line in log if f"task {bad} (cli_tasks.fail) failed after" in line]
    assert len(failures) == 1 and failures[0].endswith(": RuntimeError: boom") and "WARNING" in failures[0]
    assert any(re.search(r"worker \S+ stopped$", line) for line in log)


def test_worker_burst_runs_what_is_due_and_leaves_later_and_other_queues(sitq: Sitq) -> None:
    now = sitq.enqueue("cli_tasks:add", "1", "1")
    later = sitq.enqueue("cli_tasks:add", "1", "2", "--eta", "1h")
    elsewhere = sitq.enqueue("cli_tasks:add", "1", "3", "--queue", "reports")
    burst = sitq("worker", "cli_tasks", "--burst")
    assert burst.returncode == 0, burst.stderr
    assert f"task {now} (cli_tasks.add) succeeded" in burst.stderr
    statuses = {task["id"]: task["status"] for task in sitq.json("list")["tasks"]}
    assert statuses == {now: "success", later: "pending", elsewhere: "pending"}
    reports = sitq("worker", "cli_tasks", "--burst", "--queue", "reports", "--queue", "default")
    assert f"task {elsewhere} (cli_tasks.add, queue reports) succeeded" in reports.stderr
    assert sitq("worker", "cli_tasks", "--burst", "--log-level", "warning").stderr == ""


def test_arguments_are_json_when_they_parse_and_text_otherwise(sitq: Sitq) -> None:
    task_id = sitq.enqueue(
        "cli_tasks:echo", "1", '"1"', "hello", "[1, 2]", "null", "true", '{"a": 1}', "--kwargs", '{"x": [1]}'
    )
    sitq.ok("worker", "cli_tasks", "--burst")
    assert sitq.json("show", task_id)["result"] == {
        "args": [1, "1", "hello", [1, 2], None, True, {"a": 1}],
        "kwargs": {"x": [1]},
    }


def test_enqueue_options_set_queue_priority_and_eta(sitq: Sitq) -> None:
    before = datetime.now(UTC)
    relative = sitq.json(
        "enqueue", "cli_tasks:add", "1", "2", "--queue", "reports", "--priority", "5", "--eta", "2h"
    )
    assert (relative["options"]["queue"], relative["options"]["priority"], relative["status"]) == (
        "reports",
        5,
        "pending",
    )
    eta = datetime.fromisoformat(relative["eta"])
    assert before + timedelta(hours=2) <= eta <= datetime.now(UTC) + timedelta(hours=2)
    exact = sitq.json("enqueue", "cli_tasks:add", "1", "2", "--eta", "2030-01-02T03:04:05+00:00")
    assert datetime.fromisoformat(exact["eta"]) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    local = sitq.json("enqueue", "cli_tasks:add", "1", "2", "--eta", "2030-01-02T03:04:05")
    assert datetime.fromisoformat(local["eta"]) == datetime(2030, 1, 2, 3, 4, 5).astimezone()


def test_list_filters_and_pages_with_a_cursor(sitq: Sitq) -> None:
    ids = [sitq.enqueue("cli_tasks:add", str(n), "0") for n in range(3)]
    other = sitq.enqueue("cli_tasks:add", "9", "0", "--queue", "other")
    first = sitq.json("list", "--limit", "2")
    assert [task["id"] for task in first["tasks"]] == ids[:2] and first["next_after"] == ids[1]
    rest = sitq.json("list", "--limit", "2", "--after", first["next_after"])
    assert [task["id"] for task in rest["tasks"]] == [ids[2], other]
    assert [task["id"] for task in sitq.json("list", "--queue", "other")["tasks"]] == [other]
    assert sitq.json("list", "--status", "failed", "--status", "success")["tasks"] == []
    human = sitq("list", "--limit", "2")
    assert ids[0] in human.stdout and f"sitq list --after {ids[1]}" in human.stderr


def test_stats_requeue_and_purge(sitq: Sitq) -> None:
    broken = sitq.enqueue("cli_tasks:fail", "disk full")
    sitq.ok("worker", "cli_tasks", "--burst")
    assert sitq.json("stats") == {"default": {"failed": 1}}
    assert "failed" in sitq.ok("stats")
    assert sitq.json("requeue", broken) == {"id": broken, "status_before": "failed", "status": "pending"}
    again = sitq("requeue", broken)
    assert again.returncode == 1 and "only failed, timed-out or cancelled tasks are requeued" in again.stdout
    sitq.ok("worker", "cli_tasks", "--burst")
    assert [attempt["outcome"] for attempt in sitq.json("show", broken)["history"]] == ["failed", "failed"]
    assert sitq.json("purge", "--older-than", "1h") == {"purged": 0}
    assert "purged 1 task(s)" in sitq.ok("purge", "--older-than", "0s")
    sitq.fails(3, "show", broken)


def test_cancel_pending_running_and_finished_tasks(sitq: Sitq) -> None:
    later = sitq.enqueue("cli_tasks:add", "1", "1", "--eta", "1h")
    assert sitq.ok("cancel", later).strip() == f"task {later} cancelled"
    assert "already cancelled" in sitq.ok("cancel", later)
    done = sitq.enqueue("cli_tasks:add", "1", "1")
    sitq.ok("worker", "cli_tasks", "--burst")
    finished = sitq("cancel", done, "--json")
    assert finished.returncode == 1 and '"status": "success"' in finished.stdout
    with sitq.worker() as worker:
        running = sitq.enqueue("cli_tasks:sleep", "30")
        deadline = time.monotonic() + 20
        while sitq.json("show", running)["status"] != "in_progress":
            assert time.monotonic() < deadline, worker.log
            time.sleep(0.1)
        assert "its worker has been asked to stop it" in sitq.ok("cancel", running)
        assert sitq("wait", running, "--timeout", "20").returncode == 1
    assert sitq.json("show", running)["status"] == "cancelled"
    assert f"task {running} (cli_tasks.sleep) cancelled" in worker.log


async def test_wait_for_a_workflow(sitq: Sitq) -> None:
    assert sitq.url is not None
    good, bad = Workflow("good"), Workflow("bad")
    good.add(cli_tasks.echo, depends_on=[good.add(cli_tasks.add, 1, 2)])
    bad.add(cli_tasks.echo, depends_on=[bad.add(cli_tasks.fail, "no")])
    async with TaskQueue(sitq.url) as queue:
        good_run, bad_run = await queue.submit(good), await queue.submit(bad)
    with sitq.worker():
        succeeded = sitq.json("wait", "--workflow", good_run.id)
        failed = sitq("wait", "--workflow", bad_run.id, "--json")
    assert succeeded == {
        "workflow": good_run.id,
        "finished": True,
        "succeeded": True,
        "counts": {"success": 2},
    }
    assert failed.returncode == 1 and '"cancelled": 1' in failed.stdout and '"failed": 1' in failed.stdout


def test_wait_gives_up_after_its_timeout(sitq: Sitq) -> None:
    later = sitq.enqueue("cli_tasks:add", "1", "1", "--eta", "1h")
    waited = sitq("wait", later, "--timeout", "0.3")
    assert waited.returncode == 5 and "gave up waiting after 0.3 s" in waited.stdout
    assert sitq("wait", later, "--timeout", "0", "--json").returncode == 5


def test_the_url_is_the_option_else_the_environment_else_sitq_db(tmp_path: Path) -> None:
    default = Sitq(tmp_path, url=None)
    info = default.json("info")
    assert (info["url"], info["url_from"], info["details"]["path"]) == (
        "sqlite:///sitq.db",
        "default",
        str(tmp_path / "sitq.db"),
    )
    assert default.json("info", SITQ_URL="memory://")["url_from"] == "$SITQ_URL"
    given = default.json("info", "--url", "memory://other", SITQ_URL="sqlite:///elsewhere.db")
    assert (given["url"], given["url_from"], given["backend"]) == ("memory://other", "--url", "memory")
    before_the_command = default.json("--url", "memory://first", "info")
    assert (before_the_command["url"], before_the_command["url_from"]) == ("memory://first", "--url")
    assert not (tmp_path / "elsewhere.db").exists()


def test_info_tells_the_schema_and_durability(sitq: Sitq) -> None:
    sitq.enqueue("cli_tasks:add", "1", "1")
    info = sitq.json("info")
    assert info["backend"] == "sqlite" and info["queues"] == {"default": {"pending": 1}}
    current = str(len(MIGRATIONS))  # the file was made by this sitq-sqlite
    assert (info["details"]["schema_version"], info["details"]["synchronous"]) == (current, "full")
    assert "power cut" in info["details"]["durability"]
    normal = sitq.json("info", "--url", f"{sitq.url}?synchronous=normal")
    assert normal["details"]["synchronous"] == "normal"
    human = sitq.ok("info")
    assert "schema version" in human and "durability" in human and "default" in human


def test_the_worker_imports_modules_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text("def double(x):\n    return 2 * x\n")
    here = Sitq(tmp_path, url=f"sqlite:///{tmp_path / 'jobs.db'}")
    env = {"PYTHONPATH": ""}  # only the current directory can provide `jobs`
    task_id = here.ok("enqueue", "jobs:double", "21", **env).strip()
    here.ok("worker", "jobs", "--burst", **env)
    assert here.json("show", task_id, **env)["result"] == 42
    again = here.ok("enqueue", "jobs:double", "1", **env).strip()
    here.ok("worker", str(tmp_path / "jobs.py"), "--burst", **env)
    assert here.json("show", again, **env)["result"] == 2


def test_ctrl_c_lets_the_running_task_finish_then_the_worker_exits_0(sitq: Sitq) -> None:
    task_id = sitq.enqueue("cli_tasks:sleep", "1")
    with sitq.worker() as worker:
        deadline = time.monotonic() + 20
        while sitq.json("show", task_id)["status"] != "in_progress":
            assert time.monotonic() < deadline, worker.log
            time.sleep(0.05)
        worker.process.send_signal(signal.SIGINT)
        assert worker.process.wait(timeout=30) == 0, worker.log
    assert sitq.json("show", task_id)["status"] == "success"
    assert f"task {task_id} (cli_tasks.sleep) succeeded" in worker.log


def _wait_for(condition: Callable[[], bool], worker: BackgroundWorker, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, worker.log
        time.sleep(0.05)


def test_ctrl_c_says_what_the_worker_waits_for_and_a_second_one_gives_the_task_back_at_once(
    sitq: Sitq,
) -> None:
    task_id = sitq.enqueue("cli_tasks:sleep", "120")
    with sitq.worker("--grace-period", "90") as worker:
        _wait_for(lambda: sitq.json("show", task_id)["status"] == "in_progress", worker)
        worker.process.send_signal(signal.SIGINT)
        _wait_for(lambda: "got SIGINT" in worker.log, worker)
        [line] = [line for line in worker.log.splitlines() if "got SIGINT" in line]
        assert line.endswith(
            "got SIGINT: stopping; waiting up to 90s for 1 running task(s) to finish "
            "(press Ctrl-C again or send SIGTERM to give them back to the queue at once)"
        ), line
        time.sleep(1)
        assert worker.process.poll() is None, "the worker did not wait for its task"
        assert sitq.json("show", task_id)["status"] == "in_progress"
        worker.process.send_signal(signal.SIGINT)
        second = time.monotonic()
        assert worker.process.wait(timeout=30) == 0, worker.log
        took = time.monotonic() - second
    assert took < 5, f"the second Ctrl-C took {took:.1f}s to stop the worker"
    assert "got SIGINT again: giving back 1 running task(s) to the queue now" in worker.log
    shown = sitq.json("show", task_id)
    assert (shown["status"], shown["attempts"]) == ("pending", 0)
    assert [attempt["outcome"] for attempt in shown["history"]] == ["released"]


def test_a_task_lost_with_its_killed_worker_is_failed_and_reported_by_the_next_worker(sitq: Sitq) -> None:
    task_id = sitq.enqueue("cli_tasks:sleep", "60")
    with sitq.worker("--lease", "1") as doomed:
        _wait_for(lambda: sitq.json("show", task_id)["status"] == "in_progress", doomed)
        doomed.process.kill()
        doomed.process.wait()
    time.sleep(1.5)  # past the 1 s lease, which nothing renews any more
    burst = sitq("worker", "cli_tasks", "--burst")
    assert burst.returncode == 0, burst.stderr
    # The lifecycle hook fired in the process that recorded the failure: its outcome line is the proof.
    assert re.search(
        rf"WARNING task {task_id} \(cli_tasks.sleep\) failed after [\d.]+ m?s: WorkerLostError: worker \S+ "
        "stopped renewing its lease, and no attempts are left",
        burst.stderr,
    ), burst.stderr
    shown = sitq.json("show", task_id)
    assert shown["status"] == "failed"
    assert [attempt["outcome"] for attempt in shown["history"]] == ["lost"]


def test_compact_gives_the_space_of_purged_tasks_back(sitq: Sitq) -> None:
    for _ in range(20):
        sitq.enqueue("cli_tasks:add", '"' + "x" * 50_000 + '"', '""')
    sitq.ok("worker", "cli_tasks", "--burst")
    sitq.ok("purge", "--older-than", "0s")
    database = sitq.cwd / "tasks.db"

    compacted = sitq.json("compact")

    assert compacted["bytes_before"] > compacted["bytes_after"] + 900_000
    assert compacted["bytes_after"] == database.stat().st_size
    assert re.fullmatch(
        r"compacted: \d+\.\d kB on disk before, \d+\.\d kB after \(0 B given back\)\n", sitq.ok("compact")
    )
