"""Adversarial robustness: L∞ projected gradient descent (PGD, Madry et al. 2018) with a random
start, for images in [0, 1].

The robustness paper's setting is ε = 8/255 with 10 steps of 2/255 for adversarial training and
20 steps at test time (:data:`TEST_PGD`). Accuracy under attack counts a sample as robust only
if the model is right on the clean image *and* on every PGD iterate (the convention of
AutoAttack-style evaluations): so it never exceeds clean accuracy, and it is the accuracy
against the strongest point the attack visited rather than only the last one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl.validation import check_int, check_number

from .corruptions import check_images

#: ε, steps and step size at test time in the robustness paper (CIFAR scale, pixels in [0, 1]).
TEST_PGD = {"eps": 8 / 255, "steps": 20, "step_size": 2 / 255}
#: The same for adversarial training.
TRAIN_PGD = {"eps": 8 / 255, "steps": 10, "step_size": 2 / 255}


def _check(eps: float, steps: int, step_size: float, seed: int) -> tuple[float, int, float, int]:
    eps = float(check_number("eps", eps, low=0))
    steps = check_int("steps", steps, 0)
    step_size = float(check_number("step_size", step_size, low=0))
    return eps, steps, step_size, check_int("seed", seed, 0)


def _pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    steps: int,
    step_size: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """(adversarial images, still-correct mask over clean image and every iterate)."""
    with torch.no_grad():
        robust = model(x).argmax(dim=1) == y
    start = (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1) * eps
    adv = (x + start.to(x.device)).clamp(0, 1)
    for step in range(steps + 1):
        last = step == steps  # the final iterate is only checked, not stepped from
        adv = adv.detach().requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            logits = model(adv)
        robust &= logits.detach().argmax(dim=1) == y
        if last:
            break
        loss = F.cross_entropy(logits, y, reduction="sum")  # per-sample gradients unscaled
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + step_size * grad.sign()
        adv = torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach(), robust


def pgd_attack(
    model: nn.Module,
    images: Any,
    labels: Any,
    eps: float = TEST_PGD["eps"],
    steps: int = TEST_PGD["steps"],
    step_size: float = TEST_PGD["step_size"],
    seed: int = 0,
    batch_size: int = 512,
) -> Tensor:
    """Adversarial copies of ``images``: within ``eps`` of them in L∞ and inside [0, 1], found
    by ``steps`` signed-gradient steps on the cross-entropy from a uniform random start (CPU
    generator seeded with ``seed``). Usable for adversarial training as well as evaluation."""
    return _run(model, images, labels, eps, steps, step_size, seed, batch_size)[0]


def pgd_accuracy(
    model: nn.Module,
    images: Any,
    labels: Any,
    eps: float = TEST_PGD["eps"],
    steps: int = TEST_PGD["steps"],
    step_size: float = TEST_PGD["step_size"],
    seed: int = 0,
    batch_size: int = 512,
) -> float:
    """Accuracy under an L∞ PGD attack: the share of samples the model gets right on the clean
    image and on every iterate of the attack. ``eps=0`` gives the clean accuracy."""
    return float(_run(model, images, labels, eps, steps, step_size, seed, batch_size)[1].mean())


def _run(
    model: nn.Module,
    images: Any,
    labels: Any,
    eps: float,
    steps: int,
    step_size: float,
    seed: int,
    batch_size: int,
) -> tuple[Tensor, Tensor]:
    eps, steps, step_size, seed = _check(eps, steps, step_size, seed)
    batch_size = check_int("batch_size", batch_size)
    x = check_images(images)
    y = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    y = y.long()
    if y.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {tuple(y.shape)}.")
    param = next(model.parameters(), None)
    device = x.device if param is None else param.device
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()  # dropout and batch norm would make the attack and the accuracy noisy
    advs, robust = [], []
    try:
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            adv, ok = _pgd(model, xb.to(device), yb.to(device), eps, steps, step_size, generator)
            advs.append(adv.to(x.device))
            robust.append(ok.cpu())
    finally:
        model.train(was_training)
    return torch.cat(advs), torch.cat(robust).float()
