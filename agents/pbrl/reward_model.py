"""The learned reward of preference-based RL: an ensemble of MLPs on (obs, action).

Each member is a stack of ordinary ``nn.Linear`` layers, so the sparse core can mask any of them,
each member with its own topology. Optionally (``shared_layers``) the first layers are one trunk
shared by all members, NeuroTrails' design (docs/pbrl.md). The members run one after the other:
one batched matmul per layer over stacked weights (``torch.baddbmm``) was measured 10% slower at
PEBBLE's batch size (benchmarks/results/reward_model_speed.md), where each member's matmuls are
large enough that the loop costs nothing.
Trained with the Bradley–Terry cross-entropy on summed segment rewards (PEBBLE, B-Pref).
"""

from __future__ import annotations

import copy
import itertools
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sparse_rl.supervised.data_pruning import POLICIES, DynamicPruningSampler
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError, check_choice, check_fraction

#: Reward-model gradient steps per training call unless told otherwise.
DEFAULT_STEPS = 200


class RewardEnsemble(nn.Module):
    """``members`` MLPs (default 3 × [256, 256, 256], LeakyReLU, tanh output) on [obs, action].

    With ``shared_layers=k`` the ensemble is a NeuroTrails model (docs/neurotrails.md,
    docs/pbrl.md): the first ``k`` layers are one ``trunk`` that every member reads, and
    ``members[i]`` holds only member ``i``'s remaining layers (its head). The members then cost
    fewer weights and read one set of input features; their heads keep them apart.

    :param members: ensemble size; the ensemble mean is the reward, the spread drives queries.
    :param shared_layers: layers in the shared trunk, in [0, len(hidden)] so that every head keeps
        at least its output layer; 0 (default) gives independent members.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        members: int = 3,
        hidden: Sequence[int] = (256, 256, 256),
        negative_slope: float = 0.01,
        shared_layers: int = 0,
    ) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}.")
        if obs_dim < 1 or act_dim < 0:
            raise ValueError(f"obs_dim must be >= 1 and act_dim >= 0, got {obs_dim}, {act_dim}.")
        k = check_shared_layers(shared_layers, hidden)
        self.obs_dim, self.act_dim, self.negative_slope = obs_dim, act_dim, negative_slope
        self.shared_layers = k
        sizes = [obs_dim + act_dim, *hidden, 1]
        shapes = list(itertools.pairwise(sizes))
        # Empty without sharing: no state_dict keys, so checkpoints of independent members load.
        self.trunk = nn.Sequential(*(nn.Linear(a, b) for a, b in shapes[:k]))
        self.members = nn.ModuleList(
            nn.Sequential(*(nn.Linear(a, b) for a, b in shapes[k:])) for _ in range(members)
        )

    @property
    def size(self) -> int:
        return len(self.members)

    def input_layers(self) -> list[str]:
        """Names of the layers reading [obs, action] (R2N / ANF make these sparse): every
        member's first layer, or the trunk's first layer once when it is shared."""
        if self.shared_layers:
            return ["trunk.0"]
        return [f"members.{i}.0" for i in range(self.size)]

    def input_modules(self) -> list[nn.Linear]:
        """The layers :meth:`input_layers` names, in the same order."""
        return [self.get_submodule(name) for name in self.input_layers()]  # type: ignore[misc]

    def forward(self, obs: Tensor, act: Tensor, per_member: bool = False) -> Tensor:
        """Per-member rewards, shape (members, *batch).

        ``obs``/``act`` are (*batch, dim), shared by all members, or with ``per_member`` (members,
        *batch, dim): one batch per member (each member trains on its own shuffle, as in B-Pref).
        A shared trunk sees every member's batch; each head sees its member's.
        """
        x = torch.cat([obs, act], dim=-1) if self.act_dim else obs
        if per_member:
            if x.shape[0] != self.size:
                raise ValueError(f"per_member inputs need {self.size} batches, got {x.shape[0]}.")
            batch_shape = x.shape[1:-1]
            h = x.reshape(self.size, -1, x.shape[-1])
        else:
            batch_shape = x.shape[:-1]
            h = x.reshape(1, -1, x.shape[-1])
        for layer in self.trunk:  # once for all members
            h = F.leaky_relu(layer(h), self.negative_slope)
        h = h.expand(self.size, -1, -1)  # a view: no copies
        out = torch.stack([self._member(m, x_m) for m, x_m in zip(self.members, h, strict=True)])
        return out.reshape(self.size, *batch_shape)

    def _member(self, member: nn.Module, x: Tensor) -> Tensor:
        *hidden, last = member
        for layer in hidden:
            x = F.leaky_relu(layer(x), self.negative_slope)
        return torch.tanh(last(x))


def check_shared_layers(value: Any, hidden: Sequence[int], name: str = "shared_layers") -> int:
    """``value`` if it is a whole number in [0, len(hidden)]: each head keeps its output layer."""
    top = len(hidden)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= top:
        raise ConfigError(
            f"{name} must be an integer in [0, {top}] (the trunk takes the first layers of "
            f"{top + 1}; each head keeps at least its output layer), got {value!r}."
        )
    return int(value)


def preference_loss(
    returns0: Tensor, returns1: Tensor, labels: Tensor, reduction: str = "mean"
) -> Tensor:
    """Bradley–Terry cross-entropy, P[σ1 ≻ σ0] = softmax(R0, R1)[1]; labels in {0, 0.5, 1}.

    Shapes: returns (members, B), labels (members, B) or (B,); mean over everything, or
    ``reduction="none"`` for one loss per (member, pair).
    """
    logits = returns1 - returns0
    return F.binary_cross_entropy_with_logits(
        logits, labels.expand_as(logits), reduction=reduction
    )


@dataclass(frozen=True)
class RewardTrainStats:
    loss: float
    accuracy: float  # of the ensemble mean on the strict (non-0.5) training labels
    steps: int


#: R2N's reward models as published (ANF's settings): input layer 80% sparse, SET.
R2N_PUBLISHED = sn.SparsitySettings(
    density=0.2, layers="input", updater=sn.SET(interval=100, drop_fraction=0.05)
)


def reward_sparsity(
    value: sn.SparsitySettings | Mapping[str, Any], name: str = "reward_sparsity"
) -> sn.SparsitySettings:
    """Settings as given, or a mapping of their keys laid over :data:`R2N_PUBLISHED`."""
    return R2N_PUBLISHED.updated(value, name)


class RewardModel:
    """The ensemble, its Adam, and (for R2N) the sparse state of its input layers.

    :param sparsity: None for PEBBLE's dense reward models; for R2N ``sn.SparsitySettings``,
        or a mapping of its keys laid over :data:`R2N_PUBLISHED` (the input layer, density 0.2,
        SET 5% every 100 reward-model steps). ``layers="input"`` is each member's input layer
        (the trunk's first layer when it is shared), ``layers="all"`` reaches trunk and heads;
        updater intervals count reward-model gradient steps.
    :param input_l1: L1 penalty on each input layer (the fit loss is a mean over members and
        pairs; the penalty is averaged over the input layers too).
    :param input_l2: L2 penalty (weight decay, coupled) on each input layer.
    :param shared_layers: layers of a trunk shared by all members (:class:`RewardEnsemble`);
        0 for independent members.
    :param pair_keep: dynamic pruning of the labelled pairs (the supervised side's
        :class:`~sparse_rl.supervised.DynamicPruningSampler`, one over all labels, grown as they
        come): each pass over the labels trains on this share, chosen by ``pair_policy`` from
        each pair's latest loss (new pairs first); 1.0 (default) trains on every pair.
    :param pair_policy: the sampler's policy ("infobatch": below-mean-loss pairs pruned at
        random and the kept ones weighted up, so the loss stays unbiased).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        members: int = 3,
        hidden: Sequence[int] = (256, 256, 256),
        lr: float = 3e-4,
        batch_size: int = 128,
        sparsity: sn.SparsitySettings | Mapping[str, Any] | None = None,
        input_l1: float = 0.0,
        input_l2: float = 0.0,
        device: str | torch.device = "cpu",
        seed: int = 0,
        shared_layers: int = 0,
        pair_keep: float = 1.0,
        pair_policy: str = "infobatch",
    ) -> None:
        self.pair_keep = check_fraction("pair_keep", pair_keep)
        self.pair_policy = check_choice("pair_policy", pair_policy, POLICIES)
        self.pairs: DynamicPruningSampler | None = None  # made on the first training call
        self._pair_epoch = 0
        self._seed = seed
        for name, value in (("input_l1", input_l1), ("input_l2", input_l2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        self.input_l1, self.input_l2 = float(input_l1), float(input_l2)
        self.device = torch.device(device)
        with sn.seeded(seed):  # the members' init, not the caller's stream
            self.ensemble = RewardEnsemble(
                obs_dim, act_dim, members, hidden, shared_layers=shared_layers
            )
        self.batch_size = batch_size
        self.optimizer = torch.optim.Adam(self.ensemble.parameters(), lr=lr)
        self.sparsity: sn.Sparsity | None = None
        if sparsity is not None:
            # Per input layer: one budget each, so every member keeps the same density.
            self.sparsity = reward_sparsity(sparsity).apply(
                self.ensemble,
                self.optimizer,
                seed=seed,
                input_layers=self.ensemble.input_layers(),
            )
        self.ensemble.to(self.device)
        self._rng = np.random.default_rng(seed)

    # -- training -------------------------------------------------------------------------------

    def _tensor(self, array: np.ndarray) -> Tensor:
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)

    def train(
        self,
        obs0: np.ndarray,
        act0: np.ndarray,
        obs1: np.ndarray,
        act1: np.ndarray,
        labels: np.ndarray,
        epochs: int | None = None,
        target_accuracy: float | None = None,
        steps: int | None = None,
    ) -> RewardTrainStats:
        """Train every member on the labels (each member its own shuffle of them).

        ``steps`` gradient steps (default 200), or ``epochs`` passes over the labels that stop once
        the ensemble-mean accuracy on them reaches ``target_accuracy`` (B-Pref stops at 97%;
        a stop on training accuracy ends long before the model generalises, see
        docs/reward_learning.md). Give ``steps`` or ``epochs``, not both. Arrays: (N, T, dim)
        segments, (N,) labels.
        """
        n = len(labels)
        if n == 0:
            raise ValueError("no labels to train the reward model on.")
        if steps is not None and epochs is not None:
            raise ValueError(f"give steps or epochs, not both (got {steps}, {epochs}).")
        if epochs is None:
            steps = DEFAULT_STEPS if steps is None else steps
        if target_accuracy is not None and epochs is None:
            raise ValueError("target_accuracy stops epoch training; pass epochs with it.")
        o0, a0, o1, a1 = map(self._tensor, (obs0, act0, obs1, act1))
        y = self._tensor(labels)
        done, loss_value, accuracy = 0, float("nan"), 0.0
        batches = -(-n // self.batch_size)
        limit = steps if steps is not None else int(epochs) * batches  # type: ignore[arg-type]
        pairs = self._pair_sampler(n)
        self.ensemble.train()
        while done < limit:
            order = torch.as_tensor(self._epoch_order(n, pairs))
            for start in range(0, order.shape[1], self.batch_size):
                idx = order[:, start : start + self.batch_size]  # (M, b): per-member batches
                r0 = self.ensemble(o0[idx], a0[idx], per_member=True).sum(-1)  # (M, b)
                r1 = self.ensemble(o1[idx], a1[idx], per_member=True).sum(-1)
                if pairs is None:
                    loss = preference_loss(r0, r1, y[idx])
                else:  # weighted as the sampler says; each pair's latest loss is its score
                    losses = preference_loss(r0, r1, y[idx], reduction="none")
                    flat = idx.reshape(-1)
                    loss = (losses.reshape(-1) * pairs.weights(flat).to(losses.device)).mean()
                    pairs.update(flat, losses.detach().reshape(-1))
                loss_value = loss.item()
                self.optimizer.zero_grad(set_to_none=True)
                (loss + self._input_penalty()).backward()
                self.optimizer.step()
                done += 1
                if done == limit:
                    break
            if target_accuracy is not None:
                accuracy = self.accuracy(obs0, act0, obs1, act1, labels)
                if accuracy >= target_accuracy:
                    break
        if target_accuracy is None:
            accuracy = self.accuracy(obs0, act0, obs1, act1, labels)
        return RewardTrainStats(loss=loss_value, accuracy=accuracy, steps=done)

    def _pair_sampler(self, n: int) -> DynamicPruningSampler | None:
        """The pruning sampler over the ``n`` labels so far (labels only ever get appended)."""
        if self.pair_keep == 1.0:
            return None
        if self.pairs is None:
            self.pairs = DynamicPruningSampler(
                n, self.pair_keep, self.pair_policy, seed=self._seed, num_replicas=1, rank=0
            )
        elif n != self.pairs.n:
            self.pairs.grow(n)
        return self.pairs

    def _epoch_order(self, n: int, pairs: DynamicPruningSampler | None) -> np.ndarray:
        """(members, count) label indices of one pass: each member its own shuffle of all
        labels, or of the pairs the sampler keeps this pass (the same set for every member)."""
        kept = np.arange(n)
        if pairs is not None:
            pairs.set_epoch(self._pair_epoch)
            self._pair_epoch += 1
            kept = np.fromiter(pairs, dtype=np.int64)
        return np.stack([kept[self._rng.permutation(len(kept))] for _ in range(self.ensemble.size)])

    def _input_penalty(self) -> Tensor | float:
        """L1 and L2 of the input layers, averaged over them as the fit loss is over members (a
        shared trunk's one layer carries the whole penalty).

        Noise features carry no signal, so the penalty drives their weights to zero; magnitude
        pruning then drops exactly those (R2N), and a dense model reads them less.
        """
        if not (self.input_l1 or self.input_l2):
            return 0.0
        penalty = 0.0
        layers = self.ensemble.input_modules()
        for layer in layers:
            weight = layer.weight
            if self.input_l1:
                penalty = penalty + self.input_l1 * weight.abs().sum()
            if self.input_l2:
                penalty = penalty + 0.5 * self.input_l2 * weight.square().sum()
        return penalty / len(layers)

    # -- inference ------------------------------------------------------------------------------

    @torch.no_grad()
    def member_rewards(self, obs: np.ndarray, act: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """(members, N) rewards for N transitions, computed in chunks (whole replay buffers)."""
        self.ensemble.eval()
        out = []
        for start in range(0, len(obs), chunk):
            o = self._tensor(obs[start : start + chunk])
            a = self._tensor(act[start : start + chunk])
            out.append(self.ensemble(o, a).cpu().numpy())
        return np.concatenate(out, axis=1) if out else np.zeros((self.ensemble.size, 0))

    def reward(self, obs: np.ndarray, act: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """The learned reward: the ensemble mean, shape (N,)."""
        return self.member_rewards(obs, act, chunk).mean(0)

    @torch.no_grad()
    def preference_probabilities(
        self, obs0: np.ndarray, act0: np.ndarray, obs1: np.ndarray, act1: np.ndarray
    ) -> np.ndarray:
        """Per-member P[σ1 ≻ σ0], shape (members, N): what query selection ranks by."""
        self.ensemble.eval()
        r0 = self.ensemble(self._tensor(obs0), self._tensor(act0)).sum(-1)
        r1 = self.ensemble(self._tensor(obs1), self._tensor(act1)).sum(-1)
        return torch.sigmoid(r1 - r0).cpu().numpy()

    def accuracy(
        self,
        obs0: np.ndarray,
        act0: np.ndarray,
        obs1: np.ndarray,
        act1: np.ndarray,
        labels: np.ndarray,
    ) -> float:
        """Share of strict labels (not 0.5) whose preferred segment the ensemble mean agrees on."""
        strict = labels != 0.5
        if not strict.any():
            return float("nan")
        p = self.preference_probabilities(obs0[strict], act0[strict], obs1[strict], act1[strict])
        return float(((p.mean(0) > 0.5) == (labels[strict] > 0.5)).mean())

    def input_connectivity(self) -> np.ndarray:
        """(members, obs_dim) active input connections per observation feature of each member.

        Dense members count every connection (their fan-out); with a shared trunk every member
        reads its input layer, so the rows are equal.
        """
        rows = []
        names, layers = self.ensemble.input_layers(), self.ensemble.input_modules()
        for name, layer in zip(names, layers, strict=True):
            if self.sparsity is not None and name in self.sparsity.masks:
                counts = self.sparsity.input_connectivity(name).float()
            else:
                counts = torch.full((layer.in_features,), float(layer.out_features))
            rows.append(counts[: self.ensemble.obs_dim].cpu().numpy())
        return np.broadcast_to(np.stack(rows), (self.ensemble.size, self.ensemble.obs_dim)).copy()

    # -- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "ensemble": self.ensemble.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sparsity": None if self.sparsity is None else self.sparsity.state_dict(),
            "rng": self._rng.bit_generator.state,
            "pairs": self.pairs_state_dict(),
        }

    def pairs_state_dict(self) -> dict[str, Any] | None:
        """The pair-pruning sampler's scores and draws (None without pruning or before any
        training): a resumed model draws the pairs the original would."""
        if self.pairs is None:
            return None
        return {"sampler": self.pairs.state_dict(), "epoch": self._pair_epoch}

    def load_pairs_state_dict(self, pairs: dict[str, Any] | None) -> None:
        if pairs is not None and self.pair_keep == 1.0:
            raise ValueError(
                "the saved reward model prunes its labelled pairs; build this one with the same "
                "pair_keep and pair_policy before loading."
            )
        self.pairs, self._pair_epoch = None, 0
        if pairs is not None:
            saved = pairs["sampler"]
            self.pairs = DynamicPruningSampler(
                saved["n"], self.pair_keep, self.pair_policy, num_replicas=1, rank=0
            )
            self.pairs.load_state_dict(saved)
            self._pair_epoch = int(pairs["epoch"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Optimizer.load_state_dict keeps the given moment tensors: copy, so two live models
        # never share them.
        state = copy.deepcopy(state)
        if (state["sparsity"] is None) != (self.sparsity is None):
            saved = "sparse" if state["sparsity"] is not None else "dense"
            raise ValueError(
                f"the saved reward model is {saved}; build this one with the same sparsity "
                "settings before loading."
            )
        self.ensemble.load_state_dict(state["ensemble"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.sparsity is not None:
            self.sparsity.load_state_dict(state["sparsity"])
        self._rng.bit_generator.state = state["rng"]
        self.load_pairs_state_dict(state.get("pairs"))  # absent before pair pruning
