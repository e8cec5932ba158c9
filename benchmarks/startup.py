"""Start-up: whole processes, side by side with their floors (issue 13, goal 5).

Bots restart often and every CLI call starts Python, so what counts is the
whole process: start Python, ``import tributestore``, ``open_store()`` on an
existing small SQLite file, one read.  Each command runs as a child process,
the commands alternating round after round (so a load spike hits them all),
and the best and the median wall time of each are reported beside the floors
``python -c pass`` and ``python -c "import sqlalchemy"``.

:func:`breakdown` gives the top cumulative ``python -X importtime`` entries of
the open + read process (where the rest of the time goes).

Run alone: ``python -m benchmarks.startup [--runs 10] [--markdown FILE]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Wall-time goals of issue 13 (seconds, whole process, quiet machine).
GOAL_OPEN_READ = 0.30
GOAL_HELP = 0.12

#: Prepended to a child's code: only tributestore's own entry points are seen, as in a bot's
#: installation (a development environment also has the third-party test plugin, whose
#: modules import pydantic and click at import).
BUILTIN_PLUGINS_ONLY = """
import importlib.metadata as _metadata
_entry_points = _metadata.entry_points
def _builtin_only(**params):
    found = _entry_points(**params)
    if params.get("group") != "tributestore":
        return found
    return _metadata.EntryPoints(ep for ep in found if ep.value.startswith("tributestore."))
_metadata.entry_points = _builtin_only
"""

#: The floor of any pydantic model: ``import pydantic`` alone leaves most of pydantic unloaded.
PYDANTIC_MODEL = "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int\nM(x=1)"

CLI_MAIN = "import sys; from tributestore.cli import main; main(sys.argv[1:])"

OPEN_READ = """
import tributestore
with tributestore.open_store({url!r}, mode="read") as store:
    store.get_tribute(1, "D1F")
"""


def _cli() -> list[str]:
    """The ``tributestore`` console script of this interpreter (else ``python -c`` on its main)."""
    script = Path(sys.executable).with_name("tributestore")
    if script.is_file():
        return [str(script)]
    found = shutil.which("tributestore")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from tributestore.cli import main; main(sys.argv[1:])"]


def make_store(work: Path) -> str:
    """A small SQLite store (one guild, one tribute with one item), created untimed; its URL."""
    path = work / "startup.db"
    url = f"sqlite:///{path.absolute()}"
    if not path.exists():
        code = (
            "import tributestore\n"
            f"with tributestore.open_store({url!r}) as s:\n"
            "    s.create_tribute(1, 'D1F', name='Katniss')\n"
            "    s.add_item(1, 'D1F', 'bow')\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return url


def commands(url: str) -> list[tuple[str, list[str]]]:
    """What is timed: the floors first, then tributestore (with every installed plugin, then
    with the built-in ones only, as a bot's installation has)."""
    py = sys.executable
    open_read = OPEN_READ.format(url=url)
    return [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c 'import pydantic'", [py, "-c", "import pydantic"]),
        ("python -c 'import sqlalchemy'", [py, "-c", "import sqlalchemy"]),
        ("pydantic: one model defined and validated", [py, "-c", PYDANTIC_MODEL]),
        ("import tributestore", [py, "-c", "import tributestore"]),
        (OPEN_READ_NAME, [py, "-c", open_read]),
        (f"{OPEN_READ_NAME}, built-in plugins only", [py, "-c", BUILTIN_PLUGINS_ONLY + open_read]),
        (HELP_NAME, [*_cli(), "--help"]),
        (f"{HELP_NAME}, built-in plugins only", [py, "-c", BUILTIN_PLUGINS_ONLY + CLI_MAIN, "--help"]),
    ]


OPEN_READ_NAME = "open_store (sqlite, read) + get_tribute"
HELP_NAME = "tributestore --help"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process."""
    cpu = _cpu()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start, _cpu() - cpu


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def run(
    n: int = 0, work: Path | None = None, quick: bool = False, runs: int | None = None
) -> list[dict[str, Any]]:
    """Time each command ``runs`` times (default 10, at least 10), alternating; ``n`` is ignored.

    One row per command: best and median seconds, the ratio of the best to
    ``python -c pass`` and to ``import sqlalchemy``, and the load average.
    """
    del n, quick  # start-up does not depend on the data size; 10 runs are quick enough
    rounds = max(10, runs or 10)
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        where = work if work is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        url = make_store(where)
        todo = commands(url)
        env = dict(os.environ)
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        for _, argv in todo:  # warm the OS caches and the bytecode caches, untimed
            _time(argv, env)
        load_before = _load()
        times: dict[str, list[float]] = {name: [] for name, _ in todo}
        cpu: dict[str, list[float]] = {name: [] for name, _ in todo}
        for _ in range(rounds):
            for name, argv in todo:
                wall, used = _time(argv, env)
                times[name].append(wall)
                cpu[name].append(used)
        load = f"{load_before} -> {_load()}"
    best = {name: min(values) for name, values in times.items()}
    floor = best["python -c pass"]
    sqlalchemy = best["python -c 'import sqlalchemy'"]
    goals = {name: GOAL_OPEN_READ for name in times if name.startswith(OPEN_READ_NAME)}
    goals |= {name: GOAL_HELP for name in times if name.startswith(HELP_NAME)}
    return [
        {
            "command": name,
            "runs": len(values),
            "best_s": min(values),
            "median_s": statistics.median(values),
            "cpu_best_s": min(cpu[name]),
            "x_python": min(values) / floor,
            "x_sqlalchemy": min(values) / sqlalchemy,
            "goal_s": goals.get(name),
            "load": load,
        }
        for name, values in times.items()
    ]


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (seconds; ratios of the best times)."""
    lines = [
        "| whole process | best s | median s | best CPU s | / python -c pass | / import sqlalchemy | goal |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        goal = f"{row['goal_s']:.2f} s" if row.get("goal_s") else ""
        lines.append(
            f"| {row['command']} | {row['best_s']:.3f} | {row['median_s']:.3f} | {row['cpu_best_s']:.3f} | "
            f"{row['x_python']:.1f} | {row['x_sqlalchemy']:.2f} | {goal} |"
        )
    if rows:
        lines.append("")
        lines.append(
            f"Wall seconds of whole processes, {rows[0]['runs']} runs each, alternating; ratios of the "
            f"best times; load average (1, 5, 15 min) {rows[0]['load']}."
        )
    return "\n".join(lines)


def breakdown(top: int = 25, work: Path | None = None, max_depth: int = 2) -> list[tuple[str, float, float]]:
    """The ``top`` modules of the open + read process (built-in plugins only) by cumulative import time.

    Each row is ``(module, cumulative ms, self ms)``, from ``python -X importtime``
    (one run, after a warm-up), for the modules imported at most ``max_depth``
    levels below the top (0: the top level only); a nested module's time is also
    in its parent's.  Modules loaded by ``importlib.import_module`` (plugins,
    backend openers) show at the top level: ``-X importtime`` does not nest them.
    """
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        where = work if work is not None else Path(tmp)
        url = make_store(where)
        code = BUILTIN_PLUGINS_ONLY + OPEN_READ.format(url=url)
        argv = [sys.executable, "-X", "importtime", "-c", code]
        subprocess.run(argv, check=True, capture_output=True)
        result = subprocess.run(argv, check=True, capture_output=True, text=True)
    entries = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, cumulative_us, name = line.replace("import time:", "|").split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth <= max_depth:
            entries.append((name.strip(), int(cumulative_us) / 1000, int(self_us) / 1000))
    entries.sort(key=lambda entry: entry[1], reverse=True)
    return entries[:top]


def breakdown_markdown(entries: list[tuple[str, float, float]]) -> str:
    lines = ["| module (open + read) | cumulative ms | self ms |", "|---|---:|---:|"]
    lines += [f"| {name} | {cumulative:.1f} | {self_ms:.1f} |" for name, cumulative, self_ms in entries]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    text = markdown(run(runs=args.runs)) + "\n\n" + breakdown_markdown(breakdown(args.top)) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
