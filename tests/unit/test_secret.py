"""`sitq.Secret` on its own: how it shows (never its value), how it compares, that every serializer carries
it, and that the errors of a bad call show it masked."""

from __future__ import annotations

import logging
import pickle

import pytest
from sample_tasks import multiply

import sitq
from sitq import Secret, Serializer, Task, TaskQueue, ValidationError

MASKED = "Secret('********')"


def test_it_never_shows_its_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("hunter2")
    with caplog.at_level(logging.INFO):
        logging.getLogger("app").info("logging in with %s, %r", secret, secret)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>30}"]
    shown += [repr([secret]), repr({"password": secret}), repr(Task(multiply, [secret, 2]))]
    shown.append(caplog.text)
    assert [text for text in shown if "hunter2" in text] == []
    assert str(secret) == repr(secret) == MASKED
    assert f"{secret:>20}" == f"{MASKED:>20}"


def test_reveal_gives_the_value_and_equality_is_by_value() -> None:
    token = Secret(b"\x00key")
    assert token.reveal() == b"\x00key"
    assert token == Secret(b"\x00key") and hash(token) == hash(Secret(b"\x00key"))
    assert token != Secret(b"other") and token != b"\x00key"
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2


def test_an_empty_secret_is_true_like_any_object_so_truth_says_nothing_of_the_value() -> None:
    assert Secret("") and Secret(0) and Secret(None)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_pickle_protocol_carries_it(protocol: int) -> None:
    assert pickle.loads(pickle.dumps(Secret("hunter2"), protocol=protocol)) == Secret("hunter2")


@pytest.mark.parametrize("name", ["pickle", "json", "cloudpickle", "dill"])
def test_every_serializer_carries_it_in_a_call_at_any_depth(name: str) -> None:
    serializer: Serializer = TaskQueue("memory://", name).serializer
    call = (multiply, [Secret("pw"), {"nested": [Secret(42)]}], {"token": Secret(["a", 1])})
    function, args, kwargs = serializer.loads(serializer.dumps(call))
    assert function is multiply
    assert list(args) == [Secret("pw"), {"nested": [Secret(42)]}]
    assert kwargs == {"token": Secret(["a", 1])}


def test_json_writes_it_as_a_one_key_object_and_leaves_other_objects_alone() -> None:
    json = sitq.JsonSerializer()
    assert json.dumps([Secret("pw")]) == b'[{"__sitq_secret__":"pw"}]'
    plain = {"__sitq_secret__": "pw", "other": 1}
    assert json.loads(json.dumps(plain)) == plain


async def test_the_errors_of_a_bad_call_show_it_masked() -> None:
    with pytest.raises(ValidationError) as not_a_list:
        Task(multiply, args=Secret("hunter2"))  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(ValidationError) as not_names:
        Task(multiply, kwargs={1: Secret("hunter2")})  # type: ignore[dict-item]  # the mistake under test
    async with TaskQueue("memory://") as queue:
        with pytest.raises(ValidationError) as does_not_fit:
            await queue.enqueue(multiply, Secret("hunter2"), Secret("hunter2"), Secret("hunter2"))
    messages = [str(error.value) for error in (not_a_list, not_names, does_not_fit)]
    assert [message for message in messages if "hunter2" in message] == []
    assert MASKED in messages[0] and MASKED in messages[1]
    assert "multiply" in messages[2]
