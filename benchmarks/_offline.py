"""What the offline benchmarks share (``reward_learning.py`` and the supervised ones):
resumable rows, the ``run --jobs N`` runner, the machine record, the
reports' intervals and headers, and the ``run`` / ``report`` command line.

A benchmark is a module with a list of cells (frozen dataclasses derived from :class:`Cell`;
most use :class:`ProblemCell`), a ``run_cell`` that turns one cell into one row and a
``describe`` that prints a row; :func:`main` reads them, ``NAME`` and ``SEEDS`` from it. Under a
results root (``results/`` unless ``--out``), benchmark ``name`` keeps its rows in
``name/rows.jsonl`` (appended as they finish, so a run resumes), where they were made in
``name/machine.json``, and its report in ``name.{md,png}``, written by ``write_report(rows,
root, command)`` of ``name_report.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import shlex
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

RESULTS = Path(__file__).parent / "results"
Row = dict[str, Any]
Rows = list[Row]
K = TypeVar("K")

# -- cells, rows and the machine record -------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One run of a benchmark; subclasses add the fields, which ``key`` joins with ``|``."""

    @property
    def key(self) -> str:
        return "|".join(str(getattr(self, f.name)) for f in fields(self))


@dataclass(frozen=True)
class ProblemCell(Cell):
    """One (problem, arm, seed) run at a scale ("full" or "quick")."""

    problem: str
    arm: str
    seed: int
    scale: str = "full"


def problem_cells(
    args: argparse.Namespace, keep: Callable[[str, str], bool] | None = None
) -> list[ProblemCell]:
    """Every (problem, seed, arm) of the command line at its scale, a seed's arms together;
    ``keep(problem, arm)`` leaves out the pairs a benchmark does not run."""
    return [
        ProblemCell(p, a, seed, args.scale)
        for p in args.problems
        for seed in args.seeds
        for a in args.arms
        if keep is None or keep(p, a)
    ]


def read_rows(path: Path) -> Rows:
    """Every row of a JSONL file; none if it does not exist yet."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_row(path: Path, row: Row) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def done_keys(path: Path, kind: type[Cell]) -> set[str]:
    """Keys of the cells of type ``kind`` that have a row in ``path``."""
    names = [f.name for f in fields(kind)]
    return {kind(**{k: r[k] for k in names}).key for r in read_rows(path)}


def write_machine(folder: Path, jobs: int) -> None:
    """``folder/machine.json``, unless the rows already have one."""
    meta = folder / "machine.json"
    if not meta.exists():
        from _machine import machine_info

        info = {**machine_info(), "threads_per_run": 1, "jobs": jobs}
        meta.write_text(json.dumps(info, indent=1) + "\n")


def read_machine(folder: Path) -> dict[str, Any]:
    meta = folder / "machine.json"
    return json.loads(meta.read_text()) if meta.exists() else {}


# -- the runner -------------------------------------------------------------------------------


def _one_thread() -> AbstractContextManager[Any]:
    """BLAS and OpenMP pools at one thread (threadpoolctl comes with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # spawned workers still get the variables set by run_cells
        return nullcontext()
    return threadpool_limits(1)


def _work(
    cells: Sequence[Cell],
    run_cell: Callable[[Any], Row],
    describe: Callable[[Row], str],
    path: Path,
) -> None:
    """Run cells one after another on one thread, appending each row as it finishes."""
    import torch

    torch.set_num_threads(1)
    # The first optimizer imports torch._dynamo (seconds): do it here, not in a timed cell.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with _one_thread():
        for cell in cells:
            row = run_cell(cell)
            append_row(path, row)
            print(f"{cell.key}: {describe(row)}", flush=True)


def run_cells(
    cells: Sequence[Cell],
    run_cell: Callable[[Any], Row],
    describe: Callable[[Row], str],
    folder: Path,
    jobs: int,
) -> None:
    """Run the cells whose key has no row in ``folder/rows.jsonl`` yet: ``jobs`` spawned
    processes with one thread each (``jobs=1`` runs here), cells dealt round-robin in order."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rows.jsonl"
    if not cells:
        return
    done = done_keys(path, type(cells[0]))
    todo = [c for c in cells if c.key not in done]
    print(f"{len(todo)} runs to do, {len(cells) - len(todo)} done; rows go to {path}", flush=True)
    write_machine(folder, jobs)
    if jobs <= 1:
        _work(todo, run_cell, describe, path)
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the spawned processes before numpy loads
    shards = [todo[i::jobs] for i in range(jobs)]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_work, args=(s, run_cell, describe, path)) for s in shards if s
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if any(w.exitcode for w in workers):
        sys.exit("a worker failed; re-run to resume")


# -- the command line -------------------------------------------------------------------------


def output_root(out: Path | None, quick: bool, name: str) -> Path:
    """Where rows and reports go: ``results/`` for full runs; a temporary folder (or ``out``,
    never inside ``results/``) for a quick smoke."""
    if not quick:
        return RESULTS if out is None else out
    root = Path(tempfile.mkdtemp(prefix=f"{name}_quick_")) if out is None else out
    if root.resolve().is_relative_to(RESULTS.resolve()):
        sys.exit(f"--quick writes smoke rows, not results: pick an --out outside {RESULTS}")
    return root


def main(
    argv: list[str] | None,
    benchmark: ModuleType,
    *,
    what: str,
    choices: Mapping[str, Sequence[str]],
    quick: bool = True,
) -> None:
    """The ``run`` and ``report`` commands of a benchmark module (its ``NAME``, docstring,
    ``SEEDS``, ``cells``, ``run_cell`` and ``describe``). ``run`` runs the missing cells of
    ``cells(args)``, which reads ``args.seeds``, ``args.scale`` and one list per ``choices``
    entry (``args.arms``, ...); with ``quick``, ``run --quick`` runs the ``quick`` scale with
    seed 0 into a temporary folder, then reports there."""
    name, doc, seeds = benchmark.NAME, benchmark.__doc__ or "", benchmark.SEEDS
    cells, run_cell, describe = benchmark.cells, benchmark.run_cell, benchmark.describe
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help=f"{what}; resumable")
    go.add_argument("--jobs", type=int, default=2, help="processes, one thread each")
    seeds_help = f"default {seeds[0]}-{seeds[-1]}" + (" (quick: 0)" if quick else "")
    go.add_argument("--seeds", type=int, nargs="+", default=None, help=seeds_help)
    for option, values in choices.items():
        go.add_argument(f"--{option}", nargs="+", default=list(values), choices=values)
    if quick:
        go.add_argument("--quick", action="store_true", help="tiny sizes, 1 seed, then report")
    out_help = "results root" + (" (quick: a temp dir)" if quick else "")
    go.add_argument("--out", type=Path, default=None, help=out_help)
    rep = sub.add_parser("report", help=f"write results/{name}.{{md,png}}")
    rep.add_argument("--out", type=Path, default=None, help="results root of the rows")
    args = parser.parse_args(argv)

    is_quick = args.command == "run" and getattr(args, "quick", False)
    root = output_root(args.out, is_quick, name)
    if args.command == "run":
        args.seeds = args.seeds or ([0] if is_quick else list(seeds))
        args.scale = "quick" if is_quick else "full"
        run_cells(cells(args), run_cell, describe, root / name, args.jobs)
        if not is_quick:
            return
    write_report = importlib.import_module(f"{name}_report").write_report
    command = f"python benchmarks/{name}.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    path = write_report(read_rows(root / name / "rows.jsonl"), root, command)
    print(f"wrote {path} and {path.with_suffix('.png')}")


# -- reports ----------------------------------------------------------------------------------


def ci(values: Sequence[float], reps: int = 10_000) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval over seeds (``sparse_rl.reporting``)."""
    from sparse_rl.reporting import bootstrap_mean_ci

    v = np.asarray(values, dtype=float)[:, None]
    low, high = bootstrap_mean_ci(v, reps, seed=0)
    return float(v.mean()), float(low[0]), float(high[0])


def fmt(values: Sequence[float], digits: int = 3) -> str:
    """``mean [low, high]``, or ``-`` without values."""
    if not len(values):
        return "-"
    mean, low, high = ci(values)
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def by_arm(rows: Rows, cell: Callable[[Row], K]) -> dict[K, dict[str, Rows]]:
    """Rows by ``cell(row)``, then by arm, in the order they come."""
    out: dict[K, dict[str, Rows]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        out[cell(row)][row["arm"]].append(row)
    return out


def header(root: Path, name: str, command: str, rows: Rows) -> list[str]:
    """A report's opening: a banner for quick rows, then the commands and the machine."""
    info = read_machine(root / name)
    smoke = any(r.get("scale") == "quick" for r in rows)
    banner = ["**Quick smoke (tiny sizes, 1 seed): not results.**", ""] if smoke else []
    return [
        *banner,
        f"Rows: `{info.get('command', f'python benchmarks/{name}.py run --jobs 2')}`; this "
        f"file and `{name}.png`: `{command}`. Machine: {info.get('cpu', '?')}, "
        f"{info.get('cores', '?')} cores, torch {info.get('torch', '?')}, one thread per run, "
        f"{info.get('jobs', '?')} runs at a time; {info.get('date', '?')}. Raw rows: "
        f"`{name}/rows.jsonl` ({len(rows)}).",
    ]


def save(root: Path, name: str, md: list[str], plot: Callable[[Path], None]) -> Path:
    """Write ``root/name.md`` from its lines and ``root/name.png`` with ``plot``."""
    path = root / f"{name}.md"
    path.write_text("\n".join(md))
    plot(root / f"{name}.png")
    return path
