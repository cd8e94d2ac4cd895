"""Corruptions, PGD and EL2N: the checks fail for a corruption that does nothing or whose
strength does not grow with severity, for an attack that does not attack, and for hard-sample
scores that do not see mislabelled samples. Tiny data, one small MLP trained once."""

from __future__ import annotations

import io
import math
import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sparse_rl.supervised import (
    CORRUPTIONS,
    KINDS,
    CorruptedDataset,
    CorruptionBenchmark,
    CorruptionReport,
    corrupt,
    early_el2n_scores,
    el2n_scores,
    fit,
    hardest_subset,
    mlp,
    pgd_accuracy,
    pgd_attack,
    random_subset,
    small_cnn,
    subset_size,
)
from sparse_rl.supervised.corruptions import Corruption, item_seed
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sparse_rl.validation import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "supervised.md"
NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """``load_digits`` as (1797, 1, 8, 8) images in [0, 1] and labels."""
    data = load_digits()
    return torch.tensor(data.images / 16, dtype=torch.float32)[:, None], torch.tensor(data.target)


@pytest.fixture(scope="module")
def trained(digits) -> nn.Module:
    """A small MLP trained for a few epochs on the first 900 digits (about a second)."""
    x, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), mlp(64, (32,), 10))
    fit(model, (x[:900], y[:900]), epochs=8, batch_size=32, lr=5e-3, seed=0)
    return model


def _strength_problems(images: torch.Tensor) -> list[str]:
    """Every kind must move the images at severity 1, and farther at each higher severity."""
    problems = []
    for kind in KINDS:
        dists = [(corrupt(images, kind, s) - images).norm().item() for s in range(1, 6)]
        if dists[0] <= 1e-3:
            problems.append(f"{kind} leaves the images unchanged")
        if any(b <= a for a, b in pairwise(dists)):
            problems.append(f"{kind} does not grow with severity: {dists}")
    return problems


def test_same_seed_gives_identical_corrupted_tensors(digits) -> None:
    gray = digits[0][:40]
    colour = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    for images in (gray, colour):
        for kind in KINDS:
            a = corrupt(images, kind, 3, seed=7)
            assert torch.equal(a, corrupt(images, kind, 3, seed=7)), kind
            assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1, kind
    for kind in (*NOISE, "motion_blur"):  # the random kinds depend on the seed
        assert not torch.equal(corrupt(gray, kind, 3, seed=7), corrupt(gray, kind, 3, seed=8))


def test_distance_to_clean_grows_with_severity(digits) -> None:
    assert _strength_problems(digits[0][:200]) == []


def test_the_strength_check_catches_broken_corruptions(digits, monkeypatch) -> None:
    unchanged = Corruption("gaussian_noise", (0.1,) * 5, "none", lambda x, p, g: x)
    flat = Corruption("contrast", (0.5,) * 5, "the same at every severity", lambda x, p, g: x * p)
    monkeypatch.setitem(CORRUPTIONS, "gaussian_noise", unchanged)
    monkeypatch.setitem(CORRUPTIONS, "contrast", flat)
    problems = _strength_problems(digits[0][:50])
    assert any("gaussian_noise leaves" in p for p in problems)
    assert any("contrast does not grow" in p for p in problems)


def test_jpeg_matches_pillow(digits) -> None:
    """The codec's lossy steps, against libjpeg through Pillow (4:4:4, grey and colour)."""
    image_module = pytest.importorskip("PIL.Image")
    gray = torch.round(digits[0][:30] * 255) / 255
    colour = torch.nn.functional.avg_pool2d(torch.rand(8, 3, 12, 12), 3, 1, 1)
    colour = torch.round(colour * 255) / 255
    for images in (gray, colour):
        pixels = (images * 255).round().byte().permute(0, 2, 3, 1).numpy()
        mode = "L" if images.shape[1] == 1 else "RGB"
        reference = []
        for a in pixels:
            buffer = io.BytesIO()
            image_module.fromarray(a.squeeze(-1) if mode == "L" else a, mode).save(
                buffer, "JPEG", quality=CORRUPTIONS["jpeg"].params[0], subsampling=0
            )
            reference.append(np.asarray(image_module.open(buffer), dtype=np.float64))
        ours = corrupt(images, "jpeg", 1).permute(0, 2, 3, 1).numpy() * 255
        diff = np.abs(np.stack(reference).reshape(ours.shape) - ours).mean()
        moved = np.abs(ours - pixels).mean()
        assert diff < 1.0 and moved > 5 * diff, (diff, moved)  # close to libjpeg, far from clean


def test_trained_model_accuracy_falls_with_severity(digits, trained) -> None:
    x, y = digits[0][900:1300], digits[1][900:1300]
    report = CorruptionBenchmark().evaluate(trained, x, y)
    assert report.clean_accuracy > 0.85
    for kind, accs in report.accuracy.items():
        # non-increasing, up to 2 points of noise between neighbouring severities
        assert all(b <= a + 0.02 for a, b in pairwise(accs)), (kind, accs)
        assert accs[-1] <= report.clean_accuracy - 0.02, (kind, accs)  # severity 5 hurts
    assert report.mca < report.clean_accuracy
    assert report.relative_drop == pytest.approx(1 - report.mca / report.clean_accuracy)


def test_mce_against_a_reference(digits, trained) -> None:
    x, y = digits[0][900:1100], digits[1][900:1100]
    bench = CorruptionBenchmark(kinds=["gaussian_noise", "contrast"], severities=(1, 5))
    itself = bench.evaluate(trained, x, y, reference=trained)
    assert itself.mce == pytest.approx(1.0) and itself.relative_mce == pytest.approx(1.0)
    plain = bench.evaluate(trained, x, y)
    assert plain.mce is None and plain.accuracy == itself.accuracy
    constant = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # untrained: a weak reference
    weak = bench.evaluate(constant, x, y)
    assert bench.evaluate(trained, x, y, reference=weak).mce < 1.0
    # the error table form, and the formula: CE = Σ_s error / Σ_s reference error
    table = {k: [2 * e for e in v] for k, v in plain.error_table().items() if k != "clean"}
    halved = bench.evaluate(trained, x, y, reference=table)
    assert halved.mce == pytest.approx(0.5) and halved.relative_mce is None
    with pytest.raises(ValueError, match="no errors for kind 'contrast'"):
        bench.evaluate(trained, x, y, reference={"gaussian_noise": [0.1, 0.2]})


def test_report_summaries_by_hand() -> None:
    report = CorruptionReport(0.8, {"a": (0.6, 0.4), "b": (0.8, 0.2)}, (1, 2))
    assert report.mca == pytest.approx(0.5)
    assert report.relative_drop == pytest.approx(0.3 / 0.8)
    assert report.error_table()["a"] == pytest.approx((0.4, 0.6))
    assert "| a | 0.600 | 0.400 | 0.500 |" in report.markdown()


def test_corrupted_dataset_is_seeded_per_item(digits) -> None:
    x, y = digits[0][:1].repeat(8, 1, 1, 1), digits[1][:8]  # one image, eight times
    data = CorruptedDataset(TensorDataset(x, y), "impulse_noise", 4, seed=3)
    forward = [data[i] for i in range(8)]
    backward = [data[i] for i in reversed(range(8))][::-1]
    for i, ((a, label), (b, _)) in enumerate(zip(forward, backward, strict=True)):
        assert torch.equal(a, b) and label == y[i] and not torch.equal(a, x[i])
        assert torch.equal(a, corrupt(x[i : i + 1], "impulse_noise", 4, item_seed(3, i))[0])
    assert not torch.equal(forward[0][0], forward[1][0])  # each item its own draws
    batch, labels = next(iter(DataLoader(data, batch_size=8)))
    assert batch.shape == (8, 1, 8, 8) and torch.equal(labels, y)
    bare = CorruptedDataset(list(x[:, 0].numpy()), "contrast", 2)  # (H, W) arrays, no labels
    assert bare[0].shape == (8, 8)


def test_pgd_accuracy_is_at_most_clean_and_eps_zero_is_clean(digits, trained) -> None:
    x, y = digits[0][900:1200], digits[1][900:1200]
    with torch.no_grad():
        clean = (trained(x).argmax(1) == y).float().mean().item()
    assert pgd_accuracy(trained, x, y, eps=0.0, steps=3, step_size=0.01) == pytest.approx(clean)
    attacked = pgd_accuracy(trained, x, y, eps=0.1, steps=10, step_size=0.025, seed=0)
    assert attacked <= clean
    # it attacks: far below clean, and below random noise of the same size
    noisy = (x + (torch.rand_like(x) * 2 - 1) * 0.1).clamp(0, 1)
    with torch.no_grad():
        random_noise = (trained(noisy).argmax(1) == y).float().mean().item()
    assert attacked < clean - 0.3 and attacked < random_noise - 0.2
    assert attacked == pgd_accuracy(trained, x, y, eps=0.1, steps=10, step_size=0.025, seed=0)


def test_pgd_attack_stays_in_the_ball_and_the_unit_box(digits, trained) -> None:
    x, y = digits[0][:64], digits[1][:64]
    grads = [None if p.grad is None else p.grad.clone() for p in trained.parameters()]
    adv = pgd_attack(trained, x, y, eps=0.05, steps=5, step_size=0.02, seed=1)
    assert (adv - x).abs().max() <= 0.05 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1 and trained.training is False
    for before, p in zip(grads, trained.parameters(), strict=True):  # only the input's gradient
        assert (before is None and p.grad is None) or torch.equal(before, p.grad)


def test_el2n_by_hand() -> None:
    class Fixed(nn.Module):
        def __init__(self, logits: torch.Tensor) -> None:
            super().__init__()
            self.logits = logits

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logits[: len(x)]

    uniform = Fixed(torch.zeros(3, 2))  # softmax (1/2, 1/2): ‖(−1/2, 1/2)‖ = √½
    scores = el2n_scores(uniform, torch.zeros(3, 1), torch.tensor([0, 1, 0]))
    assert torch.allclose(scores, torch.full((3,), math.sqrt(0.5)))
    sure = Fixed(torch.tensor([[50.0, 0.0], [50.0, 0.0], [50.0, 0.0]]))  # p ≈ (1, 0)
    scores = el2n_scores([sure, uniform], torch.zeros(3, 1), torch.tensor([0, 1, 0]))
    expected = torch.tensor([0.0, math.sqrt(2), 0.0]) / 2 + math.sqrt(0.5) / 2
    assert torch.allclose(scores, expected, atol=1e-6)


def test_mislabelled_samples_score_higher(digits) -> None:
    x, y = digits[0][:600], digits[1][:600].clone()
    flipped = torch.arange(0, 600, 30)  # 20 samples get a wrong label
    y[flipped] = (y[flipped] + 1 + torch.arange(20) % 9) % 10
    scores = early_el2n_scores(
        lambda: nn.Sequential(nn.Flatten(), mlp(64, (32,), 10)),
        x,
        y,
        epochs=4,
        seeds=(0, 1),
        batch_size=32,
        lr=5e-3,
    )
    clean = torch.ones(600, dtype=torch.bool)
    clean[flipped] = False
    assert scores[flipped].mean() > scores[clean].mean() + 0.3
    hardest = set(hardest_subset(scores, 0.1).tolist())  # 60 samples
    assert len(hardest & set(flipped.tolist())) >= 16


def test_subsets() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.0])
    assert hardest_subset(scores, 0.4).tolist() == [1, 3]  # ties in index order
    assert hardest_subset(np.array([0.3, 0.2]), 0.5).tolist() == [0]
    assert subset_size(5, 0.5) == 3 and subset_size(10, 0.01) == 1
    a = random_subset(100, 0.3, seed=0)
    assert len(a) == 30 and len(set(a.tolist())) == 30 and a.tolist() == sorted(a.tolist())
    assert torch.equal(a, random_subset(100, 0.3, seed=0))
    assert not torch.equal(a, random_subset(100, 0.3, seed=1))


def test_small_cnn_trains_sparse_and_is_evaluated(digits) -> None:
    x, y = digits[0][:300], digits[1][:300]
    torch.manual_seed(0)
    model = small_cnn(1, 8, 10, channels=(8,), hidden=32)
    history = fit(
        model, (x, y), epochs=2, batch_size=50, lr=1e-2, seed=0, sparsity={"density": 0.5}
    )
    assert history.sparsity_stats is not None and model(x[:2]).shape == (2, 10)
    report = CorruptionBenchmark(kinds=["pixelate"], severities=(5,)).evaluate(model, x, y)
    assert 0 <= report.mca <= 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: corrupt(x, "gausian_noise", 1), r"kind: 'gausian_noise' .*'gaussian_noise'"),
        (lambda x: corrupt(x, "gaussian_noise", 0), r"severity: 0 .*\[1, 2, 3, 4, 5\]"),
        (lambda x: corrupt(x, "gaussian_noise", 6), r"severity: 6 .*\[1, 2, 3, 4, 5\]"),
        (lambda x: corrupt(x, "gaussian_noise", 2.0), r"severity: 2.0 is not valid"),
        (lambda x: corrupt(x, "gaussian_noise", True), r"severity: True is not valid"),
        (lambda x: corrupt(x, "blur", 1, seed=-1), r"kind: 'blur' .*choose one of"),
        (lambda x: corrupt(x, "jpeg", 1, seed=-1), r"seed must be an integer >= 0"),
        (lambda x: corrupt(x + 2, "jpeg", 1), r"images must lie in \[0, 1\]"),
        (lambda x: corrupt(x[0], "jpeg", 1), r"images must have shape \(N, C, H, W\)"),
        (lambda x: CorruptionBenchmark(kinds=["snow"]), r"kind: 'snow' .*choose one of"),
        (lambda x: CorruptionBenchmark(severities=(1, 7)), r"severity: 7"),
        (lambda x: CorruptedDataset([], "contrast", 9), r"severity: 9"),
        (lambda x: pgd_accuracy(nn.Flatten(), x, [0], eps=-0.1), r"eps: -0.1 is not valid"),
        (lambda x: hardest_subset([1.0, 2.0], 0), r"fraction must lie in \(0, 1\], got 0"),
        (lambda x: random_subset(10, 1.5), r"fraction must lie in \(0, 1\], got 1.5"),
        (lambda x: el2n_scores([], x, [0]), r"models is empty"),
    ],
)
def test_bad_arguments_say_what_is_valid(call, match: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=match):
        call(torch.zeros(1, 1, 8, 8))


def _section() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("## Robustness and hard samples")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_the_docs_table_lists_the_code_parameters() -> None:
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \|((?: [^|]+ \|){5})", _section(), re.M)
    documented = {kind: tuple(float(v) for v in cells.split("|")[:-1]) for kind, cells in rows}
    assert documented == {k: tuple(float(v) for v in c.params) for k, c in CORRUPTIONS.items()}
