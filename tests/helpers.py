"""Small models, training loops and invariant checks shared by the test modules."""

from __future__ import annotations

import copy
import itertools
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn


def mlp(sizes: Iterable[int], seed: int = 0) -> nn.Sequential:
    """A ReLU MLP with the given layer widths, initialised from ``seed``."""
    sizes = list(sizes)
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def mask_buffers(model: nn.Module) -> dict[str, Tensor]:
    """Every ``weight_mask`` buffer of ``model`` as a boolean tensor (True = active), by layer."""
    return {
        name: getattr(m, sn.MASK) != 0 for name, m in model.named_modules() if sn.MASK in m._buffers
    }


def snapshot(masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Boolean copies of ``masks`` that later updates cannot change."""
    return {name: (m != 0).clone() for name, m in masks.items()}


def weight_shaped_state(optimizer: torch.optim.Optimizer, weight: Tensor) -> dict[str, Tensor]:
    """Optimizer-state tensors of ``weight`` shaped like it (moments, momentum buffers)."""
    state = optimizer.state.get(weight, {})
    return {k: v for k, v in state.items() if isinstance(v, Tensor) and v.shape == weight.shape}


def assert_sparse(
    model: nn.Module,
    sparsity: sn.Sparsity,
    optimizer: torch.optim.Optimizer | None,
    expected: Mapping[str, int],
) -> None:
    """Exact active counts, buffer == reported mask, zero inactive weights and optimizer state."""
    masks = sparsity.masks
    assert set(masks) == set(expected)
    buffers = mask_buffers(model)
    for name, mask in masks.items():
        weight = model.get_submodule(name).weight
        assert mask.dtype == torch.bool and mask.shape == weight.shape
        assert torch.equal(buffers[name], mask), f"{name}: buffer and Sparsity.masks disagree"
        assert int(mask.sum()) == expected[name], f"{name}: {int(mask.sum())} != {expected[name]}"
        assert torch.all(weight.detach()[~mask] == 0), f"{name}: inactive weights not zero"
        if optimizer is not None:
            for key, value in weight_shaped_state(optimizer, weight).items():
                assert torch.all(value[~mask] == 0), f"{name}: state {key!r} non-zero when inactive"


def assert_inactive_grads_zero(model: nn.Module, sparsity: sn.Sparsity) -> None:
    """Gradients of inactive weights are exactly zero (the gradient hook did its job)."""
    for name, mask in sparsity.masks.items():
        grad = model.get_submodule(name).weight.grad
        assert grad is not None, f"{name}: no gradient"
        assert torch.all(grad[~mask] == 0), f"{name}: inactive gradient non-zero"


def regression_batches(
    n: int, inputs: int, outputs: int, batch: int = 16, seed: int = 0
) -> list[tuple[Tensor, Tensor]]:
    """``n`` random (x, y) batches drawn from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, inputs, generator=gen), torch.randn(batch, outputs, generator=gen))
        for _ in range(n)
    ]


def train(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[tuple[Tensor, Tensor]]
) -> None:
    """The user's unchanged training loop: MSE loss, zero_grad, backward, step."""
    for x, y in batches:
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def write_image(path: Path, rgb: np.ndarray) -> Path:
    """One RGB image as png or jpg (by suffix), encoded with PyAV (a core dependency)."""
    codec, pix_fmt = ("png", "rgb24") if path.suffix == ".png" else ("mjpeg", "yuvj444p")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream(codec, rate=1)
        stream.height, stream.width = rgb.shape[:2]
        stream.pix_fmt = pix_fmt
        container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


# -- run configs ---------------------------------------------------------------------------------

#: The smallest valid run config.
CONFIG_BASE: dict[str, Any] = {"algo": "sac", "env": {"id": "Pendulum-v1"}, "steps": 1000}

#: A 400-step SAC run that evaluates and checkpoints at 200 and 400 (a few seconds).
SAC_TINY: dict[str, Any] = {
    "algo": "sac",
    "env": {"id": "Pendulum-v1"},
    "steps": 400,
    "threads": 1,
    "algo_kwargs": {"learning_starts": 100, "batch_size": 32, "buffer_size": 1000},
    "policy_kwargs": {"net_arch": [16, 16]},
    "eval": {"every": 200, "episodes": 1},
    "checkpoint": {"every": 200},
    "log_formats": ["csv"],
}

#: Changes that make SAC_TINY an R2N run with a feedback session every 100 steps.
R2N_TINY = {
    "algo": "r2n",
    "env__noise_fraction": 0.75,
    "algo_kwargs": {"learning_starts": 50, "batch_size": 32},
    "preference": {"reward_hidden": [16, 16], "reward_steps": 5, "reward_batch_size": 16,
                   "segment_length": 10, "labels_per_session": 8, "session_every": 100,
                   "budget": 48, "unsupervised_steps": 50},
    "eval__every": 150,
    "checkpoint__every": 150,
}  # fmt: skip


def changed(base: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with each ``a__b=v`` setting ``data["a"]["b"] = v``."""
    data = copy.deepcopy(dict(base))
    for key, value in changes.items():
        *parents, last = key.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def error_of(data: Mapping[str, Any]) -> str:
    """The ConfigError message ``data`` gets (the test fails when it gets none)."""
    import pytest

    from sparse_rl.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    return str(info.value)


#: A PbRL loop small enough for unit tests: 8 labels a session, 5 reward steps.
PBRL_SMALL: dict[str, Any] = {
    "reward_hidden": (16, 16),
    "reward_steps": 5,
    "reward_batch_size": 16,
    "segment_length": 10,
    "labels_per_session": 8,
    "session_every": 100,
    "budget": 24,
    "unsupervised_steps": 100,
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gloo_rank(
    rank: int, worker: Callable[[int, str], None], out: str, address: tuple[str, str]
) -> None:
    """A rank's entry point: the group's address goes into its own environment (a forkserver's
    children inherit the server's environment, not the test's)."""
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = address
    worker(rank, out)


def run_gloo_workers(
    worker: Callable[[int, str], None],
    out: Path,
    world: int,
    timeout: float = 90,
) -> list[Any]:
    """Run ``worker(rank, str(out))`` in ``world`` processes that join one gloo group on a free
    local port; each worker saves its record to ``out / f"rank{rank}.pt"``, returned in rank
    order. Fails the test when a worker hangs past ``timeout`` seconds.

    The ranks fork from a forkserver that imported torch once for the whole session: spawned
    ranks would import it again each (about 2 s of CPU per rank per test)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch.distributed", "sparse_rl.sparse_nets"])
    address = ("127.0.0.1", str(_free_port()))
    ranks = mp.start_processes(
        _gloo_rank,
        args=(worker, str(out), address),
        nprocs=world,
        join=False,
        start_method="forkserver",
    )
    deadline = time.monotonic() + timeout
    try:
        while not ranks.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"distributed workers did not finish within {timeout:.0f} s")
    finally:
        for process in ranks.processes:
            if process.is_alive():
                process.kill()
    return [torch.load(out / f"rank{r}.pt") for r in range(world)]
