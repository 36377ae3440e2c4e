"""Every snippet of the seed documents (../shared/seeds) that uses sitq's API, run as written.

Complete programs run verbatim in a subprocess. Fragments run with only what they leave undefined
supplied before them (a task function, a worker to answer `get_result`), and with `await` where the
async API needs it, as issue #2 settles for seed 000's `worker.process_task(task_id)`.

Each program runs twice: on SQLite, as written, and on a fresh schema of the PostgreSQL test server, with
its SQLite stores replaced by that schema's URL (`programs.on_postgres`), and $SITQ_URL naming it for a
store left to the default: outgrowing one machine is meant to change one URL and no other code.
"""

import textwrap
from pathlib import Path

import pytest
from programs import on_postgres, run_program

# seed 001, "Simple Task Processing": the whole program.
SEED_001_TUTORIAL = """
import asyncio
from sitq import TaskQueue, Worker
from sitq.backends.sqlite import SQLiteBackend
from sitq.serialization import CloudpickleSerializer

# Step 1: Define your async task function
# This is the work you want to be done in the background
async def say_hello():
    \"\"\"A simple task that prints a greeting.\"\"\"
    print("Hello from sitq!")
    return "Task completed successfully!"

async def main():
    # Step 2: Set up the task queue
    # The SQLiteBackend stores tasks in a local database file
    backend = SQLiteBackend("my_first_queue.db")
    # CloudpickleSerializer handles complex Python objects
    serializer = CloudpickleSerializer()

    # Use async context manager for proper setup and cleanup
    async with TaskQueue(backend, serializer) as queue:
        # Step 3: Enqueue your task
        # This creates a task and stores it in the database
        task_id = await queue.enqueue(say_hello)
        print(f"Task {task_id} enqueued!")

        # Step 4: Create and start a worker
        # The worker will pick up tasks and execute them
        worker = Worker(backend, serializer, max_concurrency=1)
        await worker.start()
        print("Worker started, processing tasks...")

        # Step 5: Wait for the task to complete
        await asyncio.sleep(2)  # Give worker time to process

        # Step 6: Stop the worker
        await worker.stop()
        print("Done!")

if __name__ == "__main__":
    asyncio.run(main())
"""

# seed 001, "Try It Yourself": the modified task.
SEED_001_VARIATION = """
async def say_hello():
    print("Processing user data...")
    await asyncio.sleep(1)  # Simulate work
    return "User data processed!"
"""

# seed 002, "Basic Usage Pattern": the whole program.
SEED_002_BASIC = """
import asyncio
from sitq import TaskQueue, Worker, SQLiteBackend

async def my_task(name: str) -> str:
    \"\"\"Example task function.\"\"\"
    await asyncio.sleep(0.1)  # Simulate work
    return f"Hello, {name}!"

async def main():
    # Set up backend and queue
    backend = SQLiteBackend("tasks.db")
    await backend.connect()
    queue = TaskQueue(backend=backend)

    # Enqueue a task
    task_id = await queue.enqueue(my_task, "World")

    # Start worker to process tasks
    worker = Worker(backend, max_concurrency=2)
    worker_task = asyncio.create_task(worker.start())

    # Get result
    result = await queue.get_result(task_id, timeout=5)
    if result and result.status == "success":
        value = queue.deserialize_result(result)
        print(f"Result: {value}")

    # Cleanup
    await worker.stop()
    await worker_task
    await backend.close()

if __name__ == "__main__":
    asyncio.run(main())
"""

# seed 002, "Sync Context Usage": `my_task` is left to the reader, and get_result needs a worker.
SEED_002_SYNC = """
from sitq import SyncTaskQueue, SQLiteBackend

def main():
    # SyncTaskQueue manages its own event loop
    with SyncTaskQueue(SQLiteBackend("tasks.db")) as queue:
        task_id = queue.enqueue(my_task, "World")
        result = queue.get_result(task_id, timeout=5)
        print(f"Result: {result}")

if __name__ == "__main__":
    main()
"""

# A worker in a background thread on `tasks.db` and `sitq.db`, for fragments that wait on results. The
# program goes on once they have started: from Python 3.12 on, a thread started while the interpreter
# exits raises, and a program that ends before its workers have started would print that traceback.
BACKGROUND_WORKERS = """
import asyncio, threading
import sitq

_started = threading.Event()

async def _serve():
    async with sitq.Worker("sqlite:///tasks.db"), sitq.Worker("sqlite:///sitq.db"):
        _started.set()
        await asyncio.Event().wait()

threading.Thread(target=asyncio.run, args=(_serve(),), daemon=True).start()
_started.wait(timeout=30)
"""

SYNC_PREAMBLE = (
    BACKGROUND_WORKERS
    + """
def my_task(name="sitq"):
    return f"Hello, {name}!"
"""
)

# seed 000, "Basic Concepts": its fragments in order, in one async program.
SEED_000_FRAGMENTS = (
    """
import asyncio
import sitq

def my_function(*args, option=False):
    return sum(args) if option else list(args)

data = [4, 5, 6]

async def fragments():
    from sitq import TaskQueue, SQLiteBackend

    queue = TaskQueue(backend=SQLiteBackend("tasks.db"))
    task_id = await queue.enqueue(my_function, 1, 2, 3, option=True)

    worker = sitq.Worker(queue)
    result = await worker.process_task(task_id)
    assert result.value == 6

    backend = sitq.SQLiteBackend("tasks.db")

    # Functions and arguments are serialized for storage
    task = sitq.Task(function=my_function, args=[data])
    task_id = await queue.enqueue(task)

    # Results are serialized when stored
    result = await worker.process_task(task_id)
    assert result.value == [[4, 5, 6]]

    for task_id in (task_id, "no-such-task"):
        try:
            result = await worker.process_task(task_id)
            if result.is_error:
                print(f"Task failed: {result.error}")
            else:
                print(f"Task succeeded: {result.value}")
        except sitq.TaskNotFoundError:
            print("Task not found")
        except sitq.WorkerError as e:
            print(f"Worker error: {e}")
    await worker.stop()
    await queue.close()

asyncio.run(fragments())

def my_task():
    return "synchronous wrapper"
"""
    + BACKGROUND_WORKERS
    + """
with sitq.SyncTaskQueue() as queue:
    task_id = queue.enqueue(my_task)
    result = queue.get_result(task_id)
print(f"Sync: {result.value}")
"""
)


def run(program: str, cwd: Path, postgres: str | None = None) -> str:
    """Run `program` in `cwd`, on SQLite as written or, given a URL, on PostgreSQL; return its output."""
    program = textwrap.dedent(program)
    env = {}
    if postgres is not None:
        program, env = on_postgres(program, postgres), {"SITQ_URL": postgres}
    script = cwd / "seed_program.py"
    script.write_text(program)
    completed = run_program(script, cwd, env=env)
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    if postgres is not None:
        assert not list(cwd.glob("*.db")), "the program kept a store on SQLite"
    return completed.stdout


def test_seed_001_tutorial_runs_as_written(tmp_path: Path, postgres: str | None) -> None:
    output = run(SEED_001_TUTORIAL, tmp_path, postgres)
    lines = output.splitlines()
    assert lines[0].startswith("Task ") and lines[0].endswith(" enqueued!")
    assert lines[1:] == ["Worker started, processing tasks...", "Hello from sitq!", "Done!"]


def test_seed_001_try_it_yourself_variation_runs(tmp_path: Path, postgres: str | None) -> None:
    program = SEED_001_TUTORIAL.replace(
        SEED_001_TUTORIAL[
            SEED_001_TUTORIAL.index("async def say_hello") : SEED_001_TUTORIAL.index("async def main")
        ],
        SEED_001_VARIATION.lstrip() + "\n",
    )
    assert "Processing user data..." in run(program, tmp_path, postgres)


def test_seed_002_basic_usage_runs_as_written(tmp_path: Path, postgres: str | None) -> None:
    assert run(SEED_002_BASIC, tmp_path, postgres) == "Result: Hello, World!\n"


def test_seed_002_sync_usage_runs_with_a_task_and_a_worker_supplied(
    tmp_path: Path, postgres: str | None
) -> None:
    output = run(SYNC_PREAMBLE + SEED_002_SYNC, tmp_path, postgres)
    assert output.startswith("Result: Result(") and "status=<TaskStatus.SUCCESS: 'success'>" in output
    assert "value='Hello, World!'" in output


def test_seed_000_fragments_run_in_order(tmp_path: Path, postgres: str | None) -> None:
    output = run(SEED_000_FRAGMENTS, tmp_path, postgres)
    assert output.splitlines() == [
        "Task succeeded: [[4, 5, 6]]",
        "Task not found",
        "Sync: synchronous wrapper",
    ]


@pytest.mark.parametrize("snippet", [SEED_002_SYNC], ids=["seed-002-sync"])
def test_sync_wrapper_inside_an_event_loop_says_to_use_task_queue(snippet: str, tmp_path: Path) -> None:
    program = (
        SYNC_PREAMBLE
        + snippet.replace('if __name__ == "__main__":\n    main()', "")
        + (
            "\nimport asyncio\n"
            "async def inside():\n"
            "    try:\n"
            "        main()\n"
            "    except sitq.SyncTaskQueueError as error:\n"
            "        print(error)\n"
            "asyncio.run(inside())\n"
        )
    )
    assert "use `await` on a TaskQueue there instead" in run(program, tmp_path)
