"""`sitq worker --processes N`: the command's process mode, with the user's module found by the children
as the worker found it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sitq_command import Sitq

JOBS = textwrap.dedent(
    """
    import os, time

    def where(seconds):
        time.sleep(seconds)
        return os.getpid()

    def crash():
        os._exit(3)
    """
)


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
