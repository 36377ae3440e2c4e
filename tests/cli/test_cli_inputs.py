"""How the command reads what a person types: in-process, since these are pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sitq.cli.errors import CliError, ExitCode, classify
from sitq.cli.inputs import parse_argument, parse_duration, parse_eta, parse_kwargs
from sitq.errors import BackendError, TaskNotFoundError, ValidationError

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("4.5", 4.5),
        ("true", True),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ('"42"', "42"),
        ("hello", "hello"),
        ("hello world", "hello world"),
        ("", ""),
        ("{a: 1}", "{a: 1}"),
    ],
)
def test_an_argument_is_json_if_it_parses_else_text(text: str, value: object) -> None:
    assert parse_argument(text) == value


def test_kwargs_are_a_json_object() -> None:
    assert parse_kwargs('{"to": "ann", "n": [1]}') == {"to": "ann", "n": [1]}
    with pytest.raises(CliError, match="not valid JSON"):
        parse_kwargs("to=ann")
    with pytest.raises(CliError, match="takes a JSON object"):
        parse_kwargs('"ann"')


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("0.5s", 0.5),
        ("0s", 0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--older-than") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["7", "7 days", "s", "-1d", "1h 30m", "1y", ""])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(CliError, match="--older-than takes a number and a unit") as caught:
        parse_duration(text, "--older-than")
    assert caught.value.code is ExitCode.USAGE


def test_eta_is_a_delay_or_an_iso_time() -> None:
    assert parse_eta("90s", NOW) == NOW + timedelta(seconds=90)
    assert parse_eta("2030-06-01T12:00:00+02:00", NOW) == datetime(2030, 6, 1, 10, tzinfo=UTC)
    assert parse_eta("2030-06-01T12:00:00Z", NOW) == datetime(2030, 6, 1, 12, tzinfo=UTC)
    local = parse_eta("2030-06-01 12:00", NOW)
    assert local.utcoffset() is not None and local == datetime(2030, 6, 1, 12).astimezone()
    with pytest.raises(CliError, match="--eta takes a delay"):
        parse_eta("next week", NOW)


def test_errors_map_to_exit_codes_and_one_line() -> None:
    assert classify(TaskNotFoundError("x")) == (ExitCode.NOT_FOUND, "no task with id 'x' in this queue")
    assert classify(BackendError("disk\nfull")) == (ExitCode.BACKEND, "disk full")
    assert classify(ValidationError("bad"))[0] is ExitCode.USAGE
    assert classify(KeyboardInterrupt()) == (ExitCode.INTERRUPTED, "interrupted")
    code, message = classify(ZeroDivisionError("division by zero"))
    assert code is ExitCode.INTERNAL and "--debug" in message
