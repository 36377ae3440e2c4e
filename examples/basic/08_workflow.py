"""08: a workflow. Fan out from one task to two, fan back in, with each step reading its parents' results.

Seed 003's pipeline in sitq's names: download, then process, then report and notify side by side, then
archive once both are done. Run it with ``python examples/basic/08_workflow.py``; it works in a
temporary SQLite database that is deleted when it finishes.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from sitq import SQLiteBackend, Task, TaskQueue, Worker, Workflow


def download_data() -> list[int]:
    return [3, 1, 2]


def process_data(parent_results: dict[str, list[int]]) -> list[int]:
    """A `parent_results` parameter receives the parents' return values, by task id."""
    [rows] = parent_results.values()
    return sorted(rows)


def generate_report(parent_results: dict[str, list[int]]) -> str:
    [rows] = parent_results.values()
    return f"report: {len(rows)} rows, largest {rows[-1]}"


async def send_notifications(parent_results: dict[str, list[int]]) -> str:
    [rows] = parent_results.values()
    await asyncio.sleep(0.05)
    return f"notified: {len(rows)} rows processed"


def archive_results(parent_results: dict[str, str]) -> str:
    return " | ".join(sorted(parent_results.values()))


async def main(database: Path) -> None:
    workflow = Workflow("data_pipeline")
    download = workflow.add(Task(download_data, name="download"))
    process = workflow.add(Task(process_data, name="process"), depends_on=[download])
    report = workflow.add(Task(generate_report, name="report"), depends_on=[process])
    notify = workflow.add(Task(send_notifications, name="notify"), depends_on=[process])
    archive = workflow.add(Task(archive_results, name="archive"), depends_on=[report, notify])

    async with TaskQueue(SQLiteBackend(database)) as queue, Worker(queue, max_concurrency=2):
        run = await queue.submit(workflow)  # all five tasks are stored at once, or none is
        print(f"submitted workflow {run.name} ({run.id}) with {len(run.task_ids)} tasks")
        result = await queue.get_result(run.id_of(archive), timeout=10)
        status = await queue.get_workflow(run.id)

    assert result is not None
    print(f"archive: {result.value}")
    print(f"finished: {status.finished}, succeeded: {status.succeeded}, counts: {dict(status.counts)}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory) / "workflow.db"))
