"""The ``sparse-rl`` command line; subcommands arrive with the issues that implement them."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sparse_rl import __version__

#: Subcommands and what each does; unimplemented ones say so instead of pretending.
SUBCOMMANDS: dict[str, str] = {
    "demo": "the main job (make demo): R2N vs PEBBLE on a noisy-feature env, end to end, with a "
    "report, a picture of the inputs each reward model reads, and an exported policy",
    "train": "train an agent from a config file (YAML or TOML) into a resumable run directory",
    "eval": "evaluate a run's model (final, or its newest checkpoint) and write a table",
    "export": "export a run's policy to ONNX (+ TorchScript / numpy) with a policy card",
    "deploy": "check an exported policy or run it in a fixed-rate control loop (the runtime: "
    "sparse-rl deploy run DIR --gym-id ID; same as python -m sparse_rl.runtime)",
    "sweep": "run a grid of method x env x seed from a sweep file, locally or on Ray",
    "report": "aggregate runs into curves with bootstrap bands, rliable metrics and tables",
    "bench": "run the speed benchmarks of a source checkout (benchmarks/results/)",
}


#: Subcommands whose arguments their own parser reads (each has its own ``--help``).
PASSTHROUGH = ("demo", "deploy")

#: Exit status of a bad config (argparse uses 2 for bad arguments too) and of other user errors.
EXIT_CONFIG, EXIT_USER = 2, 1


def _add_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="run config (.yaml/.yml/.toml); optional with --resume, which reads the run's own",
    )
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help="where the run writes (default: runs/<name or algo>-<env id>-s<seed>); must not "
        "hold a run already",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, value read as YAML (repeatable): --set seed=3 --set "
        "env.noise_fraction=0.9 --set policy_kwargs.net_arch=[64,64]",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest complete checkpoint (only steps may "
        "differ from its config.yaml: --set steps=N extends it); with CONFIG, a RUN_DIR without a "
        "run starts one",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show SB3's progress bar (default: when stdout is a terminal)",
    )


def _add_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by train")
    parser.add_argument(
        "--episodes", type=int, metavar="N", help="episodes per mode (default: eval.episodes)"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        metavar="MODE",
        help="visual algos: distraction presets or intensities in (0, 1] (default: clean "
        "color_hard video_easy video_hard medium)",
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (default: RUN_DIR/evaluation)")


def _add_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by train")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: RUN_DIR/export)")
    parser.add_argument(
        "--formats",
        nargs="+",
        default=["onnx", "torchscript"],
        metavar="FORMAT",
        help="onnx (always written), torchscript, numpy (default: onnx torchscript)",
    )


_EPILOGS = {
    "train": "Writes RUN_DIR/config.yaml (the resolved config), eval.csv, logs/ (SB3 logs), "
    "checkpoints/, labels.sqlite (pebble, r2n), model.zip and done.json. Example configs: "
    "configs/ in the repository; every key is documented in sparse_rl.config. Exit status 2: "
    "bad config; 1: other errors (run dir already holds a run, nothing to resume).",
    "eval": "Uses RUN_DIR/model.zip when the run is finished, else its newest complete "
    "checkpoint. Writes eval.csv, eval.md and eval.json (and MaDi mask pictures) to --out.",
    "export": "Uses RUN_DIR/model.zip when the run is finished, else its newest complete "
    "checkpoint; the env id and frame stack come from the run's config. Run the export with "
    "sparse-rl deploy.",
}


def _add_sweep(parser: argparse.ArgumentParser) -> None:
    from sparse_rl.sweeps import add_sweep_arguments

    add_sweep_arguments(parser)


def _add_report(parser: argparse.ArgumentParser) -> None:
    from sparse_rl.reporting import add_report_arguments

    add_report_arguments(parser)


def _add_bench(parser: argparse.ArgumentParser) -> None:
    from sparse_rl.bench import add_bench_arguments

    add_bench_arguments(parser)


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "bench": _add_bench,
    "train": _add_train,
    "eval": _add_eval,
    "export": _add_export,
    "sweep": _add_sweep,
    "report": _add_report,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparse-rl",
        description="Reinforcement learning with sparse networks whose topology evolves.",
    )
    parser.add_argument("--version", action="version", version=f"sparse-rl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        command = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EPILOGS.get(name),
            add_help=name not in PASSTHROUGH,
        )
        if name in _ARGUMENTS:
            _ARGUMENTS[name](command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from sparse_rl import demo

        return demo.main(rest)
    if args.command == "deploy":
        from sparse_rl.runtime.__main__ import main as runtime_main

        return runtime_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "sweep":
        from sparse_rl.sweeps import run_sweep_command

        return run_sweep_command(args)
    if args.command == "bench":
        from sparse_rl.bench import run_bench

        return run_bench(args)
    if args.command == "report":
        from sparse_rl.reporting import run_report

        return run_report(args)
    if args.command in _ARGUMENTS:
        return _run(args)
    raise AssertionError(f"unhandled subcommand {args.command}")  # every one is wired above


def _run(args: argparse.Namespace) -> int:
    """Run train / eval / export; user errors become one line on stderr and an exit status."""
    from sparse_rl.checkpoints import CheckpointError
    from sparse_rl.config import ConfigError
    from sparse_rl.run_dir import RunError

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"sparse-rl {args.command}: %(message)s"))
    package_log = logging.getLogger("sparse_rl")
    package_log.addHandler(handler)
    package_log.setLevel(logging.INFO)
    propagate, package_log.propagate = package_log.propagate, False
    try:
        return {"train": _train, "eval": _eval, "export": _export}[args.command](args)
    except ConfigError as error:
        print(f"sparse-rl {args.command}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except (RunError, CheckpointError) as error:
        print(f"sparse-rl {args.command}: {error}", file=sys.stderr)
        return EXIT_USER
    finally:
        package_log.removeHandler(handler)
        package_log.propagate = propagate


def _train(args: argparse.Namespace) -> int:
    from sparse_rl.config import load_config
    from sparse_rl.run_dir import CONFIG_FILE, RunError, default_run_dir
    from sparse_rl.training import train

    if args.resume is not None:
        run_dir = Path(args.resume)
        if args.run_dir is not None and Path(args.run_dir) != run_dir:
            raise RunError(
                f"--run-dir {args.run_dir} and --resume {args.resume} disagree; "
                "give only --resume RUN_DIR."
            )
        if args.config is None:
            if not (run_dir / CONFIG_FILE).is_file():
                raise RunError(
                    f"{run_dir} holds no run to resume ({CONFIG_FILE} is missing); "
                    "give a CONFIG to start one there."
                )
            config = load_config(run_dir / CONFIG_FILE, args.overrides)
        else:
            config = load_config(args.config, args.overrides)
    else:
        if args.config is None:
            raise RunError("give a CONFIG file to train, or --resume RUN_DIR to continue a run.")
        config = load_config(args.config, args.overrides)
        run_dir = Path(args.run_dir) if args.run_dir is not None else default_run_dir(config)
    progress = sys.stdout.isatty() if args.progress is None else args.progress
    train(config, run_dir, resume=args.resume is not None, progress_bar=progress)
    print(
        f"sparse-rl train: done. {run_dir}/model.zip (final model), eval.csv (returns), "
        f"logs/ (SB3 logs), checkpoints/, config.yaml",
        file=sys.stderr,
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from sparse_rl.evaluation import evaluate_run

    modes = None if args.modes is None else [_mode(m) for m in args.modes]
    table = evaluate_run(args.run_dir, episodes=args.episodes, modes=modes, out_dir=args.out)
    print(table.with_name("eval.md").read_text(), end="")
    print(f"sparse-rl eval: wrote {table.parent}/ (eval.csv, eval.md, eval.json)", file=sys.stderr)
    return 0


def _mode(text: str) -> str | float:
    """A distraction preset name, or an intensity given as a number."""
    try:
        return float(text)
    except ValueError:
        return text


def _export(args: argparse.Namespace) -> int:
    from sparse_rl.evaluation import export_run

    card = export_run(args.run_dir, out_dir=args.out, formats=args.formats)
    print(f"sparse-rl export: wrote {card.parent}/ (card: {card})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
