"""Noise robustness: dense SAC vs ANF-SAC vs 90%-sparse SAC on noisy-feature HalfCheetah-v5.

Every (method, noise fraction, seed) is one run in ``--out/runs/<run>/``: ``eval.csv``
(deterministic returns on a separately seeded eval env), ``connectivity.csv`` (active input
connections per real vs noise feature, actor and critic), SB3's ``progress.csv`` and a checkpoint
(model + replay buffer, kept after the run ends) every ``--checkpoint-every`` steps. Re-running
the command skips finished runs, resumes unfinished ones and extends finished ones when
``--steps`` grew, so the runs can span several sessions.

All three methods use ANF's SAC settings (ANF's code: lr 1e-3, batch 100, fixed α 0.2, Adam
weight decay 2e-4, 2×256) except the random warm-up, scaled from 25k to ``--learning-starts``.

Run: ``python benchmarks/noise_robustness.py --steps 40000`` (two runs at a time, one thread each);
then ``python benchmarks/noise_robustness.py --report`` writes ``noise_robustness.{md,png}`` and
``noise_robustness_connectivity.png`` into ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from _runs import (
    add_sweep_arguments,
    aligned,
    bootstrap_ci,
    dispatch,
    is_finished,
    launch_sweep,
    load_sweep,
    plot_curves,
    pyplot,
    train_resumable,
)

RESULTS = Path(__file__).parent / "results"
METHODS = ("dense", "anf", "sparse90")
CONNECTIVITY_KEYS = (
    "actor_real_connections",
    "actor_noise_connections",
    "critic_real_connections",
    "critic_noise_connections",
)


def make_model(method: str, env: Any, seed: int, buffer_size: int, learning_starts: int) -> Any:
    from stable_baselines3 import SAC

    from sparse_rl import agents
    from sparse_rl import sparse_nets as sn

    policy_kwargs: dict[str, Any] = {
        "net_arch": [256, 256],
        "optimizer_kwargs": {"weight_decay": 2e-4, "fused": True},
    }
    policy: Any = "MlpPolicy"
    if method == "anf":
        policy = agents.SparseSACPolicy
        policy_kwargs.update(agents.anf_policy_kwargs())
    elif method == "sparse90":
        policy = agents.SparseSACPolicy
        policy_kwargs.update(
            density=0.1, distribution="erk", updater=sn.RigL(interval=1000, drop_fraction=0.3)
        )
    elif method != "dense":
        raise ValueError(f"method={method!r} is not valid; choose one of {list(METHODS)}.")
    return SAC(
        policy,
        env,
        learning_rate=1e-3,
        batch_size=100,
        ent_coef=0.2,
        gamma=0.99,
        tau=0.005,
        buffer_size=buffer_size,
        learning_starts=learning_starts,
        policy_kwargs=policy_kwargs,
        seed=seed,
        verbose=0,
    )


def run_one(spec: dict[str, Any]) -> str:
    """Train one run to ``spec['steps']``, resuming from its checkpoint when there is one."""
    import gymnasium as gym
    import torch

    from sparse_rl import agents, envs

    torch.set_num_threads(1)
    run_dir = Path(spec["dir"])
    if is_finished(run_dir, spec["steps"]):
        return f"{run_dir.name}: already finished"

    def make_env() -> Any:  # noise 0.0: the clean env, as a control
        env = gym.make("HalfCheetah-v5")
        return envs.NoisyFeatures(env, spec["noise"]) if spec["noise"] else env

    env, eval_env = make_env(), make_env()
    sparse = spec["method"] != "dense"

    def connectivity(model: Any) -> dict[str, dict[str, float]]:
        values = model.policy.sparsity_log_values(eval_env.get_wrapper_attr("real_indices"))
        return {"connectivity.csv": {k: values[k] for k in CONNECTIVITY_KEYS}}

    train_resumable(
        lambda: make_model(
            spec["method"], env, spec["seed"], spec["buffer_size"], spec["learning_starts"]
        ),
        env,
        eval_env,
        run_dir,
        steps=spec["steps"],
        eval_every=spec["eval_every"],
        eval_episodes=spec["eval_episodes"],
        eval_seed=10_000 + 100 * spec["seed"],
        checkpoint_every=spec["checkpoint_every"],
        callback=agents.SparsityLogger() if sparse else None,
        extra_rows=connectivity if sparse else None,
    )
    return f"{run_dir.name}: finished"


def run_all(args: argparse.Namespace) -> None:
    out = Path(args.out)
    specs = [
        {
            "dir": str(out / "runs" / f"{method}-f{noise}-s{seed}"),
            "method": method,
            "noise": noise,
            "seed": seed,
            "steps": args.steps,
            "buffer_size": args.buffer_size,
            "learning_starts": args.learning_starts,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "checkpoint_every": args.checkpoint_every,
        }
        for seed in args.seeds  # seed-major: a cut-short sweep still has every method
        for noise in args.noise
        for method in args.methods
    ]
    launch_sweep(out, specs, run_one, args.jobs)


# -- report ---------------------------------------------------------------------------------------


def report(args: argparse.Namespace) -> None:
    plt = pyplot()
    sweep, runs = load_sweep(Path(args.out), ("method", "noise"), {"conn": "connectivity.csv"})
    noises = sorted({n for _, n in runs})
    fig, axes = plt.subplots(1, len(noises), figsize=(6 * len(noises), 4), squeeze=False)
    rows = []
    for ax, noise in zip(axes[0], noises, strict=True):
        groups = {m: [r["eval"] for r in runs.get((m, noise), [])] for m in METHODS}
        plot_curves(ax, groups, "return")
        for method, group in groups.items():
            if group:
                steps, values = aligned(group, "return")
                final = values[:, -1]
                rows.append((noise, method, len(group), int(steps[-1]), final, bootstrap_ci(final)))
        ax.set(title=f"HalfCheetah-v5, noise fraction {noise}", xlabel="env steps",
               ylabel="eval return (deterministic)")  # fmt: skip
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "noise_robustness.png", dpi=120)

    sparse_noises = sorted({n for (_, n), group in runs.items() if any(r["conn"] for r in group)})
    fig, axes = plt.subplots(
        1, len(sparse_noises), figsize=(6 * len(sparse_noises), 4), squeeze=False
    )
    for ax, noise in zip(axes[0], sparse_noises, strict=True):
        for method, style in (("anf", "-"), ("sparse90", "--")):
            group = [r for r in runs.get((method, noise), []) if r["conn"]]
            if not group:
                continue
            common = min(len(r["conn"]) for r in group)
            steps = np.array([c["step"] for c in group[0]["conn"][:common]])
            for key, color in (("actor_real_connections", "C0"), ("actor_noise_connections", "C3")):
                values = np.array([[c[key] for c in r["conn"][:common]] for r in group]).mean(0)
                label = f"{method} actor {key.split('_')[1]}"
                ax.plot(steps, values, style, color=color, label=label)
        ax.set(title=f"active input connections per feature, noise {noise}",
               xlabel="env steps", ylabel="connections per input feature")  # fmt: skip
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "noise_robustness_connectivity.png", dpi=120)

    conn_rows = []
    for (method, noise), group in sorted(runs.items()):
        last = [r["conn"][-1] for r in group if r["conn"]]
        if last:
            conn_rows.append(
                (noise, method, {k: np.mean([c[k] for c in last]) for k in CONNECTIVITY_KEYS})
            )
    machine = sweep["machine"]
    lines = [
        "# Noise robustness: dense SAC vs ANF-SAC vs 90%-sparse SAC (HalfCheetah-v5)",
        "",
        "Sweep commands: "
        + "; ".join(f"`{c}`" for c in sweep.get("commands", [machine["command"]]))
        + "; report: `python benchmarks/noise_robustness.py --report`.",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}; two runs "
        f"at a time, one thread each. Started {machine['date']}.",
        "",
        "Settings: ANF's SAC (lr 1e-3, batch 100, fixed α 0.2, Adam weight decay 2e-4, 2×256 "
        f"ReLU), random warm-up {sweep['runs'][0]['learning_starts']} steps; eval = mean "
        f"deterministic return of {sweep['runs'][0]['eval_episodes']} episodes on a separately "
        "seeded env. anf: input layer 80% sparse, SET 5% every 1000 steps; sparse90: 90% ERK, "
        "RigL 30% every 1000 steps. Interval = 95% bootstrap CI of the mean over seeds.",
        "",
        "| noise | method | seeds | steps | final return (mean) | 95% CI | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for noise, method, n, steps, final, ci in rows:
        per_seed = ", ".join(f"{v:.0f}" for v in final)
        lines.append(
            f"| {noise} | {method} | {n} | {steps} | {final.mean():.0f} | "
            f"[{ci[0]:.0f}, {ci[1]:.0f}] | {per_seed} |"
        )
    lines += [
        "",
        "Active input connections per real vs per noise feature at the last evaluation "
        "(mean over seeds; ANF's diagnostic):",
        "",
        "| noise | method | actor real | actor noise | critic real | critic noise |",
        "|---|---|---|---|---|---|",
    ]
    for noise, method, c in conn_rows:
        lines.append(
            f"| {noise} | {method} | {c['actor_real_connections']:.1f} | "
            f"{c['actor_noise_connections']:.1f} | {c['critic_real_connections']:.1f} | "
            f"{c['critic_noise_connections']:.1f} |"
        )
    lines += [
        "",
        "Curves: `noise_robustness.png` (returns, 95% bootstrap bands), "
        "`noise_robustness_connectivity.png` (actor connections per feature over time).",
        "",
    ]
    (RESULTS / "noise_robustness.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--noise", nargs="+", type=float, default=[0.9, 0.98])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--learning-starts", type=int, default=5_000)
    parser.add_argument("--buffer-size", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    add_sweep_arguments(parser, RESULTS / "noise_robustness")
    dispatch(parser.parse_args(), run_all, report)


if __name__ == "__main__":
    main()
