"""The `sitq` command checks what it is given as the Python API does: one line and exit 2, nothing stored."""

from __future__ import annotations

import pytest
from sitq_command import Sitq


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "--queue", " padded"), "queue must be a non-empty str of at most 200 printable characters"),
        (("list", "--queue", "tab\there"), "queue must be a non-empty str"),
        (("list", "--limit", "20000"), "limit must be a whole number >= 1 and <= 10000"),
        (("purge", "--older-than", "1d", "--queue", "a\nb"), "queue must be a non-empty str"),
        (("enqueue", "cli_tasks:add", "1", "--queue", "x" * 201), "queue must be a non-empty str"),
        (("enqueue", "cli_tasks:add", "1"), "the arguments do not fit cli_tasks.add(a: 'int', b: 'int')"),
        (("enqueue", "cli_tasks:add", "1", "2", "--kwargs", '{"c": 3}'), "unexpected keyword argument 'c'"),
        (
            ("worker", "cli_tasks", "--burst", "--queue", "new\nline"),
            "each of queues must be a non-empty str",
        ),
    ],
)
def test_bad_values_are_refused_in_one_line(sitq: Sitq, args: tuple[str, ...], message: str) -> None:
    assert message in sitq.fails(2, *args)
    assert sitq.json("list")["tasks"] == []
