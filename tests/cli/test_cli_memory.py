"""The command against `memory://`. Each command is a process of its own and memory is per process, so
what is tested here is what stands alone: describing the backend and the plugins, empty inspections,
enqueueing, a worker's start and stop, and the not-found answers."""

from __future__ import annotations

import re

from sitq_command import Sitq


def test_info_says_memory_keeps_nothing(sitq_memory: Sitq) -> None:
    info = sitq_memory.json("info")
    assert (info["url"], info["backend"], info["queues"]) == ("memory://", "memory", {})
    assert info["details"]["durability"].startswith("none")
    assert "durability" in sitq_memory.ok("info")


def test_compact_says_memory_has_nothing_on_disk(sitq_memory: Sitq) -> None:
    assert sitq_memory.json("compact") == {"bytes_before": 0, "bytes_after": 0}
    assert sitq_memory.ok("compact") == "compacted: 0 B on disk before, 0 B after (0 B given back)\n"


def test_plugins_lists_every_plugin_with_what_it_provides(sitq_memory: Sitq) -> None:
    plugins = {plugin["name"]: plugin for plugin in sitq_memory.json("plugins")}
    builtins = plugins["sitq.builtins"]
    assert (builtins["distribution"], builtins["backends"], builtins["serializers"]) == (
        "sitq-core",
        ["memory"],
        ["json", "pickle"],
    )
    assert (plugins["sqlite"]["distribution"], plugins["sqlite"]["backends"]) == ("sitq-sqlite", ["sqlite"])
    assert plugins["cloudpickle"]["serializers"] == ["cloudpickle"]
    human = sitq_memory.ok("plugins")
    for expected in ("sitq.builtins", "sitq-core", "memory", "json, pickle", "sitq-sqlite"):
        assert expected in human


def test_an_empty_store_has_nothing_to_list_count_or_purge(sitq_memory: Sitq) -> None:
    assert sitq_memory.json("stats") == {}
    assert sitq_memory.json("list") == {"tasks": [], "next_after": None}
    assert sitq_memory.json("purge", "--older-than", "7d") == {"purged": 0}
    empty = sitq_memory("list")
    assert (empty.returncode, empty.stdout, empty.stderr.strip()) == (0, "", "no tasks")


def test_enqueue_prints_the_new_tasks_id(sitq_memory: Sitq) -> None:
    enqueued = sitq_memory.json("enqueue", "cli_tasks:add", "1", "2")
    assert (enqueued["name"], enqueued["status"]) == ("cli_tasks.add", "pending")
    assert len(sitq_memory.enqueue("cli_tasks:add", "1", "2")) == 32


def test_a_burst_worker_with_nothing_to_do_starts_and_stops(sitq_memory: Sitq) -> None:
    burst = sitq_memory("worker", "cli_tasks", "--burst", "--concurrency", "3")
    assert burst.returncode == 0, burst.stderr
    assert "started on memory://, queues default, up to 3 task(s) at once" in burst.stderr
    assert re.search(r"worker \S+ stopped$", burst.stderr, re.MULTILINE)


def test_unknown_ids_are_not_found(sitq_memory: Sitq) -> None:
    for command in ("show", "cancel", "requeue", "wait"):
        line = sitq_memory.fails(3, command, "no-such-task")
        assert line == "sitq: error: no task with id 'no-such-task' in this queue"
    assert "no workflow with id 'nope'" in sitq_memory.fails(3, "wait", "--workflow", "nope")
    sitq_memory.fails(3, "list", "--after", "no-such-task")
