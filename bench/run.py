"""Run sitq and its peers through the same workloads, alternating, and write the report.

    python3 bench/run.py [--backend sqlite|postgres] [--tasks N] [--repeat R] [--only W,..] [--skip W,..]
                         [--peers P,..] [--out DIR] [--postgres-url URL]

Builds (or reuses) a throwaway virtual environment in bench/.venv with the pinned peers and this
repository's sitq, re-runs itself inside it, then runs every measurement in fresh processes on a fresh
database in a temporary directory (on a disk: see `databases_dir`), for R repetitions, in the order
sitq, sitq (normal), sitq (signed), huey, gigq, sitq, ... Writes results.json, results.md and
results.png into --out and prints the Markdown.
``--backend postgres`` runs the PostgreSQL section instead: sitq-postgres beside PgQueuer and
Procrastinate, each measure in a fresh database on the server of --postgres-url, into
bench/results/postgres. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_DIR = BENCH / "peers"
VENV = BENCH / ".venv"
REQUIREMENTS = BENCH / "requirements.txt"
SITQ_FOLDERS = ("sitq-core", "sitq-sqlite", "sitq-postgres", "sitq-cloudpickle")
"""sitq's distributions in this repository, installed into the environment."""
MEASURE_TIMEOUT = 3600
SCRATCH = BENCH / ".scratch"
"""Where the databases go when the system's temporary directory is held in memory (ignored by git)."""
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
"""Filesystems held in memory: a commit's fsync there writes nothing to a disk."""


@dataclass(frozen=True)
class Peer:
    key: str
    label: str
    script: str
    args: tuple[str, ...] = ()


PEERS = {
    "sitq": Peer("sitq", "sitq", "sitq_bench.py"),
    "sitq-normal": Peer("sitq-normal", "sitq (normal)", "sitq_bench.py", ("--synchronous", "normal")),
    "sitq-signed": Peer("sitq-signed", "sitq (signed)", "sitq_bench.py", ("--signed",)),
    "huey": Peer("huey", "huey", "huey_bench.py"),
    "gigq": Peer("gigq", "gigq", "gigq_bench.py"),
    "pgqueuer": Peer("pgqueuer", "pgqueuer", "pgqueuer_bench.py"),
    "procrastinate": Peer("procrastinate", "procrastinate", "procrastinate_bench.py"),
}


@dataclass(frozen=True)
class Backend:
    """One section of the benchmark: a store, sitq's columns on it, its peers and its workloads."""

    name: str
    sitq: tuple[str, ...]
    peers: tuple[str, ...]
    workloads: tuple[str, ...]
    out: Path


BACKENDS = {
    "sqlite": Backend(
        "sqlite",
        ("sitq", "sitq-normal", "sitq-signed"),
        ("huey", "gigq"),
        ("enqueue", "drain", "drain4", "latency", "backlog", "plugins", "memory", "processmode", "floor"),
        BENCH / "results",
    ),
    "postgres": Backend(
        "postgres",
        ("sitq",),
        ("pgqueuer", "procrastinate"),
        ("enqueue", "drain", "drain4", "latency"),
        BENCH / "results" / "postgres",
    ),
}


@dataclass(frozen=True)
class Workload:
    name: str
    measures: tuple[str, ...]
    peers: tuple[str, ...]
    """Which of sitq, sitq-normal and the peers take part (peers only if chosen with --peers)."""
    repeat_once: bool = False
    sitq_only: tuple[str, ...] = ()
    """Measures that only sitq's columns run (a peer's own measure may stand in for it in the report)."""


WORKLOADS = (
    Workload(
        "enqueue",
        ("enqueue-one", "enqueue-one-sync", "enqueue-batch", "enqueue-concurrent"),
        ("sitq", "sitq-normal", "sitq-signed", "*"),
        sitq_only=("enqueue-one-sync",),
    ),
    Workload("drain", ("drain-async", "drain-sync"), ("sitq", "sitq-normal", "sitq-signed", "*")),
    Workload("drain4", ("drain-4",), ("sitq", "sitq-normal", "*")),
    Workload("latency", ("latency-cross", "latency-inprocess", "idle-cpu"), ("sitq", "*")),
    Workload("backlog", ("backlog-empty", "backlog-full"), ("sitq", "*")),
    Workload("plugins", ("drain-async", "drain-async-plugin"), ("sitq",)),
    Workload("memory", ("memory-small", "memory-large"), ("sitq", "*"), repeat_once=True),
    Workload("processmode", ("drain-cpu-threads", "drain-cpu-processes"), ("sitq",)),
    Workload("floor", ("sqlite-floor",), ("floor",)),
)
WORKLOAD_NAMES = tuple(workload.name for workload in WORKLOADS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend", choices=tuple(BACKENDS), default="sqlite", help="the section to run (sqlite)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SITQ_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="the PostgreSQL server (any database on it; each measure creates and drops its own); "
        "default $SITQ_BENCH_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per throughput measure (10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the report shows medians (3)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated workloads among {', '.join(WORKLOAD_NAMES)}"
    )
    parser.add_argument("--skip", default="", help="comma-separated workloads to leave out, e.g. memory")
    parser.add_argument(
        "--peers",
        default=None,
        help="comma-separated peers: huey,gigq for sqlite, pgqueuer,procrastinate for postgres "
        "(the default: all of the section's); '' for none",
    )
    parser.add_argument(
        "--out", type=Path, help="where the report goes (bench/results; postgres: bench/results/postgres)"
    )
    parser.add_argument("--samples", type=int, default=200, help="latency samples (GigQ: at most 10)")
    parser.add_argument("--batch", type=int, default=1_000, help="tasks per enqueue_many call (1,000)")
    parser.add_argument("--backlog", type=int, default=200_000, help="future tasks in the backlog (200,000)")
    parser.add_argument("--due", type=int, default=2_000, help="due tasks drained in backlog (2,000)")
    parser.add_argument(
        "--memory-tasks", type=int, default=1_000_000, help="queued tasks, memory (1,000,000)"
    )
    parser.add_argument(
        "--cpu-tasks", type=int, default=400, help="CPU-bound tasks drained in processmode (400)"
    )
    parser.add_argument("--report-only", action="store_true", help="redo the report from --out/results.json")
    parser.add_argument("--reinstall", action="store_true", help="rebuild the throwaway environment")
    args = parser.parse_args(argv)
    backend = BACKENDS[args.backend]
    for option in ("only", "skip"):
        names = [name for name in getattr(args, option).split(",") if name]
        unknown = set(names) - set(backend.workloads)
        if unknown:
            parser.error(
                f"--{option}: unknown workload(s) {', '.join(sorted(unknown))} for --backend "
                f"{backend.name}; use {', '.join(backend.workloads)}"
            )
        setattr(args, option, names)
    chosen = ",".join(backend.peers) if args.peers is None else args.peers
    args.peers = [name for name in chosen.split(",") if name]
    if set(args.peers) - set(backend.peers):
        parser.error(f"--peers: for --backend {backend.name}, choose among {', '.join(backend.peers)}")
    args.out = args.out or backend.out
    return args


# The throwaway environment


def venv_python() -> Path:
    return VENV / "bin" / "python"


def base_stamp() -> str:
    """What the environment's packages come from: a change rebuilds the environment."""
    return hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()


def sitq_stamp() -> str:
    """sitq's packaging and source as they are now: a change reinstalls sitq."""
    digest = hashlib.sha256()
    for folder in SITQ_FOLDERS:
        for path in [ROOT / folder / "pyproject.toml", *sorted((ROOT / folder / "src").rglob("*.py"))]:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_environment(reinstall: bool) -> None:
    """Create bench/.venv with the pinned requirements, and install sitq from this repository's folders.

    sitq is installed as a copy, not editable, so that one run measures one version of it even while
    the working tree changes; it is reinstalled whenever its source has changed since."""
    base, sitq = VENV / "bench-base.txt", VENV / "bench-sitq.txt"
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if reinstall or not venv_python().exists() or not base.exists() or base.read_text() != base_stamp():
        print(f"Building the throwaway environment in {VENV} ...", flush=True)
        venv.EnvBuilder(clear=True, with_pip=True).create(VENV)
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        base.write_text(base_stamp())
    stamp = sitq_stamp()
    if not sitq.exists() or sitq.read_text() != stamp:
        print("Installing sitq from this repository into it ...", flush=True)
        folders = [str(ROOT / folder) for folder in SITQ_FOLDERS]
        subprocess.run([*pip, "--no-deps", "--force-reinstall", *folders], check=True)
        # The pins must cover what sitq needs: a dependency it lacks would quietly change what is measured.
        subprocess.run([str(venv_python()), "-m", "pip", "check", "--disable-pip-version-check"], check=True)
        sitq.write_text(stamp)


def in_environment() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


# Machine and run description


def filesystem(path: Path) -> str:
    """The type of the filesystem that holds `path` (ext4, xfs, tmpfs, apfs, ...), or "unknown"."""
    import psutil

    path = path.resolve()
    mounts = [m for m in psutil.disk_partitions(all=True) if path.is_relative_to(m.mountpoint)]
    return max(mounts, key=lambda m: len(m.mountpoint)).fstype if mounts else "unknown"


def databases_dir() -> Path:
    """Where every measure's fresh directory, and so its database, is made: $SITQ_BENCH_DIR if set; else
    the system's temporary directory, unless that is held in memory (a tmpfs /tmp), where a commit's
    fsync costs nothing and a queue's durability would go unmeasured: then bench/.scratch, on the
    repository's disk."""
    chosen = os.environ.get("SITQ_BENCH_DIR")
    if chosen:
        path = Path(chosen)
    else:
        path = Path(tempfile.gettempdir())
        if filesystem(path) in MEMORY_FILESYSTEMS:
            path = SCRATCH
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def fsync_cost(directory: Path) -> float:
    """Milliseconds per write-and-fsync of 4 KiB in a fresh directory under `directory`."""
    import sqlite_floor

    with tempfile.TemporaryDirectory(prefix="sitq-fsync-", dir=directory) as where:
        return sqlite_floor.fsync_ms(Path(where))


def machine(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    held_by = filesystem(args.databases)

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", *SITQ_FOLDERS], capture_output=True, text=True, check=False
    )
    version = commit.stdout.strip() or "unknown"
    if changed.stdout.strip():
        version += " with uncommitted changes"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sitq_distributions": list(SITQ_FOLDERS),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "sitq_commit": version,
        "databases": str(args.databases),
        "filesystem": held_by,
        "in_memory": held_by in MEMORY_FILESYSTEMS,
        "fsync_ms": fsync_cost(args.databases),
    }


# Running measurements


def run_script(script: Path, *args: str, timeout: float = MEASURE_TIMEOUT) -> dict[str, Any]:
    """Run one measurement process and return its JSON line, or {"error": ...}."""
    env = {**os.environ, "PYTHONPATH": str(PEERS_DIR), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])


@contextmanager
def fresh_store(args: argparse.Namespace) -> Iterator[tuple[str, ...]]:
    """A fresh temporary directory, and on PostgreSQL a fresh database (dropped afterwards): the
    options that point a peer script at them."""
    with tempfile.TemporaryDirectory(prefix="sitq-bench-", dir=args.databases) as directory:
        if args.backend != "postgres":
            yield ("--dir", directory)
            return
        import pglib

        with pglib.fresh_database(args.postgres_url) as url:
            yield ("--dir", directory, "--pg-url", url)


def measure(peer: Peer, name: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(args) as where:
        return run_script(
            PEERS_DIR / peer.script,
            name,
            *where,
            *("--tasks", str(args.tasks), "--samples", str(args.samples)),
            *("--batch", str(args.batch), "--backlog", str(args.backlog), "--due", str(args.due)),
            *("--memory-tasks", str(args.memory_tasks), "--cpu-tasks", str(args.cpu_tasks)),
            *peer.args,
        )


def describe(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(args) as where:
        return run_script(PEERS_DIR / peer.script, "describe", *where, *peer.args, timeout=120)


def short(metrics: dict[str, Any]) -> str:
    if "error" in metrics:
        return "ERROR " + metrics["error"].splitlines()[-1][:100]
    shown = []
    for key, unit in (
        ("rate", "tasks/s"),
        ("cpu_us_per_task", "µs CPU/task"),
        ("p50_ms", "ms p50"),
        ("p99_ms", "ms p99"),
        ("cpu_percent", "% CPU"),
        ("rss_mb", "MiB"),
        ("duplicates", "duplicates"),
        ("claim_full", "claims/s FULL"),
    ):
        value = metrics.get(key)
        if isinstance(value, int | float):
            shown.append(f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}")
    return ", ".join(shown)


def columns(args: argparse.Namespace) -> list[str]:
    """sitq's columns of the section, then the chosen peers."""
    return [*BACKENDS[args.backend].sitq, *args.peers]


def plan(
    args: argparse.Namespace, not_available: dict[str, dict[str, str]]
) -> list[tuple[Workload, int, str, str]]:
    """(workload, repetition, peer key, measure) in run order: peers alternate within each repetition."""
    steps = []
    section = BACKENDS[args.backend].workloads
    chosen = [
        w
        for w in WORKLOADS
        if w.name in section and (not args.only or w.name in args.only) and w.name not in args.skip
    ]
    taking_part = columns(args)
    sitq = BACKENDS[args.backend].sitq
    for workload in chosen:
        peers = [p for entry in workload.peers for p in (args.peers if entry == "*" else [entry])]
        peers = [p for p in peers if p in taking_part or p == "floor"]
        for rep in range(1 if workload.repeat_once else args.repeat):
            for peer in peers:
                for name in workload.measures:
                    if name in workload.sitq_only and peer not in sitq:
                        continue
                    if name not in not_available.get(peer, {}):
                        steps.append((workload, rep, peer, name))
    return steps


def run(args: argparse.Namespace) -> dict[str, Any]:
    labels = {key: peer.label for key, peer in PEERS.items()}
    about = machine(args)
    durability: dict[str, dict[str, str]] = {}
    not_available: dict[str, dict[str, str]] = {}
    for key in columns(args):
        described = describe(PEERS[key], args)
        if "error" in described:
            sys.exit(f"{key} does not start in the throwaway environment: {described['error']}")
        durability[key] = described["durability"]
        not_available[key] = described.get("not_available", {})
    steps = plan(args, not_available)
    measurements = []
    began = time.monotonic()
    for number, (workload, rep, peer, name) in enumerate(steps, 1):
        started = time.monotonic()
        if peer == "floor":
            result = run_script(
                BENCH / "sqlite_floor.py",
                *("--tasks", str(args.tasks), "--insert-batch", str(args.batch)),
                *("--dir", str(args.databases)),
            )
        else:
            result = measure(PEERS[peer], name, args)
        metrics = result if "error" in result else result.get("metrics", result)
        seconds = time.monotonic() - started
        measurements.append(
            {
                "workload": workload.name,
                "measure": name,
                "peer": peer,
                "rep": rep,
                "seconds": seconds,
                **metrics,
            }
        )
        print(
            f"[{number:>3}/{len(steps)}] {workload.name:<8} rep {rep + 1} {labels.get(peer, peer):<14}"
            f" {name:<19} {short(metrics)}  ({seconds:.1f}s)",
            flush=True,
        )
    return {
        "backend": args.backend,
        "machine": about,
        "config": {
            "tasks": args.tasks,
            "repeat": args.repeat,
            "samples": args.samples,
            "batch": args.batch,
            "backlog": args.backlog,
            "due": args.due,
            "memory_tasks": args.memory_tasks,
            "cpu_tasks": args.cpu_tasks,
            "peers": columns(args),
            "workloads": sorted({step[0].name for step in steps}, key=WORKLOAD_NAMES.index),
            "minutes": round((time.monotonic() - began) / 60, 1),
        },
        "labels": labels,
        "durability": durability,
        "not_available": not_available,
        "measurements": measurements,
    }


def main() -> None:
    args = parse_args()
    if not in_environment():
        if shutil.which("git") is None:
            print("note: git not found; the report will not name sitq's commit", file=sys.stderr)
        ensure_environment(args.reinstall)
        os.execv(venv_python(), [str(venv_python()), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.path[:0] = [str(BENCH), str(PEERS_DIR)]
    import report

    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    if args.report_only:
        results = json.loads(results_path.read_text())
    else:
        args.databases = databases_dir()
        results = run(args)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    markdown = report.write(results, args.out)
    print()
    print(markdown)


if __name__ == "__main__":
    main()
