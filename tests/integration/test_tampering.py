"""The attacks of the security issue, as measured: someone with write access to the store (a plain `sqlite3`
or `psql` connection) replaces a task's call or result with a pickle that runs a shell command when loaded,
or relabels a row's serializer. With a signing key, no command runs anywhere: not in a worker (thread or
process mode), not in `get_result`, not in `sitq show` or `sitq list`. Each attack is first shown to work
without a key, so that the tests prove the key is what stops it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres_server import fresh_schema, require_server, with_options
from sitq_command import Sitq
from tampering import Store

from sitq import SignatureError, TaskQueue, TaskStatus, Worker

KEY = "tampering-tests-signing-key-0123456789"


class Command:
    """Unpickling this runs a shell command that creates `marker`: the attack's proof of execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        path = tmp_path / "tasks.db"
        yield Store(f"sqlite:///{path}", sqlite_path=path)
        return
    server = require_server()
    with fresh_schema() as schema:
        yield Store(with_options(server, schema=schema), schema=schema)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "the-attack-ran"


def _ran(marker: Path) -> bool:
    return marker.exists()


def _evil(marker: Path) -> bytes:
    return pickle.dumps(Command(marker))


async def _enqueue(store: Store, *args: int, **queue_options: Any) -> str:
    async with TaskQueue(store.url, "pickle", **queue_options) as queue:
        return await queue.enqueue(pow, *args)


async def _drain(store: Store, **worker_options: Any) -> None:
    await asyncio.wait_for(Worker(store.url, **worker_options).run(burst=True), timeout=60)


async def _status_and_error(store: Store, task_id: str) -> tuple[TaskStatus, str]:
    async with TaskQueue(store.url) as queue:
        info = await queue.get_task(task_id)
    return info.status, info.error or ""


async def test_a_replaced_call_runs_its_command_without_a_key(store: Store, marker: Path) -> None:
    task_id = await _enqueue(store, 2, 3)
    store.set_payload(task_id, _evil(marker))
    await _drain(store)
    assert _ran(marker)


@pytest.mark.parametrize("processes", [None, 1], ids=["threads", "processes"])
async def test_with_a_key_a_replaced_call_fails_and_runs_nothing(
    store: Store, marker: Path, processes: int | None
) -> None:
    task_id = await _enqueue(store, 2, 3, signing_key=KEY)
    genuine = await _enqueue(store, 2, 5, signing_key=KEY)
    store.set_payload(task_id, _evil(marker))
    await _drain(store, signing_key=KEY, processes=processes)
    status, error = await _status_and_error(store, task_id)
    assert not _ran(marker)
    assert status is TaskStatus.FAILED
    assert error.startswith("SignatureError: ") and "is not signed" in error
    async with TaskQueue(store.url, signing_key=KEY) as queue:
        result = await queue.get_result(genuine, timeout=0)
    assert result is not None and result.value == 32


async def test_with_a_key_a_relabelled_call_fails_unread(store: Store, marker: Path) -> None:
    async with TaskQueue(store.url, "json", signing_key=KEY) as queue:
        task_id = await queue.enqueue(pow, 2, 3)
    store.set_serializer(task_id, "pickle")
    await _drain(store, signing_key=KEY)
    status, error = await _status_and_error(store, task_id)
    assert status is TaskStatus.FAILED and error.startswith("SignatureError: ")


async def test_without_a_key_accept_refuses_a_relabelled_call(store: Store, marker: Path) -> None:
    async with TaskQueue(store.url, "json") as queue:
        task_id = await queue.enqueue(pow, 2, 3)
    store.set_serializer(task_id, "pickle")
    store.set_payload(task_id, _evil(marker))
    await _drain(store, accept=["json"])
    status, error = await _status_and_error(store, task_id)
    assert not _ran(marker)
    assert status is TaskStatus.FAILED and "which this process does not accept" in error


async def test_a_replaced_result_runs_its_command_in_the_client_without_a_key(
    store: Store, marker: Path
) -> None:
    task_id = await _enqueue(store, 2, 3)
    await _drain(store)
    store.set_result(task_id, _evil(marker))
    async with TaskQueue(store.url) as queue:
        await queue.get_result(task_id, timeout=0)
    assert _ran(marker)


async def test_with_a_key_a_replaced_result_reaches_no_reader(
    store: Store, marker: Path, tmp_path: Path
) -> None:
    task_id = await _enqueue(store, 2, 3, signing_key=KEY)
    await _drain(store, signing_key=KEY)
    store.set_result(task_id, _evil(marker))
    async with TaskQueue(store.url, signing_key=KEY) as queue:
        with pytest.raises(SignatureError, match=task_id):
            await queue.get_result(task_id, timeout=0)
    sitq = Sitq(tmp_path, store.url)
    shown = sitq.json("show", task_id, SITQ_SIGNING_KEY=KEY)
    listed = sitq.json("list", SITQ_SIGNING_KEY=KEY)
    assert shown["result"].startswith("<cannot decode the result here: SignatureError: ")
    assert [task["id"] for task in listed["tasks"]] == [task_id]
    assert not _ran(marker)
