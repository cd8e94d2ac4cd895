"""Denoising diffusion (DDPM, Ho et al. 2020) trained sparse-to-sparse: ε-prediction with a
linear or cosine β schedule, DDPM and DDIM sampling, and EMA weights that follow the masks.

Sparse-to-sparse diffusion (TMLR 2025, arXiv 2504.21380) trains the denoiser sparse from
scratch with a fixed random mask (Static-DM), SET (MagRan-DM) or RigL (RigL-DM). Here that is
the core's one call: :func:`train_diffusion` hands :class:`Diffusion` to the supervised
:func:`~sparse_rl.supervised.fit` loop (its forward returns the ε-regression pair, so ``fit``'s
plain ``loss_fn(model(x), y)`` step is the DDPM step) with sparsity from
:class:`sn.SparsitySettings`; input, time-embedding and output layers stay dense
(:data:`~sparse_rl.supervised.denoisers.DENSE_LAYERS`).

EMA weights follow the online masks as RL target networks do: after every update the EMA
weight is exactly zero wherever the online mask is, so the averaged model never uses a
connection the online model has dropped, and a grown one fades in from zero.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_choice, check_int, check_number

from .denoisers import DENSE_LAYERS
from .training import History, fit, training_sparsity

#: β schedules: "linear" (DDPM's 1e-4 to 0.02 over 1000 steps, rescaled by 1000 / T so any T
#: ends as noisy; every β at most 0.999) and "cosine" (Nichol & Dhariwal 2021:
#: ᾱ_t = cos²((t/T + s)/(1 + s)·π/2)).
BETA_SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")

#: What a sparsity mapping given to :func:`train_diffusion` is laid over: half the hidden
#: weights (the paper's safe range is 25-50% sparsity), ERK, input / time / output layers dense.
#: The updater (SET unless named) gets ``fit``'s stopping schedule (:func:`diffusion_sparsity`).
DIFFUSION_SPARSITY = sn.SparsitySettings(density=0.5, distribution="erk", exclude=DENSE_LAYERS)


def beta_schedule(kind: str = "linear", timesteps: int = 1000) -> Tensor:
    """β_1 … β_T (float64) of a ``kind`` schedule over ``timesteps`` steps."""
    kind = check_choice("schedule", kind, BETA_SCHEDULES, ignore_case=True)
    steps = check_int("timesteps", timesteps, 2)
    if kind == "linear":
        scale = 1000 / steps
        betas = torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
        return betas.clamp(max=0.999)
    s = 0.008
    grid = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
    alpha_bar = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


class Diffusion(nn.Module):
    """A denoiser and its noise schedule. ``forward(x0)`` draws ``t`` and ε, noises ``x0`` and
    returns ``stack([ε̂, ε])``: what :meth:`loss` reads, so ``fit`` trains it unchanged.

    :param denoiser: ``denoiser(x_t, t) -> ε̂`` (an :class:`MLPDenoiser`, :class:`TinyUNet` or
        any module with that signature).
    :param timesteps: T, the number of noise levels.
    :param schedule: "linear" or "cosine" (:func:`beta_schedule`).
    :param shape: one sample's shape; default the denoiser's ``sample_shape``.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        timesteps: int = 1000,
        schedule: str = "linear",
        shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        shape = shape if shape is not None else getattr(denoiser, "sample_shape", None)
        if shape is None:
            raise ValueError(
                f"shape: {type(denoiser).__name__} has no sample_shape; pass shape=(...) for one "
                "sample."
            )
        self.denoiser = denoiser
        self.shape = tuple(int(s) for s in shape)
        self.schedule = check_choice("schedule", schedule, BETA_SCHEDULES, ignore_case=True)
        betas = beta_schedule(self.schedule, timesteps)
        self.register_buffer("betas", betas.float())
        self.register_buffer("alpha_bars", torch.cumprod(1 - betas, 0).float())

    @property
    def timesteps(self) -> int:
        return len(self.betas)

    def noised(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · ε."""
        ab = self.alpha_bars[t].view(-1, *[1] * (x0.dim() - 1))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def forward(self, x0: Tensor) -> Tensor:
        t = torch.randint(0, self.timesteps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        return torch.stack([self.denoiser(self.noised(x0, t, noise), t), noise])

    @staticmethod
    def loss(outputs: Tensor, targets: Tensor | None = None) -> Tensor:
        """Mean squared error of ε̂ against ε (``targets`` is unused): ``fit``'s ``loss_fn``."""
        return F.mse_loss(outputs[0], outputs[1])

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        sampler: str = "ddpm",
        steps: int | None = None,
        eta: float = 0.0,
        clip: float | None = None,
        denoiser: nn.Module | None = None,
    ) -> Tensor:
        """``n`` samples drawn from noise made by a generator seeded with ``seed``.

        :param sampler: "ddpm" (ancestral, all T steps) or "ddim" (Song et al. 2021).
        :param steps: DDIM's steps, evenly spaced over T (default T); DDPM takes all T.
        :param eta: DDIM's noise (0: deterministic, 1: DDPM-like).
        :param clip: clip the predicted x0 to ``[-clip, clip]`` each step (images in [-1, 1]).
        :param denoiser: the network to sample with, e.g. ``ema.module``; default the online one.
        """
        n = check_int("n", n)
        sampler = check_choice("sampler", sampler, SAMPLERS, ignore_case=True)
        check_number("eta", eta, low=0)
        if clip is not None:
            check_number("clip", clip, low=0, low_open=True)
        net = self.denoiser if denoiser is None else denoiser
        if sampler == "ddpm" and steps is not None and steps != self.timesteps:
            raise ValueError(
                f"steps={steps}: the DDPM sampler takes all {self.timesteps} steps; use "
                "sampler='ddim' for fewer."
            )
        count = check_int("steps", self.timesteps if steps is None else steps)
        if count > self.timesteps:
            raise ValueError(f"steps={count} is more than the {self.timesteps} timesteps.")
        generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
        device = self.betas.device

        def noise() -> Tensor:  # drawn on the CPU: the same noise on every device
            return torch.randn((n, *self.shape), generator=generator).to(device)

        grid = torch.linspace(0, self.timesteps - 1, count).round().long().tolist()
        was_training = net.training
        net.eval()
        try:
            x = noise()
            for i in reversed(range(count)):
                t, prev = grid[i], grid[i - 1] if i > 0 else -1
                ab = self.alpha_bars[t]
                ab_prev = self.alpha_bars[prev] if prev >= 0 else ab.new_tensor(1.0)
                eps = net(x, torch.full((n,), t, device=device, dtype=torch.long))
                x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
                if clip is not None:
                    x0 = x0.clamp(-clip, clip)
                    eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
                if sampler == "ddpm":
                    beta = 1 - ab / ab_prev
                    sigma = (beta * (1 - ab_prev) / (1 - ab)).sqrt()
                    if clip is None:  # the ε form: no division by √ᾱ_t
                        mean = (x - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()
                    else:  # the posterior mean from the clipped x0
                        mean = ab_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - ab_prev) * x
                        mean = mean / (1 - ab)
                else:
                    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
                    mean = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
                x = mean + sigma * noise() if prev >= 0 else mean
        finally:
            net.train(was_training)
        return x


class EMA:
    """An exponential moving average of a module's parameters that keeps the module's masks.

    ``update(online)`` after each optimizer step: θ̄ ← d·θ̄ + (1 − d)·θ for every parameter,
    buffers copied (the core's ``weight_mask`` included, added here when the online module got
    one), then every masked EMA weight multiplied by its mask. An EMA weight is then exactly
    zero wherever the online mask is zero, after every topology update; a grown connection
    starts from zero and fades in.

    :param module: the online module; the EMA starts as a copy of it (no gradients, eval mode).
    :param decay: d, the share of the average kept per update.
    :param warmup: use ``min(decay, (1 + k) / (10 + k))`` at update k, so a short run's
        average is not dominated by the initial weights.
    """

    def __init__(self, module: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        self.decay = float(check_number("decay", decay, low=0, high=1, high_open=True))
        self.warmup = bool(warmup)
        self.updates = 0
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    def decay_at(self, update: int) -> float:
        """The decay used at update number ``update`` (0-based)."""
        return min(self.decay, (1 + update) / (10 + update)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, online: nn.Module) -> None:
        """Move the average towards ``online`` (a module of the same structure) and follow its
        masks."""
        weight = 1.0 - self.decay_at(self.updates)
        self.updates += 1
        mine = dict(self.module.named_parameters())
        theirs = dict(online.named_parameters())
        if mine.keys() != theirs.keys():
            raise ValueError(
                f"online has parameters {sorted(theirs)[:4]}..., the EMA {sorted(mine)[:4]}...: "
                "update the EMA from the module it was made from."
            )
        names = list(mine)
        torch._foreach_lerp_([mine[k] for k in names], [theirs[k].detach() for k in names], weight)
        masked, masks = [], []
        for name, module in online.named_modules():
            copy_ = self.module.get_submodule(name)
            for key, buffer in module._buffers.items():
                if buffer is None:
                    continue
                if key not in copy_._buffers or copy_._buffers[key] is None:
                    copy_.register_buffer(key, buffer.detach().clone())
                else:
                    copy_._buffers[key].copy_(buffer)
            if sn.MASK in copy_._buffers:
                masked.append(copy_.weight)
                masks.append(copy_._buffers[sn.MASK])
        if masked:
            torch._foreach_mul_(masked, masks)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, buffer in state["module"].items():  # masks the EMA has not seen yet
            owner, _, leaf = key.rpartition(".")
            holder = self.module.get_submodule(owner)
            if leaf == sn.MASK and leaf not in holder._buffers:
                holder.register_buffer(leaf, buffer.clone())
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


@dataclass
class DiffusionTraining:
    """What :func:`train_diffusion` did: ``fit``'s history (``history.sparsity`` is the live
    :class:`sn.Sparsity`, None when dense), the EMA (None without one), the online denoiser and
    the wall-clock seconds of training."""

    history: History
    ema: EMA | None
    online: nn.Module
    seconds: float

    @property
    def denoiser(self) -> nn.Module:
        """The network to sample with: the EMA's when there is one."""
        return self.online if self.ema is None else self.ema.module


def diffusion_sparsity(
    given: sn.SparsitySettings | Mapping[str, Any] | None, total_steps: int
) -> sn.SparsitySettings | None:
    """The settings :func:`train_diffusion` applies: None stays dense, settings are used as
    given, a mapping is laid over :data:`DIFFUSION_SPARSITY` with ``fit``'s stopping updater
    (:func:`~sparse_rl.supervised.stopping_updater`: an update every 10 steps, drop fraction 0.3
    unless given, cosine-decayed to 0 at 75% of ``total_steps``, no updates after)."""
    return training_sparsity(given, total_steps, base=DIFFUSION_SPARSITY)


def train_diffusion(
    diffusion: Diffusion,
    data: Tensor | np.ndarray,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    sparsity: sn.SparsitySettings | Mapping[str, Any] | None = None,
    ema_decay: float | None = 0.999,
    progress: bool = False,
) -> DiffusionTraining:
    """Train ``diffusion`` on ``data`` ``(n, *diffusion.shape)`` with the DDPM loss, through
    :func:`~sparse_rl.supervised.fit` (Adam, seeded shuffling and noise).

    :param sparsity: None (dense), ``sn.SparsitySettings`` (as given) or a mapping of its keys,
        e.g. ``{"density": 0.1, "updater": {"name": "rigl", "drop_fraction": 0.05}}``, laid
        over :data:`DIFFUSION_SPARSITY` (:func:`diffusion_sparsity`).
    :param ema_decay: decay of the mask-following :class:`EMA` of the denoiser, updated after
        every optimizer step (None: no EMA).
    """
    if not isinstance(diffusion, Diffusion):
        raise TypeError(f"diffusion must be a Diffusion, got {type(diffusion).__name__}.")
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, Tensor) else data)
    x = x.to(torch.get_default_dtype())
    if x.dim() < 1 or tuple(x.shape[1:]) != diffusion.shape or len(x) == 0:
        raise ValueError(
            f"data must have shape (n, {', '.join(map(str, diffusion.shape))}) for this "
            f"diffusion, got {tuple(x.shape)}."
        )
    epochs, batch_size = check_int("epochs", epochs), check_int("batch_size", batch_size)
    total = epochs * math.ceil(len(x) / batch_size)
    settings = diffusion_sparsity(sparsity, total)
    ema = None
    if ema_decay is not None:
        ema = EMA(diffusion.denoiser, ema_decay)

    def follow(model: nn.Module, *_: Tensor) -> None:
        if ema is not None:
            ema.update(model.denoiser)  # type: ignore[arg-type]

    start = time.perf_counter()
    history = fit(
        diffusion,
        (x, torch.zeros(len(x))),
        None,
        Diffusion.loss,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        sparsity=settings,
        on_batch=follow,
        progress=progress,
    )
    return DiffusionTraining(history, ema, diffusion.denoiser, time.perf_counter() - start)
