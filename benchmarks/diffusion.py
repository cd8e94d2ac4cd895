"""Sparse-to-sparse diffusion: dense against Static, SET and RigL denoisers at densities 0.75 to
0.1 (issue 21).

Claims to test (Sparse-to-sparse training of diffusion models, TMLR 2025, arXiv 2504.21380):
at 50% density SET or RigL sample as well as the dense model (mean inside or below the dense
model's 95% interval, on every metric of the problem); at 10% density a drop fraction of 0.05
is at least as good as 0.3 (lower or equal mean, for SET and for RigL).

Problems. ``moons`` and ``swissroll``: 2-D points, ``make_moons(noise=0.05)`` and
``make_swiss_roll(noise=0.5)`` (its x and z), 4000 training points drawn per seed, standardised
with the mean and spread of a fixed 20 000-point draw. ``digits``: the 1797 8×8 images of
``load_digits`` scaled to [-1, 1] (bundled, no download).

Models: :class:`~sparse_rl.supervised.Diffusion`, ε-prediction, T = 100, linear β schedule.
Vector data: ``MLPDenoiser(2, width=128, depth=3)`` (its three 128×128 hidden layers are the
sparse ones). Digits: ``TinyUNet(1, 8, width=16)`` (every conv of the blocks, the down- and
upsampling convs and the 1×1 skips sparse). Input, time-embedding and output layers stay dense
(``DENSE_LAYERS``), ERK over the sparse layers, the same initial weights per seed for every arm.

Arms: ``dense``; ``static-D``; ``set-D-fF`` and ``rigl-D-fF`` for densities D in 0.75, 0.5,
0.25, 0.1 and drop fractions F in 0.3, 0.05: an update every 10 steps, the drop fraction
cosine-decayed to 0 at 75% of training, none after (``train_diffusion``'s default). Every
problem runs every arm; a UNet run costs about 3.5 vector runs (the grid: about 125 minutes of
one core). ``SAMPLE_ARMS`` are the arms whose samples the report draws. ``LONG_ARMS``, run only
when named: SET and RigL at density 0.1 with both drop fractions, trained three times as long
(``set-0.1-f0.05-x3``, ...): goal 2 again, at a longer budget.

Training: ``train_diffusion``, Adam 2e-3, EMA of the denoiser with decay 0.999 (warm-up capped:
0.994 for digits, 0.9986 for the vector runs at their end) following the masks. Vector: batch
64, 100 epochs (6250 steps); digits: batch 128, 100 epochs (1500 steps). In one-seed pilots,
2500 vector steps left the swiss roll a blob (dense energy distance 0.0052; 0.0005 after 6250
steps, -0.0002 after 12 500).
Metrics from the EMA's samples (and from the online network's, ``_online``):

- vector: 2000 DDPM samples (100 steps) against 2000 fresh points of the distribution: energy
  distance and MMD² (RBF, its bandwidth by the median heuristic on the two real draws, so every
  arm of a seed is measured with one kernel); the floor is the same pair of metrics between two
  fresh 2000-point draws. Sampling speed: the hidden stack through the core's CSR conversion
  (``MLPDenoiser.sparse_inference`` at the sampling batch), per-layer milliseconds and one
  timed sampling run each way;
- digits: 898 DDIM samples (50 steps, x0 clipped to [-1, 1]) against one random half of the
  images: FID-lite, a Fréchet distance on the 64 penultimate features of a small CNN trained on
  all digits (once, seed 0); the floor is the same distance between the two halves.

Also per row: training seconds, wall and CPU (one thread; CPU time is what a shared machine
does not inflate), active and dense parameters (masks counted), density of the sparse layers,
first and last epoch loss; seed 0 rows keep a few samples for the report's figures.

Run (resumable, one thread per process)::

    python benchmarks/diffusion.py run --jobs 1
    python benchmarks/diffusion.py run --jobs 1 --problems digits moons \
        --arms set-0.1-f0.05-x3 set-0.1-f0.3-x3 rigl-0.1-f0.05-x3 rigl-0.1-f0.3-x3
    python benchmarks/diffusion.py report

Rows go to ``results/diffusion/rows.jsonl`` as they finish; ``report`` writes
``results/diffusion.{md,png}`` and ``results/diffusion_samples.png``. ``run --quick`` runs tiny
sizes with one seed into a temporary folder (or ``--out``), then reports there: a smoke test,
never results. Runner and command line: ``_offline.py``; report: ``diffusion_report.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import _offline as offline
import numpy as np

NAME = "diffusion"
PROBLEMS = ("moons", "swissroll", "digits")
VECTOR = ("moons", "swissroll")
SEEDS = (0, 1, 2, 3, 4)
DENSITIES = (0.75, 0.5, 0.25, 0.1)
DROPS = (0.3, 0.05)
LR, EMA_DECAY, TIMESTEPS = 2e-3, 0.999, 100
VECTOR_BATCH, DIGITS_BATCH = 64, 128


@dataclass(frozen=True)
class Arm:
    """How the denoiser's hidden layers are sparse: updater name (None: dense), density, drop
    fraction (dynamic updaters only)."""

    method: str | None
    density: float = 1.0
    drop: float | None = None
    epochs_factor: int = 1  # × the problem's epochs

    def sparsity(self) -> dict[str, Any] | None:
        if self.method is None:
            return None
        updater: dict[str, Any] = {"name": self.method}
        if self.drop is not None:
            updater["drop_fraction"] = self.drop
        return {"density": self.density, "updater": updater}


ARMS = {
    "dense": Arm(None),
    **{f"static-{d}": Arm("static", d) for d in DENSITIES},
    **{f"{m}-{d}-f{f}": Arm(m, d, f) for m in ("set", "rigl") for d in DENSITIES for f in DROPS},
}
#: Goal 2's arms trained three times as long (run only when named): does the conservative drop
#: fraction pay once training is long enough to use the connections it keeps?
LONG_ARMS = {f"{m}-0.1-f{f}-x3": Arm(m, 0.1, f, 3) for m in ("set", "rigl") for f in DROPS}
ALL_ARMS = {**ARMS, **LONG_ARMS}
#: The arms whose samples the report draws: what the two goals need (dense, the three methods
#: at 0.5, both drop fractions of SET and RigL at 0.1).
SAMPLE_ARMS = ("dense", "static-0.5", "set-0.5-f0.3", "rigl-0.5-f0.3", "set-0.1-f0.3",
               "set-0.1-f0.05", "rigl-0.1-f0.3", "rigl-0.1-f0.05")  # fmt: skip


@dataclass(frozen=True)
class Scale:
    """Sizes: ``full`` for the results, ``quick`` for a smoke."""

    name: str
    vector_epochs: int  # at batch VECTOR_BATCH
    digits_epochs: int  # at batch DIGITS_BATCH
    points: int  # vector training points
    reference: int  # vector reference and floor points
    images: int | None  # digits images (None: all)
    timesteps: int
    ddim_steps: int
    classifier_epochs: int


FULL = Scale("full", 100, 100, 4000, 2000, None, TIMESTEPS, 50, 20)
QUICK = Scale("quick", 2, 2, 400, 300, 400, 20, 10, 2)
SCALES = {s.name: s for s in (FULL, QUICK)}


Cell = offline.ProblemCell


def cells(args: argparse.Namespace) -> list[Cell]:
    """Every (problem, seed, arm) of the command line; ``LONG_ARMS`` only when named."""
    named = list(args.arms) != list(ALL_ARMS)
    return offline.problem_cells(args, lambda problem, arm: arm in ARMS or named)


# -- data -------------------------------------------------------------------------------------


def _draw(problem: str, n: int, random_state: int) -> np.ndarray:
    from sklearn.datasets import make_moons, make_swiss_roll

    if problem == "moons":
        return make_moons(n, noise=0.05, random_state=random_state)[0]
    if problem == "swissroll":
        return make_swiss_roll(n, noise=0.5, random_state=random_state)[0][:, [0, 2]]
    raise ValueError(f"problem={problem!r} is not valid; choose one of {list(VECTOR)}.")


@cache
def _standardiser(problem: str) -> tuple[np.ndarray, np.ndarray]:
    big = _draw(problem, 20_000, 12_345)
    return big.mean(axis=0), big.std(axis=0)


def vector_data(problem: str, seed: int, scale: Scale) -> dict[str, np.ndarray]:
    """Training points, a reference draw and a floor draw of one problem and seed."""
    mean, std = _standardiser(problem)
    parts = {
        "train": (scale.points, seed),
        "reference": (scale.reference, 10_000 + seed),
        "floor": (scale.reference, 20_000 + seed),
    }
    return {
        key: ((_draw(problem, n, state) - mean) / std).astype(np.float32)
        for key, (n, state) in parts.items()
    }


@cache
def digits(images: int | None) -> tuple[Any, np.ndarray]:
    """The digits as ``(n, 1, 8, 8)`` in [-1, 1] and their labels (the first ``images``)."""
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images / 16 * 2 - 1, dtype=torch.float32)[:, None]
    y = data.target
    return (x, y) if images is None else (x[:images], y[:images])


@cache
def fid_lite(images: int | None, epochs: int) -> Any:
    """The FID-lite classifier, trained once on all (used) digits with seed 0."""
    from sparse_rl.supervised import FIDLite

    x, y = digits(images)
    return FIDLite.train(x, y, epochs=epochs, seed=0)


# -- one run ----------------------------------------------------------------------------------


def make_diffusion(problem: str, seed: int, timesteps: int) -> Any:
    """The seed's model: the same initial weights for every arm."""
    from sparse_rl.supervised import Diffusion, MLPDenoiser, TinyUNet

    from sparse_rl import sparse_nets as sn

    with sn.seeded(seed):
        net = MLPDenoiser(2, 128, 3) if problem in VECTOR else TinyUNet(1, 8, 16)
    return Diffusion(net, timesteps=timesteps)


def run_cell(cell: Cell) -> dict[str, Any]:
    """Train one arm on one problem and seed; measure its samples."""
    from sparse_rl.supervised import active_parameters, dense_parameters, train_diffusion

    scale = SCALES[cell.scale]
    arm = ALL_ARMS[cell.arm]
    model = make_diffusion(cell.problem, cell.seed, scale.timesteps)
    if cell.problem in VECTOR:
        data = vector_data(cell.problem, cell.seed, scale)
        train, batch, epochs = data["train"], VECTOR_BATCH, scale.vector_epochs
    else:
        train, batch, epochs = digits(scale.images)[0], DIGITS_BATCH, scale.digits_epochs
    cpu = time.process_time()
    run = train_diffusion(
        model, train, epochs=epochs * arm.epochs_factor, batch_size=batch, lr=LR, seed=cell.seed,
        sparsity=arm.sparsity(), ema_decay=EMA_DECAY,
    )  # fmt: skip
    cpu = time.process_time() - cpu
    records = run.history.records
    stats = run.history.sparsity_stats
    row = {
        **asdict(cell),
        "method": arm.method or "dense",
        "density": arm.density,
        "drop": arm.drop,
        "sparse_density": 1.0 if stats is None else stats.density,
        "active_parameters": active_parameters(run.denoiser),
        "dense_parameters": dense_parameters(run.denoiser),
        "first_loss": records[0].train_loss,
        "last_loss": records[-1].train_loss,
        "steps": 0 if stats is None else stats.step,
        "seconds": run.seconds,
        "cpu_seconds": cpu,
    }
    measure = _measure_vector if cell.problem in VECTOR else _measure_digits
    row.update(measure(model, run, cell, scale))
    return row


def _measure_vector(model: Any, run: Any, cell: Cell, scale: Scale) -> dict[str, Any]:
    from sparse_rl.supervised import energy_distance, median_bandwidth, mmd_rbf

    data = vector_data(cell.problem, cell.seed, scale)
    ref, floor = data["reference"], data["floor"]
    n = len(ref)
    sigma = median_bandwidth(ref, floor)  # one kernel per problem and seed, from real data
    start = time.perf_counter()
    ema = model.sample(n, seed=cell.seed, denoiser=run.denoiser)
    sample_seconds = time.perf_counter() - start
    online = model.sample(n, seed=cell.seed, denoiser=run.online)
    fast, decisions = run.denoiser.sparse_inference(batch=n)
    start = time.perf_counter()
    model.sample(n, seed=cell.seed, denoiser=fast)
    csr_seconds = time.perf_counter() - start
    return {
        "energy": energy_distance(ema, ref),
        "mmd": mmd_rbf(ema, ref, sigma),
        "energy_online": energy_distance(online, ref),
        "mmd_online": mmd_rbf(online, ref, sigma),
        "energy_floor": energy_distance(floor, ref),
        "mmd_floor": mmd_rbf(floor, ref, sigma),
        "bandwidth": sigma,
        "sample_seconds": sample_seconds,
        "sample_seconds_csr": csr_seconds,
        "hidden_dense_ms": sum(d.dense_ms for d in decisions),
        "hidden_csr_ms": sum(d.csr_ms for d in decisions),
        "csr_layers": sum(d.converted for d in decisions),
        "samples": _keep(ema[:500].numpy(), cell, 3),
    }


def _measure_digits(model: Any, run: Any, cell: Cell, scale: Scale) -> dict[str, Any]:
    from sparse_rl.supervised import split_halves

    x, y = digits(scale.images)
    metric = fid_lite(scale.images, scale.classifier_epochs)
    half_a, half_b = split_halves(x, cell.seed)
    n = len(half_b)
    options = {"sampler": "ddim", "steps": scale.ddim_steps, "clip": 1.0, "seed": cell.seed}
    start = time.perf_counter()
    ema = model.sample(n, denoiser=run.denoiser, **options)
    sample_seconds = time.perf_counter() - start
    online = model.sample(n, denoiser=run.online, **options)
    return {
        "fid_lite": metric.distance(ema, half_b),
        "fid_lite_online": metric.distance(online, half_b),
        "fid_lite_floor": metric.distance(half_a, half_b),
        "classifier_accuracy": metric.accuracy(x, y),
        "sample_seconds": sample_seconds,
        "samples": _keep(ema[:64, 0].numpy(), cell, 2),
    }


def _keep(samples: np.ndarray, cell: Cell, digits_: int) -> list[Any] | None:
    """Seed 0's samples, rounded, for the report's figures; None for the other seeds."""
    return np.round(samples.astype(np.float64), digits_).tolist() if cell.seed == 0 else None


def describe(row: dict[str, Any]) -> str:
    if "fid_lite" in row:
        quality = f"FID-lite {row['fid_lite']:.2f} (floor {row['fid_lite_floor']:.2f})"
    else:
        quality = f"energy {row['energy']:.4f}, MMD² {row['mmd']:.5f}"
    return f"{quality}, {row['active_parameters']} active, {row['seconds']:.1f} s"


def main(argv: list[str] | None = None) -> None:
    offline.main(
        argv,
        sys.modules[__name__],
        what="train every missing (problem, arm, seed)",
        choices={"arms": tuple(ALL_ARMS), "problems": PROBLEMS},
    )


if __name__ == "__main__":
    main()
