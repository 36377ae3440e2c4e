"""docs/performance.md shows the committed benchmark runs, not older or hand-edited ones: the SQLite section's
table and plot first, then the PostgreSQL section's, then the cost of signing."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "performance.md"
SECTIONS = {
    "sqlite": (RESULTS, ROOT / "docs" / "images" / "benchmark.png"),
    "postgres": (RESULTS / "postgres", ROOT / "docs" / "images" / "benchmark-postgres.png"),
    "signing": (RESULTS / "signing", ROOT / "docs" / "images" / "benchmark-signing.png"),
}


COMMANDS = {
    "sqlite": "--backend sqlite",
    "postgres": "--backend postgres",
    "signing": "--only enqueue,drain --peers huey --repeat 5 --out bench/results/signing",
}


def update(section: str) -> str:
    results, image = SECTIONS[section]
    return (
        f"after a new run of bench/run.py {COMMANDS[section]}, copy the table of "
        f"{results.relative_to(ROOT)}/results.md into docs/performance.md and "
        f"{results.relative_to(ROOT)}/results.png to {image.relative_to(ROOT)}"
    )


def tables(markdown: str) -> list[list[str]]:
    """The results tables, in order: each the block of rows that starts with a header row."""
    lines = markdown.splitlines()
    found = []
    for start, line in enumerate(lines):
        if line.startswith("| Workload |"):
            end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
            found.append(lines[start:end])
    return found


@pytest.mark.parametrize(("position", "section"), list(enumerate(SECTIONS)))
def test_the_page_shows_the_committed_results_table(position: int, section: str) -> None:
    results, _ = SECTIONS[section]
    [committed] = tables((results / "results.md").read_text())
    shown = tables(PAGE.read_text())
    assert len(shown) == len(SECTIONS), "docs/performance.md shows one results table per section"
    assert shown[position] == committed, update(section)


@pytest.mark.parametrize("section", SECTIONS)
def test_the_page_shows_the_committed_plot(section: str) -> None:
    results, image = SECTIONS[section]
    assert image.read_bytes() == (results / "results.png").read_bytes(), update(section)
    assert f"images/{image.name}" in PAGE.read_text(), f"docs/performance.md shows {image.name}"


HELD_BACK = {
    "sqlite": RESULTS / "limits",
    "postgres": RESULTS / "limits" / "postgres",
}
"""bench/held_back.py's runs: claims with tasks held back by a concurrency limit, against none."""


def claim_tables(markdown: str) -> list[list[str]]:
    """The held-back benchmark's tables, in order: each the block of rows that starts with its header."""
    lines = markdown.splitlines()
    return [
        lines[start : next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))]
        for start, line in enumerate(lines)
        if line.startswith("| Claim |")
    ]


@pytest.mark.parametrize(("position", "section"), list(enumerate(HELD_BACK)))
def test_the_page_shows_the_committed_held_back_claims(position: int, section: str) -> None:
    results = HELD_BACK[section]
    [committed] = claim_tables((results / "results.md").read_text())
    shown = claim_tables(PAGE.read_text())
    assert len(shown) == len(HELD_BACK), "docs/performance.md shows one held-back claims table per backend"
    assert shown[position] == committed, (
        f"after a new run of bench/held_back.py --backend {section}, copy the table of "
        f"{results.relative_to(ROOT)}/results.md into docs/performance.md"
    )
