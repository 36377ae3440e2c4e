"""Storage faults met by real processes: a producer and a worker that run out of room, and a database that
its process may not write.

Each gets the `sitq` error of its kind, whose message names the fault and its fix, and no task that was
committed is lost: once the fault clears, a new process finds every one of them and the work goes on.
Running out of room is a file size limit (RLIMIT_FSIZE) set in the child process: SQLite's writes then
fail as on a full disk, without root or a small file system. Root may write whatever the mode bits say,
so as root the read-only children switch to the user nobody (after importing what they need).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitq import SyncTaskQueue, Task, TaskStatus

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="file size limits and POSIX permissions are what these faults are made of"
)

TESTS = Path(__file__).parent.parent
ARGUMENT_BYTES = 8192
RESULT_BYTES = 65536
# Far above the fresh database, far below what the children write.
PRODUCER_FILE_LIMIT = 1 << 20
WORKER_FILE_LIMIT = 512 << 10

PRODUCER = """
import json, os, resource, signal, sys
from sitq import StorageFullError, SyncTaskQueue
url, limit, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
queue = SyncTaskQueue(url)
errors = []
for _ in range(10_000):
    try:
        task_id = queue.enqueue(len, os.urandom(size))
    except StorageFullError as error:
        errors.append({"type": type(error).__name__, "message": str(error),
                       "cause": getattr(error.__cause__, "sqlite_errorname", None)})
        if len(errors) == 3:
            break
    else:
        print("committed", task_id, flush=True)
try:
    queue.close()
except StorageFullError:
    pass
print("errors", json.dumps(errors), flush=True)
"""

WORKER = """
import asyncio, logging, resource, signal, sys
from sitq import Worker
url, limit = sys.argv[1], int(sys.argv[2])
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
asyncio.run(Worker(url, lease=2, poll_interval=0.1, max_concurrency=2).run())
"""

READ_ONLY_CHILD = """
import json, os, sys, tempfile
from sitq import BackendError, SyncTaskQueue
url, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# Use sitq once first, so that everything it imports on first use is imported while this process may
# still read the interpreter's files.
with tempfile.TemporaryDirectory() as scratch, SyncTaskQueue(f"sqlite:///{scratch}/warm.db") as warm:
    warm.get_status(warm.enqueue(len, b""))
if os.geteuid() != uid:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
queue = SyncTaskQueue(url)
outcome = {"type": None, "message": None}
try:
    queue.enqueue(len, b"x")
except BackendError as error:
    outcome = {"type": type(error).__name__, "message": str(error)}
finally:
    try:
        queue.close()
    except BackendError:
        pass
print(json.dumps(outcome))
"""


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(TESTS)}


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


# Disk full


def test_a_producer_past_its_file_size_limit_is_told_so_and_loses_no_committed_task(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    committed, errors = produce_until_full(db, file_limit=PRODUCER_FILE_LIMIT)
    assert 0 < len(committed) < PRODUCER_FILE_LIMIT // ARGUMENT_BYTES
    for error in errors:
        assert f"may not write files larger than {PRODUCER_FILE_LIMIT} bytes" in error["message"]
        assert "ulimit -f unlimited" in error["message"]
    # The fault cleared: a process without the limit.
    drain(db, committed)


@pytest.fixture
def small_file_system(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 2 MiB: a disk that really fills up. Mounting one needs root (CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root; the file size limit test stands in for it")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "sitq-test", str(mount_point)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command")
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_producer_on_a_full_disk_is_told_so_and_loses_no_committed_task(small_file_system: Path) -> None:
    db = small_file_system / "tasks.db"
    committed, errors = produce_until_full(db, file_limit=0)
    assert 0 < len(committed) < (2 << 20) // ARGUMENT_BYTES
    for error in errors:
        assert f"the disk is full: the file system that holds '{small_file_system}' has" in error["message"]
        assert f"Free space there (`df -h {small_file_system}` shows it)" in error["message"]
    # The fault cleared: room made on the file system.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_file_system)], check=True)
    drain(db, committed)


def produce_until_full(db: Path, *, file_limit: int) -> tuple[list[str], list[dict[str, str]]]:
    """Run a producer process until it finds no room; the tasks it committed, and the errors it got."""
    with SyncTaskQueue(url_of(db)):
        pass  # the schema, written before the fault
    produced = subprocess.run(
        [sys.executable, "-c", PRODUCER, url_of(db), str(file_limit), str(ARGUMENT_BYTES)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert produced.returncode == 0, produced.stderr
    committed = [line.split()[1] for line in produced.stdout.splitlines() if line.startswith("committed ")]
    (errors_line,) = [line for line in produced.stdout.splitlines() if line.startswith("errors ")]
    errors: list[dict[str, str]] = json.loads(errors_line.removeprefix("errors "))
    print(f"producer: {len(committed)} tasks committed before the fault; errors: {errors}")
    # Committed until the fault, then the named error with SQLite's cause. A checkpoint between two tries
    # may make room for one more task now and then: it is committed like the others, and kept like them.
    assert len(errors) == 3
    for error in errors:
        assert error["type"] == "StorageFullError"
        assert "cannot rollback" not in error["message"]
        assert error["message"].startswith(f"storing 1 new task(s) in the SQLite database '{db}' failed: ")
        assert "Tasks committed before are kept" in error["message"]
        assert error["cause"] in ("SQLITE_FULL", "SQLITE_IOERR_WRITE")
    return committed, errors


def drain(db: Path, committed: list[str]) -> None:
    """With the fault cleared, a new worker process finds every committed task, and nothing else."""
    worker = WorkerProcess(db, file_limit=0)
    try:
        with SyncTaskQueue(url_of(db)) as queue:
            results = [queue.get_result(task_id, timeout=120) for task_id in committed]
            stored = queue.list_tasks(limit=10_000)
    finally:
        worker.stop()
    lost = [task_id for task_id, result in zip(committed, results, strict=True) if result is None]
    print(
        f"after the fault: {len(committed) - len(lost)} of {len(committed)} committed tasks ran; lost: {lost}"
    )
    assert lost == []
    assert all(result is not None and result.unwrap() == ARGUMENT_BYTES for result in results)
    assert sorted(task.id for task in stored) == sorted(committed)
    assert integrity(db) == "ok"


def test_a_worker_out_of_room_logs_it_and_a_new_worker_finishes_every_task(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    with SyncTaskQueue(url_of(db)) as queue:
        task_ids = queue.enqueue_many(Task(os.urandom, [RESULT_BYTES], max_attempts=5) for _ in range(40))

    doomed = WorkerProcess(db, file_limit=WORKER_FILE_LIMIT)
    try:
        line = doomed.wait_for("StorageFullError", timeout=120)
    finally:
        doomed.stop()
    with SyncTaskQueue(url_of(db)) as queue:
        done_before = sum(queue.get_status(task_id) is TaskStatus.SUCCESS for task_id in task_ids)
    print(f"worker: {done_before} of {len(task_ids)} tasks done before its file size limit; logged: {line}")
    assert "cannot rollback" not in doomed.log()
    assert "may not write files larger than" in line
    assert done_before < len(task_ids)

    survivor = WorkerProcess(db, file_limit=0)
    try:
        with SyncTaskQueue(url_of(db)) as queue:
            results = [queue.get_result(task_id, timeout=120) for task_id in task_ids]
    finally:
        survivor.stop()
    assert [result and result.status for result in results] == [TaskStatus.SUCCESS] * len(task_ids)
    assert all(result is not None and len(result.unwrap()) == RESULT_BYTES for result in results)
    assert integrity(db) == "ok"


class WorkerProcess:
    """A worker in a process of its own (under a file size limit unless it is 0), its log read as it
    comes: through a pipe, to which the limit does not apply."""

    def __init__(self, db: Path, *, file_limit: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", WORKER, url_of(db), str(file_limit)],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line of the log that holds `text`, once there is one."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((line for line in self._lines if text in line), None), timeout
            )
        assert found, f"no {text!r} in the worker's log within {timeout}s:\n{self.log()[-5000:]}"
        return found.strip()

    def log(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not stopped after a generous grace."""
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self._process.stderr is not None
        self._process.stderr.close()


def integrity(db: Path) -> str:
    connection = sqlite3.connect(db)
    try:
        ((result,),) = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    return str(result)


# Read-only files and directories


@pytest.fixture
def child_user() -> tuple[int, int]:
    """Who the read-only children run as: this user, or nobody when this is root (root ignores modes)."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root, and there is no user nobody to meet the permission bits")
    return nobody.pw_uid, nobody.pw_gid


@pytest.fixture
def child_dir(tmp_path: Path, child_user: tuple[int, int]) -> Iterator[Path]:
    """A directory the child's user owns. As root, one in the system temp directory: nobody cannot pass
    through the parents of `tmp_path`, which are private to root."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="sitq-storage-faults-"))
    try:
        os.chown(directory, *child_user)
        yield directory
    finally:
        directory.chmod(0o700)
        shutil.rmtree(directory)


def stored_task(db: Path, child_user: tuple[int, int]) -> str:
    """A database holding one committed task, given to the child's user."""
    with SyncTaskQueue(url_of(db)) as queue:
        task_id = queue.enqueue(len, b"kept")
    os.chown(db, *child_user)
    return task_id


def run_read_only_child(db: Path, child_user: tuple[int, int]) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", READ_ONLY_CHILD, url_of(db), *map(str, child_user)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    print(outcome)
    return outcome


def run_in_read_only_directory(db: Path, child_user: tuple[int, int]) -> dict[str, str]:
    """Run the child with the database's directory made read-only for it (owner bits, as it owns it)."""
    db.parent.chmod(0o555)
    try:
        outcome = run_read_only_child(db, child_user)
    finally:
        db.parent.chmod(0o700)
    assert outcome["type"] == "StorageReadOnlyError"
    return outcome


def who(child_user: tuple[int, int]) -> str:
    import pwd

    return f"user {pwd.getpwuid(child_user[0]).pw_name}"


def test_a_read_only_database_file_is_named(child_dir: Path, child_user: tuple[int, int]) -> None:
    db = child_dir / "tasks.db"
    task_id = stored_task(db, child_user)
    db.chmod(0o400)
    outcome = run_read_only_child(db, child_user)
    assert outcome["type"] == "StorageReadOnlyError"
    assert outcome["message"].startswith(f"storing 1 new task(s) in the SQLite database '{db}' failed: ")
    assert f"this process ({who(child_user)}) may not write the file '{db}'" in outcome["message"]
    assert "chmod u+w" in outcome["message"]
    db.chmod(0o600)
    with SyncTaskQueue(url_of(db)) as queue:
        assert queue.get_status(task_id) is TaskStatus.PENDING
        assert [task.id for task in queue.list_tasks()] == [task_id]


def test_a_read_only_directory_is_named_with_why_wal_needs_it(
    child_dir: Path, child_user: tuple[int, int]
) -> None:
    db = child_dir / "tasks.db"
    task_id = stored_task(db, child_user)
    outcome = run_in_read_only_directory(db, child_user)
    assert outcome["message"].startswith(f"opening the SQLite database '{db}' failed: ")
    assert f"({who(child_user)}) may not write the directory '{child_dir}'" in outcome["message"]
    assert "-wal and -shm" in outcome["message"]
    with SyncTaskQueue(url_of(db)) as queue:
        assert queue.get_status(task_id) is TaskStatus.PENDING


def test_a_new_database_in_a_read_only_directory_is_named(
    child_dir: Path, child_user: tuple[int, int]
) -> None:
    db = child_dir / "tasks.db"
    outcome = run_in_read_only_directory(db, child_user)
    assert outcome["message"].startswith(f"cannot open the SQLite database '{db}': ")
    assert f"({who(child_user)}) may not write the directory '{child_dir}'" in outcome["message"]
    assert not db.exists()
