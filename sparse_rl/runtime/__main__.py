"""``python -m sparse_rl.runtime``: check an exported policy, or run it on a gymnasium env.

``check`` is what to run first on a robot computer: it validates the card and model hashes,
loads each backend and times ``act``. ``run`` rehearses the control loop in simulation.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl.validation import positive_int_arg

from .card import ActionSpec, CardError, ObservationSpec, PolicyCard, load_card
from .gym_robot import GymRobot
from .loop import ControlLoop
from .policy import BACKENDS, Policy

_CHECK_CALLS = 200


class _RunError(Exception):
    """A bad command line or an env that does not fit the policy's card: one line, exit 1."""


def _rate(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite rate >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sparse_rl.runtime",
        description="Run exported sparse-rl policies with numpy + onnxruntime only.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = sub.add_parser(
        "check",
        help="validate a policy directory and time act()",
        description="Validate card.json and the model hashes, load each backend, time act().",
    )
    check.add_argument("policy_dir", type=Path, metavar="POLICY_DIR")
    check.add_argument(
        "--card-only", action="store_true", help="validate the card and hashes, load no model"
    )

    run = sub.add_parser(
        "run",
        help="drive a gymnasium env with the policy in the control loop",
        description="Drive a gymnasium env through GymRobot + ControlLoop and print the report.",
    )
    run.add_argument("policy_dir", type=Path, metavar="POLICY_DIR")
    run.add_argument("--gym-id", required=True, help="gymnasium env id, e.g. Pendulum-v1")
    run.add_argument(
        "--gym-kwargs", default="{}", help="JSON object of keyword arguments for gymnasium.make"
    )
    run.add_argument("--hz", type=_rate, default=25.0, help="control rate (0: as fast as possible)")
    run.add_argument(
        "--episodes", type=positive_int_arg, default=None, help="episodes to run (default 1)"
    )
    run.add_argument(
        "--steps", type=positive_int_arg, default=None, help="stop after this many steps"
    )
    run.add_argument("--seed", type=int, default=None, help="seed of the first env reset")
    run.add_argument("--backend", choices=BACKENDS, default="onnx")
    run.add_argument(
        "--threads", type=positive_int_arg, default=1, help="onnxruntime intra-op threads"
    )
    run.add_argument(
        "--max-overruns", type=positive_int_arg, default=3, help="watchdog holds before stopping"
    )
    run.add_argument(
        "--no-realtime",
        action="store_true",
        help="run as fast as possible with no watchdog (same as --hz 0)",
    )
    run.add_argument("--json", type=Path, default=None, help="also write the report here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "check":
            return _check(args)
        return _run(args)
    except (CardError, _RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: robot stopped", file=sys.stderr)
        return 130


def _check(args: argparse.Namespace) -> int:
    card = load_card(args.policy_dir)
    print(card.describe())
    if args.card_only:
        return 0
    backends = ["onnx"] + (["numpy"] if card.numpy is not None else [])
    for backend in backends:
        policy = Policy(args.policy_dir, backend=backend)
        observation = policy.zero_observation()
        for _ in range(_CHECK_CALLS):
            policy.act(observation)
        stats = policy.latency
        csr = f", CSR layers {list(policy.csr_layers)}" if backend == "numpy" else ""
        print(
            f"backend {backend}: ok, {_CHECK_CALLS} act() calls p50 {stats.p50_ms:.3f} ms, "
            f"p99 {stats.p99_ms:.3f} ms{csr}"
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        gym_kwargs = json.loads(args.gym_kwargs)
    except json.JSONDecodeError as exc:
        raise _RunError(f"--gym-kwargs is not valid JSON ({exc})") from None
    except RecursionError:
        raise _RunError("--gym-kwargs is nested too deeply") from None
    if not isinstance(gym_kwargs, dict):
        raise _RunError("--gym-kwargs must be a JSON object")
    policy = Policy(args.policy_dir, backend=args.backend, threads=args.threads)
    try:
        robot = GymRobot.from_id(args.gym_id, seed=args.seed, **gym_kwargs)
    except Exception as exc:  # unknown id, missing gymnasium or simulator: one line, not a trace
        raise _RunError(f"cannot make {args.gym_id!r}: {exc}") from None
    try:
        robot.frame_stack = _env_frame_stack(policy.card, robot.env, args.gym_id)
        hz = 0.0 if args.no_realtime else args.hz
        loop = ControlLoop(policy, robot, hz=hz, max_overruns=args.max_overruns)
        episodes = 1 if args.episodes is None and args.steps is None else args.episodes
        report = loop.run(steps=args.steps, episodes=episodes)
    finally:
        robot.close()
    print(report.summary())
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0


#: gymnasium's action space classes and the card's action kinds (duck-typed: no gymnasium here)
_ACTION_SPACES = {
    "Box": "box",
    "Discrete": "discrete",
    "MultiDiscrete": "multi_discrete",
    "MultiBinary": "multi_binary",
}


def _env_frame_stack(card: PolicyCard, env: Any, env_id: str) -> int | None:
    """Check the env's spaces against the card; how many frames the env stacks itself."""
    obs, act = card.observation, card.action
    _check_env_actions(act, getattr(env, "action_space", None), env_id)
    space = getattr(env, "observation_space", None)
    entries = getattr(space, "spaces", None)
    if obs.kind == "dict" or isinstance(entries, Mapping):
        _check_env_entries(obs, entries, env_id)
        return None
    obs_shape = getattr(space, "shape", None)
    if obs_shape is None:
        return None
    obs_shape = tuple(obs_shape)
    if obs.kind == "pixels" and obs_shape == obs.shape and obs.frame_stack > 1:
        return obs.frame_stack  # the env stacks frames too: feed the runtime the newest only
    if obs_shape != obs.frame_shape:
        raise _RunError(
            f"{env_id} observes shape {obs_shape}, the policy reads {obs.frame_shape}"
            + (f" frames (or {obs.shape} stacked)" if obs.kind == "pixels" else "")
        )
    return None


def _check_env_actions(act: ActionSpec, space: Any, env_id: str) -> None:
    kind = _ACTION_SPACES.get(type(space).__name__)
    if kind is not None and kind != act.kind:
        raise _RunError(f"{env_id} takes {kind} actions, the policy sends {act.kind} actions")
    action_shape = getattr(space, "shape", None)
    if action_shape is not None and tuple(action_shape) != act.shape:
        raise _RunError(
            f"{env_id} takes actions of shape {tuple(action_shape)}, the policy sends {act.shape}"
        )
    if kind in ("discrete", "multi_discrete"):
        nvec = [int(n) for n in np.ravel(space.n if kind == "discrete" else space.nvec)]
        start = np.ravel(getattr(space, "start", 0))
        if nvec != list(act.nvec) or np.any(start != 0):
            raise _RunError(
                f"{env_id} takes {space}, the policy sends indices from 0 to {list(act.nvec)} - 1"
            )


def _check_env_entries(obs: ObservationSpec, entries: Any, env_id: str) -> None:
    if obs.kind != "dict" or not isinstance(entries, Mapping):
        what = "dict observations" if isinstance(entries, Mapping) else "no dict observations"
        raise _RunError(f"{env_id} gives {what}, the policy reads {obs.kind} observations")
    if set(entries) != set(obs.keys):
        raise _RunError(
            f"{env_id} observes keys {sorted(entries)}, the policy reads {sorted(obs.keys)}"
        )
    for key, spec in obs.keys.items():
        shape = getattr(entries[key], "shape", None)
        if shape is not None and tuple(shape) != spec.shape:
            raise _RunError(
                f"{env_id} observes {key!r} of shape {tuple(shape)}, the policy reads {spec.shape}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
