"""Turn the measurements of bench/run.py into the report: medians, ratios to sitq, the issue's targets
checked, a Markdown table and a PNG plot. ``write(results, out_dir)`` returns the Markdown.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PEER_ORDER = ("sitq", "sitq-normal", "huey", "gigq")
COLORS = {"sitq": "#1f77b4", "sitq-normal": "#9ecae1", "huey": "#ff7f0e", "gigq": "#2ca02c"}
X = "\N{MULTIPLICATION SIGN}"
MINUS = "\N{MINUS SIGN}"
SYNC_ONLY = "\N{DAGGER}"
RATE, MS, CPU, MIB = "tasks/s", "ms", "% of a core", "MiB"


@dataclass(frozen=True)
class Row:
    """One line of the table: one metric of one measure, for each peer that ran it. Labels may name
    the run's settings, as in ``{backlog:,}``."""

    group: str
    label: str
    workload: str
    measure: str
    field: str = "rate"
    unit: str = RATE
    higher_is_better: bool | None = True
    """None: a count, with no ratio to sitq."""
    peer_measure: str | None = None
    """The measure that stands in for Huey and GigQ (their sync no-op in the async row)."""
    worst: bool = False
    """Show the worst repetition instead of the median (a duplicate in any run is one too many)."""


ENQUEUE, DRAIN1, DRAIN4 = "Enqueue", "Drain, 1 worker process", "Drain, 4 worker processes"
CROSS, SAME = "Latency, worker in another process", "Latency, worker in the same process"
BACKLOG, PLUGINS, MEMORY = (
    "Backlog, drain {due:,} due",
    "Plugins (sitq, drain async)",
    "Worker memory (peak RSS)",
)

ENQUEUE_ONE = Row(ENQUEUE, "one at a time, 1 producer", "enqueue", "enqueue-one")
ENQUEUE_MANY = Row(ENQUEUE, "enqueue_many, {batch:,} per call", "enqueue", "enqueue-batch")
PRODUCERS = Row(ENQUEUE, "100 concurrent producers", "enqueue", "enqueue-concurrent")
DRAIN_ASYNC = Row(DRAIN1, "no-op async task", "drain", "drain-async", peer_measure="drain-sync")
DRAIN_SYNC = Row(DRAIN1, "no-op sync task", "drain", "drain-sync")
DRAIN_4 = Row(DRAIN4, "recording task", "drain4", "drain-4")
DUPLICATES = Row(
    DRAIN4, f"duplicates (runs {MINUS} N), worst run", "drain4", "drain-4", "duplicates", "", None, worst=True
)
MISSING = Row(DRAIN4, "missing tasks, worst run", "drain4", "drain-4", "missing", "", None, worst=True)
CROSS_P50 = Row(CROSS, "p50", "latency", "latency-cross", "p50_ms", MS, False)
CROSS_P99 = Row(CROSS, "p99", "latency", "latency-cross", "p99_ms", MS, False)
SAME_P50 = Row(SAME, "p50", "latency", "latency-inprocess", "p50_ms", MS, False)
SAME_P99 = Row(SAME, "p99", "latency", "latency-inprocess", "p99_ms", MS, False)
IDLE_CPU = Row("Idle worker process", "CPU over 5 s", "latency", "idle-cpu", "cpu_percent", CPU, False)
BACKLOG_EMPTY = Row(BACKLOG, "empty table", "backlog", "backlog-empty")
BACKLOG_FULL = Row(BACKLOG, "with {backlog:,} future tasks", "backlog", "backlog-full")
PLUGINS_NONE = Row(PLUGINS, "none", "plugins", "drain-async")
PLUGINS_NOOP = Row(PLUGINS, "a do-nothing observer", "plugins", "drain-async-plugin")
MEMORY_SMALL = Row(MEMORY, "1,000 queued", "memory", "memory-small", "rss_mb", MIB, False)
MEMORY_LARGE = Row(MEMORY, "{memory_tasks:,} queued", "memory", "memory-large", "rss_mb", MIB, False)

ROWS = (
    ENQUEUE_ONE,
    ENQUEUE_MANY,
    PRODUCERS,
    DRAIN_ASYNC,
    DRAIN_SYNC,
    DRAIN_4,
    DUPLICATES,
    MISSING,
    CROSS_P50,
    CROSS_P99,
    SAME_P50,
    SAME_P99,
    IDLE_CPU,
    BACKLOG_EMPTY,
    BACKLOG_FULL,
    PLUGINS_NONE,
    PLUGINS_NOOP,
    MEMORY_SMALL,
    MEMORY_LARGE,
)


@dataclass(frozen=True)
class Derived:
    """A ratio of two rows' figures for the same peer, shown under the first row."""

    label: str
    numerator: Row
    denominator: Row


BACKLOG_RATIO = Derived("with backlog ÷ empty", BACKLOG_FULL, BACKLOG_EMPTY)
PLUGINS_RATIO = Derived("observer ÷ none", PLUGINS_NOOP, PLUGINS_NONE)
MEMORY_RATIO = Derived("{memory_tasks:,} ÷ 1,000", MEMORY_LARGE, MEMORY_SMALL)
DERIVED = (BACKLOG_RATIO, PLUGINS_RATIO, MEMORY_RATIO)


class Figures:
    """Medians (or worst values) of the measurements, by row and peer."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.config: dict[str, Any] = results["config"]
        self.peers = [p for p in PEER_ORDER if p in self.config["peers"]]
        self.labels: dict[str, str] = results["labels"]
        self.not_available: dict[str, dict[str, str]] = results["not_available"]
        self.workloads = set(self.config["workloads"])
        self.errors: list[str] = []
        self._runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for m in results["measurements"]:
            if m.get("error"):
                where = f"{m['workload']} {m['measure']} {m['peer']} rep {m['rep'] + 1}"
                self.errors.append(f"{where}: {m['error']}")
            else:
                self._runs.setdefault((m["workload"], m["measure"], m["peer"]), []).append(m)

    def text(self, template: str) -> str:
        return template.format(**self.config)

    def measure_for(self, row: Row, peer: str) -> str:
        return row.peer_measure if row.peer_measure and not peer.startswith("sitq") else row.measure

    def value(self, row: Row, peer: str) -> float | None:
        runs = self._runs.get((row.workload, self.measure_for(row, peer), peer), [])
        values = [run[row.field] for run in runs if isinstance(run.get(row.field), int | float)]
        if not values:
            return None
        return max(values) if row.worst else statistics.median(values)

    def reason(self, row: Row, peer: str) -> str | None:
        """Why a peer has no figure for a row, when it says so."""
        return self.not_available.get(peer, {}).get(self.measure_for(row, peer))

    def derived(self, derived: Derived, peer: str) -> float | None:
        top, bottom = self.value(derived.numerator, peer), self.value(derived.denominator, peer)
        return top / bottom if top is not None and bottom else None

    def floor(self) -> dict[str, float]:
        runs = self._runs.get(("floor", "sqlite-floor", "floor"), [])
        keys = ("insert_full", "insert_normal", "claim_full", "claim_normal", "fsync_ms")
        return {key: statistics.median(run[key] for run in runs) for key in keys} if runs else {}


# Formatting


def number(value: float, unit: str) -> str:
    if unit == MS:
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    if unit == CPU:
        return f"{value:.2f}%"
    if unit == MIB:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def times(ratio: float) -> str:
    shown = f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}" if ratio < 100 else f"{ratio:,.0f}"
    return shown + X


def sitq_advantage(row: Row, sitq: float | None, other: float | None) -> float | None:
    """How many times better sitq's figure is than `other`: for rates sitq ÷ other, else other ÷ sitq."""
    if row.higher_is_better is None or sitq is None or other is None or sitq <= 0 or other <= 0:
        return None
    return sitq / other if row.higher_is_better else other / sitq


class Notes:
    """Footnotes for the n/a cells, numbered in order of first use."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"


def cell(figures: Figures, row: Row, peer: str, notes: Notes) -> str:
    value = figures.value(row, peer)
    if value is None:
        reason = figures.reason(row, peer)
        return f"n/a {notes.mark(reason)}" if reason else "—"
    shown = number(value, row.unit)
    if row.peer_measure and not peer.startswith("sitq"):
        shown += " " + SYNC_ONLY
    advantage = sitq_advantage(row, figures.value(row, "sitq"), value) if peer != "sitq" else None
    if advantage is not None:
        shown += f" · sitq {times(advantage)}"
    return shown


def results_table(figures: Figures, notes: Notes) -> list[str]:
    peers = figures.peers
    durability = figures.results["durability"]
    header = ["Workload", "Metric"]
    header += [
        f"{figures.labels[p]}<br>{durability[p]['journal_mode'].upper()}, {durability[p]['synchronous']}"
        for p in peers
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(peers)]
    previous = ""
    for row in ROWS:
        if row.workload not in figures.workloads:
            continue
        sitq_only = row.workload == "plugins"
        cells = ["" if sitq_only and peer != "sitq" else cell(figures, row, peer, notes) for peer in peers]
        group = figures.text(row.group)
        label = figures.text(row.label) + (f", {row.unit}" if row.unit else "")
        lines.append(f"| {group if group != previous else ''} | {label} | " + " | ".join(cells) + " |")
        previous = group
        for derived in DERIVED:
            if derived.numerator is row:
                ratios = [figures.derived(derived, peer) for peer in peers]
                shown = ["" if r is None else f"{r:.2f}{X}" for r in ratios]
                lines.append(f"|  | {figures.text(derived.label)} | " + " | ".join(shown) + " |")
    return lines


# Targets


@dataclass(frozen=True)
class Target:
    text: str
    measured: str
    ok: bool | None
    """None: not measured in this run."""


def targets(figures: Figures) -> list[Target]:
    """The issue's targets, for sitq at its defaults, computed from the table's figures."""
    found: list[Target] = []

    def sitq(row: Row) -> float | None:
        return figures.value(row, "sitq")

    def check(
        text: str, value: float | None, ok: Callable[[float], bool], shown: Callable[[float], str]
    ) -> None:
        found.append(
            Target(text, "not measured", None) if value is None else Target(text, shown(value), ok(value))
        )

    def versus(row: Row, peer: str) -> float | None:
        return sitq_advantage(row, sitq(row), figures.value(row, peer)) if peer in figures.peers else None

    def per_second(x: float) -> str:
        return f"{x:,.0f}/s"

    def ms(x: float) -> str:
        return f"{x:.3g} ms"

    def ratio(x: float) -> str:
        return f"{x:.2f}{X}"

    check(f"Drain, 1 worker, async: ≥ 10{X} Huey", versus(DRAIN_ASYNC, "huey"), lambda x: x >= 10, times)
    check(f"Drain, 1 worker, async: ≥ 30{X} GigQ", versus(DRAIN_ASYNC, "gigq"), lambda x: x >= 30, times)
    check("Drain, 1 worker, async: ≥ 5,000 tasks/s", sitq(DRAIN_ASYNC), lambda x: x >= 5000, per_second)
    check(f"Enqueue one at a time: ≥ Huey (1{X})", versus(ENQUEUE_ONE, "huey"), lambda x: x >= 1, times)
    check(f"Enqueue, 100 producers: ≥ 10{X} Huey", versus(PRODUCERS, "huey"), lambda x: x >= 10, times)
    check("enqueue_many: ≥ 50,000 tasks/s", sitq(ENQUEUE_MANY), lambda x: x >= 50_000, per_second)
    check("Latency, another process: p50 < 5 ms", sitq(CROSS_P50), lambda x: x < 5, ms)
    check("Latency, another process: p99 < 25 ms", sitq(CROSS_P99), lambda x: x < 25, ms)
    check("Idle worker: < 2% of a core", sitq(IDLE_CPU), lambda x: x < 2, lambda x: f"{x:.2f}%")
    check("Latency, same process: p50 < 1 ms", sitq(SAME_P50), lambda x: x < 1, ms)
    four, one = sitq(DRAIN_4), sitq(DRAIN_ASYNC)
    check("4 workers drain ≥ 1 worker (async)", four / one if four and one else None, lambda x: x >= 1, times)
    duplicates, missing = sitq(DUPLICATES), sitq(MISSING) or 0
    check(
        "4 workers: no task runs twice, none is lost",
        None if duplicates is None else abs(duplicates) + abs(missing),
        lambda x: x == 0,
        lambda _: f"{duplicates:.0f} duplicates, {missing:.0f} missing",
    )
    backlog = figures.derived(BACKLOG_RATIO, "sitq")
    check("Backlog: within 15% of the empty table", backlog, lambda x: x >= 0.85, ratio)
    memory = figures.derived(MEMORY_RATIO, "sitq")
    check(
        figures.text("Memory, {memory_tasks:,} queued: within 20% of 1,000"),
        memory,
        lambda x: x <= 1.2,
        ratio,
    )
    plugins = figures.derived(PLUGINS_RATIO, "sitq")
    check("Plugins that do nothing: within 5% of none", plugins, lambda x: x >= 0.95, ratio)
    return found


def targets_table(found: list[Target]) -> list[str]:
    lines = ["| Target (sitq at its defaults) | Measured | Holds |", "|---|---:|:---:|"]
    for target in found:
        mark = "—" if target.ok is None else "✓" if target.ok else "✗"
        lines.append(f"| {target.text} | {target.measured} | {mark} |")
    return lines


# The page


def floor_table(figures: Figures) -> list[str]:
    floor = figures.floor()
    if not floor:
        return []
    lines = ["| Raw `sqlite3`, WAL | FULL | NORMAL |", "|---|---:|---:|"]
    for key, text in (
        ("insert", "single-row insert transactions/s"),
        ("claim", "claim-and-complete/s, by 100"),
    ):
        lines.append(f"| {text} | {floor[key + '_full']:,.0f} | {floor[key + '_normal']:,.0f} |")
    for row, key, text in (
        (ENQUEUE_ONE, "insert", "sitq enqueue one at a time"),
        (DRAIN_ASYNC, "claim", "sitq drain, async"),
    ):
        shares = []
        for peer, level in (("sitq", "full"), ("sitq-normal", "normal")):
            value = figures.value(row, peer)
            shares.append(
                "—" if value is None else f"{value:,.0f}: {value / floor[f'{key}_{level}']:.0%} of it"
            )
        lines.append(f"| {text} | {shares[0]} | {shares[1]} |")
    return lines


def machine_lines(figures: Figures) -> list[str]:
    m, c, floor = figures.results["machine"], figures.config, figures.floor()
    fsync = f"{floor['fsync_ms']:.2f} ms" if floor else "not measured"
    return [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}; one fsync of 4 KiB: {fsync} (files in {m['tmpdir']})",
        f"- sitq at commit {m['sitq_commit']}; run on {m['date']}, in {c['minutes']} minutes",
        f"- {c['tasks']:,} tasks per throughput figure; medians of {c['repeat']} repetitions (memory: one); "
        f"{c['samples']} latency samples (GigQ: 10)",
    ]


def durability_lines(figures: Figures) -> list[str]:
    survives = {
        "FULL": "an application crash, an OS crash, a power cut",
        "NORMAL": "an application crash; an OS crash or a power cut may lose the last commits",
        "OFF": "an application crash",
    }
    lines = ["| | journal_mode | synchronous | a committed write survives |", "|---|---|---|---|"]
    for peer in figures.peers:
        d = figures.results["durability"][peer]
        survived = survives.get(d["synchronous"], "?")
        lines.append(
            f"| {figures.labels[peer]} | {d['journal_mode'].upper()} | {d['synchronous']} | {survived} |"
        )
    return lines


def markdown(figures: Figures, image: str | None) -> str:
    notes = Notes()
    table = results_table(figures, notes)
    found = targets(figures)
    held, measured = sum(1 for t in found if t.ok), sum(1 for t in found if t.ok is not None)
    parts = [
        "# sitq against Huey and GigQ",
        "",
        "Made by `python3 bench/run.py`; bench/README.md says what each figure measures.",
        "",
        *machine_lines(figures),
        "",
        "## Durability of every figure",
        "",
        "Each peer at its defaults, as its own connection reports them; every column header repeats it.",
        "",
        *durability_lines(figures),
        "",
        "## Results",
        "",
        f"Medians. **sitq N{X}** after a figure: sitq's figure (its defaults: WAL, FULL) is N times as "
        f"good as that one: for rates sitq ÷ it, for latency, CPU and memory it ÷ sitq. Under 1{X}, sitq "
        "is behind. — : not measured for that column.",
        "",
        *table,
        "",
        f"{SYNC_ONLY} Huey and GigQ have no async tasks: their sync no-op, measured once, stands in both "
        "rows.  ",
        *(f"[{i}] {text}  " for i, text in enumerate(notes.texts, 1)),
        "",
        "## Targets of issue 4",
        "",
        f"{held} of the {measured} targets measured hold.",
        "",
        *targets_table(found),
        "",
    ]
    floor = floor_table(figures)
    if floor:
        parts += ["## The raw `sqlite3` floor", ""]
        parts += [
            "`bench/sqlite_floor.py`: the standard `sqlite3` module, one table, one index.",
            "",
            *floor,
            "",
        ]
    if image:
        parts += [f"![sitq against Huey and GigQ]({image})", ""]
    if figures.errors:
        parts += ["## Failed measurements", "", *(f"- {error}" for error in figures.errors), ""]
    return "\n".join(parts)


# The plot


def plot(figures: Figures, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig = plt.figure(figsize=(15, 11), layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[1.2, 1], width_ratios=[2.2, 1, 1])
    panels = (
        (fig.add_subplot(grid[0, :]), "Throughput, tasks/s (log scale; higher is better)", RATE, True),
        (fig.add_subplot(grid[1, 0]), "Enqueue-to-start latency, ms (log scale; lower is better)", MS, True),
        (fig.add_subplot(grid[1, 1]), "Idle worker CPU, % of a core", CPU, False),
        (fig.add_subplot(grid[1, 2]), "Worker peak RSS, MiB", MIB, False),
    )
    for ax, title, unit, log in panels:
        rows = [r for r in ROWS if r.unit == unit and r.workload in figures.workloads - {"plugins"}]
        _bars(ax, figures, rows, log)
        ax.set_title(title, fontsize=11)
    durability = figures.results["durability"]
    handles = [Patch(color=COLORS[p]) for p in figures.peers]
    names = [f"{figures.labels[p]}: WAL, synchronous={durability[p]['synchronous']}" for p in figures.peers]
    panels[0][0].legend(handles, names, loc="upper right", fontsize=10)
    m, c = figures.results["machine"], figures.config
    fig.suptitle(
        f"sitq, Huey and GigQ on SQLite: medians of {c['repeat']} runs, {c['tasks']:,} tasks. "
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, SQLite {m['sqlite']}, {m['date']}",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax: Any, figures: Figures, rows: list[Row], log: bool) -> None:
    """Grouped bars, one group per row; a peer with nothing to say in any of the rows is left out."""
    peers = [
        p for p in figures.peers if any(figures.value(r, p) is not None or figures.reason(r, p) for r in rows)
    ]
    width = 0.8 / max(1, len(peers))
    at_base = {"transform": ax.get_xaxis_transform(), "ha": "center", "fontsize": 8, "rotation": 90}
    for i, row in enumerate(rows):
        for j, peer in enumerate(peers):
            x = i - 0.4 + width * (j + 0.5)
            value = figures.value(row, peer)
            if value is None:
                if figures.reason(row, peer):
                    ax.text(x, 0.02, "n/a", color="grey", **at_base)
            elif value <= 0:
                ax.text(x, 0.02, _short(value, row.unit), **at_base)
            else:
                ax.bar(x, value, width, color=COLORS[peer])
                ax.text(
                    x, value, " " + _short(value, row.unit), ha="center", va="bottom", fontsize=8, rotation=90
                )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([_tick(figures, row) for row in rows], fontsize=9)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 6)
    else:
        ax.set_ylim(0, ax.get_ylim()[1] * 1.25)
    ax.grid(axis="y", alpha=0.3)


def _tick(figures: Figures, row: Row) -> str:
    group = {
        ENQUEUE: "enqueue",
        DRAIN1: "drain, 1 worker",
        DRAIN4: "drain, 4 workers",
        BACKLOG: "backlog, {due:,} due",
        CROSS: "other process",
        SAME: "same process",
        "Idle worker process": "idle worker",
        MEMORY: "",
    }.get(row.group, row.group)
    label = row.label.replace(", {batch:,} per call", "").replace(
        "with {backlog:,} future tasks", "+{backlog:,} future"
    )
    return figures.text(f"{group}\n{label}").strip()


def _short(value: float, unit: str) -> str:
    if unit == RATE:
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    return number(value, unit)


def write(results: dict[str, Any], out: Path) -> str:
    """Write results.md and results.png into `out`; return the Markdown."""
    figures = Figures(results)
    plot(figures, out / "results.png")
    text = markdown(figures, "results.png")
    (out / "results.md").write_text(text)
    return text
