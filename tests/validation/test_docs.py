"""The README and every page in docs/ keep their promises: each Python block runs, links resolve, every
hook is documented, and the docs site (mkdocs.yml) shows every page.

A block that is not a whole program is preceded by ``<!-- not-runnable: reason -->`` and not run; there
must stay few of those. A reason of the form ``excerpt of PATH`` also makes the block's lines be checked
against that file, so the excerpt cannot drift from the code it quotes.

A block that names the PostgreSQL test server by its literal URL,
``"postgresql://postgres@127.0.0.1:5432/test"``, runs on the server the tests use (skipping without one,
see `postgres_server`) in a fresh schema: the quoted URL becomes that server's, with ``?schema=``.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from programs import run_program

import sitq
from sitq import hookspecs

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PLUGINS_PAGE = ROOT / "docs" / "plugins.md"
HOOKSPECS_PAGE = ROOT / "docs" / "reference" / "hookspecs.md"
REFERENCE = ROOT / "docs" / "reference"
MKDOCS_YML = ROOT / "mkdocs.yml"
MAX_NOT_RUNNABLE = 4  # "fewer than a handful"
POSTGRES_URL = '"postgresql://postgres@127.0.0.1:5432/test"'
"""The PostgreSQL URL the docs' programs name, quoted as they write it: their tests run it on the test
server, in a fresh database, so a program may create what it likes there."""

MARKER = re.compile(r"^\s*<!--\s*not-runnable:\s*(?P<reason>.+?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\S*)\s*$")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    page: Path
    number: int  # the block's position among the page's Python blocks, from 1
    line: int
    code: str
    not_runnable: str | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}#{self.number}"


def python_blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    number, index, reason = 0, 0, None
    while index < len(lines):
        marker, fence = MARKER.match(lines[index]), FENCE.match(lines[index])
        if marker:
            reason = marker["reason"]
        elif fence:
            start = index + 1
            index = start
            while index < len(lines) and lines[index].strip() != "```":
                index += 1
            if fence["lang"] == "python":
                number += 1
                code = textwrap.dedent("\n".join(lines[start:index])) + "\n"
                yield Block(page, number, start, code, reason)
            reason = None
        elif lines[index].strip():
            reason = None  # a marker counts only directly before its block
        index += 1


BLOCKS = [block for page in PAGES for block in python_blocks(page)]


def test_pages_are_found() -> None:
    assert ROOT / "README.md" in PAGES and PLUGINS_PAGE in PAGES
    assert len(BLOCKS) > 20


RUNNABLE = [block for block in BLOCKS if not block.not_runnable]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda block: block.name)
def test_python_block_runs(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if "sitq_tasklog" in block.code:
        request.getfixturevalue("require_tasklog_installed")
    code = block.code
    if POSTGRES_URL in code:  # a PostgreSQL program: on the test server, in a database of its own
        database = request.getfixturevalue("postgres_database")
        code = code.replace(POSTGRES_URL, repr(database))
    script = tmp_path / "docs_block.py"
    script.write_text(code, encoding="utf-8")
    completed = run_program(script, tmp_path)
    assert completed.returncode == 0, (
        f"Python block {block.number} of {block.page.relative_to(ROOT)} (line {block.line}) exited "
        f"{completed.returncode}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    )


def test_few_blocks_are_marked_not_runnable() -> None:
    marked = [f"{block.name}: {block.not_runnable}" for block in BLOCKS if block.not_runnable]
    assert len(marked) <= MAX_NOT_RUNNABLE, "\n".join(marked)


def test_every_marker_stands_right_before_a_python_block() -> None:
    markers = sum(bool(MARKER.match(line)) for page in PAGES for line in page.read_text().splitlines())
    assert markers == sum(1 for block in BLOCKS if block.not_runnable)


@pytest.mark.parametrize(
    "block",
    [block for block in BLOCKS if block.not_runnable and block.not_runnable.startswith("excerpt of ")],
    ids=lambda block: block.name,
)
def test_excerpts_match_the_code_they_quote(block: Block) -> None:
    assert block.not_runnable is not None
    source = (ROOT / block.not_runnable.removeprefix("excerpt of ")).read_text(encoding="utf-8")
    source_lines = {line.rstrip() for line in source.splitlines()}
    drifted = [line for line in block.code.splitlines() if line.strip() and line.rstrip() not in source_lines]
    assert not drifted, f"{block.name} quotes lines that are not in the file: {drifted}"


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, spelled as GitHub and mkdocs spell them."""
    found, in_code = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"^#{1,6}\s+(.+?)\s*$", line)):
            words = re.sub(r"[^\w\- ]", "", heading[1].lower())
            found.add(words.replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for match in LINK.finditer(page.read_text(encoding="utf-8")):
        target, _, anchor = match["target"].partition("#")
        if "://" in target or target.startswith("mailto:"):
            continue
        path = (page.parent / target) if target else page
        missing_heading = bool(anchor) and path.suffix == ".md" and anchor not in anchors(path)
        if not path.exists() or missing_heading:
            broken.append(match["target"])
    assert not broken, f"{page.relative_to(ROOT)} has links to missing files or headings: {broken}"


HOOKS = {
    name: function
    for name, function in vars(hookspecs).items()
    if name.startswith("sitq_") and hasattr(function, "sitq_spec")
}


def test_hookspecs_are_found() -> None:
    assert "sitq_task_failed" in HOOKS and "sitq_register_backends" in HOOKS


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_is_documented_with_its_arguments(hook: str) -> None:
    page = PLUGINS_PAGE.read_text(encoding="utf-8")
    heading = f"\n### {hook}\n"
    assert heading in page, f"docs/plugins.md has no section '### {hook}'"
    section = page.split(heading, 1)[1].split("\n### ", 1)[0]
    for argument in inspect.signature(HOOKS[hook]).parameters:
        assert f"{argument}:" in section, f"the section on {hook} does not show its argument {argument!r}"


def test_every_hook_has_a_docstring_for_the_api_reference() -> None:
    """docs/reference/hookspecs.md renders `sitq.hookspecs` from its docstrings, each hook included."""
    assert "::: sitq.hookspecs" in HOOKSPECS_PAGE.read_text(encoding="utf-8")
    undocumented = [name for name, function in HOOKS.items() if not inspect.getdoc(function)]
    assert not undocumented, f"these hooks have no docstring for the API reference: {undocumented}"


# A mkdocstrings directive, with the indented options under it.
DIRECTIVE = re.compile(r"^::: (?P<target>\S+)\n(?P<options>(?:[ \t]+\S.*\n)*)", re.MULTILINE)


def rendered_by_reference() -> Iterator[object]:
    """The objects of sitq the reference pages render: each `::: sitq.x.Name`, and each object of a
    `::: sitq.x` module (only those its `members:` option names, when it has one)."""
    for page in REFERENCE.glob("*.md"):
        for directive in DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            target = directive["target"]
            if not target.startswith("sitq."):
                continue
            members = re.findall(r"^\s+- (\w+)\s*$", directive["options"], re.MULTILINE)
            try:
                module = importlib.import_module(target)
            except ImportError:  # a class or function of a module
                module_name, _, name = target.rpartition(".")
                yield getattr(importlib.import_module(module_name), name)
                continue
            yield from (getattr(module, member) for member in members) if members else _own(module)


def _own(module: types.ModuleType) -> Iterator[object]:
    """What mkdocstrings renders of a whole module: the classes and functions it defines, not those it
    imports, and its variables (such as `sitq.hookspecs.hookimpl`)."""
    for value in vars(module).values():
        if not isinstance(value, type | types.FunctionType) or value.__module__ == module.__name__:
            yield value


def test_every_public_name_has_a_reference_entry() -> None:
    rendered = {id(found) for found in rendered_by_reference()}
    missing = [name for name in sitq.__all__ if id(getattr(sitq, name)) not in rendered]
    assert not missing, f"no page of docs/reference renders these names of sitq.__all__: {missing}"


class _MkdocsLoader(yaml.SafeLoader):
    """Reads mkdocs.yml as data: a `!!python/name:` tag (a Mermaid fence's formatter) becomes None."""


_MkdocsLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def nav_pages(entry: object) -> Iterator[str]:
    """Every page path in a mkdocs nav, whatever the nesting: `- page.md`, `- Title: page.md`, sections."""
    if isinstance(entry, str):
        if "://" not in entry:
            yield entry
    elif isinstance(entry, list):
        for item in entry:
            yield from nav_pages(item)
    elif isinstance(entry, dict):
        for value in entry.values():
            yield from nav_pages(value)


def test_every_docs_page_is_in_the_site_nav() -> None:
    config = yaml.load(MKDOCS_YML.read_text(encoding="utf-8"), Loader=_MkdocsLoader)
    docs = ROOT / config.get("docs_dir", "docs")
    in_nav = list(nav_pages(config["nav"]))
    pages = {page.relative_to(docs).as_posix() for page in docs.rglob("*.md")}
    orphans, missing = sorted(pages - set(in_nav)), sorted(set(in_nav) - pages)
    assert not orphans, f"pages in docs/ that the nav in mkdocs.yml does not list: {orphans}"
    assert not missing, f"the nav in mkdocs.yml lists pages that docs/ does not have: {missing}"
    assert len(in_nav) == len(set(in_nav)), "the nav in mkdocs.yml lists a page twice"
