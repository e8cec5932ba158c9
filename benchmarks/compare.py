"""``python -m benchmarks.compare``: a baseline tree and this one, measured side by side.

Each repetition runs a tree's own ``benchmarks.__main__.bench_size(n, work, quick=...)``
in a fresh child process of that tree's interpreter (cwd and ``sys.path[0]`` = the
tree; the child checks that ``tributestore`` and ``benchmarks`` really come from it),
and, unless ``--aio-writes 0``, its own ``benchmarks.aio_lag.run``. After one small
untimed warm-up run per side (bytecode, disk cache), the runs alternate (baseline, new,
new, baseline, baseline, new, ...) so that a change of machine load hits both sides
alike. The new side is ``sys.executable`` on the tree holding this file unless
``--new-python`` / ``--new-tree`` say otherwise (the baseline's values give a
self-comparison, which must show nothing slower).

Every numeric field of the ``Result`` dataclass (``dataclasses.asdict``, nested keys
joined with dots, the ``(p50, p95)`` and ``(sqlite, composite)`` pairs named) that
both sides have is shown with, per side, the median of the repetitions and their
spread (min-max). Direction, by metric name:

- counts (``n``, ``rows``, ``items``, ``hits.*``): must be equal ("differs" if not);
- rates (a name ending in ``per_s`` or ``rate``, e.g. ``writes_per_s``): higher is better;
- everything else (``*_s`` seconds, the ms of ``search``/``per_query``/``add``/
  ``composite``/lags, ``*_mb``): lower is better.

Verdict: "slower" (for ``*_mb``: "bigger") only when the new median is worse than
the baseline median by more than the larger of the two spreads; "faster"/"smaller"
the other way; "~" (within the spread) otherwise. Under pure noise this flags about
3% of the metrics "slower" with 3 repetitions, 0.2% with 5 (simulated): use 5.
Metrics named ``legacy`` time the old bot's way (the same code on both sides): they
show how much noise the run had.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Run in the child, with argv: tree, n (0 = only the asyncio lag benchmark), work dir,
#: quick (0/1), aio writes, output file. Writes the flattened-to-JSON measurements.
CHILD = """
import dataclasses, json, statistics, sys
from pathlib import Path
tree, n, work, quick, writes, out = sys.argv[1:]
sys.path.insert(0, tree)
import benchmarks, tributestore
for module in (benchmarks, tributestore):
    if not Path(module.__file__).resolve().is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"{module.__name__} comes from {module.__file__}, not from {tree}")
if int(n):
    from benchmarks.__main__ import bench_size
    data = dataclasses.asdict(bench_size(int(n), Path(work), quick=quick == "1"))
else:
    from benchmarks.aio_lag import run
    data = {"aio": {f"{r.backend}.{r.mode}": {
        "writes_per_s": r.rate, "lag_p50_ms": statistics.median(r.lags_ms or [0.0]),
        "lag_p99_ms": r.lag(0.99), "lag_max_ms": max(r.lags_ms, default=0.0),
    } for r in run(writes=int(writes))}}
Path(out).write_text(json.dumps(data))
"""

#: Names of the items of the pairs (tuples) in ``Result``.
PAIRS = {"search": ("p50", "p95"), "add": ("p50", "p95"), "composite": ("sqlite", "composite")}


@dataclass
class Side:
    name: str
    python: str
    tree: Path
    #: section ("N=1000", "aio_lag") -> one flattened measurement per repetition
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def flatten(value: object, prefix: str = "", out: dict[str, float] | None = None) -> dict[str, float]:
    """Numeric leaves of ``value`` as ``{"search.sqlite.p50": 1.5, ...}``."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list | tuple):
        labels = PAIRS.get(prefix.split(".")[0], ())
        for i, item in enumerate(value):
            flatten(item, f"{prefix}.{labels[i] if i < len(labels) else i}", out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out[prefix] = float(value)
    return out


def child_env(side: Side, root: Path) -> dict[str, str]:
    """This environment without ``PYTHONPATH``, bytecode cached in a directory of the side's own.

    The same for both sides whatever the trees hold: no stale ``__pycache__`` read, none written into
    the trees, and (after the warm-up) no module compiled again at every interpreter start.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(root / f"pycache-{side.name}")
    return env


def run_once(side: Side, n: int, quick: bool, aio_writes: int, root: Path) -> dict[str, float]:
    """One repetition in a fresh child process of the side's interpreter, in the side's tree."""
    work = Path(tempfile.mkdtemp(prefix=f"{side.name}-n{n}-", dir=root))
    out = root / f"{work.name}.json"
    argv = [str(side.tree), str(n), str(work), "1" if quick else "0", str(aio_writes), str(out)]
    try:
        command = [side.python, "-c", CHILD, *argv]
        subprocess.run(command, cwd=side.tree, env=child_env(side, root), check=True)
        return flatten(json.loads(out.read_text()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        out.unlink(missing_ok=True)


def run_all(sides: list[Side], jobs: list[tuple[str, int]], args: argparse.Namespace, root: Path) -> None:
    """A small untimed warm-up per side, then every job ``repeats`` times, the sides alternating.

    The order flips at each repetition (baseline, new, new, baseline, baseline, new, ...) so that
    neither side always runs right after the other (whose files the kernel may still be writing).
    """
    for side in sides:
        log(f"=== warm-up (not measured): {side.name} ({side.tree})")
        for n in sorted({min(n, 100) for _section, n in jobs}):
            run_once(side, n, True, 20, root)
    for section, n in jobs:
        for repetition in range(1, args.repeats + 1):
            for side in sides if repetition % 2 else sides[::-1]:
                log(f"=== {section}, repetition {repetition}/{args.repeats}: {side.name} ({side.tree})")
                started = time.perf_counter()
                measured = run_once(side, n, args.quick, args.aio_writes, root)
                side.runs.setdefault(section, []).append(measured)
                side.seconds.setdefault(section, []).append(time.perf_counter() - started)


def direction(metric: str) -> str:
    """ "count" (must be equal), "higher" (is better: rates) or "lower" (seconds, ms, MB)."""
    if metric in ("n", "rows", "items") or metric.startswith("hits."):
        return "count"
    return "higher" if metric.endswith(("per_s", "rate")) else "lower"


def spread(values: list[float]) -> float:
    return max(values) - min(values)


def verdict(metric: str, base: list[float], new: list[float]) -> str:
    kind = direction(metric)
    if kind == "count":
        return "=" if sorted(base) == sorted(new) else "differs"
    worse = statistics.median(new) - statistics.median(base)
    worse = -worse if kind == "higher" else worse
    allowed = max(spread(base), spread(new))
    words = ("bigger", "smaller") if metric.endswith("_mb") else ("slower", "faster")
    if worse > allowed:
        return words[0]
    return words[1] if -worse > allowed else "~"


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def row(metric: str, base: list[float], new: list[float]) -> str:
    b, m = statistics.median(base), statistics.median(new)
    change = f"{(m - b) / b * 100:+.1f}%" if b else "-"
    cells = [
        metric,
        number(b),
        f"{number(min(base))}-{number(max(base))}",
        number(m),
        f"{number(min(new))}-{number(max(new))}",
        change,
        verdict(metric, base, new),
    ]
    return "| " + " | ".join(cells) + " |"


def section_table(section: str, base: Side, new: Side) -> list[str]:
    base_runs, new_runs = base.runs[section], new.runs[section]
    base_keys, new_keys = set(base_runs[0]), set(new_runs[0])
    lines = [
        f"### {section}: {len(base_runs)} repetitions per side; one repetition took "
        f"{statistics.median(base.seconds[section]):.0f} s ({base.name}), "
        f"{statistics.median(new.seconds[section]):.0f} s ({new.name})",
        "",
        f"| metric | {base.name} median | {base.name} min-max | {new.name} median | {new.name} min-max "
        "| change | verdict |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for metric in [key for key in base_runs[0] if key in new_keys]:
        lines.append(row(metric, [r[metric] for r in base_runs], [r[metric] for r in new_runs]))
    for side, only in ((base, base_keys - new_keys), (new, new_keys - base_keys)):
        if only:
            lines += ["", f"Only in {side.name} (not compared): {', '.join(sorted(only))}"]
    return [*lines, ""]


def describe(side: Side) -> str:
    git = ["git", "-C", str(side.tree), "describe", "--always", "--dirty"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    version = [side.python, "-c", "import platform; print(platform.python_version())"]
    python = subprocess.run(version, capture_output=True, text=True, check=False).stdout.strip()
    return f"- {side.name}: {side.tree} at {commit or '?'}, `{side.python}` (Python {python})"


def report(base: Side, new: Side, args: argparse.Namespace) -> str:
    lines = [describe(base), describe(new), ""]
    lines.append(
        f"Options: sizes {args.sizes}, {args.repeats} repetitions, quick={args.quick}, "
        f"aio writes {args.aio_writes}; load average at the end: "
        + " ".join(f"{load:.2f}" for load in os.getloadavg())
    )
    lines.append("")
    for section in base.runs:
        lines += section_table(section, base, new)
    flagged = [line for line in lines if line.endswith(("| slower |", "| bigger |", "| differs |"))]
    lines.append(f"Worse beyond the spread: {len(flagged)} metric(s).")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-python", required=True, help="interpreter with the baseline installed")
    parser.add_argument("--baseline-tree", type=Path, required=True, help="the baseline's source tree")
    parser.add_argument("--new-python", default=sys.executable, help="default: this interpreter")
    parser.add_argument("--new-tree", type=Path, default=here, help=f"default: {here}")
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated N (tributes)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per side (at least 2)")
    parser.add_argument("--quick", action="store_true", help="bench_size(quick=True): fewer calls")
    parser.add_argument("--aio-writes", type=int, default=1000, help="asyncio lag writes (0: skip it)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--raw", type=Path, help="also write every repetition's measurements (JSON)")
    parser.add_argument("--work-dir", type=Path, help="where the data is generated (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (a spread needs two repetitions)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    base = Side("baseline", args.baseline_python, args.baseline_tree.resolve())
    new = Side("new", args.new_python, args.new_tree.resolve())
    jobs = [(f"N={int(n)}", int(n)) for n in args.sizes.split(",")]
    jobs += [("aio_lag", 0)] if args.aio_writes else []
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="tributestore-compare-", dir=args.work_dir))
    try:
        run_all([base, new], jobs, args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = report(base, new, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.raw:
        sides = {
            side.name: {"tree": str(side.tree), "runs": side.runs, "seconds": side.seconds}
            for side in (base, new)
        }
        args.raw.write_text(json.dumps(sides, indent=1))


if __name__ == "__main__":
    main()
