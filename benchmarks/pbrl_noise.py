"""R2N vs PEBBLE vs SAC on the true reward ("oracle"), same feedback budget, noisy features.

Every (method, env, noise fraction, seed) is one resumable run in ``--out/runs/<run>/`` (see
``_runs.py``): ``eval.csv`` (deterministic true returns), ``reward_model.csv`` (labels so far,
reward-model input connections per real vs noise feature, learned-vs-true reward correlation on
fresh transitions), the label store ``labels.sqlite``, SB3's CSV logs (``pbrl/`` diagnostics
included) and checkpoints. Re-running skips finished runs and resumes the others.

The PbRL settings are PEBBLE's scaled to a CPU budget (``--budget`` labels, sessions every
``--session-every`` steps, ``--reward-epochs``); all methods share SAC's settings.

Run: ``python benchmarks/pbrl_noise.py --steps 100000`` (two runs at a time, one thread each),
then ``python benchmarks/pbrl_noise.py --report`` writes ``pbrl_noise.{md,png}`` to
``benchmarks/results/``.
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
METHODS = ("oracle", "pebble", "r2n")


def make_env(name: str, noise: float) -> Any:
    """A gymnasium id ("HalfCheetah-v5") or a DMC task on its state ("cheetah-run")."""
    from sparse_rl import envs

    dmc = (
        {"obs": "state"} if name.split("-")[0] in {t.split("-")[0] for t in envs.DMC_TASKS} else {}
    )
    return envs.make_env(name, noise_fraction=noise or None, **dmc)


def make_model(spec: dict[str, Any], env: Any) -> Any:
    from stable_baselines3 import SAC

    from sparse_rl import agents

    sac = {
        "learning_starts": spec["learning_starts"],
        "buffer_size": spec["buffer_size"],
        "seed": spec["seed"],
        "policy_kwargs": {"net_arch": [256, 256], "optimizer_kwargs": {"fused": True}},
        "verbose": 0,
    }
    if spec["method"] == "oracle":
        return SAC("MlpPolicy", env, **sac)
    settings = {
        "budget": spec["budget"],
        "labels_per_session": spec["labels_per_session"],
        "session_every": spec["session_every"],
        "unsupervised_steps": spec["unsupervised_steps"],
        "reward_epochs": spec["reward_epochs"],
        "entropy_space": spec["entropy_space"],
    }
    if spec["entropy_space"] == "none":
        settings["unsupervised_steps"] = 0
    settings["reward_target_accuracy"] = spec.get("reward_target_accuracy", 0.97)
    settings["reward_steps"] = None  # B-Pref's epochs, as when the results were made
    base = spec["method"].split("+")[0]
    if base == "r2n":  # R2N as published (SET), as when the results were made
        from sparse_rl import sparse_nets as sn

        interval = spec.get("reward_topology_interval") or 100
        settings["reward_input_l1"] = 0.0
        settings["reward_sparsity"] = {
            "density": 0.2,
            "layers": "input",
            "updater": sn.SET(interval=interval, drop_fraction=0.05),
        }
    config = agents.r2n(**settings) if base == "r2n" else agents.pebble(**settings)
    store = Path(spec["dir"]).resolve() / "labels.sqlite"
    return agents.PrefSAC("MlpPolicy", env, preference=config, label_store=store, **sac)


def run_one(spec: dict[str, Any]) -> str:
    import torch

    torch.set_num_threads(1)
    run_dir = Path(spec["dir"])
    if is_finished(run_dir, spec["steps"]):
        return f"{run_dir.name}: already finished"
    env, eval_env = make_env(spec["env"], spec["noise"]), make_env(spec["env"], spec["noise"])

    def reward_rows(model: Any) -> dict[str, dict[str, float]]:
        if spec["method"] == "oracle":
            return {}
        conn = model.reward_model.input_connectivity()
        row = {
            "labels": float(len(model.label_store)),
            "correlation": model._fresh_correlation(),
            "accuracy": model.heldout_accuracy,
        }
        if spec["noise"]:
            real = np.asarray(eval_env.get_wrapper_attr("real_indices"))
            noise = np.setdiff1d(np.arange(conn.shape[1]), real)
            row |= {"real": float(conn[:, real].mean()), "noise": float(conn[:, noise].mean())}
        return {"reward_model.csv": row}

    train_resumable(
        lambda: make_model(spec, env),
        env,
        eval_env,
        run_dir,
        steps=spec["steps"],
        eval_every=spec["eval_every"],
        eval_episodes=spec["eval_episodes"],
        eval_seed=10_000 + 100 * spec["seed"],
        checkpoint_every=spec["checkpoint_every"],
        extra_rows=reward_rows,
    )
    return f"{run_dir.name}: finished"


def run_all(args: argparse.Namespace) -> None:
    out = Path(args.out)
    keys = ("steps", "buffer_size", "learning_starts", "eval_every", "eval_episodes",
            "checkpoint_every", "budget", "labels_per_session", "session_every",
            "unsupervised_steps", "reward_epochs")  # fmt: skip
    variant = "" if args.entropy_space == "obs" else f"+{args.entropy_space}"
    if args.reward_target_accuracy != 0.97:
        accuracy = args.reward_target_accuracy
        variant += "+allepochs" if accuracy is None else f"+acc{accuracy:g}"
    if args.reward_topology_interval is not None:
        variant += f"+set{args.reward_topology_interval}"
    specs = [
        {
            "dir": str(out / "runs" / f"{method}{variant}-{env}-f{noise}-s{seed}"),
            "method": method + variant if method != "oracle" else method,
            "entropy_space": args.entropy_space,
            "reward_target_accuracy": args.reward_target_accuracy,
            "reward_topology_interval": args.reward_topology_interval,
            "env": env,
            "noise": noise,
            "seed": seed,
            **{k: getattr(args, k) for k in keys},
        }
        for seed in args.seeds  # seed-major: a cut-short sweep still has every method
        for env in args.envs
        for noise in args.noise
        for method in args.methods
    ]
    launch_sweep(out, specs, run_one, args.jobs)


def report(args: argparse.Namespace) -> None:
    plt = pyplot()
    groups = ("method", "env", "noise")
    sweep, runs = load_sweep(Path(args.out), groups, {"reward": "reward_model.csv"})
    panels = sorted({(e, n) for _, e, n in runs})
    methods = sorted({m for m, _, _ in runs}, key=lambda m: (m.split("+")[0] != "oracle", m))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    table = []
    for ax, (env, noise) in zip(axes[0], panels, strict=True):
        groups = {m: [r["eval"] for r in runs.get((m, env, noise), [])] for m in methods}
        plot_curves(ax, groups, "return")
        ax.set(title=f"{env}, noise {noise}", xlabel="env steps", ylabel="true eval return")
        ax.legend()
        for method, group in groups.items():
            if not group:
                continue
            steps, values = aligned(group, "return")
            final = values[:, -1]
            reward = [r["reward"][-1] for r in runs[(method, env, noise)] if r["reward"]]
            extra = {
                k: float(np.mean([row[k] for row in reward if k in row]))
                for k in ("accuracy", "correlation", "real", "noise")
                if any(k in row for row in reward)
            }
            table.append((env, noise, method, len(group), int(steps[-1]), final, extra))
    fig.tight_layout()
    fig.savefig(RESULTS / "pbrl_noise.png", dpi=120)
    machine = sweep["machine"]
    first = sweep["runs"][0]
    lines = [
        "# R2N vs PEBBLE vs oracle SAC under noise features",
        "",
        "Sweep commands: " + "; ".join(f"`{c}`" for c in sweep["commands"]) + "; report: "
        "`python benchmarks/pbrl_noise.py --report`. "
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}; "
        f"started {machine['date']}.",
        "",
        f"Budget: {first['steps']} env steps, {first['budget']} labels "
        f"({first['labels_per_session']} every {first['session_every']} steps), "
        f"{first['unsupervised_steps']} pre-training "
        f"steps, reward models trained up to {first['reward_epochs']} epochs per session. "
        "Oracle = SAC on the true reward. Interval = 95% bootstrap CI of the mean over seeds. "
        "`+none` / `+reward_features`: R2N with no pre-training / with k-NN distances on the "
        "reward model's input features instead of raw observations. Reward acc. = accuracy on "
        "each label before the reward model trained on it; corr. = Pearson r of learned vs true "
        "reward on the transitions since the previous session; conn. = active reward-model input "
        "connections per real / per noise feature. Values at the last evaluation, seed means.",
        "",
        "| env | noise | method | seeds | steps | final return | 95% CI | reward acc. | "
        "reward corr. | real / noise conn. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env, noise, method, n, steps, final, extra in table:
        low, high = bootstrap_ci(final)
        corr = f"{extra['correlation']:.2f}" if "correlation" in extra else "-"
        acc = f"{extra['accuracy']:.2f}" if "accuracy" in extra else "-"
        conn = f"{extra['real']:.1f} / {extra['noise']:.1f}" if "real" in extra else "-"
        lines.append(
            f"| {env} | {noise} | {method} | {n} | {steps} | {final.mean():.0f} | "
            f"[{low:.0f}, {high:.0f}] | {acc} | {corr} | {conn} |"
        )
    lines += ["", "Curves: `pbrl_noise.png`.", ""]
    (RESULTS / "pbrl_noise.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5"])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.9, 0.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--buffer-size", type=int, default=200_000)
    parser.add_argument("--learning-starts", type=int, default=1_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--labels-per-session", type=int, default=50)
    parser.add_argument("--session-every", type=int, default=5_000)
    parser.add_argument("--unsupervised-steps", type=int, default=5_000)
    parser.add_argument("--reward-epochs", type=int, default=20)
    parser.add_argument(
        "--entropy-space",
        default="obs",
        choices=("obs", "reward_features", "none"),
        help="pre-training's k-NN space for the PbRL methods (none: no pre-training)",
    )
    parser.add_argument(
        "--reward-target-accuracy",
        type=lambda text: None if text.lower() == "none" else float(text),
        default=0.97,
        help="reward training stops each session at this label accuracy (none: all epochs)",
    )
    parser.add_argument(
        "--reward-topology-interval",
        type=int,
        default=None,
        help="R2N: SET interval in reward-model steps (default: R2N's 100)",
    )
    add_sweep_arguments(parser, RESULTS / "pbrl_noise")
    dispatch(parser.parse_args(), run_all, report)


if __name__ == "__main__":
    main()
