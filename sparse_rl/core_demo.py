"""The sparse core alone: a 90%-sparse RigL MLP against a dense one of the same shape.

Run: ``python -m sparse_rl.core_demo`` (writes ``results/core_demo/``).

The task is made in code: 4-class labels from a random teacher network that reads only the first
``informative`` of ``features`` inputs; the rest are pure noise. Besides accuracy, the demo shows
what dynamic sparse training does with noise: the sparse input layer ends up with more active
connections on the informative features than on the noise features.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn


@dataclass(frozen=True)
class DemoConfig:
    """Everything the demo run depends on (written next to its results)."""

    features: int = 100
    informative: int = 10
    classes: int = 4
    hidden: int = 256
    train_size: int = 20_000
    test_size: int = 5_000
    steps: int = 3_000
    batch_size: int = 256
    lr: float = 1e-3
    density: float = 0.1
    rigl_interval: int = 100
    drop_fraction: float = 0.3
    seed: int = 0


def make_task(cfg: DemoConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Inputs and labels from a fixed random teacher that sees only the informative features."""
    gen = torch.Generator().manual_seed(cfg.seed)
    teacher_in = torch.randn(cfg.informative, 32, generator=gen) / cfg.informative**0.5
    teacher_out = torch.randn(32, cfg.classes, generator=gen) / 32**0.5
    x = torch.randn(cfg.train_size + cfg.test_size, cfg.features, generator=gen)
    y = (torch.tanh(x[:, : cfg.informative] @ teacher_in) @ teacher_out).argmax(dim=1)
    n = cfg.train_size
    return x[:n], y[:n], x[n:], y[n:]


def make_mlp(cfg: DemoConfig) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(cfg.features, cfg.hidden),
        nn.ReLU(),
        nn.Linear(cfg.hidden, cfg.hidden),
        nn.ReLU(),
        nn.Linear(cfg.hidden, cfg.classes),
    )


def train(
    cfg: DemoConfig, sparse: bool, data: tuple[Tensor, Tensor, Tensor, Tensor]
) -> dict[str, object]:
    """One training run; returns its curves, final accuracy and (if sparse) the sparsity state."""
    x, y, x_test, y_test = data
    with sn.seeded(cfg.seed):  # the init, not the caller's stream
        model = make_mlp(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sparsity = None
    if sparse:
        updater = sn.RigL(
            interval=cfg.rigl_interval,
            drop_fraction=cfg.drop_fraction,
            schedule="cosine",
            end_step=int(0.75 * cfg.steps),
        )
        sparsity = sn.sparsify(model, optimizer, cfg.density, "erk", updater, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    losses, accuracies = [], []
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(0, x.shape[0], (cfg.batch_size,), generator=gen)
        loss = loss_fn(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 100 == 0:
            with torch.no_grad():
                accuracies.append((step, (model(x_test).argmax(1) == y_test).float().mean().item()))
    return {
        "losses": losses,
        "accuracies": accuracies,
        "accuracy": accuracies[-1][1],
        "seconds": time.perf_counter() - start,
        "sparsity": sparsity,
    }


def plot(cfg: DemoConfig, dense: dict, sparse: dict, connectivity: Tensor, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(values: list[float], k: int = 50) -> Tensor:
        t = torch.tensor(values)
        return t.unfold(0, k, 1).mean(1)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for run, label in ((dense, "dense"), (sparse, f"sparse {1 - cfg.density:.0%} (ERK, RigL)")):
        axes[0].plot(smooth(run["losses"]), label=label)
        steps, accs = zip(*run["accuracies"], strict=True)
        axes[1].plot(steps, accs, label=label)
    axes[0].set(
        title="training loss (moving mean, 50 steps)", xlabel="optimizer step", yscale="log"
    )
    axes[1].set(title="test accuracy", xlabel="optimizer step")
    for ax in axes[:2]:
        ax.legend()
    colors = ["tab:green"] * cfg.informative + ["tab:gray"] * (cfg.features - cfg.informative)
    axes[2].bar(range(cfg.features), connectivity.tolist(), color=colors)
    axes[2].set(
        title="sparse input layer: active connections per input\n(green: informative, grey: noise)",
        xlabel="input feature",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparse-rl demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/core_demo"), help="output folder")
    parser.add_argument("--steps", type=int, default=DemoConfig.steps, help="optimizer steps")
    parser.add_argument("--seed", type=int, default=DemoConfig.seed)
    args = parser.parse_args(argv)
    cfg = DemoConfig(steps=args.steps, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    data = make_task(cfg)
    print(
        f"Task: {cfg.classes} classes, {cfg.informative} informative + "
        f"{cfg.features - cfg.informative} noise features, {cfg.steps} Adam steps per model."
    )
    dense = train(cfg, sparse=False, data=data)
    sparse = train(cfg, sparse=True, data=data)
    sparsity: sn.Sparsity = sparse["sparsity"]  # type: ignore[assignment]
    stats = sparsity.stats()
    connectivity = sparsity.input_connectivity()
    real = connectivity[: cfg.informative].mean().item()
    noise = connectivity[cfg.informative :].mean().item()
    print("\nSparse model, per layer:")
    print(stats)
    print(f"\ntest accuracy   dense {dense['accuracy']:.4f}   sparse {sparse['accuracy']:.4f}")
    print(f"wall time (s)   dense {dense['seconds']:.1f}   sparse {sparse['seconds']:.1f}")
    print(
        f"input layer: {real:.1f} active connections per informative feature, "
        f"{noise:.1f} per noise feature"
    )
    png = args.out / "loss_curves.png"
    plot(cfg, dense, sparse, connectivity, png)
    results = {
        "config": asdict(cfg),
        "dense": {"test_accuracy": dense["accuracy"], "seconds": dense["seconds"]},
        "sparse": {
            "test_accuracy": sparse["accuracy"],
            "seconds": sparse["seconds"],
            "global_density": stats.density,
            "layers": [asdict(layer) for layer in stats.layers],
            "connections_per_informative_feature": real,
            "connections_per_noise_feature": noise,
        },
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {png} and {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
