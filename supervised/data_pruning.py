"""Dynamic data pruning: re-score every training sample during training and train each epoch on
the subset a policy keeps (DDP-ASR, Interspeech 2024; InfoBatch, ICLR 2024).

:class:`DynamicPruningSampler` is an ordinary ``torch.utils.data.Sampler[int]``: it goes into a
``DataLoader`` like ``DistributedSampler`` does, so nothing is monkeypatched. The indices travel
with the batch through :class:`IndexedDataset`; the training loop hands the per-sample losses
back with ``update`` and weights them with ``weights`` (:func:`train_epoch_pruned` is that loop,
one epoch of it). :func:`drop_timesteps` is DDP-ASR's finer granularity: time segments dropped
inside each sequence.

Rules, written once here and in ``docs/data_pruning.md``:

- ``keep`` is the share of the samples drawn per epoch whatever the policy: ``len(sampler)`` is
  ``keep × n`` rounded half up (at least 1), per rank when distributed (padded like
  ``DistributedSampler``); annealed epochs draw all ``n``.
- An unscored sample has score +inf: it counts as the hardest and as above the mean, so it is
  kept first (every sample, in the first epoch, is drawn as by ``random`` among the unscored).
- Every draw is a function of (seed, epoch, score table): the same on every rank, and again
  after ``load_state_dict``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from sparse_rl.sparse_nets.distributed import is_distributed
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from sparse_rl.validation import ConfigError, check_choice, check_fraction, check_int

#: The policies; the rules are in :class:`DynamicPruningSampler`'s docstring.
POLICIES = ("infobatch", "random", "hardest", "epsilon_greedy")
#: ``score`` values other than a callable.
SCORES = ("loss",)
ScoreFn = Callable[[Tensor], Any]


def subset_size(n: int, fraction: float) -> int:
    """``fraction`` of ``n`` rounded half up, at least 1: the hardest and the random subsets of
    one fraction have the same size."""
    n = check_int("n", n)
    return max(1, int(check_fraction("fraction", fraction) * n + 0.5))


@dataclass(frozen=True)
class PruningStats:
    """One epoch's draw: ``kept`` samples of ``size`` (all ranks together, before padding),
    ``pruned_share = 1 - kept / size``, the mean of the known scores (NaN before any) and how
    many samples have one, and whether this epoch uses all data (annealing or ``keep=1``)."""

    epoch: int
    size: int
    kept: int
    pruned_share: float
    mean_score: float
    scored: int
    full_data: bool


@dataclass(frozen=True)
class _Plan:
    """What one epoch draws: the kept indices in visiting order and every sample's weight."""

    epoch: int
    order: np.ndarray
    weights: np.ndarray


class DynamicPruningSampler(Sampler[int]):
    """Each epoch, a ``keep`` share of the dataset chosen from every sample's latest score.

    Policies (``k`` = ``keep × n`` rounded half up; weights are 1 unless said otherwise):

    - ``"infobatch"``: samples scoring below the mean of the known scores are the pruned class;
      the rest (unscored ones included) are always kept and the pruned class fills the
      remaining ``k - n_high`` places at random, so each is kept with probability ``p = (k -
      n_high) / n_low`` and weighted ``1 / p``: the weights sum to ``n`` and the weighted loss
      over an epoch is an unbiased estimate of the full-data loss. If more than ``k`` samples
      are at or above the mean, ``k`` of them are drawn at random (weight ``n_high / k``) and
      the pruned class is skipped that epoch: the one case where the estimate leaves out the
      low-score samples.
    - ``"random"``: a seeded random ``k`` samples, whatever the scores.
    - ``"hardest"``: the ``k`` highest scores (ties broken at random, so equal or unscored
      samples do not go by index order).
    - ``"epsilon_greedy"``: the ``k - round(epsilon × k)`` highest scores, and
      ``round(epsilon × k)`` drawn at random from all the others: samples that left the hardest
      set come back now and then and get a fresh score.

    :param dataset_or_length: the dataset (anything with ``len``) or its length ``n``.
    :param keep: share of the samples drawn per epoch, in (0, 1].
    :param anneal: with ``epochs``, the last ``anneal`` share of the epochs use all data
        (InfoBatch's annealing): every epoch from ``ceil((1 - anneal) × epochs)`` on.
    :param epochs: the planned number of epochs; None (default) never anneals.
    :param score: ``"loss"``: the training loop passes each batch's per-sample losses (or any
        score, higher = keep first) to :meth:`update`. Or a callable ``(indices) -> scores``,
        called by :meth:`set_epoch` with ``torch.arange(n)`` before each draw that needs scores
        (not for ``random``, not in annealed epochs) and returning ``n`` finite scores that
        replace the table; when distributed, rank 0's values are sent to every rank.
        :meth:`update` works with both: a sample's score is its latest value.
    :param epsilon: the random share of ``"epsilon_greedy"``, in [0, 1].
    :param seed: with the epoch, seeds every draw: the same on every rank and after a resume.
    :param shuffle: visit the kept samples in a seeded random order (else by index).
    :param num_replicas, rank: the ranks to shard over, by default from ``torch.distributed``
        when its process group is initialised (else 1 and 0). All ranks draw the same kept set
        and take every ``num_replicas``-th index of it, padded by repeating its start to equal
        length. :meth:`update` all-gathers the batches' scores when a process group with more
        than one rank is initialised, so it is a collective call: every rank calls it once per
        batch. Without a process group each rank's sampler must be given every rank's scores.
    """

    def __init__(
        self,
        dataset_or_length: Sized | int,
        keep: float = 0.7,
        policy: str = "infobatch",
        *,
        anneal: float = 0.125,
        epochs: int | None = None,
        score: str | ScoreFn = "loss",
        epsilon: float = 0.1,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if isinstance(dataset_or_length, Sized) and not isinstance(dataset_or_length, str):
            n = len(dataset_or_length)
        else:
            n = dataset_or_length
        self.n = check_int("dataset_or_length", n)
        self.keep = check_fraction("keep", keep)
        self.policy = check_choice("policy", policy, POLICIES)
        self.anneal = check_fraction("anneal", anneal, low_open=False, high_closed=False)
        self.epochs = None if epochs is None else check_int("epochs", epochs)
        if not callable(score) and (not isinstance(score, str) or score not in SCORES):
            raise ConfigError(
                f"score: {score!r} is not valid; choose one of {list(SCORES)} "
                "or a callable (indices) -> scores."
            )
        self.score = score
        self.epsilon = check_fraction("epsilon", epsilon, low_open=False)
        self.seed = check_int("seed", seed, 0)
        if not isinstance(shuffle, bool):
            raise ConfigError(f"shuffle must be True or False, got {shuffle!r}.")
        self.shuffle = shuffle
        group = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if group else 1
        self.num_replicas = check_int("num_replicas", num_replicas)
        if rank is None:
            rank = dist.get_rank() if group else 0
        integer = isinstance(rank, (int, np.integer)) and not isinstance(rank, bool)
        if not integer or not 0 <= rank < self.num_replicas:
            raise ConfigError(
                f"rank: {rank!r} is not valid; choose an integer in [0, {self.num_replicas - 1}]."
            )
        self.rank = int(rank)
        self.epoch = 0
        self.scores = np.full(self.n, np.inf)  # +inf: not scored yet, kept first
        self._plan: _Plan | None = None

    # -- the epoch's draw ---------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Draw the kept set of ``epoch`` from the scores known now; call it on every rank
        before each epoch (the draw stays fixed while ``update`` changes scores)."""
        self.epoch = check_int("epoch", epoch, 0)
        if callable(self.score) and self.policy != "random" and not self.full_data(self.epoch):
            self._score_all()
        self._plan = self._draw()

    def full_data(self, epoch: int) -> bool:
        """Whether ``epoch`` uses all data: ``keep == 1`` or an annealed epoch."""
        if self.keep == 1.0:
            return True
        if self.epochs is None or self.anneal == 0:
            return False
        return epoch >= math.ceil((1 - self.anneal) * self.epochs - 1e-9)

    def kept_count(self, epoch: int | None = None) -> int:
        """Samples drawn in ``epoch`` (default: this one), all ranks together (before padding):
        known ahead of the draw, so a loop can plan its steps (``fit``'s stopping schedule)."""
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, 0)
        return self.n if self.full_data(epoch) else subset_size(self.n, self.keep)

    def grow(self, n: int) -> None:
        """The dataset grew to ``n`` samples, the new ones appended at the end (labels that keep
        coming, a replay buffer): they start unscored, so they are kept first. The next draw is
        made by :meth:`set_epoch`."""
        n = check_int("n", n)
        if n < self.n:
            raise ValueError(f"n must be at least the current size {self.n}, got {n}: a "
                             "dataset only grows (make a new sampler for a new one).")  # fmt: skip
        if n > self.n:
            self.scores = np.concatenate([self.scores, np.full(n - self.n, np.inf)])
            self.n = n
            self._plan = None

    def __len__(self) -> int:
        return math.ceil(self.kept_count() / self.num_replicas)

    def __iter__(self) -> Iterator[int]:
        order = self._current().order
        total = len(self) * self.num_replicas
        if total > len(order):  # pad by repeating the start, as DistributedSampler does
            order = np.resize(order, total)
        return iter(order[self.rank :: self.num_replicas].tolist())

    def weights(self, indices: Any) -> Tensor:
        """Per-sample loss weights for ``indices``: ``1 / p`` for the kept samples of a class
        kept with probability ``p`` under ``"infobatch"``, 1 otherwise. Multiply the per-sample
        losses by them before the mean."""
        index = _indices(indices, self.n)
        device = indices.device if isinstance(indices, Tensor) else None
        values = self._current().weights[index]
        return torch.as_tensor(values, dtype=torch.get_default_dtype(), device=device)

    def _current(self) -> _Plan:
        if self._plan is None or self._plan.epoch != self.epoch:
            self.set_epoch(self.epoch)
        assert self._plan is not None
        return self._plan

    def _draw(self) -> _Plan:
        rng = np.random.default_rng([self.seed, self.epoch])
        n, k = self.n, self.kept_count()
        weights = np.ones(n)
        if k == n:
            kept = np.arange(n)
        elif self.policy == "random":
            kept = rng.choice(n, k, replace=False)
        elif self.policy == "infobatch":
            kept = self._infobatch(rng, k, weights)
        else:
            ranked = self._hardest_first(rng)
            greedy = k if self.policy == "hardest" else k - int(self.epsilon * k + 0.5)
            rest = rng.choice(ranked[greedy:], k - greedy, replace=False)
            kept = np.concatenate([ranked[:greedy], rest])
        order = rng.permutation(kept) if self.shuffle else np.sort(kept)
        return _Plan(self.epoch, order.astype(np.int64), weights)

    def _infobatch(self, rng: np.random.Generator, k: int, weights: np.ndarray) -> np.ndarray:
        """Above-mean (and unscored) samples first; the rest at random, weighted 1/p."""
        known = np.isfinite(self.scores)
        low = known & (self.scores < (self.scores[known].mean() if known.any() else 0.0))
        high_ix, low_ix = np.flatnonzero(~low), np.flatnonzero(low)
        if len(high_ix) >= k:
            kept = rng.choice(high_ix, k, replace=False)
            weights[kept] = len(high_ix) / k
            return kept
        drawn = rng.choice(low_ix, k - len(high_ix), replace=False)
        weights[drawn] = len(low_ix) / len(drawn)
        return np.concatenate([high_ix, drawn])

    def _hardest_first(self, rng: np.random.Generator) -> np.ndarray:
        """All indices by descending score, ties (unscored ones too) in a seeded random order."""
        shuffled = rng.permutation(self.n)
        return shuffled[np.argsort(-self.scores[shuffled], kind="stable")]

    def _score_all(self) -> None:
        values = self.score(torch.arange(self.n))  # type: ignore[operator]
        scores = _finite(values, self.n, "score(indices)")
        if is_distributed():
            buf = torch.as_tensor(scores)
            dist.broadcast(buf, src=0)
            scores = buf.numpy()
        self.scores = scores.copy()

    # -- scores -------------------------------------------------------------------------------

    def update(self, indices: Any, per_sample_scores: Any) -> None:
        """Record the latest score of each sample of a batch (a later value replaces an earlier
        one). Collective when distributed: the batches of all ranks are gathered and applied in
        rank order, so every rank holds the same table."""
        index = _indices(indices, self.n)
        scores = _finite(per_sample_scores, len(index), "per_sample_scores")
        if is_distributed():
            index, scores = _all_gather(index, scores)
        self.scores[index] = scores

    def stats(self) -> PruningStats:
        """This epoch's draw and the score table, for logs."""
        known = np.isfinite(self.scores)
        kept = self.kept_count()
        return PruningStats(
            epoch=self.epoch,
            size=self.n,
            kept=kept,
            pruned_share=(self.n - kept) / self.n,
            mean_score=float(self.scores[known].mean()) if known.any() else math.nan,
            scored=int(known.sum()),
            full_data=self.full_data(self.epoch),
        )

    def state_dict(self) -> dict[str, Any]:
        """Scores, epoch, seed and this epoch's draw: a loaded sampler repeats the current
        epoch's order (skipping the batches already done is the caller's) and every later one."""
        plan = self._plan
        return {
            "n": self.n,
            "policy": self.policy,
            "keep": self.keep,
            "seed": self.seed,
            "epoch": self.epoch,
            "scores": torch.from_numpy(self.scores.copy()),
            "plan": None
            if plan is None
            else {
                "epoch": plan.epoch,
                "order": torch.from_numpy(plan.order.copy()),
                "weights": torch.from_numpy(plan.weights.copy()),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s scores, epoch, seed and draw; refuses a state made with
        another dataset size, policy or keep (its draws would not be this sampler's)."""
        for key in ("n", "policy", "keep"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"state_dict: {key} is {state[key]!r} there but {getattr(self, key)!r} here; "
                    "load it into a sampler made with the same dataset, policy and keep."
                )
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.scores = state["scores"].double().numpy().copy()
        plan = state["plan"]
        self._plan = (
            None
            if plan is None
            else _Plan(
                int(plan["epoch"]), plan["order"].numpy().copy(), plan["weights"].numpy().copy()
            )
        )


def _indices(indices: Any, n: int) -> np.ndarray:
    if isinstance(indices, Tensor):
        indices = indices.detach().cpu().numpy()
    index = np.asarray(indices)
    if index.ndim != 1 or not (np.issubdtype(index.dtype, np.integer) or index.size == 0):
        raise ValueError(f"indices must be a 1-D sequence of integers, got {index.dtype} "
                         f"with shape {index.shape}.")  # fmt: skip
    if index.size and (index.min() < 0 or index.max() >= n):
        raise ValueError(f"indices must lie in [0, {n - 1}], got {index.min()}..{index.max()}.")
    return index.astype(np.int64)


def _finite(values: Any, n: int, name: str) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().double().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)][:3]}.")
    return array


def _all_gather(index: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every rank's (indices, scores) concatenated in rank order; batches may differ in size."""
    nccl = dist.get_backend() == "nccl"  # NCCL carries CUDA tensors only
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
    world = dist.get_world_size()
    size = torch.tensor([len(index)], device=device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    pair = torch.zeros(2, longest, dtype=torch.float64, device=device)
    pair[0, : len(index)] = torch.from_numpy(index.astype(np.float64))
    pair[1, : len(index)] = torch.from_numpy(scores)
    pairs = [torch.empty_like(pair) for _ in range(world)]
    dist.all_gather(pairs, pair)
    joined = torch.cat([p[:, : int(s.item())] for p, s in zip(pairs, sizes, strict=True)], 1)
    joined = joined.cpu()
    return joined[0].long().numpy(), joined[1].numpy()


class IndexedDataset(Dataset):
    """``dataset[i]`` as ``(i, *item)`` (``(i, item)`` for a non-tuple item): the sample
    indices travel with the batch to ``update`` and ``weights``, with no patched loader."""

    def __init__(self, dataset: Dataset) -> None:
        if not isinstance(dataset, Sized):
            raise ValueError(f"dataset must have a length, got {type(dataset).__name__}.")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        item = self.dataset[index]
        return (index, *item) if isinstance(item, (tuple, list)) else (index, item)


# -- the training loop ------------------------------------------------------------------------


@dataclass(frozen=True)
class PrunedEpoch:
    """One epoch of :func:`train_epoch_pruned`: the mean unweighted per-sample loss over the
    samples trained on, how many (gradient computations), batches, wall seconds."""

    loss: float
    samples: int
    batches: int
    seconds: float


def train_epoch_pruned(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    sampler: DynamicPruningSampler,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    augment: Callable[[Tensor], Tensor] | None = None,
    on_batch: Callable[[nn.Module, Tensor, Tensor], None] | None = None,
) -> PrunedEpoch:
    """One epoch on the samples ``sampler`` keeps: forward, weighted mean loss, step, and the
    per-sample losses back to the sampler. Call ``sampler.set_epoch(epoch)`` before it.

    ``fit(..., sampler=)`` runs this each epoch; call it directly in a loop of your own (several
    inputs per sample, your own schedule). Sparsity rides on ``optimizer`` as everywhere.

    :param loader: a ``DataLoader`` over an :class:`IndexedDataset` with ``sampler=sampler``;
        its batches are ``(indices, *inputs, targets)`` and the model gets ``model(*inputs)``.
    :param loss_fn: per-sample losses, shape ``(batch,)``, e.g.
        ``functools.partial(F.cross_entropy, reduction="none")``.
    :param augment: applied to the first input of each batch before the forward pass.
    :param on_batch: ``on_batch(model, first_input, targets)`` after every optimizer step.
    """
    if loader.sampler is not sampler:
        raise ValueError("loader must draw from sampler: DataLoader(..., sampler=sampler).")
    param = next(model.parameters(), None)
    device = torch.device("cpu") if param is None else param.device
    model.train()
    start = time.perf_counter()
    total, samples, batches = 0.0, 0, 0
    for batch in loader:
        if len(batch) < 3:
            raise ValueError("loader batches must be (indices, *inputs, targets): wrap the "
                             "dataset in IndexedDataset.")  # fmt: skip
        index, *inputs, targets = batch
        inputs = [x.to(device) for x in inputs]
        targets = targets.to(device)
        fed = inputs if augment is None else [augment(inputs[0]), *inputs[1:]]
        losses = loss_fn(model(*fed), targets)
        if losses.shape != (len(index),):
            raise ValueError(
                f"loss_fn must return one loss per sample, shape ({len(index)},), got "
                f"{tuple(losses.shape)}: use reduction='none'."
            )
        loss = (losses * sampler.weights(index).to(losses.device)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sampler.update(index, losses.detach())
        if on_batch is not None:
            on_batch(model, inputs[0], targets)
        total += float(losses.detach().sum())
        samples += len(index)
        batches += 1
    return PrunedEpoch(total / max(samples, 1), samples, batches, time.perf_counter() - start)


# -- within-sequence pruning ------------------------------------------------------------------


def drop_timesteps(
    x: Tensor,
    lengths: Any = None,
    keep: float = 0.9,
    *,
    span: int = 5,
    seed: int,
) -> tuple[Tensor, Tensor]:
    """Drop time segments inside each sequence of ``x`` (batch, time, ...): DDP-ASR's
    within-utterance pruning. Each sequence of length ``L`` keeps ``keep × L`` frames (rounded
    half up, at least 1) in their order; the ``L - kept`` dropped frames form segments of
    ``span`` frames (one shorter if they do not divide) at seeded random places, adjacent
    segments merging into longer gaps.

    :param lengths: each sequence's valid length (None: all of ``x.shape[1]``); frames past it
        are padding and never kept.
    :param span: segment length in frames; the default 5 (50 ms at a 10 ms hop) removes pieces
        shorter than most phonemes.
    :param seed: required: one value for every call would drop the same places in every batch
        of equal lengths; pass e.g. a step counter.
    :return: the shortened sequences, zero-padded to the longest, and their lengths.
    """
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor (batch, time, ...), got {getattr(x, 'shape', x)}.")
    keep = check_fraction("keep", keep)
    span = check_int("span", span)
    seed = check_int("seed", seed, 0)
    batch, steps = x.shape[:2]
    if lengths is None:
        lens = np.full(batch, steps)
    else:
        lens = np.asarray(lengths.cpu() if isinstance(lengths, Tensor) else lengths)
        if lens.shape != (batch,) or not np.issubdtype(lens.dtype, np.integer):
            raise ValueError(f"lengths must be {batch} integers, got {lens.dtype} {lens.shape}.")
        if batch and (lens.min() < 0 or lens.max() > steps):
            raise ValueError(f"lengths must lie in [0, {steps}], got {lens.min()}..{lens.max()}.")
    rng = np.random.default_rng(seed)
    kept = np.where(lens == 0, 0, np.maximum(1, (keep * lens + 0.5).astype(np.int64)))
    dropped = lens - kept
    segments = -(-dropped // span)  # per sequence, all of ``span`` frames but a random one
    owner = np.repeat(np.arange(batch), segments)
    sizes = np.full(len(owner), span, dtype=np.int64)
    short = rng.integers(0, np.maximum(segments, 1))
    cut = segments > 0
    first = np.cumsum(segments) - segments
    sizes[(first + short)[cut]] = (dropped - (segments - 1) * span)[cut]
    gaps = rng.integers(0, kept[owner] + 1)  # the kept frame each segment goes before
    before = np.zeros((batch, steps + 1), dtype=np.int64)
    np.add.at(before, (owner, gaps), sizes)
    width = int(kept.max()) if batch else 0
    frame = np.arange(width)
    valid = frame[None] < kept[:, None]
    positions = np.where(valid, frame[None] + np.cumsum(before, axis=1)[:, :width], 0)
    rows = torch.arange(batch, device=x.device)[:, None]
    out = x[rows, torch.as_tensor(positions, device=x.device)]
    mask = torch.as_tensor(valid, device=x.device).reshape(*valid.shape, *[1] * (x.dim() - 2))
    out = torch.where(mask, out, torch.zeros((), dtype=x.dtype, device=x.device))
    new_lengths = torch.as_tensor(kept, dtype=torch.long)
    return out, new_lengths
