"""The ``sparse-rl report`` subcommand's options and body (``sparse_rl/cli.py`` mounts them)."""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings

from sparse_rl.validation import positive_int_arg

from .report import write_report
from .runs import ReportError, RunRecord, UnevaluatedRunsWarning, load_runs

#: The command-line spelling of each parameter a :class:`ReportError` can name.
FLAGS = {
    "paths": "RUNS",
    "runs": "RUNS",
    "mode": "--mode",
    "normalize": "--normalize",
    "reps": "--reps",
    "seed": "--seed",
}


def parse_normalize(text: str) -> tuple[str, tuple[float, float]]:
    """``"HalfCheetah-v5=-280:12000"`` → ``("HalfCheetah-v5", (-280.0, 12000.0))``."""
    env, sep, bounds = text.rpartition("=")
    low, colon, high = bounds.partition(":")
    try:
        if not (env and sep and colon):
            raise ValueError
        pair = float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected ENV=LOW:HIGH (e.g. HalfCheetah-v5=-280:12000), got {text!r}"
        ) from None
    if not pair[1] > pair[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: HIGH must exceed LOW")
    return env, pair


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sparse-rl report``."""
    parser.add_argument(
        "runs", nargs="*", metavar="RUNS",
        help="run directories (config.yaml + eval.csv), or folders searched recursively for them",
    )  # fmt: skip
    parser.add_argument(
        "--out", required=True, metavar="DIR",
        help="folder for curves.png, metrics.png, report.md and report.json",
    )  # fmt: skip
    parser.add_argument(
        "--mode", metavar="MODE",
        help="report only this evaluation mode (e.g. video_hard); default: each mode is a task",
    )  # fmt: skip
    parser.add_argument(
        "--normalize", action="append", type=parse_normalize, default=[], metavar="ENV=LOW:HIGH",
        help="map ENV's returns LOW..HIGH to scores 0..1 (repeat per env); DMC tasks default to "
        "0:1000; without a range for every env, aggregates are on raw returns",
    )  # fmt: skip
    parser.add_argument("--reps", type=positive_int_arg, default=2000, metavar="N",
                        help="bootstrap replicates per interval (default: 2000)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of every bootstrap (default: 0)")  # fmt: skip


def format_command(args: argparse.Namespace) -> str:
    """The ``sparse-rl report`` command that ``args`` came from, spelled out in full."""
    words = ["sparse-rl", "report", *args.runs, "--out", args.out]
    if args.mode is not None:
        words += ["--mode", args.mode]
    for env, (low, high) in args.normalize:
        words += ["--normalize", f"{env}={low:g}:{high:g}"]
    words += ["--reps", str(args.reps), "--seed", str(args.seed)]
    return shlex.join(words)


def _load(args: argparse.Namespace) -> tuple[list[RunRecord], list[str]]:
    """Every run the arguments name, and the loaders' notes on runs they left out."""
    if not args.runs:
        raise ReportError("runs", "give run directories, or folders that hold them.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnevaluatedRunsWarning)
        runs = load_runs(args.runs)
    notes = []
    for warning in caught:
        if issubclass(warning.category, UnevaluatedRunsWarning):
            notes.append(str(warning.message))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)  # fmt: skip
    return runs, notes


def run_report(args: argparse.Namespace) -> int:
    """Load the runs, write the report; bad input → one line naming the argument, status 2."""
    try:
        normalize = dict(args.normalize)
        if len(normalize) < len(args.normalize):
            raise ReportError("normalize", "an env is given more than one range.")
        runs, notes = _load(args)
        for note in notes:
            print(f"sparse-rl report: warning: {note}", file=sys.stderr)
        out = write_report(
            runs, args.out, mode=args.mode, normalize=normalize, reps=args.reps, seed=args.seed,
            command=format_command(args), notes=notes,
        )  # fmt: skip
    except ReportError as error:
        flag = FLAGS.get(error.param, error.param)
        print(f"sparse-rl report: error: argument {flag}: {error.message}", file=sys.stderr)
        return 2
    print(f"sparse-rl report: wrote {out / 'report.md'} and its figures")
    return 0
