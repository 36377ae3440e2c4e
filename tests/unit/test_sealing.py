"""Keys, seals and every decode path: what a signed or encrypted queue accepts, and that random or truncated
bytes only ever give a `SerializationError`."""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitq import (
    ConfigurationError,
    SerializationError,
    SignatureError,
    SyncTaskQueue,
    TaskQueue,
    ValidationError,
    Worker,
)
from sitq.codec import Codec
from sitq.plugins import default_plugins
from sitq.sealing import ENCRYPTION_KEY_ENV, SIGNING_KEY_ENV, Part, Sealer

KEY = b"unit-test-signing-key-0123456789"
OLD = b"unit-test-previous-key-012345678"
SERIALIZERS = sorted(default_plugins().serializers)
SEALERS = {
    "signed": Sealer([KEY]),
    "encrypted": Sealer(encryption_keys=[KEY]),
    "signed and encrypted": Sealer([KEY], [OLD]),
}
FUZZ = settings(max_examples=150, deadline=timedelta(seconds=2))


@pytest.mark.parametrize("sealer", SEALERS.values(), ids=SEALERS)
def test_a_sealed_blob_opens_only_as_what_it_was_sealed_for(sealer: Sealer) -> None:
    blob = sealer.seal(b"data", "t1", Part.CALL, "pickle")
    assert blob != b"data" and sealer.open(blob, "t1", Part.CALL, "pickle") == b"data"
    for task_id, part, serializer in (
        ("t2", Part.CALL, "pickle"),
        ("t1", Part.RESULT, "pickle"),
        ("t1", Part.CALL, "json"),
    ):
        with pytest.raises(SignatureError, match="It was not decoded"):
            sealer.open(blob, task_id, part, serializer)


def test_a_rotated_key_list_opens_the_old_and_seals_with_the_first() -> None:
    old_blob = Sealer([OLD]).seal(b"data", "t", Part.RESULT, "json")
    rotated = Sealer([KEY, OLD])
    assert rotated.open(old_blob, "t", Part.RESULT, "json") == b"data"
    assert Sealer([KEY]).open(rotated.seal(b"x", "t", Part.RESULT, "json"), "t", Part.RESULT, "json") == b"x"
    with pytest.raises(SignatureError, match="1 signing key"):
        Sealer([KEY]).open(old_blob, "t", Part.RESULT, "json")


def test_without_keys_nothing_is_sealed_and_a_signed_blob_is_read_unverified() -> None:
    plain = Sealer()
    assert plain.seal(b"data", "t", Part.CALL, "json") == b"data"
    assert plain.open(Sealer([KEY]).seal(b"data", "t", Part.CALL, "json"), "t", Part.CALL, "json") == b"data"
    encrypted = Sealer(encryption_keys=[KEY]).seal(b"data", "t", Part.CALL, "json")
    with pytest.raises(SerializationError, match="SITQ_ENCRYPTION_KEY") as refused:
        plain.open(encrypted, "t", Part.CALL, "json")
    assert not isinstance(refused.value, SignatureError)


def test_encryption_leaves_nothing_readable() -> None:
    blob = Sealer([KEY], [KEY]).seal(b"card 4111 1111 1111 1111", "t", Part.CALL, "json")
    assert b"4111" not in blob
    assert Sealer([KEY], [KEY]).open(blob, "t", Part.CALL, "json") == b"card 4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("short", "5 bytes long; keys must have at least 16: make one with"),
        ([], "non-empty sequence"),
        ([KEY, 7], "must be a string or bytes, not int"),
        (42, "takes a string or bytes"),
    ],
)
def test_a_bad_key_argument_says_what_is_wrong(key: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TaskQueue("memory://", signing_key=key)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ValidationError, match=message):
        Worker("memory://", encryption_key=key)  # type: ignore[arg-type]  # the point of the test


def test_keys_come_from_the_environment_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, f"{KEY.decode()},{OLD.decode()}")
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, KEY.decode())
    sealer = Sealer.configured(None, None)
    assert sealer.signing_keys == (KEY, OLD) and sealer.encryption_keys == (KEY,)
    assert Sealer.configured("an-argument-beats-the-environment", None).signing_keys == (
        b"an-argument-beats-the-environment",
    )
    monkeypatch.setenv(SIGNING_KEY_ENV, "tiny")
    with pytest.raises(ConfigurationError, match=r"\$SITQ_SIGNING_KEY is 4 bytes long"):
        Sealer.configured(None, None)
    monkeypatch.setenv(SIGNING_KEY_ENV, "")
    assert Sealer.configured(None, None).signing_keys == ()


def test_accept_is_checked_when_the_queue_is_built() -> None:
    with pytest.raises(ValidationError, match="leaves out 'pickle'"):
        TaskQueue("memory://", "pickle", accept=["json"])
    with pytest.raises(ConfigurationError, match="no-such-serializer"):
        Worker("memory://", accept=["no-such-serializer"])
    with pytest.raises(ValidationError, match="list of serializer names"):
        Worker("memory://", accept="json")


def _codecs(sealer: Sealer) -> list[Codec]:
    plugins = default_plugins()
    return [Codec(plugins, plugins.serializer(name), sealer) for name in SERIALIZERS]


def _decode_paths(codec: Codec, blob: bytes) -> None:
    """Every way stored bytes are decoded: a call (worker), a result (client, parents of a workflow)."""
    name = codec.serializer.name
    for decode in (
        lambda: codec.decode_call("t", blob, name),
        lambda: codec.decode_value("t", blob, name),
        lambda: codec.decode_parent_results((("t", blob, name),)),
    ):
        with pytest.raises(SerializationError):
            decode()


@FUZZ
@given(blob=st.binary(max_size=512))
def test_random_bytes_never_reach_a_deserializer_of_a_signed_queue(blob: bytes) -> None:
    for sealer in SEALERS.values():
        for codec in _codecs(sealer):
            name = codec.serializer.name
            with pytest.raises(SignatureError):
                codec.decode_call("t", blob, name)
            with pytest.raises(SignatureError):
                codec.decode_value("t", blob, name)


@FUZZ
@given(blob=st.binary(max_size=512), signed_prefix=st.booleans())
def test_random_bytes_give_the_json_serializer_only_serialization_errors(
    blob: bytes, signed_prefix: bool
) -> None:
    if signed_prefix:  # a keyless reader strips what looks like a signature, then decodes the rest
        blob = Sealer([KEY]).seal(blob, "t", Part.CALL, "json")
    plugins = default_plugins()
    codec = Codec(plugins, plugins.serializer("json"))
    with contextlib.suppress(SerializationError):  # anything else fails the test
        codec.decode_call("t", blob, "json")
    with contextlib.suppress(SerializationError):
        codec.decode_value("t", blob, "json")


@FUZZ
@given(data=st.data())
def test_truncated_blobs_give_only_serialization_errors(data: st.DataObject) -> None:
    for sealer in (Sealer(), *SEALERS.values()):
        for codec in _codecs(sealer):
            blob = codec.encode_call("t", math.hypot, (3, 4), {"extra": list(range(20))})
            cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
            _decode_paths(codec, blob[:cut])


def test_a_sync_queue_signs_and_a_worker_built_from_a_queue_shares_its_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    with SyncTaskQueue(url, signing_key=KEY) as queue:
        task_id = queue.enqueue(math.hypot, 3, 4)
    with SyncTaskQueue(url, signing_key=OLD) as other:
        other.enqueue(math.hypot, 5, 12)

    async def drain() -> dict[str, str | None]:
        async with TaskQueue(url, signing_key=KEY) as keyed:
            await Worker(keyed).run(burst=True)
            return {info.id: info.error for info in await keyed.list_tasks()}

    errors = asyncio.run(drain())
    assert errors.pop(task_id) is None
    [refused] = errors.values()
    assert refused is not None and refused.startswith("SignatureError: ")


def test_a_worker_built_from_a_queue_takes_each_key_it_is_not_given_from_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, "from-the-environment-0123456789")
    queue = TaskQueue("memory://", signing_key=KEY)
    assert Worker(queue)._codec.sealer.signing_keys == (KEY,)
    encrypting = Worker(queue, encryption_key=OLD)._codec.sealer
    assert encrypting.signing_keys == (KEY,) and encrypting.encryption_keys == (OLD,)
    assert Worker(queue, signing_key=OLD)._codec.sealer.signing_keys == (OLD,)
    assert Worker("memory://")._codec.sealer.signing_keys == (b"from-the-environment-0123456789",)
