"""Signed and encrypted queues: whoever can write the store but lacks the key gets nothing decoded.

The attacker here writes through the `Backend` protocol itself, as anyone with write access to the store
can: tasks with chosen payloads and serializer names, and outcomes with chosen results. Every serializer's
`loads` (and `pickle.loads`, `json.loads`) is replaced by a tripwire, so a test proves that refused bytes
never reach one. Signing lives in core, so these pass on any backend that stores bytes faithfully.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from sitq.backend import Backend
from sitq.errors import SignatureError
from sitq.models import NewTask, TaskOptions, TaskStatus, utcnow
from sitq.plugins import default_plugins
from sitq.queue import TaskQueue
from sitq.sealing import Part, Sealer
from sitq.testing.conformance.support import LEASE, QUEUES, T0, ConformanceFixtures, new_task, outcome
from sitq.testing.conformance.tasks import add
from sitq.worker import Worker

KEY = "conformance-signing-key-0123456789"
OLD_KEY = "conformance-previous-key-0123456789"
OTHER_TASK = "0" * 32

Forgery = Callable[[str, Part, bytes], tuple[bytes, str]]
"""Given a task's id, which of its blobs, and a genuine serialized blob, what an attacker stores there:
(bytes, serializer name). Each forgery differs from a genuine blob in one way only."""


def _unsigned(task_id: str, part: Part, data: bytes) -> tuple[bytes, str]:
    return data, "pickle"


def _forged_mac(task_id: str, part: Part, data: bytes) -> tuple[bytes, str]:
    genuine = Sealer([KEY.encode()]).seal(data, task_id, part, "pickle")
    mac_end = len(genuine) - len(data)  # the MAC's last byte, flipped
    return genuine[: mac_end - 1] + bytes([genuine[mac_end - 1] ^ 1]) + data, "pickle"


def _copied_from_another_task(task_id: str, part: Part, data: bytes) -> tuple[bytes, str]:
    return Sealer([KEY.encode()]).seal(data, OTHER_TASK, part, "pickle"), "pickle"


def _relabelled(task_id: str, part: Part, data: bytes) -> tuple[bytes, str]:
    return Sealer([KEY.encode()]).seal(data, task_id, part, "json"), "pickle"


def _signed_with_a_retired_key(task_id: str, part: Part, data: bytes) -> tuple[bytes, str]:
    return Sealer([OLD_KEY.encode()]).seal(data, task_id, part, "pickle"), "pickle"


FORGERIES: dict[str, Forgery] = {
    "unsigned": _unsigned,
    "forged MAC": _forged_mac,
    "copied from another task": _copied_from_another_task,
    "relabelled with another serializer": _relabelled,
    "signed with a retired key": _signed_with_a_retired_key,
}


class Tripwire:
    """Stands in for every deserializer; counts the calls that should never come."""

    def __init__(self) -> None:
        self.calls = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for cls in default_plugins().serializers.values():
            monkeypatch.setattr(cls, "loads", self._tripped)  # as a class attribute: gets the instance too
        monkeypatch.setattr(pickle, "loads", self._tripped)
        monkeypatch.setattr(json, "loads", self._tripped)

    def _tripped(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise AssertionError("a deserializer was reached")


class SigningConformance(ConformanceFixtures):
    """With a signing key, unsigned, altered, copied, relabelled and retired-key calls and results are
    refused with `SignatureError` before any deserializer runs; keys rotate; an encryption key hides
    the bytes and binds them the same way."""

    @pytest.mark.parametrize("forgery", FORGERIES)
    async def test_a_forged_call_fails_unread_and_is_not_retried(
        self, store: Backend, monkeypatch: pytest.MonkeyPatch, forgery: str
    ) -> None:
        forged = _forged_task(FORGERIES[forgery])
        await store.enqueue([forged])
        tripwire = Tripwire()
        async with TaskQueue(store, "pickle", signing_key=KEY) as queue:
            tripwire.install(monkeypatch)
            await Worker(queue).run(burst=True)
            monkeypatch.undo()
            genuine = await queue.enqueue(add, 1, 2)
            await Worker(queue).run(burst=True)
            record, good = await store.get(forged.id), await queue.get_result(genuine, timeout=0)
        assert tripwire.calls == 0
        assert record is not None and record.status is TaskStatus.FAILED and record.attempts == 1
        assert record.error is not None and record.error.startswith("SignatureError: ")
        assert forged.id in record.error and "not decoded" in record.error
        assert good is not None and good.value == 3

    async def test_rotation_opens_what_the_previous_key_signed(self, store: Backend) -> None:
        async with TaskQueue(store, "pickle", signing_key=OLD_KEY) as old:
            task_id = await old.enqueue(add, 2, 3)
        async with TaskQueue(store, "pickle", signing_key=[KEY, OLD_KEY]) as queue:
            await Worker(queue).run(burst=True)
            result = await queue.get_result(task_id, timeout=0)
            assert result is not None and result.value == 5
            record = await store.get(task_id)
        assert record is not None and record.result is not None
        with pytest.raises(SignatureError):  # the worker signed the result with the new key
            Sealer([OLD_KEY.encode()]).open(record.result, task_id, Part.RESULT, "pickle")

    @pytest.mark.parametrize("forgery", [*FORGERIES, "the task's own call"])
    async def test_a_forged_result_is_refused_to_the_client_unread(
        self, store: Backend, monkeypatch: pytest.MonkeyPatch, forgery: str
    ) -> None:
        async with TaskQueue(store, "pickle", signing_key=KEY) as queue:
            task_id = await queue.enqueue(add, 1, 2)
            [reserved] = await store.claim(worker_id="attacker", now=T0, lease=LEASE, limit=1, queues=QUEUES)
            if forgery == "the task's own call":
                result = reserved.payload  # genuine, but a call: bound to another part
            else:
                result, _ = FORGERIES[forgery](task_id, Part.RESULT, pickle.dumps(3))
            await store.complete([outcome(task_id, "attacker", result=result)])
            tripwire = Tripwire()
            tripwire.install(monkeypatch)
            with pytest.raises(SignatureError, match=task_id):
                await queue.get_result(task_id, timeout=0)
        assert tripwire.calls == 0

    async def test_without_a_key_signed_tasks_still_run(self, store: Backend) -> None:
        async with TaskQueue(store, "pickle", signing_key=KEY) as signed:
            task_id = await signed.enqueue(add, 4, 5)
        async with TaskQueue(store, "pickle") as unsigned:
            await Worker(unsigned).run(burst=True)
            result = await unsigned.get_result(task_id, timeout=0)
        assert result is not None and result.value == 9

    async def test_accept_refuses_other_serializers_unread(
        self, store: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with TaskQueue(store, "pickle") as queue:
            task_id = await queue.enqueue(add, 1, 2)
            tripwire = Tripwire()
            tripwire.install(monkeypatch)
            await Worker(queue, accept=["json"]).run(burst=True)
            record = await store.get(task_id)
        assert tripwire.calls == 0
        assert record is not None and record.status is TaskStatus.FAILED
        assert record.error is not None and "'pickle' serializer, which this process does not accept" in (
            record.error
        )

    async def test_encryption_hides_what_is_stored_and_refuses_what_is_not_encrypted(
        self, store: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pytest.importorskip("cryptography", reason="encryption needs sitq-core[encryption]")
        secret = "a value nobody may read in the store"
        plain = _forged_task(_unsigned)
        await store.enqueue([plain])
        async with TaskQueue(store, "pickle", encryption_key=KEY) as queue:
            task_id = await queue.enqueue(_identity, secret)
            await Worker(queue).run(burst=True)
            result = await queue.get_result(task_id, timeout=0)
            record, refused = await store.get(task_id), await store.get(plain.id)
        assert result is not None and result.value == secret
        assert record is not None and record.result is not None
        assert secret.encode() not in record.result
        with pytest.raises(SignatureError, match="does not decrypt"):  # bound to its task
            Sealer(encryption_keys=[KEY.encode()]).open(record.result, OTHER_TASK, Part.RESULT, "pickle")
        assert refused is not None and refused.error is not None
        assert refused.error.startswith("SignatureError: ") and "is not encrypted" in refused.error


def _identity(value: str) -> str:
    return value


def _forged_task(forgery: Forgery) -> NewTask:
    """A task stored by someone without the key: a genuine call to `add`, forged as `forgery` says."""
    task = new_task(eta=utcnow(), options=TaskOptions(max_attempts=3))
    payload, serializer = forgery(task.id, Part.CALL, pickle.dumps((add, (1, 2), {})))
    return dataclasses.replace(task, payload=payload, serializer=serializer)
