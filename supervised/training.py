"""One small training loop for the supervised modules: epochs, a validation split with early
stopping, seeds, a progress bar and a per-epoch history, with sparsity from the core's one
settings object (:class:`sparse_rl.sparse_nets.SparsitySettings`, the RL side's names).

The loop is the plain one (forward, loss, ``zero_grad``, ``backward``, ``step``); masks and
topology updates ride on the optimizer as everywhere else. What it adds is what every
supervised experiment otherwise rewrites: seeded shuffling, keeping the best-validation weights
*and masks* (a topology update after the best epoch must not leak into the returned model), and
callbacks for measurements taken during training (feature attribution, hard-sample scores).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError, check_choice, check_int, check_number

from .data_pruning import DynamicPruningSampler, IndexedDataset, train_epoch_pruned

#: Tensors ``(inputs, targets)`` sharing their first dimension (numpy arrays are converted,
#: floating ones to torch's default dtype), or a torch ``Dataset`` of ``(input, target)`` pairs.
Data = Sequence[Any] | Dataset
LossFn = Callable[[Tensor, Tensor], Tensor]
OPTIMIZERS = ("adam", "adamw", "sgd")

#: A supervised network's sparsity when a mapping leaves a key out: 80% sparse, ERK, SET.
SUPERVISED_SPARSITY = sn.SparsitySettings(density=0.2, distribution="erk")
DEFAULT_UPDATER = "set"


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean training loss, validation loss and metric (None without a validation
    split), global density of the sparse layers (1.0 when dense), wall-clock seconds, and the
    samples trained on (gradient computations: fewer than the dataset with a pruning sampler)."""

    epoch: int
    train_loss: float
    val_loss: float | None
    val_metric: float | None
    density: float
    seconds: float
    samples: int


@dataclass
class History:
    """What :func:`fit` did. ``best_epoch`` is the epoch whose weights and masks the model holds
    now (the best validation loss, or the last epoch without a validation split).

    ``sparsity`` is the live :class:`sn.Sparsity` (None when dense): it keeps the model sparse if
    training continues and gives ``state_dict()`` for checkpoints; it is left out when the
    history is pickled (its hooks cannot be).
    """

    records: list[EpochRecord]
    best_epoch: int
    stopped_early: bool
    sparsity_stats: sn.SparsityStats | None
    sparsity: sn.Sparsity | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.records)

    def column(self, key: str) -> list[Any]:
        """One field of every epoch, e.g. ``history.column("val_loss")``."""
        if key not in EpochRecord.__dataclass_fields__:
            check_choice("key", key, tuple(EpochRecord.__dataclass_fields__))
        return [getattr(r, key) for r in self.records]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "sparsity": None}


def stopping_updater(
    value: sn.TopologyUpdater | str | Mapping[str, Any],
    total_steps: int,
    *,
    interval: int = 10,
    drop_fraction: float = 0.3,
    schedule: str = "cosine",
    stop_at: float | None = 0.75,
    name: str = "updater",
) -> sn.TopologyUpdater:
    """An updater for a run of known length: names and mappings get these defaults.

    Unlike the RL policies (unknown budget, updates forever), a supervised run knows its length:
    the drop fraction decays (cosine) and updates stop at ``stop_at`` of the planned optimizer
    steps. On a small diffusion pilot, updates that never stopped were far worse than static
    sparsity, and stopping ones beat it (``../shared/SUPERVISED.md`` §8). A mapping's own keys
    win (``end_step: null`` with ``schedule: constant`` updates forever); an instance is used
    as given.
    """
    if isinstance(value, sn.TopologyUpdater):
        return value
    end = None if stop_at is None else max(1, round(stop_at * total_steps))
    defaults = {
        "interval": interval,
        "drop_fraction": drop_fraction,
        "schedule": schedule,
        "end_step": end,
    }
    if isinstance(value, str):
        return sn.updater_from({"name": value, **defaults}, name)
    if isinstance(value, Mapping) and "name" in value:
        return sn.updater_from({**defaults, **value}, name)
    return sn.updater_from(value, name)  # the core's error: what an updater may be


def training_sparsity(
    given: sn.SparsitySettings | Mapping[str, Any] | None,
    total_steps: int,
    *,
    base: sn.SparsitySettings = SUPERVISED_SPARSITY,
    name: str = "sparsity",
    **updater_defaults: Any,
) -> sn.SparsitySettings | None:
    """The settings :func:`fit` applies: None stays dense, settings are used as given, and a
    mapping is laid over ``base`` with its updater (default "set") made by
    :func:`stopping_updater` for ``total_steps`` (``updater_defaults`` go there)."""
    if given is None or isinstance(given, sn.SparsitySettings):
        return given
    if not isinstance(given, Mapping):
        raise ConfigError(
            f"{name}: expected None, sn.SparsitySettings or a mapping of its keys, got {given!r}."
        )
    changes = dict(given)
    changes["updater"] = stopping_updater(
        changes.get("updater", DEFAULT_UPDATER),
        total_steps,
        name=f"{name}.updater",
        **updater_defaults,
    )
    return base.updated(changes, name)


def fit(
    model: nn.Module,
    train_data: Data,
    val_data: Data | None = None,
    loss_fn: LossFn = F.cross_entropy,
    *,
    sampler: DynamicPruningSampler | None = None,
    epochs: int = 100,
    batch_size: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    momentum: float = 0.9,
    patience: int | None = None,
    seed: int = 0,
    sparsity: sn.SparsitySettings | Mapping[str, Any] | None = None,
    metric: Callable[[Tensor, Tensor], float] | None = None,
    augment: Callable[[Tensor], Tensor] | None = None,
    on_batch: Callable[[nn.Module, Tensor, Tensor], None] | None = None,
    on_epoch: Callable[[nn.Module, EpochRecord], None] | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` on ``train_data``; keep the weights and masks of the best validation epoch.

    :param loss_fn: ``loss_fn(model(inputs), targets)``, a mean over the batch; with ``sampler``
        one loss per sample, shape ``(batch,)`` (the default cross-entropy is then taken per
        sample), weighted by the sampler and fed back to it as scores.
    :param sampler: a :class:`DynamicPruningSampler` over ``train_data`` (dynamic data pruning:
        each epoch trains on the share it keeps, :func:`train_epoch_pruned`); give it
        ``epochs=`` equal to ``epochs`` for InfoBatch's annealing. It draws with its own seed.
        The sparse stopping schedule counts the steps the kept shares make.
    :param patience: stop after this many epochs without a lower validation loss (None: run
        all ``epochs``). With ``val_data`` the best epoch's weights, masks and sparsity state are
        restored at the end either way.
    :param optimizer: "adam" (fused on CPU: see docs/core.md, Speed), "adamw" or "sgd" (with
        ``momentum``); ``weight_decay`` is Adam's L2 term or AdamW's decoupled decay.
    :param seed: seeds shuffling, the sparse masks, and torch's global generator *inside* the
        call (dropout, ``augment`` noise); the caller's generator state is restored afterwards.
        The same model initialisation and seed give the same history, weights and masks.
    :param sparsity: None (dense), ``sn.SparsitySettings`` (applied as given) or a mapping of
        its keys laid over 80% sparse, ERK, SET with a stopping schedule
        (:func:`training_sparsity`).
    :param metric: ``metric(val_outputs, val_targets)``, e.g. ``metrics.accuracy``.
    :param augment: applied to each training batch's inputs only (targets and validation
        unchanged), e.g. a denoising autoencoder's input noise.
    :param on_batch: ``on_batch(model, inputs, targets)`` after every optimizer step.
    :param on_epoch: ``on_epoch(model, record)`` after each epoch's validation, before the
        early-stopping decision, with the model holding that epoch's weights.
    :param progress: a tqdm bar over epochs with the latest losses.
    :return: a :class:`History`; the model is left in eval mode.
    """
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    check_number("lr", lr, low=0, low_open=True)
    check_number("weight_decay", weight_decay, low=0)
    check_number("momentum", momentum, low=0, high=1, high_open=True)
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS, ignore_case=True)
    if patience is not None:
        patience = check_int("patience", patience)
    seed = check_int("seed", seed, 0)
    device = _model_device(model)
    train = _as_data(train_data, "train_data")
    val = None if val_data is None else _as_data(val_data, "val_data")
    planned = _planned_steps(_length(train), epochs, batch_size, sampler)
    settings = training_sparsity(sparsity, planned)
    val_loss_fn = loss_fn
    if sampler is not None:
        if loss_fn is F.cross_entropy:
            loss_fn = _per_sample_cross_entropy
        val_loss_fn = _batch_mean(loss_fn)

    forked = [device.index or 0] if device.type == "cuda" else []
    with sn.seeded(seed, devices=forked):
        shuffler = torch.Generator().manual_seed(seed)
        opt = _optimizer(model, optimizer, lr, weight_decay, momentum)
        sparse = None if settings is None else settings.apply(model, opt, seed=seed)
        records: list[EpochRecord] = []
        loader = None if sampler is None else _pruned_loader(train, batch_size, sampler)
        best_loss, best_epoch, best = math.inf, -1, None
        stopped = False
        bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress, leave=False)
        for epoch in bar:
            start = time.perf_counter()
            if loader is not None and sampler is not None:
                sampler.set_epoch(epoch)
                done = train_epoch_pruned(
                    model, opt, loader, sampler, loss_fn, augment=augment, on_batch=on_batch
                )
                train_loss, count = done.loss, done.samples
            else:
                train_loss, count = _train_epoch(
                    model, opt, train, loss_fn, batch_size, shuffler, augment, on_batch
                )
            val_loss, val_metric = (None, None)
            if val is not None:
                val_loss, val_metric = evaluate(model, val, val_loss_fn, batch_size, metric)
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_loss,
                val_loss=val_loss,
                val_metric=val_metric,
                density=1.0 if sparse is None else sparse.stats().density,
                seconds=time.perf_counter() - start,
                samples=count,
            )
            records.append(record)
            if on_epoch is not None:
                on_epoch(model, record)
            shown = math.nan if val_loss is None else val_loss
            bar.set_postfix(train=f"{record.train_loss:.4g}", val=f"{shown:.4g}")
            if val_loss is not None and val_loss < best_loss:  # NaN never improves
                best_loss, best_epoch = val_loss, epoch
                best = _snapshot(model, sparse)
            elif patience is not None and best_epoch >= 0 and epoch - best_epoch >= patience:
                stopped = True
                break
        bar.close()
    if best is not None:
        model.load_state_dict(best[0])
        if sparse is not None:
            sparse.load_state_dict(best[1])
    else:
        best_epoch = len(records) - 1
    model.eval()
    stats = None if sparse is None else sparse.stats()
    return History(records, best_epoch, stopped, stats, sparse)


def _train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    train: Data,
    loss_fn: LossFn,
    batch_size: int,
    shuffler: torch.Generator,
    augment: Callable[[Tensor], Tensor] | None,
    on_batch: Callable[[nn.Module, Tensor, Tensor], None] | None,
) -> tuple[float, int]:
    """One epoch over all of ``train``: (mean training loss, samples)."""
    model.train()
    total, count = 0.0, 0
    for inputs, targets in _batches(train, batch_size, shuffler, _model_device(model)):
        outputs = model(inputs if augment is None else augment(inputs))
        loss = loss_fn(outputs, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(inputs)
        count += len(inputs)
        if on_batch is not None:
            on_batch(model, inputs, targets)
    return total / count, count


def _planned_steps(
    n: int, epochs: int, batch_size: int, sampler: DynamicPruningSampler | None
) -> int:
    """Optimizer steps of the whole run: what a stopping schedule is planned over."""
    if sampler is None:
        return epochs * math.ceil(n / batch_size)
    if not isinstance(sampler, DynamicPruningSampler):
        raise ConfigError(
            f"sampler must be a DynamicPruningSampler, got {type(sampler).__name__}."
        )
    if sampler.n != n:
        raise ConfigError(
            f"sampler: it was made for {sampler.n} samples, train_data has {n}."
        )
    if sampler.epochs is not None and sampler.epochs != epochs:
        raise ConfigError(
            f"sampler: its epochs={sampler.epochs} (when annealing starts) differs from fit's "
            f"epochs={epochs}; make it with epochs={epochs}, or epochs=None for no annealing."
        )
    per_rank = (math.ceil(sampler.kept_count(e) / sampler.num_replicas) for e in range(epochs))
    return sum(math.ceil(k / batch_size) for k in per_rank)


def _pruned_loader(
    train: Data, batch_size: int, sampler: DynamicPruningSampler
) -> DataLoader:
    dataset = train if isinstance(train, Dataset) else TensorDataset(*train)
    return DataLoader(IndexedDataset(dataset), batch_size, sampler=sampler)


def _per_sample_cross_entropy(outputs: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(outputs, targets, reduction="none")


def _batch_mean(loss_fn: LossFn) -> LossFn:
    """A per-sample loss as the batch mean, for validation."""

    def mean_loss(outputs: Tensor, targets: Tensor) -> Tensor:
        return loss_fn(outputs, targets).mean()

    return mean_loss


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Data,
    loss_fn: LossFn,
    batch_size: int = 1024,
    metric: Callable[[Tensor, Tensor], float] | None = None,
) -> tuple[float, float | None]:
    """Mean loss over ``data`` (and ``metric`` on all outputs), in eval mode, without gradients."""
    model.eval()
    data = _as_data(data, "data")
    outputs, targets, total = [], [], 0.0
    for x, y in _batches(data, batch_size, None, _model_device(model)):
        out = model(x)
        total += loss_fn(out, y).item() * len(x)
        if metric is not None:
            outputs.append(out)
            targets.append(y)
    loss = total / _length(data)
    if metric is None:
        return loss, None
    return loss, float(metric(torch.cat(outputs), torch.cat(targets)))


def _snapshot(model: nn.Module, sparse: sn.Sparsity | None) -> tuple[dict[str, Tensor], Any]:
    """Weights and masks (both in the state_dict) and the sparsity state, copied."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, None if sparse is None else sparse.state_dict()


def _optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters.")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    try:
        return kind(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype the fused kernel does not support
        return kind(params, lr=lr, weight_decay=weight_decay)


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return torch.device("cpu") if param is None else param.device


def _as_data(data: Data, name: str) -> Data:
    if isinstance(data, Dataset):
        if len(data) == 0:  # type: ignore[arg-type]
            raise ValueError(f"{name} is empty.")
        return data
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence) or len(data) != 2:
        raise ValueError(f"{name} must be (inputs, targets) or a torch Dataset, got {type(data)}.")
    tensors = tuple(_tensor(t) for t in data)
    if len(tensors[0]) != len(tensors[1]):
        raise ValueError(
            f"{name}: inputs have {len(tensors[0])} samples, targets {len(tensors[1])}."
        )
    if len(tensors[0]) == 0:
        raise ValueError(f"{name} is empty.")
    return tensors


def _tensor(values: Any) -> Tensor:
    if isinstance(values, Tensor):
        return values
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.floating):
        return torch.tensor(array, dtype=torch.get_default_dtype())
    return torch.tensor(array)


def _length(data: Data) -> int:
    return len(data) if isinstance(data, Dataset) else len(data[0])  # type: ignore[arg-type]


def _batches(
    data: Data, batch_size: int, shuffler: torch.Generator | None, device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """Minibatches in a seeded order (``shuffler``) or in order (None), on ``device``."""
    if isinstance(data, Dataset):
        loader = DataLoader(data, batch_size, shuffle=shuffler is not None, generator=shuffler)
        for x, y in loader:
            yield x.to(device), y.to(device)
        return
    inputs, targets = data
    n = len(inputs)
    order = torch.arange(n) if shuffler is None else torch.randperm(n, generator=shuffler)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield inputs[index].to(device), targets[index].to(device)
