"""Turn the measurements of bench/run.py into the report: medians, ratios to sitq, the issue's targets
checked, a Markdown table and a PNG plot. ``write(results, out_dir)`` returns the Markdown.

The SQLite section (sitq against Huey and GigQ) and the PostgreSQL section (sitq against PgQueuer and
Procrastinate) share the table, the ratios and the plot; a `Section` holds what differs: the title, the
durability settings and the targets of their issues.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PEER_ORDER = ("sitq", "sitq-normal", "sitq-signed", "huey", "gigq", "pgqueuer", "procrastinate")
COLORS = {
    "sitq": "#1f77b4",
    "sitq-normal": "#9ecae1",
    "sitq-signed": "#6baed6",
    "huey": "#ff7f0e",
    "gigq": "#2ca02c",
    "pgqueuer": "#9467bd",
    "procrastinate": "#8c564b",
}
X = "\N{MULTIPLICATION SIGN}"
MINUS = "\N{MINUS SIGN}"
RATE, MS, CPU, MIB = "tasks/s", "ms", "% of a core", "MiB"
CPU_TASK, PER_TASK = "µs per task", "per task"


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
    """The measure that stands in for a peer that cannot do `measure` (Huey's and GigQ's sync no-op in
    the async row)."""
    stand_in: str = ""
    """The footnote of a cell where `peer_measure` stands in."""
    worst: bool = False
    """Show the worst repetition instead of the median (a duplicate in any run is one too many)."""


ENQUEUE, DRAIN1, DRAIN4 = "Enqueue", "Drain, 1 worker process", "Drain, 4 worker processes"
PROCESS_MODE = "Process mode (sitq), {cpu_tasks:,} CPU-bound sync tasks"
CROSS, SAME = "Latency, worker in another process", "Latency, worker in the same process"
BACKLOG, PLUGINS, MEMORY = (
    "Backlog, drain {due:,} due",
    "Plugins (sitq, drain async)",
    "Worker memory (peak RSS)",
)

ENQUEUE_ONE = Row(ENQUEUE, "one at a time, 1 producer", "enqueue", "enqueue-one")
ENQUEUE_ONE_SYNC = Row(
    ENQUEUE,
    "one at a time, SyncTaskQueue",
    "enqueue",
    "enqueue-one-sync",
    peer_measure="enqueue-one",
    stand_in="Huey's enqueue and GigQ's submit are blocking calls already: their one-at-a-time figure "
    "stands in.",
)
ENQUEUE_MANY = Row(ENQUEUE, "enqueue_many, {batch:,} per call", "enqueue", "enqueue-batch")
PRODUCERS = Row(ENQUEUE, "100 concurrent producers", "enqueue", "enqueue-concurrent")
DRAIN_ASYNC = Row(
    DRAIN1,
    "no-op async task",
    "drain",
    "drain-async",
    peer_measure="drain-sync",
    stand_in="Huey and GigQ have no async tasks: their sync no-op, measured once, stands in both rows.",
)
DRAIN_SYNC = Row(DRAIN1, "no-op sync task", "drain", "drain-sync")
STAND_IN_MARKS = {DRAIN_ASYNC.stand_in: "\N{DAGGER}", ENQUEUE_ONE_SYNC.stand_in: "\N{DOUBLE DAGGER}"}
"""The mark after a figure that stands in, and the footnote it points to."""
DRAIN_4 = Row(DRAIN4, "recording task", "drain4", "drain-4")


def usage_rows(row: Row) -> tuple[Row, Row]:
    """The worker processes' CPU time and context switches per task, under a drain's rate."""
    cpu = replace(row, label="worker CPU", field="cpu_us_per_task", unit=CPU_TASK, higher_is_better=False)
    switches = replace(cpu, label="context switches", field="ctx_per_task", unit=PER_TASK)
    return cpu, switches


DRAIN_ASYNC_CPU, DRAIN_ASYNC_SWITCHES = usage_rows(DRAIN_ASYNC)
DRAIN_SYNC_CPU, DRAIN_SYNC_SWITCHES = usage_rows(DRAIN_SYNC)


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
CPU_THREADS = Row(PROCESS_MODE, "thread mode (the default)", "processmode", "drain-cpu-threads")
CPU_PROCESSES = Row(PROCESS_MODE, "processes=2", "processmode", "drain-cpu-processes")
CPU_START = Row(
    PROCESS_MODE,
    "processes=2: from go to the first task (starting the children)",
    "processmode",
    "drain-cpu-processes",
    "startup_ms",
    MS,
    None,
)
CPU_TASK_ALONE = Row(
    PROCESS_MODE, "CPU of one task, run alone", "processmode", "drain-cpu-threads", "task_ms", MS, None
)
SITQ_ONLY = frozenset({"plugins", "processmode"})
"""Workloads that only sitq runs: the table leaves the other columns empty and the plot leaves them out."""

ROWS = (
    ENQUEUE_ONE,
    ENQUEUE_ONE_SYNC,
    ENQUEUE_MANY,
    PRODUCERS,
    DRAIN_ASYNC,
    DRAIN_ASYNC_CPU,
    DRAIN_ASYNC_SWITCHES,
    DRAIN_SYNC,
    DRAIN_SYNC_CPU,
    DRAIN_SYNC_SWITCHES,
    DRAIN_4,
    *usage_rows(DRAIN_4),
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
    CPU_THREADS,
    CPU_PROCESSES,
    CPU_START,
    CPU_TASK_ALONE,
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
PROCESS_RATIO = Derived("processes=2 ÷ thread mode", CPU_PROCESSES, CPU_THREADS)
DERIVED = (BACKLOG_RATIO, PLUGINS_RATIO, MEMORY_RATIO, PROCESS_RATIO)


class Figures:
    """Medians (or worst values) of the measurements, by row and peer."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.config: dict[str, Any] = results["config"]
        self.peers = [p for p in PEER_ORDER if p in self.config["peers"]]
        self.labels: dict[str, str] = results["labels"]
        self.not_available: dict[str, dict[str, str]] = results["not_available"]
        self.workloads = set(self.config["workloads"])
        self.section = SECTIONS[results.get("backend", "sqlite")]
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
        if row.peer_measure and row.measure in self.not_available.get(peer, {}):
            return row.peer_measure
        return row.measure

    def stands_in(self, row: Row, peer: str) -> bool:
        """Whether the peer's figure in `row` is that of its `peer_measure`."""
        return self.measure_for(row, peer) != row.measure

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
        """Medians of the raw-`sqlite3` floor's figures (runs from before the batched insert lack it)."""
        runs = self._runs.get(("floor", "sqlite-floor", "floor"), [])
        keys = {key for run in runs for key, value in run.items() if isinstance(value, int | float)}
        return {
            key: statistics.median(run[key] for run in runs)
            for key in keys
            if all(key in run for run in runs)
        }


# Formatting


def number(value: float, unit: str) -> str:
    if unit == MS:
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    if unit == CPU:
        return f"{value:.2f}%"
    if unit == MIB:
        return f"{value:.1f}"
    if unit in (CPU_TASK, PER_TASK):
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
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
    """The table's footnotes: for the n/a cells, numbered in order of first use; for the cells where
    another measure stands in, marked as `STAND_IN_MARKS` says."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.stand_ins: set[str] = set()

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def stand_in(self, text: str) -> str:
        self.stand_ins.add(text)
        return STAND_IN_MARKS[text]

    def lines(self) -> list[str]:
        """The footnotes, each ending in two spaces (a Markdown line break)."""
        marked = [f"{mark} {text}  " for text, mark in STAND_IN_MARKS.items() if text in self.stand_ins]
        return marked + [f"[{i}] {text}  " for i, text in enumerate(self.texts, 1)]


def cell(figures: Figures, row: Row, peer: str, notes: Notes) -> str:
    value = figures.value(row, peer)
    if value is None:
        reason = figures.reason(row, peer)
        return f"n/a {notes.mark(reason)}" if reason else "—"
    shown = number(value, row.unit)
    if figures.stands_in(row, peer):
        shown += " " + notes.stand_in(row.stand_in)
    advantage = sitq_advantage(row, figures.value(row, "sitq"), value) if peer != "sitq" else None
    if advantage is not None:
        shown += f" · sitq {times(advantage)}"
    return shown


def results_table(figures: Figures, notes: Notes) -> list[str]:
    peers = figures.peers
    durability = figures.results["durability"]
    header = ["Workload", "Metric"]
    header += [f"{figures.labels[p]}<br>{figures.section.setting(durability[p])}" for p in peers]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(peers)]
    previous = ""
    for row in ROWS:
        if row.workload not in figures.workloads:
            continue
        sitq_only = row.workload in SITQ_ONLY
        if all(figures.value(row, peer) is None and not figures.reason(row, peer) for peer in peers):
            continue  # a measure from after the run (CPU per task, SyncTaskQueue), or one that failed
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


class Checks:
    """The targets of a section as they are checked: each compares sitq's figure (at its defaults) with a
    bound or with a peer's."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures
        self.found: list[Target] = []

    def sitq(self, row: Row) -> float | None:
        return self.figures.value(row, "sitq")

    def versus(self, row: Row, peer: str) -> float | None:
        """sitq's advantage over `peer` in `row` (above 1: sitq is ahead)."""
        if peer not in self.figures.peers:
            return None
        return sitq_advantage(row, self.sitq(row), self.figures.value(row, peer))

    def check(
        self, text: str, value: float | None, ok: Callable[[float], bool], shown: Callable[[float], str]
    ) -> None:
        self.found.append(
            Target(text, "not measured", None) if value is None else Target(text, shown(value), ok(value))
        )

    def at_least(self, text: str, row: Row, peer: str, factor: float) -> None:
        self.check(text, self.versus(row, peer), lambda x: x >= factor, times)

    def share(self, text: str, part: float | None, whole: float | None, bound: float) -> None:
        """`part` is at least `bound` (a fraction) of `whole`."""
        self.check(
            text,
            part / whole if part is not None and whole else None,
            lambda x: x >= bound,
            lambda x: f"{x:.0%}",
        )

    def workers_scale(self) -> None:
        four, one = self.sitq(DRAIN_4), self.sitq(DRAIN_ASYNC)
        self.check(
            "4 workers drain ≥ 1 worker (async)",
            four / one if four and one else None,
            lambda x: x >= 1,
            times,
        )

    def no_duplicates(self) -> None:
        duplicates, missing = self.sitq(DUPLICATES), self.sitq(MISSING) or 0
        self.check(
            "4 workers: no task runs twice, none is lost",
            None if duplicates is None else abs(duplicates) + abs(missing),
            lambda x: x == 0,
            lambda _: f"{duplicates:.0f} duplicates, {missing:.0f} missing",
        )


def per_second(x: float) -> str:
    return f"{x:,.0f}/s"


def ms(x: float) -> str:
    return f"{x:.3g} ms"


def ratio(x: float) -> str:
    return f"{x:.2f}{X}"


def sqlite_targets(figures: Figures) -> list[Target]:
    """The targets of issue 4, for sitq at its defaults, computed from the table's figures."""
    c = Checks(figures)
    c.at_least(f"Drain, 1 worker, async: ≥ 10{X} Huey", DRAIN_ASYNC, "huey", 10)
    c.at_least(f"Drain, 1 worker, async: ≥ 30{X} GigQ", DRAIN_ASYNC, "gigq", 30)
    c.check("Drain, 1 worker, async: ≥ 5,000 tasks/s", c.sitq(DRAIN_ASYNC), lambda x: x >= 5000, per_second)
    c.at_least(f"Enqueue one at a time: ≥ Huey (1{X})", ENQUEUE_ONE, "huey", 1)
    c.at_least(f"Enqueue, 100 producers: ≥ 10{X} Huey", PRODUCERS, "huey", 10)
    c.check("enqueue_many: ≥ 50,000 tasks/s", c.sitq(ENQUEUE_MANY), lambda x: x >= 50_000, per_second)
    c.check("Latency, another process: p50 < 5 ms", c.sitq(CROSS_P50), lambda x: x < 5, ms)
    c.check("Latency, another process: p99 < 25 ms", c.sitq(CROSS_P99), lambda x: x < 25, ms)
    c.check("Idle worker: < 2% of a core", c.sitq(IDLE_CPU), lambda x: x < 2, lambda x: f"{x:.2f}%")
    c.check("Latency, same process: p50 < 1 ms", c.sitq(SAME_P50), lambda x: x < 1, ms)
    c.workers_scale()
    c.no_duplicates()
    c.check(
        "Backlog: within 15% of the empty table",
        figures.derived(BACKLOG_RATIO, "sitq"),
        lambda x: x >= 0.85,
        ratio,
    )
    c.check(
        figures.text("Memory, {memory_tasks:,} queued: within 20% of 1,000"),
        figures.derived(MEMORY_RATIO, "sitq"),
        lambda x: x <= 1.2,
        ratio,
    )
    c.check(
        "Plugins that do nothing: within 5% of none",
        figures.derived(PLUGINS_RATIO, "sitq"),
        lambda x: x >= 0.95,
        ratio,
    )
    return c.found


def sqlite_targets_12(figures: Figures) -> list[Target]:
    """The targets of issue 12, for sitq at its defaults: ratios to Huey and to the raw `sqlite3` floor
    measured in the same run, so that they hold or not on any machine."""
    c, floor = Checks(figures), figures.floor()
    c.at_least(f"Drain, 1 worker, async: ≥ 5{X} Huey", DRAIN_ASYNC, "huey", 5)
    c.at_least(f"Drain, 1 worker, sync: ≥ 3{X} Huey", DRAIN_SYNC, "huey", 3)
    c.share(
        "Drain, 1 worker, async: ≥ 25% of the raw claim-and-complete floor (FULL)",
        c.sitq(DRAIN_ASYNC),
        floor.get("claim_full"),
        0.25,
    )
    c.at_least(f"Enqueue one at a time, TaskQueue: ≥ Huey (1{X})", ENQUEUE_ONE, "huey", 1)
    c.at_least(f"Enqueue one at a time, SyncTaskQueue: ≥ Huey (1{X})", ENQUEUE_ONE_SYNC, "huey", 1)
    c.share(
        "enqueue_many: ≥ 50% of the raw batched-insert floor (FULL)",
        c.sitq(ENQUEUE_MANY),
        floor.get("batch_insert_full"),
        0.5,
    )
    for row, kind in ((DRAIN_ASYNC_CPU, "async"), (DRAIN_SYNC_CPU, "sync")):
        c.at_least(
            f"Worker CPU per task, {kind} drain: ≤ 1/5 of Huey's (Huey's ÷ sitq's ≥ 5{X})", row, "huey", 5
        )
    c.check(
        f"Process mode, CPU-bound sync tasks: processes=2 ≥ 1.8{X} thread mode",
        figures.derived(PROCESS_RATIO, "sitq"),
        lambda x: x >= 1.8,
        ratio,
    )
    for row in (ENQUEUE_ONE, ENQUEUE_ONE_SYNC, ENQUEUE_MANY, PRODUCERS, DRAIN_ASYNC, DRAIN_SYNC):
        label = figures.text(f"{row.group.lower()}, {row.label}")
        c.share(
            f"Signing, {label}: sitq (signed) ≥ 90% of sitq",
            figures.value(row, "sitq-signed"),
            c.sitq(row),
            0.9,
        )
    return c.found


def postgres_targets(figures: Figures) -> list[Target]:
    """The targets of issue 10 in the PostgreSQL table, for sitq at its defaults: sitq ÷ peer for rates,
    peer ÷ sitq for latency, so that each holds at its factor or above."""
    c = Checks(figures)
    c.at_least(f"Drain, 1 worker process, async: ≥ PgQueuer (1{X})", DRAIN_ASYNC, "pgqueuer", 1)
    c.at_least(f"Drain, 1 worker process, async: ≥ 10{X} Procrastinate", DRAIN_ASYNC, "procrastinate", 10)
    c.at_least(f"Latency, another process: p50 ≤ PgQueuer's (1{X})", CROSS_P50, "pgqueuer", 1)
    c.at_least(f"enqueue_many: ≥ PgQueuer (1{X})", ENQUEUE_MANY, "pgqueuer", 1)
    c.workers_scale()
    c.no_duplicates()
    return c.found


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
    known = (
        ("insert", "single-row insert transactions/s", ENQUEUE_ONE, "sitq enqueue one at a time"),
        (
            "batch_insert",
            f"rows/s inserted {floor.get('insert_batch', 0):,.0f} per transaction (`executemany`)",
            ENQUEUE_MANY,
            "sitq enqueue_many",
        ),
        ("claim", "claim-and-complete/s, by 100", DRAIN_ASYNC, "sitq drain, async"),
    )
    floors = [f for f in known if f"{f[0]}_full" in floor]  # runs from before lack the batched insert
    for key, text, _, _ in floors:
        lines.append(f"| {text} | {floor[key + '_full']:,.0f} | {floor[key + '_normal']:,.0f} |")
    for key, _, row, text in floors:
        shares = []
        for peer, level in (("sitq", "full"), ("sitq-normal", "normal")):
            value = figures.value(row, peer)
            shares.append(
                "—" if value is None else f"{value:,.0f}: {value / floor[f'{key}_{level}']:.0%} of it"
            )
        lines.append(f"| {text} | {shares[0]} | {shares[1]} |")
    return lines


def fsync_ms(figures: Figures) -> float | None:
    """Milliseconds per fsync where the databases were, as the run measured it; runs from before took
    it from the floor workload only, when that ran."""
    value = figures.results["machine"].get("fsync_ms", figures.floor().get("fsync_ms"))
    return None if value is None else float(value)


def fsync_text(figures: Figures) -> str:
    """The cost of one durable write where the databases were, and what holds them."""
    m, measured = figures.results["machine"], fsync_ms(figures)
    fsync = "not measured" if measured is None else f"{measured:.3g} ms"
    if "databases" not in m:
        return f"one fsync of 4 KiB: {fsync} (files in {m['tmpdir']})"
    where = f"{m['databases']}, {m['filesystem']}"
    if m["in_memory"]:
        where += ": in memory, so a commit's fsync writes nothing to a disk"
    return f"one fsync of 4 KiB where the databases were: {fsync} ({where})"


def machine_lines(figures: Figures) -> list[str]:
    m, c = figures.results["machine"], figures.config
    if figures.section.name == "postgres":
        servers = {d.get("server", "?") for d in figures.results["durability"].values()}
        store = f"- Python {m['python']}, PostgreSQL {', '.join(sorted(servers))} on this machine"
    else:
        store = f"- Python {m['python']}, SQLite {m['sqlite']}; {fsync_text(figures)}"
    return [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}",
        store,
        f"- sitq at commit {m['sitq_commit']}; run on {m['date']}, in {c['minutes']} minutes",
        f"- {c['tasks']:,} tasks per throughput figure; medians of {c['repeat']} repetitions"
        + (" (memory: one)" if "memory" in figures.workloads else "")
        + f"; {c['samples']} latency samples"
        + (" (GigQ: 10)" if "gigq" in figures.peers else ""),
    ]


def durability_lines(figures: Figures) -> list[str]:
    keys = figures.section.durability_keys
    lines = [
        "| | " + " | ".join(keys) + " | a committed write survives |",
        "|---|" + "---|" * (len(keys) + 1),
    ]
    for peer in figures.peers:
        d = figures.results["durability"][peer]
        shown = " | ".join(
            d.get(key, "?").upper() if key == "journal_mode" else d.get(key, "?") for key in keys
        )
        lines.append(f"| {figures.labels[peer]} | {shown} | {figures.section.survives(d)} |")
    return lines


# The two sections


def sqlite_survives(d: dict[str, str]) -> str:
    return {
        "FULL": "an application crash, an OS crash, a power cut",
        "NORMAL": "an application crash; an OS crash or a power cut may lose the last commits",
        "OFF": "an application crash",
    }.get(d["synchronous"], "?")


def postgres_survives(d: dict[str, str]) -> str:
    if d.get("fsync") != "on":
        return "an application crash; a server crash or a power cut may corrupt the database"
    if d.get("synchronous_commit") == "off":
        return (
            "an application crash; a server crash, an OS crash or a power cut may lose the last commits "
            "(up to three times wal_writer_delay), never corrupt the database"
        )
    return "an application crash, a server crash, an OS crash, a power cut"


@dataclass(frozen=True)
class Section:
    """What the SQLite and the PostgreSQL sections of the report do not share."""

    name: str
    title: str
    durability_keys: tuple[str, ...]
    setting: Callable[[dict[str, str]], str]
    """A peer's durability in a few words, for a column header."""
    legend: Callable[[dict[str, str]], str]
    """The same in the plot's legend."""
    survives: Callable[[dict[str, str]], str]
    targets: tuple[tuple[int, Callable[[Figures], list[Target]]], ...]
    """Each issue's number and its targets, checked."""


SECTIONS = {
    "sqlite": Section(
        "sqlite",
        "sitq against Huey and GigQ",
        ("journal_mode", "synchronous"),
        lambda d: f"{d['journal_mode'].upper()}, {d['synchronous']}",
        lambda d: f"WAL, synchronous={d['synchronous']}",
        sqlite_survives,
        ((4, sqlite_targets), (12, sqlite_targets_12)),
    ),
    "postgres": Section(
        "postgres",
        "sitq against PgQueuer and Procrastinate, on PostgreSQL",
        ("version", "synchronous_commit", "fsync"),
        lambda d: f"synchronous_commit={d['synchronous_commit']}, fsync={d['fsync']}",
        lambda d: f"synchronous_commit={d['synchronous_commit']}, fsync={d['fsync']}",
        postgres_survives,
        ((10, postgres_targets),),
    ),
}


def targets_part(issue: int, found: list[Target]) -> list[str]:
    held, measured = sum(1 for t in found if t.ok), sum(1 for t in found if t.ok is not None)
    return [
        f"## Targets of issue {issue}",
        "",
        f"{held} of the {measured} targets measured hold.",
        "",
        *targets_table(found),
        "",
    ]


def markdown(figures: Figures, image: str | None) -> str:
    notes = Notes()
    table = results_table(figures, notes)
    section = figures.section
    sitq_setting = section.setting(figures.results["durability"]["sitq"]) if "sitq" in figures.peers else "—"
    parts = [
        f"# {section.title}",
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
        f"Medians. **sitq N{X}** after a figure: sitq's figure (its defaults: {sitq_setting}) is N times as "
        f"good as that one: for rates sitq ÷ it, for latency, CPU and memory it ÷ sitq. Under 1{X}, sitq "
        "is behind. — : not measured for that column.",
        "",
        *table,
        "",
        *notes.lines(),
        "",
    ]
    for issue, targets in section.targets:
        parts += targets_part(issue, targets(figures))
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
        parts += [f"![{section.title}]({image})", ""]
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
        rows = [r for r in ROWS if r.unit == unit and r.workload in figures.workloads - SITQ_ONLY]
        if not rows:
            ax.axis("off")  # a workload this section does not run (memory, on PostgreSQL)
            continue
        _bars(ax, figures, rows, log)
        ax.set_title(title, fontsize=11)
    durability = figures.results["durability"]
    handles = [Patch(color=COLORS[p]) for p in figures.peers]
    names = [f"{figures.labels[p]}: {figures.section.legend(durability[p])}" for p in figures.peers]
    panels[0][0].legend(handles, names, loc="upper right", fontsize=10)
    m, c = figures.results["machine"], figures.config
    if figures.section.name == "postgres":
        servers = ", ".join(sorted({d.get("server", "?") for d in durability.values()}))
        heading, store = "sitq, PgQueuer and Procrastinate on PostgreSQL", f"PostgreSQL {servers}"
    else:
        heading, store = "sitq, Huey and GigQ on SQLite", f"SQLite {m['sqlite']}"
        measured = fsync_ms(figures)
        store += "" if measured is None else f", fsync {measured:.3g} ms ({m.get('filesystem', '?')})"
    fig.suptitle(
        f"{heading}: medians of {c['repeat']} runs, {c['tasks']:,} tasks. "
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, {store}, {m['date']}",
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
