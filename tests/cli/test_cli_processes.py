"""`sitq worker --processes N`: the command's process mode, with the user's module found by the children
as the worker found it."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from programs import is_gone
from sitq_command import SITQ, Sitq

JOBS = textwrap.dedent(
    """
    import os, time

    def where(seconds):
        time.sleep(seconds)
        return os.getpid()

    def crash():
        os._exit(3)

    def announce_then_sleep(path, seconds):
        with open(path, "w") as file:
            file.write(str(os.getpid()))
        time.sleep(seconds)
        return os.getpid()

    def announce_then_hold_the_gil(path):
        with open(path, "w") as file:
            file.write(str(os.getpid()))
        return sum(range(10**12))  # hours in C code that never lets another thread run
    """
)


def start_in_session(here: Sitq, *args: str) -> subprocess.Popen[str]:
    """A worker in a session of its own, as a terminal starts a command: a signal can go to its group."""
    return subprocess.Popen(
        [SITQ, "worker", "jobs", *args],
        cwd=here.cwd,
        env=here.env(PYTHONPATH=""),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_pid(path: Path) -> int:
    deadline = time.monotonic() + 30
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path.name} was never written"
        time.sleep(0.02)
    return int(path.read_text())


def test_worker_processes_runs_tasks_in_children_that_import_the_module_as_the_worker_did(
    tmp_path: Path,
) -> None:
    (tmp_path / "jobs.py").write_text(JOBS)
    here = Sitq(tmp_path, url=f"sqlite:///{tmp_path / 'jobs.db'}")
    env = {"PYTHONPATH": ""}  # only the current directory can provide `jobs`, in the children too
    beside = [here.ok("enqueue", "jobs:where", "0.5", **env).strip() for _ in range(2)]
    crashed = here.ok("enqueue", "jobs:crash", **env).strip()
    burst = here("worker", "jobs", "--processes", "2", "--burst", **env)
    assert burst.returncode == 0, burst.stderr
    assert "up to 2 task(s) at once, in 2 child process(es)" in burst.stderr
    shown = [here.json("show", task_id, **env) for task_id in beside]
    assert [task["status"] for task in shown] == ["success", "success"]
    worker_pid = int(shown[0]["history"][0]["worker_id"].split(":")[1])  # host:pid:random
    pids = {task["result"] for task in shown}
    assert len(pids) == 2 and worker_pid not in pids  # two children at once, neither the worker
    failed = here.json("show", crashed, **env)
    assert failed["error"] == "TaskCrashedError: the process running the task died: exited with code 3"
    assert f"task {crashed} (jobs.crash) failed" in burst.stderr
    # A path to the module works as well.
    again = here.ok("enqueue", "jobs:where", "0", **env).strip()
    here.ok("worker", str(tmp_path / "jobs.py"), "--processes", "1", "--burst", **env)
    assert here.json("show", again, **env)["status"] == "success"


def test_concurrency_cannot_exceed_processes(sitq: Sitq) -> None:
    line = sitq.fails(2, "worker", "cli_tasks", "--processes", "2", "--concurrency", "3")
    assert "max_concurrency=3 cannot exceed processes=2" in line


def test_ctrl_c_in_the_terminal_lets_the_children_finish_their_tasks(tmp_path: Path) -> None:
    """Ctrl-C signals the whole foreground process group: the children ignore it, and the worker lets
    them finish within its grace period, as in thread mode."""
    (tmp_path / "jobs.py").write_text(JOBS)
    here = Sitq(tmp_path, url=f"sqlite:///{tmp_path / 'jobs.db'}")
    task_id = here.ok(
        "enqueue", "jobs:announce_then_sleep", str(tmp_path / "pid"), "1", PYTHONPATH=""
    ).strip()
    worker = start_in_session(here, "--processes", "2")
    try:
        wait_for_pid(tmp_path / "pid")
        os.killpg(worker.pid, signal.SIGINT)
        _, log = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, log
    assert here.json("show", task_id, PYTHONPATH="")["status"] == "success", log


def test_the_children_do_not_outlive_a_killed_worker(tmp_path: Path) -> None:
    """Not even one whose task holds the GIL, so that no thread of the child could notice."""
    (tmp_path / "jobs.py").write_text(JOBS)
    here = Sitq(tmp_path, url=f"sqlite:///{tmp_path / 'jobs.db'}")
    here.ok("enqueue", "jobs:announce_then_hold_the_gil", str(tmp_path / "pid"), PYTHONPATH="")
    worker = start_in_session(here, "--processes", "1")
    try:
        child = wait_for_pid(tmp_path / "pid")
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
        deadline = time.monotonic() + 30
        while not is_gone(child):
            assert time.monotonic() < deadline, "the child outlived its worker"
            time.sleep(0.05)
    finally:
        worker.kill()
