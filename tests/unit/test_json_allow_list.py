"""The `json` serializer calls only functions the process knows as tasks: a stored payload that names
any other is refused before anything is imported or called, with a message saying how to allow it."""

from __future__ import annotations

import json
import sys
from typing import Any
from unittest import mock

import pytest
from user_modules import UserModules

import sitq
from sitq import JsonSerializer, SerializationError, ValidationError

HOW_TO_ALLOW = (
    r"decorate it with @sitq\.task, pass its module to `sitq worker`, or call sitq\.register_tasks\(\)"
)

TASKS = """
    import os
    from os.path import join

    import sitq


    def double(x):
        return 2 * x


    @sitq.task()
    def decorated(x):
        return x


    class Shapes:
        @staticmethod
        def unit():
            return 1
"""


def naming(name: Any, *args: Any) -> bytes:
    """A stored call as the json serializer writes one, naming whatever function it likes."""
    return json.dumps([{"__sitq_callable__": name}, list(args), {}]).encode()


def refused(name: str) -> None:
    with pytest.raises(SerializationError, match=rf"names the function '{name}'.*{HOW_TO_ALLOW}"):
        JsonSerializer().loads(naming(name, "echo owned"))


def test_a_payload_naming_os_system_is_refused_and_nothing_is_called() -> None:
    with mock.patch("os.system") as system:
        refused("os:system")
    system.assert_not_called()


def test_a_function_of_an_unregistered_module_is_refused_and_its_module_never_imported(
    user_modules: UserModules,
) -> None:
    name = user_modules.write("unregistered", "def run(command):\n    raise AssertionError(command)\n")
    refused(f"{name}:run")
    assert name not in sys.modules
    assert not user_modules.imported(name)


def test_a_registered_module_allows_what_it_defines_and_nothing_it_imported(
    user_modules: UserModules,
) -> None:
    tasks = user_modules.load("tasks", TASKS)
    sitq.register_tasks(tasks)
    function, args, _ = JsonSerializer().loads(naming(f"{tasks.__name__}:double", 21))
    assert function is tasks.double and function(*args) == 42
    assert JsonSerializer().loads(naming(f"{tasks.__name__}:Shapes.unit"))[0]() == 1
    for borrowed in ("os.system", "join", "os", "sitq.task", "double.__globals__", "missing", "Shapes.nope"):
        refused(f"{tasks.__name__}:{borrowed}")


def test_sitq_task_registers_the_function_it_decorates(user_modules: UserModules) -> None:
    tasks = user_modules.load("tasks", TASKS)
    assert JsonSerializer().loads(naming(f"{tasks.__name__}:decorated"))[0] is tasks.decorated
    refused(f"{tasks.__name__}:double")


def test_register_tasks_allows_one_function(user_modules: UserModules) -> None:
    tasks = user_modules.load("tasks", TASKS)
    sitq.register_tasks(tasks.double)
    assert JsonSerializer().loads(naming(f"{tasks.__name__}:double"))[0] is tasks.double
    refused(f"{tasks.__name__}:Shapes.unit")


@pytest.mark.parametrize("target", [lambda: None, "os", 42], ids=["a lambda", "a module's name", "a number"])
def test_register_tasks_refuses_what_json_cannot_name(target: Any) -> None:
    with pytest.raises(ValidationError, match="register_tasks\\(\\) takes modules, and functions defined"):
        sitq.register_tasks(target)


def test_a_function_this_process_encoded_is_known_to_it(user_modules: UserModules) -> None:
    tasks = user_modules.load("tasks", TASKS)
    refused(f"{tasks.__name__}:double")
    JsonSerializer().dumps((tasks.double, (1,), {}))
    assert JsonSerializer().loads(naming(f"{tasks.__name__}:double"))[0] is tasks.double


def test_a_function_named_by_anything_but_a_string_is_refused() -> None:
    with pytest.raises(SerializationError, match="names a function by a string, not by int"):
        JsonSerializer().loads(naming(1))


def test_a_name_of_any_length_is_cut_short_in_the_message() -> None:
    with pytest.raises(SerializationError) as raised:
        JsonSerializer().loads(naming("x" * 100_000 + ":f"))
    assert len(str(raised.value)) < 400


def test_json_still_refuses_to_encode_what_it_could_not_name() -> None:
    with pytest.raises(TypeError, match="json can only store functions importable by name"):
        JsonSerializer().dumps(len.__call__)
