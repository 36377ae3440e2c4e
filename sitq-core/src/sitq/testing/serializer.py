"""The serializer contract: what every serializer must carry, exactly, for sitq to work on top of it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from sitq.serializer import Serializer

PLAIN_VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**63),
    3.25,
    "",
    "naïve ☃",
    [1, "two", None],
    {"nested": {"list": [1, 2], "empty": {}}},
]


def module_level_task(x: int) -> int:
    """A function importable by name: the least a task queue serializer must carry."""
    return x + 1


class SerializerConformance:
    """Subclass and override the `serializer` fixture to return an instance of your serializer."""

    @pytest.fixture
    def serializer(self) -> Serializer:
        raise NotImplementedError("override the `serializer` fixture to return your serializer")

    def test_has_a_name(self, serializer: Serializer) -> None:
        assert isinstance(serializer.name, str) and serializer.name
        assert isinstance(serializer, Serializer)

    @pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
    def test_round_trips_plain_data(self, serializer: Serializer, value: Any) -> None:
        data = serializer.dumps(value)
        assert isinstance(data, bytes)
        assert serializer.loads(data) == value

    def test_round_trips_a_call_to_an_importable_function(self, serializer: Serializer) -> None:
        function, args, kwargs = serializer.loads(serializer.dumps((module_level_task, (41,), {"x": 1})))
        assert function(*args) == 42
        assert kwargs == {"x": 1}

    def test_a_fresh_instance_decodes_what_another_encoded(self, serializer: Serializer) -> None:
        """Workers build serializers by name, so bytes must not depend on the instance that wrote them."""
        fresh = type(serializer)()
        assert fresh.loads(serializer.dumps({"a": [1, 2]})) == {"a": [1, 2]}

    def test_rejects_what_it_cannot_carry_by_raising(self, serializer: Serializer) -> None:
        """An unsupported value must raise, never encode to something that decodes differently."""
        value = datetime.timezone  # a class: some serializers carry it, none may corrupt it
        try:
            data = serializer.dumps(value)
        except Exception:
            return
        assert serializer.loads(data) is value
