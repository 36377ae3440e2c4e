"""docs/cli.md keeps up with the command: every command has a section naming each of its options, and
every exit code is in the table."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sitq.cli.app import build_parser
from sitq.cli.errors import ExitCode

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands() -> dict[str, argparse.ArgumentParser]:
    [subcommands] = [
        action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
    ]
    return dict(subcommands.choices)


COMMANDS = _commands()


def _section(command: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    heading = f"\n### `sitq {command}`\n"
    assert heading in text, f"docs/cli.md has no section '### `sitq {command}`'"
    return text.split(heading, 1)[1].split("\n### ", 1)[0]


def test_the_commands_are_found() -> None:
    assert {"worker", "enqueue", "list", "show", "wait", "plugins", "info"} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_and_option_is_documented(command: str) -> None:
    section = _section(command)
    options = {
        option
        for action in COMMANDS[command]._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    missing = sorted(option for option in options if not re.search(rf"(?<![\w-]){option}(?![\w-])", section))
    assert not missing, f"the section on `sitq {command}` does not show {missing}"


def test_the_sections_follow_the_commands_order() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert re.findall(r"^### `sitq (\w+)`$", text, re.MULTILINE) == list(COMMANDS)


def test_every_exit_code_is_in_the_table() -> None:
    table = PAGE.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def test_the_global_options_are_documented() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert "sitq --version" in text and "sitq --debug" in text and "python -m sitq.cli" in text
