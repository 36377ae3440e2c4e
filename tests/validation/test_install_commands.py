"""The README's two commands are the ones CI runs and the docs state, and the Pythons that every
distribution declares are the ones tox runs the suite on."""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = sorted([*ROOT.glob("sitq-*/pyproject.toml"), *ROOT.glob("examples/plugins/*/pyproject.toml")])


def try_it_commands() -> list[str]:
    """The console blocks of the README's "Try it" section: set up and run, then test."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```console\n(.+?)\n```", section)


def tox_pythons() -> set[str]:
    """The Python versions of tox's default environments, `py3{11,12}` read as 3.11 and 3.12."""
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envlist = tox["tox"]["envlist"]
    versions = {
        f"3.{minor}" for group in re.findall(r"py3\{([\d,]+)\}", envlist) for minor in group.split(",")
    }
    return versions | {f"3.{minor}" for minor in re.findall(r"\bpy3(\d+)\b", envlist)}


def test_the_readme_gives_two_commands() -> None:
    setup, test = try_it_commands()
    assert setup.startswith("python3 -m venv ")
    assert test.startswith("python3 -m venv ")  # Debian's python3 refuses a pip install outside a venv


def test_ci_runs_exactly_the_readmes_test_command_last() -> None:
    _, test = try_it_commands()
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == test


def test_the_docs_state_the_readmes_test_command() -> None:
    _, test = try_it_commands()
    for page in ("installation.md", "testing.md"):
        text = " ".join((ROOT / "docs" / "how-to" / page).read_text(encoding="utf-8").split())
        assert test in text, page


def test_every_distribution_declares_the_pythons_that_tox_tests() -> None:
    tested = tox_pythons()
    assert {"3.11", "3.12", "3.13"} <= tested
    for project in PROJECTS:
        metadata = tomllib.loads(project.read_text(encoding="utf-8"))["project"]
        declared = {
            classifier.rsplit(" :: ", 1)[1]
            for classifier in metadata.get("classifiers", [])
            if classifier.startswith("Programming Language :: Python :: 3.")
        }
        assert declared == tested, project
        assert metadata["requires-python"] == f">={min(tested, key=lambda v: int(v[2:]))}", project
