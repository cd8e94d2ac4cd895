"""The main job: R2N vs PEBBLE with a simulated teacher on a noisy-feature env, end to end.

One command runs what a user of the package does: a sweep (two methods × two seeds, two runs at a
time), a report (learning curves with bootstrap bands, rliable metrics, a markdown table), a
picture of which inputs each method's reward models read (``reward_inputs.png``: R2N's sparse
input layers keep the real features, PEBBLE's dense ones spread over the noise), an export of
the best R2N policy (ONNX + policy card) and a closed-loop check of that export in the
torch-free runtime. The default fits in 10 minutes of 2 CPU cores: Pendulum-v1 with 95% of its
observation replaced by noise features (3 real features among 60), 10k steps, 200 labels.
Re-running into the same folder skips finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: The embedded default sweep (any key of ``sparse-rl train`` configs may be changed here).
DEFAULT_SWEEP = """
base:
  algo: r2n
  steps: 10000
  env: {id: Pendulum-v1, noise_fraction: 0.95}
  algo_kwargs: {learning_starts: 500, buffer_size: 20000}
  policy_kwargs: {net_arch: [64, 64]}
  preference:
    budget: 200
    labels_per_session: 20
    session_every: 500
    unsupervised_steps: 500
    segment_length: 25
    reward_hidden: [64, 64, 64]
  eval: {every: 1000, episodes: 5}
  checkpoint: {every: 3000}
  log_formats: [csv, tensorboard]
methods:
  pebble: {algo: pebble}
  r2n: {}
seeds: [0, 1]
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparse-rl demo",
        description=__doc__.split("\n")[0],
        epilog="Outputs: OUT/runs/ (one run directory per method and seed), OUT/report/ "
        "(report.md, curves.png, metrics.png, report.json, reward_inputs.png), OUT/export/ "
        "(policy.onnx, policy_mlp.npz, card.json, loop_report.json).",
    )
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder")
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (10000)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (2)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    return parser


def default_sweep(steps: int | None = None, seeds: int | None = None) -> dict[str, Any]:
    sweep = yaml.safe_load(DEFAULT_SWEEP)
    if steps is not None:
        sweep["base"]["steps"] = steps
    if seeds is not None:
        sweep["seeds"] = list(range(seeds))
    return sweep


@dataclass(frozen=True)
class RewardInputs:
    """Share of each method's reward-model input weight mass on the real features."""

    real_share: dict[str, float]  # method -> mean over its runs
    real_fraction: float  # share of the observation that is real

    @property
    def summary(self) -> str:
        shares = ", ".join(f"{m} {100 * v:.0f}%" for m, v in self.real_share.items())
        return (
            f"reward models' input weight on the real features: {shares} "
            f"(they are {100 * self.real_fraction:.0f}% of the inputs); see reward_inputs.png"
        )


def _input_mass(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Input weight mass per observation feature (mean over members) and the real indices."""
    from sparse_rl.evaluation import load_run
    from sparse_rl.models import make_env

    config, model, _ = load_run(run_dir)
    try:
        ensemble = model.reward_model.ensemble
        obs_dim = ensemble.obs_dim
        layers = ensemble.input_modules()
        mass = np.mean(
            [m.weight.detach().abs().sum(0)[:obs_dim].cpu().numpy() for m in layers], axis=0
        )
        env = make_env(config)
        env.reset(seed=config.seed)  # where the real features are (a permutation is seeded)
        real = np.asarray(env.get_wrapper_attr("real_indices"))
        env.close()
    finally:
        model.label_store.close()
        model.get_env().close()
    return mass, real


def plot_reward_inputs(runs: Sequence[Any], path: Path) -> RewardInputs:
    """Bars of input weight mass per feature, one panel per method (its first seed), real
    features marked: where each method's reward models look."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    methods = sorted({run.method for run in runs})
    fig, axes = plt.subplots(len(methods), 1, figsize=(10, 2.6 * len(methods)), squeeze=False)
    shares: dict[str, list[float]] = {m: [] for m in methods}
    real_fraction = 0.0
    for ax, method in zip(axes[:, 0], methods, strict=True):
        mine = sorted((r for r in runs if r.method == method), key=lambda r: r.seed)
        for i, run in enumerate(mine):
            mass, real = _input_mass(run.source)
            shares[method].append(float(mass[real].sum() / mass.sum()))
            real_fraction = len(real) / len(mass)
            if i == 0:
                colors = np.where(np.isin(np.arange(len(mass)), real), "tab:green", "tab:gray")
                ax.bar(np.arange(len(mass)), mass / mass.max(), color=colors)
                ax.set_title(
                    f"{method} (seed {run.seed}): {100 * shares[method][0]:.0f}% of the input "
                    f"weight on the {len(real)} real features (green)",
                    fontsize=10,
                )
        ax.set_ylabel("|w| per feature\n(max = 1)")
    axes[-1, 0].set_xlabel("observation feature")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return RewardInputs({m: float(np.mean(v)) for m, v in shares.items()}, real_fraction)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from sparse_rl import envs
    from sparse_rl.evaluation import export_run
    from sparse_rl.reporting import load_runs, write_report
    from sparse_rl.runtime import ControlLoop, GymRobot, Policy
    from sparse_rl.sweeps import run_sweep

    command = "sparse-rl demo " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    sweep = default_sweep(args.steps, args.seeds)
    started = time.time()
    summary = run_sweep(sweep, args.out / "runs", jobs=args.jobs, command=command)
    if summary.failed:
        print(f"{len(summary.failed)} run(s) failed; see above. Re-run to resume them.")
        return 1
    runs = load_runs([args.out / "runs"])
    report = write_report(runs, args.out / "report", command=command) / "report.md"

    r2n = [run for run in runs if run.method == "r2n"]
    best = max(r2n, key=lambda run: float(run.curves["default"].returns[-1]))
    card = export_run(best.source, out_dir=args.out / "export", formats=("onnx", "numpy"))
    export = card.parent
    env = sweep["base"]["env"]
    robot = GymRobot(envs.make_env(env["id"], noise_fraction=env["noise_fraction"]), seed=123)
    loop = ControlLoop(Policy(export), robot, hz=0).run(episodes=3)
    (export / "loop_report.json").write_text(json.dumps(loop.to_dict(), indent=1))

    inputs = plot_reward_inputs(runs, args.out / "report" / "reward_inputs.png")

    print(f"\n{report.read_text()}")
    print(inputs.summary)
    print(f"exported {best.source.name} (best R2N run) and ran it in the runtime:")
    print(loop.summary())
    print(f"\ndone in {time.time() - started:.0f} s. Outputs:")
    print(f"  report:  {report}  (+ curves.png, metrics.png, report.json, reward_inputs.png)")
    print(f"  runs:    {args.out / 'runs'}  (config, eval.csv, logs/, checkpoints/, labels)")
    print(f"  export:  {export}  (policy.onnx, card.json; sparse-rl deploy check {export})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
