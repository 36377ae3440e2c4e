"""docs/performance.md shows the committed benchmark run, not an older or a hand-edited one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "performance.md"
UPDATE = (
    "after a new run of bench/run.py, copy the table of bench/results/results.md into docs/performance.md "
    "and bench/results/results.png to docs/images/benchmark.png"
)


def table(markdown: str) -> list[str]:
    """The results table: the block of rows that starts with the header row."""
    lines = markdown.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| Workload |"))
    end = next((index for index in range(start, len(lines)) if not lines[index].startswith("|")), len(lines))
    return lines[start:end]


def test_the_page_shows_the_committed_results_table() -> None:
    assert table(PAGE.read_text()) == table((RESULTS / "results.md").read_text()), UPDATE


def test_the_page_shows_the_committed_plot() -> None:
    assert (ROOT / "docs" / "images" / "benchmark.png").read_bytes() == (
        RESULTS / "results.png"
    ).read_bytes(), UPDATE
