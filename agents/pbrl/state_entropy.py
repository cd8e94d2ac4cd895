"""PEBBLE's unsupervised exploration reward: a particle estimate of state entropy.

The intrinsic reward of a state is its distance to the k-th nearest neighbour among states seen
so far (k = 5), normalised by a running standard deviation. With 90-95% noise features a distance
on the raw observation is mostly a distance between noise vectors, so the features can also be
any projection (for R2N, the reward models' sparse input layers).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


@torch.no_grad()
def knn_distance(
    x: Tensor, reference: Tensor, k: int = 5, chunk: int = 4096, exclude_self: bool = True
) -> Tensor:
    """Distance from each row of ``x`` to its k-th nearest row of ``reference``, shape (B,).

    With ``exclude_self`` a distance of exactly 0 (the row itself, when ``x`` was drawn from the
    reference states) is not a neighbour; PEBBLE gets the same by taking the (k+1)-th.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if len(reference) < k:
        raise ValueError(f"need at least k={k} reference states, got {len(reference)}.")
    best = torch.full((len(x), k), float("inf"), device=x.device)
    for start in range(0, len(reference), chunk):
        d = torch.cdist(x, reference[start : start + chunk])
        if exclude_self:
            d = d.masked_fill(d == 0, float("inf"))
        best = torch.cat([best, d], dim=1).topk(k, dim=1, largest=False).values
    return best[:, -1]


class StateEntropyReward:
    """k-NN intrinsic reward with running normalisation (PEBBLE's ``compute_state_entropy``).

    :param features: maps observations (B, obs_dim) to the space distances are taken in;
        None = the raw observation.
    :param k: neighbour index (PEBBLE: 5).
    """

    def __init__(self, features: Callable[[Tensor], Tensor] | None = None, k: int = 5) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}.")
        self.features, self.k = features, k
        self._count, self._mean, self._m2 = 0, 0.0, 0.0

    @torch.no_grad()
    def __call__(self, obs: Tensor, reference: Tensor) -> Tensor:
        """Normalised intrinsic reward of ``obs`` (B, obs_dim) among ``reference`` states.

        PEBBLE takes all states seen so far; a random subset of them (the replay buffer samples
        one per batch) keeps the cost bounded.
        """
        x, ref = obs, reference
        if self.features is not None:
            x, ref = self.features(obs), self.features(reference)
        dist = knn_distance(x.float(), ref.float(), self.k)
        self._update(dist)
        return dist / (self._std() + 1e-8)

    def _update(self, values: Tensor) -> None:
        # Chan et al.'s parallel update of a running mean and variance.
        n = values.numel()
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self._count + n
        delta = mean - self._mean
        self._mean += delta * n / total
        self._m2 += m2 + delta**2 * self._count * n / total
        self._count = total

    def _std(self) -> float:
        return (self._m2 / max(self._count - 1, 1)) ** 0.5

    def state_dict(self) -> dict[str, float]:
        return {"count": self._count, "mean": self._mean, "m2": self._m2}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self._count, self._mean, self._m2 = int(state["count"]), state["mean"], state["m2"]
