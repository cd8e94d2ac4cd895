"""Sparse-to-sparse diffusion: the checks fail for EMA weights on connections the online model
has dropped, samplers that are wrong or not reproducible from a seed, metrics that cannot tell
real data from noise, training that does not learn, time-embedding or output layers made sparse,
sparse layers off their density, and bad input whose error does not name the parameter. Tiny
models on generated data; the whole file runs in seconds."""

from __future__ import annotations

import importlib
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from sparse_rl.supervised import (
    DENSE_LAYERS,
    EMA,
    Diffusion,
    FIDLite,
    MLPDenoiser,
    TinyUNet,
    beta_schedule,
    diffusion_sparsity,
    energy_distance,
    frechet_distance,
    mmd_rbf,
    split_halves,
    train_diffusion,
)
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "diffusion.md"


def _rings(n: int, seed: int) -> Tensor:
    """Two noisy concentric rings in 2-D: real data with structure a Gaussian lacks."""
    g = torch.Generator().manual_seed(seed)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    radius = 0.5 + 0.5 * (torch.rand(n, generator=g) < 0.5) + 0.05 * torch.randn(n, generator=g)
    return torch.stack([radius * angle.cos(), radius * angle.sin()], 1)


def _model(width: int = 32, depth: int = 2, timesteps: int = 50, seed: int = 0) -> Diffusion:
    with sn.seeded(seed):
        return Diffusion(MLPDenoiser(2, width, depth), timesteps=timesteps)


class _Oracle(nn.Module):
    """The exact ε-predictor when every sample is the point ``c``: ε = (x_t − √ᾱ_t c)/√(1 − ᾱ_t)."""

    def __init__(self, alpha_bars: Tensor, c: Tensor) -> None:
        super().__init__()
        self.alpha_bars, self.c = alpha_bars, c

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        ab = self.alpha_bars[t][:, None]
        return (x - ab.sqrt() * self.c) / (1 - ab).sqrt()


# -- EMA -----------------------------------------------------------------------------------------


def test_ema_never_uses_a_connection_the_online_model_dropped() -> None:
    diffusion = _model()
    opt = torch.optim.Adam(diffusion.parameters(), lr=1e-2)
    sparsity = sn.sparsify(
        diffusion, opt, 0.3, updater=sn.SET(interval=5, drop_fraction=0.5), exclude=DENSE_LAYERS
    )
    ema = EMA(diffusion.denoiser, decay=0.9)
    naive = [p.detach().clone() for p in ema.module.parameters()]  # a plain lerp, no masks
    x = _rings(64, 0)
    dropped_and_remembered = 0
    for step in range(1, 21):
        before = {n: m.clone() for n, m in sparsity.masks.items()}
        loss = Diffusion.loss(diffusion(x))
        opt.zero_grad()
        loss.backward()
        opt.step()  # the topology changes inside, at steps 5, 10, ...
        ema.update(diffusion.denoiser)
        for p, q in zip(naive, diffusion.denoiser.parameters(), strict=True):
            p.lerp_(q.detach(), 1 - ema.decay_at(ema.updates - 1))
        naive_of = dict(zip([n for n, _ in ema.module.named_parameters()], naive, strict=True))
        for name, mask in sparsity.masks.items():
            local = name.removeprefix("denoiser.")
            copy = ema.module.get_submodule(local)
            assert torch.equal(copy.weight_mask, mask.to(copy.weight_mask.dtype)), (step, name)
            assert torch.all(copy.weight[~mask] == 0), (step, name)
            dropped = before[name] & ~mask
            if step % 5 == 0:
                assert dropped.any(), "the updater should have dropped connections"
                # the check has teeth: without following the masks the EMA would keep them
                dropped_and_remembered += int((naive_of[f"{local}.weight"][dropped] != 0).sum())
    assert dropped_and_remembered > 0


def test_train_diffusion_ema_follows_masks_and_state_round_trips() -> None:
    diffusion = _model()
    run = train_diffusion(
        diffusion, _rings(128, 1), epochs=6, batch_size=16, lr=1e-2, seed=0, ema_decay=0.9,
        sparsity={"density": 0.3, "updater": {"name": "rigl", "drop_fraction": 0.5}},
    )  # fmt: skip
    sparsity = run.history.sparsity
    assert sparsity is not None and sparsity.stats().layers[0].itop > 0.3  # it did rewire
    for name, mask in sparsity.masks.items():
        copy = run.denoiser.get_submodule(name.removeprefix("denoiser."))
        assert torch.all(copy.weight[~mask] == 0)
    restored = EMA(_model().denoiser)
    restored.load_state_dict(run.ema.state_dict())
    for (name, a), b in zip(
        run.ema.module.state_dict().items(), restored.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


# -- schedules and samplers ----------------------------------------------------------------------


def test_schedules_end_in_noise_at_any_length() -> None:
    for kind in ("linear", "cosine"):
        for steps in (10, 100, 1000):
            betas = beta_schedule(kind, steps)
            alpha_bar = torch.cumprod(1 - betas, 0)
            assert betas.shape == (steps,) and bool(((betas > 0) & (betas < 1)).all())
            assert float(alpha_bar[0]) > 0.95 and float(alpha_bar[-1]) < 1e-2, (kind, steps)
            assert bool((betas[1:] >= betas[:-1] - 1e-12).all())


@pytest.mark.parametrize(
    ("schedule", "sampler", "steps", "eta"),
    [("linear", "ddpm", None, 0.0), ("cosine", "ddim", 10, 0.0), ("cosine", "ddim", 50, 1.0)],
)
def test_samplers_recover_a_point_mass_with_the_exact_denoiser(
    schedule: str, sampler: str, steps: int | None, eta: float
) -> None:
    diffusion = Diffusion(MLPDenoiser(2), timesteps=50, schedule=schedule)
    c = torch.tensor([0.7, -1.2])
    oracle = _Oracle(diffusion.alpha_bars, c)
    out = diffusion.sample(200, seed=3, sampler=sampler, steps=steps, eta=eta, denoiser=oracle)
    assert torch.allclose(out, c.expand_as(out), atol=1e-3), (out - c).abs().max()


def test_ddim_with_eta_one_over_all_steps_is_ddpm() -> None:
    diffusion = _model(timesteps=30)
    ddpm = diffusion.sample(16, seed=5)
    ddim = diffusion.sample(16, seed=5, sampler="ddim", eta=1.0)
    assert torch.allclose(ddpm, ddim, rtol=1e-3, atol=1e-3)


def test_sampling_is_reproducible_from_the_seed_and_leaves_torch_alone() -> None:
    diffusion = _model()
    for options in ({}, {"sampler": "ddim", "steps": 10}, {"sampler": "ddim", "eta": 0.5}):
        state = torch.get_rng_state()
        a = diffusion.sample(8, seed=1, **options)
        assert torch.equal(torch.get_rng_state(), state), options
        assert torch.equal(a, diffusion.sample(8, seed=1, **options)), options
        assert not torch.allclose(a, diffusion.sample(8, seed=2, **options)), options
    assert diffusion.denoiser.training  # the mode the model was in is put back


def test_training_lowers_the_loss_and_improves_the_samples() -> None:
    x = _rings(512, 0)
    reference = _rings(400, 9)
    diffusion = _model(width=64)
    untrained = energy_distance(diffusion.sample(400, seed=0), reference)
    run = train_diffusion(diffusion, x, epochs=15, batch_size=64, lr=3e-3, seed=0)
    losses = [r.train_loss for r in run.history.records]
    assert losses[-1] < 0.75 * losses[0], losses
    trained = energy_distance(diffusion.sample(400, seed=0, denoiser=run.denoiser), reference)
    assert trained < 0.1 * untrained, (trained, untrained)
    assert run.history.sparsity is None and run.seconds > 0


# -- sparsity: hidden layers sparse at their density, the rest dense ----------------------------


@pytest.mark.parametrize("updater", ["static", "set", "rigl"])
def test_hidden_layers_keep_their_density_and_the_rest_stays_dense(updater: str) -> None:
    diffusion = _model(width=48, depth=3)
    run = train_diffusion(
        diffusion, _rings(96, 2), epochs=4, batch_size=16, seed=0,
        sparsity={"density": 0.25, "updater": updater},
    )  # fmt: skip
    sparsity = run.history.sparsity
    assert sorted(sparsity.masks) == [f"denoiser.hidden.{i}" for i in (0, 2, 4)]
    stats = sparsity.stats()
    assert stats.density == pytest.approx(0.25, abs=1e-3) and stats.step == 24
    for layer in stats.layers:
        assert layer.density == pytest.approx(0.25, abs=1e-3)
    denoiser = diffusion.denoiser
    for dense in (denoiser.stem, denoiser.time_mlp[0], denoiser.time_mlp[2], denoiser.head):
        assert not hasattr(dense, "weight_mask") and bool((dense.weight != 0).all())


def test_the_unet_sparsifies_its_blocks_only() -> None:
    with sn.seeded(0):
        diffusion = Diffusion(TinyUNet(1, 8, width=8), timesteps=20)
    images = torch.rand(32, 1, 8, 8) * 2 - 1
    run = train_diffusion(
        diffusion, images, epochs=1, batch_size=16, seed=0, sparsity={"density": 0.5}
    )
    masks = run.history.sparsity.masks
    assert "denoiser.down.conv1" in masks and "denoiser.upsample.1" in masks
    dense = [n for n, m in diffusion.named_modules() if isinstance(m, sn.SPARSIFIABLE)]
    dense = [n for n in dense if n not in masks]
    assert dense and all(re.search(r"stem|time|head", n) for n in dense), dense
    assert any(".time_proj" in n for n in dense) and "denoiser.head.2" in dense
    assert run.history.sparsity.stats().density == pytest.approx(0.5, abs=1e-2)
    assert diffusion.sample(2, seed=0, sampler="ddim", steps=4, clip=1.0).shape == (2, 1, 8, 8)


def test_csr_inference_samples_like_the_masked_model() -> None:
    diffusion = _model(width=64, depth=2)
    sn.sparsify(diffusion, None, 0.1, exclude=DENSE_LAYERS)
    fast, decisions = diffusion.denoiser.sparse_inference(batch=64, min_speedup=0.0)
    assert [d.converted for d in decisions] == [True, True]
    assert isinstance(fast.hidden[0], sn.CSRLinear)
    a = diffusion.sample(64, seed=0, sampler="ddim", steps=5)
    b = diffusion.sample(64, seed=0, sampler="ddim", steps=5, denoiser=fast)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_diffusion_sparsity_lays_a_mapping_over_the_defaults() -> None:
    settings = diffusion_sparsity({"density": 0.1, "updater": "rigl"}, 1000)
    assert settings.exclude == DENSE_LAYERS and settings.distribution == "erk"
    assert settings.updater.name == "rigl" and settings.updater.end_step == 750
    assert diffusion_sparsity(None, 1000) is None


# -- metrics -------------------------------------------------------------------------------------


def test_vector_metrics_tell_real_data_from_noise() -> None:
    real, other = _rings(500, 0), _rings(500, 1)
    noise = torch.randn(500, 2, generator=torch.Generator().manual_seed(2))  # diffusion's prior
    for metric in (energy_distance, mmd_rbf):
        floor, far = metric(real, other), metric(real, noise)
        assert abs(floor) < 0.1 * far, (metric.__name__, floor, far)
        assert metric(real, noise) == pytest.approx(metric(noise, real), rel=1e-9)


def test_frechet_distance_matches_the_gaussian_formula() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20_000, 3, generator=g) * torch.tensor([1.0, 2.0, 0.5])
    b = torch.randn(20_000, 3, generator=g) * torch.tensor([2.0, 2.0, 1.0]) + 1.0
    expected = 3 * 1.0 + (1 - 2) ** 2 + 0 + (0.5 - 1) ** 2  # |Δμ|² + Σ (σ_a − σ_b)²
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)
    assert abs(frechet_distance(a, a)) < 1e-6


def test_fid_lite_tells_digits_from_noise() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    images = torch.tensor(digits.images[:600] / 16 * 2 - 1, dtype=torch.float32)[:, None]
    labels = digits.target[:600]
    metric = FIDLite.train(images, labels, epochs=4, channels=(8,), hidden=16, lr=1e-2, seed=0)
    assert metric.accuracy(images, labels) > 0.7
    a, b = split_halves(images, 0)
    assert len(a) == len(b) == 300 and not torch.equal(a, b)
    noise = torch.rand_like(b) * 2 - 1
    floor, far = metric.floor(images, 0), metric.distance(noise, b)
    assert floor < 0.1 * far, (floor, far)


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: beta_schedule("quadratic"), r"schedule: 'quadratic' is not valid.*cosine"),
        (lambda: beta_schedule("linear", 1), r"timesteps must be an integer >= 2"),
        (lambda: Diffusion(nn.Linear(2, 2)), r"shape: Linear has no sample_shape"),
        (lambda: _model().sample(4, sampler="euler"), r"sampler: 'euler' is not valid.*ddim"),
        (lambda: _model().sample(4, steps=10), r"steps=10: the DDPM sampler takes all 50"),
        (lambda: _model().sample(4, sampler="ddim", steps=80), r"steps=80 is more than"),
        (lambda: _model().sample(0), r"n must be an integer >= 1"),
        (lambda: _model().sample(2, eta=-1.0), r"eta: -1.0 is not valid; a finite number >= 0"),
        (lambda: train_diffusion(_model(), torch.zeros(8, 3)), r"data must have shape \(n, 2\)"),
        (lambda: train_diffusion(_model(), torch.zeros(8, 2), epochs=0), r"epochs must be"),
        (lambda: EMA(nn.Linear(2, 2), decay=1.5), r"decay: 1.5 is not valid; a number in \[0, 1\)"),
        (lambda: frechet_distance(torch.zeros(5, 4), torch.zeros(50, 4)), r"x has 5 samples"),
        (lambda: mmd_rbf(torch.zeros(4, 2), torch.zeros(4, 2)), r"bandwidth must be > 0"),
        (lambda: energy_distance(torch.zeros(4, 2), torch.zeros(4, 3)), r"x has 2 features"),
        (lambda: TinyUNet(image_size=7), r"image_size must be even"),
        (lambda: MLPDenoiser(0), r"dim must be an integer >= 1"),
    ],
)
def test_bad_input_names_the_parameter(call, match: str) -> None:
    with pytest.raises((ConfigError, ValueError, TypeError), match=match):
        call()


def test_bad_sparsity_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"sparsity.updater.*'sett'.*did you mean 'set'"):
        train_diffusion(_model(), _rings(16, 0), epochs=1, sparsity={"updater": "sett"})


# -- docs and benchmark ------------------------------------------------------------------------


@pytest.mark.slow  # two trainings, a classifier and 900 UNet samples: ~8 s of CPU
def test_the_docs_python_blocks_run_as_written(tmp_path: Path, monkeypatch) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(encoding="utf-8"), re.M | re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), {})
    assert (tmp_path / "digits.png").read_bytes()[:4] == b"\x89PNG"  # save_sample_grid's


@pytest.mark.slow  # 4 cells, the FID-lite classifier and two figures: ~4 s of CPU
def test_the_benchmark_quick_path_runs_and_reports(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        bench = importlib.import_module("diffusion")
        bench.main(
            ["run", "--quick", "--out", str(tmp_path), "--jobs", "1", "--problems", "moons",
             "digits", "--arms", "dense", "rigl-0.5-f0.3"]
        )  # fmt: skip
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = [json.loads(line) for line in (tmp_path / "diffusion" / "rows.jsonl").open()]
    assert [(r["problem"], r["arm"]) for r in rows] == [
        ("moons", "dense"), ("moons", "rigl-0.5-f0.3"), ("digits", "dense"),
        ("digits", "rigl-0.5-f0.3"),
    ]  # fmt: skip
    sparse = rows[1]
    assert sparse["sparse_density"] == pytest.approx(0.5, abs=1e-2)
    assert sparse["active_parameters"] < rows[0]["active_parameters"]
    assert {"energy", "mmd", "energy_floor", "hidden_csr_ms"} <= set(sparse)
    assert {"fid_lite", "fid_lite_floor"} <= set(rows[3])
    md = (tmp_path / "diffusion.md").read_text()
    assert "Quick smoke" in md and "| rigl-0.5-f0.3 | 1 |" in md
    assert (tmp_path / "diffusion.png").stat().st_size > 10_000
    assert (tmp_path / "diffusion_samples.png").stat().st_size > 10_000
