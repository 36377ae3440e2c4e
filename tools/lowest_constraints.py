"""Write a pip constraints file that pins every dependency to the lowest version sitq declares for it.

tox's `lowest` environment installs with it, so that each lower bound in a distribution's pyproject.toml
(and in the requirements given as arguments: the test environment's own) is one the suite passes with.
Bounds are read from the pyproject.toml files at every run, so the constraints never drift from them.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = sorted([*ROOT.glob("sitq-*/pyproject.toml"), *ROOT.glob("examples/plugins/*/pyproject.toml")])


def declared(project: Path) -> Iterator[str]:
    """Every requirement of one distribution: its dependencies and those of each of its extras."""
    metadata = tomllib.loads(project.read_text())["project"]
    yield from metadata.get("dependencies", [])
    for extra in metadata.get("optional-dependencies", {}).values():
        yield from extra


def lowest_versions(requirements: Iterable[str], own: Collection[str]) -> dict[str, Version]:
    """The lowest version allowed by every lower bound of each dependency, the distributions' own aside."""
    lowest: dict[str, Version] = {}
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # a path such as ./sitq-core[testing]: one of ours
        name = canonicalize_name(requirement.name)
        bounds = [
            Version(spec.version) for spec in requirement.specifier if spec.operator in {">=", "==", "~="}
        ]
        if name in own or not bounds:
            continue
        lowest[name] = max([*bounds, lowest.get(name, bounds[0])])
    return lowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="*", help="more requirements, such as the tests' own")
    parser.add_argument("--output", type=Path, required=True, help="the constraints file to write")
    arguments = parser.parse_args()
    own = {canonicalize_name(tomllib.loads(p.read_text())["project"]["name"]) for p in PROJECTS}
    requirements = [line for project in PROJECTS for line in declared(project)] + arguments.requirements
    pins = lowest_versions(requirements, own)
    arguments.output.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    print(f"lowest declared versions: {', '.join(f'{n} {v}' for n, v in sorted(pins.items()))}")


if __name__ == "__main__":
    main()
