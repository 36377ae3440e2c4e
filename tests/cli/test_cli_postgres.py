"""The `sitq` command against PostgreSQL: the same commands with a `postgresql://` URL, a schema per test."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sitq_command import Sitq


def test_enqueue_run_and_inspect_with_a_postgres_url(tmp_path: Path, postgres_url: str) -> None:
    sitq = Sitq(tmp_path, postgres_url)
    task_id = sitq.enqueue("cli_tasks:add", "2", "3")
    sitq.ok("worker", "cli_tasks", "--burst")
    shown = sitq.json("show", task_id)
    assert (shown["status"], shown["result"]) == ("success", 5)
    info = sitq.json("info")
    assert info["backend"] == "postgres" and info["queues"] == {"default": {"success": 1}}
    assert info["details"]["schema"] == parse_qs(urlsplit(postgres_url).query)["schema"][0]
    assert "PostgreSQL crash" in info["details"]["durability"]


def test_info_never_shows_the_password(tmp_path: Path, postgres_url: str) -> None:
    with_password = postgres_url.replace("://postgres@", "://postgres:hunter2@", 1)
    assert "hunter2" in with_password, "the test server's URL names user postgres with no password"
    shown = Sitq(tmp_path, with_password).ok("info")
    assert "hunter2" not in shown and "postgres:***@" in shown
