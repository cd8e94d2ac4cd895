"""The ``sparse-rl`` command line; subcommands arrive with the issues that implement them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sparse_rl import __version__

#: Subcommands and what each will do; unimplemented ones say so instead of pretending.
SUBCOMMANDS: dict[str, str] = {
    "demo": "train a 90%%-sparse RigL MLP vs a dense one on a made-up task and plot the losses",
    "train": "train an agent from a config file (coming: issue 8)",
    "eval": "evaluate a saved agent on a list of env modes (coming: issue 8)",
    "export": "export a saved model to ONNX + a policy card (coming: issue 8; in Python now: "
    "sparse_rl.agents.export.export_policy)",
    "deploy": "check an exported policy or run it in a fixed-rate control loop (the runtime: "
    "sparse-rl deploy run DIR --gym-id ID; same as python -m sparse_rl.runtime)",
    "sweep": "run a grid of method x env x seed, locally or on Ray (coming: issue 8)",
    "report": "aggregate runs into curves, rliable metrics and tables (coming: issue 8)",
    "bench": "run the speed benchmarks (coming: issue 8)",
}


#: Subcommands whose arguments their own parser reads (each has its own ``--help``).
PASSTHROUGH = ("demo", "deploy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparse-rl",
        description="Reinforcement learning with sparse networks whose topology evolves.",
    )
    parser.add_argument("--version", action="version", version=f"sparse-rl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        sub.add_parser(
            name, help=help_text, description=help_text, add_help=name not in PASSTHROUGH
        )
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
    parser.exit(
        2, f"sparse-rl {args.command}: not implemented yet ({SUBCOMMANDS[args.command]}).\n"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
