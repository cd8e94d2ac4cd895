"""SAC+shift vs SVEA vs MaDi: train on the clean env, test on video_hard (reduced CPU scale).

Every (method, task, seed) is one resumable run in ``--out/runs/<run>/`` (see ``_runs.py``):
``eval.csv`` (clean returns) and ``distracted.csv`` (returns on each ``--test-modes`` preset and,
for MaDi, mask quality against the ground-truth agent pixels), checkpoints and SB3's logs.
Re-running skips finished runs and resumes the others. The paper's scale (84×84, the 11-layer
encoder, 500k steps, batch 128) needs a GPU; ``--size``, ``--encoder`` and ``--steps`` scale it.

Run: ``python benchmarks/visual_distractions.py --steps 50000``, then ``--report`` writes
``visual_distractions.{md,png}`` to ``benchmarks/results/``.
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
METHODS = ("sac", "svea", "madi")
ACTION_REPEAT = {"cartpole-swingup": 8, "cartpole-balance": 8, "finger-spin": 2}  # else 4


def env_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    return {"size": spec["size"], "action_repeat": ACTION_REPEAT.get(spec["task"], 4)}


def run_one(spec: dict[str, Any]) -> str:
    import torch

    from sparse_rl import agents, envs

    torch.set_num_threads(1)
    run_dir = Path(spec["dir"])
    if is_finished(run_dir, spec["steps"]):
        return f"{run_dir.name}: already finished"
    kwargs = env_kwargs(spec)
    env = envs.make_env(spec["task"], obs="pixels", **kwargs)
    eval_env = envs.make_env(spec["task"], obs="pixels", **kwargs)

    def make() -> Any:
        return agents.VisualSAC(
            "VisualPolicy", env, method=spec["method"], seed=spec["seed"],
            batch_size=spec["batch_size"], buffer_size=spec["steps"],
            learning_starts=spec["learning_starts"],
            policy_kwargs={"encoder": spec["encoder"], "net_arch": spec["net_arch"]},
        )  # fmt: skip

    def distracted(model: Any) -> dict[str, dict[str, float]]:
        rows = agents.evaluate_modes(model, spec["task"], spec["test_modes"],
                                     spec["eval_episodes"], seed=20_000, **kwargs)  # fmt: skip
        out: dict[str, float] = {}
        for row in rows:
            out |= {f"{row['mode']}_{k}": v for k, v in row.items() if isinstance(v, float)}
        return {"distracted.csv": out}

    train_resumable(
        make, env, eval_env, run_dir,
        steps=spec["steps"], eval_every=spec["eval_every"], eval_episodes=spec["eval_episodes"],
        eval_seed=10_000 + 100 * spec["seed"], checkpoint_every=spec["checkpoint_every"],
        extra_rows=distracted,
    )  # fmt: skip
    return f"{run_dir.name}: finished"


def run_all(args: argparse.Namespace) -> None:
    keys = ("steps", "size", "encoder", "batch_size", "learning_starts", "eval_every",
            "eval_episodes", "checkpoint_every", "test_modes")  # fmt: skip
    specs = [
        {
            "dir": str(Path(args.out) / "runs" / f"{method}-{task}-s{seed}"),
            "method": method,
            "task": task,
            "seed": seed,
            "net_arch": [args.hidden, args.hidden],
            **{k: getattr(args, k) for k in keys},
        }
        for seed in args.seeds
        for task in args.tasks
        for method in args.methods
    ]
    launch_sweep(Path(args.out), specs, run_one, args.jobs)


def report(args: argparse.Namespace) -> None:
    plt = pyplot()
    sweep, runs = load_sweep(Path(args.out), ("method", "task"), {"test": "distracted.csv"})
    first = sweep["runs"][0]
    mode = first["test_modes"][-1]
    tasks = sorted({t for _, t in runs})
    pictures: list[Path] = []
    fig, axes = plt.subplots(3, len(tasks), figsize=(6 * len(tasks), 12), squeeze=False)
    lines = [
        "# SAC+shift vs SVEA vs MaDi: trained clean, tested on distractions (reduced scale)",
        "",
        f"Sweep: `{sweep['machine']['command']}`; machine {sweep['machine']['cpu']}, "
        f"{sweep['machine']['cores']} cores, torch {sweep['machine']['torch']}; started "
        f"{sweep['machine']['date']}.",
        "",
        f"Scale: {first['size']}×{first['size']} pixels, `{first['encoder']}` encoder, "
        f"batch {first['batch_size']}, {first['steps']} agent steps per run (the paper: 84×84, "
        "11-layer encoder, batch 128, 500k agent steps). Interval = 95% bootstrap CI over seeds.",
        "",
        f"| task | method | seeds | steps | clean return | {mode} return | 95% CI ({mode}) | "
        f"mask IoU / precision / recall ({mode}) | mask on agent / background |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for col, task in enumerate(tasks):
        groups = {m: [r["eval"] for r in runs.get((m, task), [])] for m in METHODS}
        plot_curves(axes[0][col], groups, "return")
        tests = {m: [r["test"] for r in runs.get((m, task), []) if r["test"]] for m in METHODS}
        plot_curves(axes[1][col], tests, f"{mode}_return_mean")
        axes[0][col].set(title=f"{task}: clean", xlabel="agent steps", ylabel="return")
        axes[1][col].set(title=f"{task}: {mode}", xlabel="agent steps", ylabel="return")
        madi = [r for r in tests["madi"] if f"{mode}_mask_iou" in r[-1]]
        plot_curves(axes[2][col], {"IoU": madi}, f"{mode}_mask_iou")
        for label, key in (("mask on agent", "agent"), ("mask on background", "background")):
            column = f"{mode}_mask_mean_{key}"
            plot_curves(axes[2][col], {label: [[{**p, "v": p[column]} for p in r] for r in madi]},
                        "v")  # fmt: skip
        axes[2][col].set(title=f"{task}: MaDi's masks on {mode}", xlabel="agent steps",
                         ylabel="vs ground-truth agent pixels")  # fmt: skip
        for ax in axes[:, col]:
            ax.legend()
        pictures += mask_pictures(Path(args.out), first, task, mode)
        for method in METHODS:
            if not tests[method]:
                continue
            steps, clean = aligned(groups[method], "return")
            _, test = aligned(tests[method], f"{mode}_return_mean")
            low, high = bootstrap_ci(test[:, -1])
            quality = "-"
            if f"{mode}_mask_iou" in tests[method][0][-1]:
                last = [r[-1] for r in tests[method]]
                iou, precision, recall, on, off = (
                    np.nanmean([r[f"{mode}_mask_{key}"] for r in last])  # NaN: mask kept none
                    for key in ("iou", "precision", "recall", "mean_agent", "mean_background")
                )
                quality = f"{iou:.2f} / {precision:.2f} / {recall:.2f} | {on:.2f} / {off:.2f}"
            else:
                quality = "- | -"
            lines.append(
                f"| {task} | {method} | {len(tests[method])} | {int(steps[-1])} | "
                f"{clean[:, -1].mean():.0f} | {test[:, -1].mean():.0f} | [{low:.0f}, {high:.0f}] "
                f"| {quality} |"
            )
    fig.tight_layout()
    fig.savefig(RESULTS / "visual_distractions.png", dpi=110)
    lines += [
        "",
        "Steps are agent steps; the env repeats each action "
        + ", ".join(f"{ACTION_REPEAT.get(t, 4)}× on {t}" for t in tasks)
        + " (frames = steps × repeat). Mask IoU / precision / recall are at threshold 0.5 against "
        "the env's ground-truth agent pixels, on the last frame of each observation, pooled over "
        "the evaluation episodes; mean over seeds (precision over the seeds whose masks keep any "
        "pixel).",
        "",
        "Curves: `visual_distractions.png` (clean returns, "
        f"{mode} returns, MaDi's mask quality on {mode} over training). Mask pictures of the "
        f"seed-0 MaDi agent at the end of training (obs | mask | masked obs) on {mode}: "
        + ", ".join(f"`{p.relative_to(RESULTS)}`" for p in pictures)
        + ".",
        "",
    ]
    (RESULTS / "visual_distractions.md").write_text("\n".join(lines))
    print("\n".join(lines))


def mask_pictures(out: Path, spec: dict[str, Any], task: str, mode: str) -> list[Path]:
    """obs | mask | masked-obs PNG and GIF of the seed-0 MaDi agent on ``mode`` (if it finished)."""
    from sparse_rl import agents

    model_path = out / "runs" / f"madi-{task}-s0" / "model.zip"
    if not model_path.exists():
        return []
    folder = RESULTS / "visual_distractions" / f"masks_{task}"
    model = agents.VisualSAC.load(model_path)
    agents.evaluate_modes(model, task, [mode], episodes=1, seed=30_000, out_dir=folder,
                          **env_kwargs({**spec, "task": task}))  # fmt: skip
    return [folder / f"{mode}_masks.png", folder / f"{mode}.gif"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--tasks", nargs="+", default=["cartpole-swingup", "walker-walk"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--encoder", default="small")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--test-modes", nargs="+", default=["video_hard"])
    add_sweep_arguments(parser, RESULTS / "visual_distractions")
    dispatch(parser.parse_args(), run_all, report)


if __name__ == "__main__":
    main()
