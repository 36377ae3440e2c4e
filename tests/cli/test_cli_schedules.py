"""`sitq schedule`: add, list, pause, resume and remove periodic tasks, for people and for scripts."""

from __future__ import annotations

from sitq_command import Sitq


def test_a_schedule_is_added_listed_paused_resumed_and_removed(sitq: Sitq) -> None:
    added = sitq.ok("schedule", "add", "sums", "cli_tasks:add", "2", "3", "--cron", "*/5 * * * *")
    assert added.startswith("schedule sums saved: next run ")
    sitq.ok(
        "schedule",
        "add",
        "nightly",
        "cli_tasks:echo",
        "x",
        "--cron",
        "30 2 * * *",
        "--timezone",
        "Europe/Paris",
        "--catch-up",
        "skip",
        "--kwargs",
        '{"k": 1}',
        "--queue",
        "reports",
        "--priority",
        "4",
    )
    listed = sitq.json("schedule", "list")["schedules"]
    assert [(each["name"], each["queue"], each["catch_up"]) for each in listed] == [
        ("nightly", "reports", "skip"),
        ("sums", "default", "once"),
    ]
    assert listed[0]["timezone"] == "Europe/Paris" and listed[0]["task_name"] == "cli_tasks.echo"
    table = sitq.ok("schedule")  # list is the default action
    assert "nightly" in table and "30 2 * * *" in table and "Europe/Paris" in table
    assert sitq.json("schedule", "pause", "sums")["paused"] is True
    assert "paused" in sitq.ok("schedule")
    assert sitq.json("schedule", "resume", "sums")["paused"] is False
    assert sitq.ok("schedule", "remove", "sums").strip() == "schedule sums removed"
    assert [each["name"] for each in sitq.json("schedule")["schedules"]] == ["nightly"]


def test_mistakes_exit_with_their_codes_in_one_line(sitq: Sitq) -> None:
    assert "no schedule named 'gone'" in sitq.fails(3, "schedule", "remove", "gone")
    assert "no schedule named 'gone'" in sitq.fails(3, "schedule", "pause", "gone")
    assert "is not a valid cron expression" in sitq.fails(
        2, "schedule", "add", "x", "cli_tasks:add", "--cron", "60 * * * *"
    )
    assert "not a known IANA time zone" in sitq.fails(
        2, "schedule", "add", "x", "cli_tasks:add", "--cron", "* * * * *", "--timezone", "Nowhere/City"
    )
    assert "no function" in sitq.fails(2, "schedule", "add", "x", "cli_tasks:nothing", "--cron", "* * * * *")
    assert sitq("schedule", "add", "x", "cli_tasks:add").returncode == 2  # --cron is required
    assert sitq.json("schedule") == {"schedules": []}
