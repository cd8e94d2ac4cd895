"""``sparse-rl bench``: the speed benchmarks, each a script in the checkout's ``benchmarks/``.

Each script measures ours against its baseline side by side in one run and writes
``benchmarks/results/<name>.{json,md}`` with the command and the machine. Training sweeps (noise
robustness, PbRL, distractions) are not speed benchmarks: they run with ``sparse-rl sweep`` or
their own scripts, for hours.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

#: The speed benchmarks, in the order ``make bench`` runs them.
SPEED_BENCHMARKS = (
    "sparse_core_speed",
    "mask_ops",
    "sparse_policy_speed",
    "reward_model_speed",
    "visual_update_speed",
    "visual_costs",
    "noisy_features_overhead",
    "env_fps",
    "env_grids",
    "export_latency",
)


def benchmarks_dir() -> Path:
    """The ``benchmarks/`` folder of the source checkout this package runs from."""
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"sparse-rl bench runs the scripts of a source checkout, and {folder} does not "
            "exist: clone the repository and install it with pip install -e ."
        )
    return folder


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(SPEED_BENCHMARKS)}",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")


def run_bench(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(SPEED_BENCHMARKS))
        return 0
    unknown = [name for name in args.names if name not in SPEED_BENCHMARKS]
    if unknown:
        print(
            f"sparse-rl bench: unknown benchmark(s) {unknown}; choose from "
            f"{list(SPEED_BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    try:
        folder = benchmarks_dir()
    except FileNotFoundError as error:
        print(f"sparse-rl bench: {error}", file=sys.stderr)
        return 2
    for name in args.names or SPEED_BENCHMARKS:
        print(f"== {name}", flush=True)
        result = subprocess.run([sys.executable, f"{name}.py"], cwd=folder)
        if result.returncode:
            print(f"sparse-rl bench: {name} failed (exit {result.returncode})", file=sys.stderr)
            return result.returncode
    return 0
