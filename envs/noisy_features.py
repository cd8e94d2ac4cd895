"""The Extremely Noisy Environment: real observation features hidden among noise features.

ANF draws its noise inside each network's forward pass, so the actor, the critic and a reward
model would each see different noise. For preference-based RL the noise has to be part of the
observation (stored in replay buffers and preference segments, identical for every network),
so here it is a gymnasium wrapper, seeded through ``reset(seed=...)``.

With ``d`` real features and noise fraction ``f`` the observation has ``round(d / (1 - f))``
features: the ``d`` real ones (cast to float32, otherwise unchanged) followed by the noise, or
all of them shuffled by a seeded permutation. ``real_indices`` says where the real ones are.

Noise kinds (``noise=``):

- ``"gaussian"``: i.i.d. N(0, σ²), ``σ = noise_scale`` (ANF's setting; default σ = 1).
- ``"uniform"``: i.i.d. U[-√3 σ, √3 σ] (mean 0, standard deviation σ, like the Gaussian).
- ``"empirical"``: each noise feature is the "shadow" of one real feature (the shadows are spread
  evenly over the real features, assigned at random). At each observation a shadow takes the
  value its real feature had at a uniformly drawn *earlier* observation, from a reservoir sample
  (Vitter's algorithm R) of at most ``reservoir_size`` past observations. So every noise feature
  has the same marginal distribution as a real feature (no per-feature statistic such as mean,
  range or histogram tells them apart) but carries no information about the current state: it
  copies a random past step, not this one. (What still differs is smoothness in time: a real
  feature changes little between steps, a shadow jumps.) Only the first observation after a
  seeded reset has no history; its shadows copy it. The reservoir spans episodes and is
  emptied by a seeded reset.

Speed: noise is drawn for up to 256 steps at a time (one numpy call per block, Gaussian by
vectorised Box-Muller), so a step costs one row copy; see ``benchmarks/noisy_features_overhead.py``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, SupportsFloat, get_args

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from sparse_rl.validation import check_int

__all__ = [
    "MAX_FEATURES",
    "NOISE_KINDS",
    "NoiseKind",
    "NoisyFeatures",
    "max_noise_fraction",
    "noisy_observation_size",
]

NoiseKind = Literal["gaussian", "uniform", "empirical"]
NOISE_KINDS: tuple[str, ...] = get_args(NoiseKind)

# Mixed into every seed so the wrapper's streams never coincide with the env's own generator,
# which gymnasium seeds from ``SeedSequence(seed)`` too (same seed would mean correlated noise).
_STREAM_TAG = 0x4E4F4953
# Noise is drawn for many steps at once: one numpy call per block instead of one per step.
_MAX_BLOCK_STEPS = 256
_MAX_BLOCK_ELEMENTS = 1 << 18
#: The most features the wrapper builds (more only when the env alone has more). As the noise
#: fraction nears 1 the count ``d / (1 - f)`` has no bound, and the run dies of memory long after
#: it started: ``f = 0.999999`` on HalfCheetah makes 17 million inputs, a 4-billion-weight first
#: layer. The papers' largest setting, Humanoid at 99% noise, has 34,800.
MAX_FEATURES = 100_000


def noisy_observation_size(num_real: int, noise_fraction: float) -> int:
    """Number of features when ``noise_fraction`` of them are noise: ``round(d / (1 - f))``.

    Rounding, not ANF's ``ceil``: ``17 / (1 - 0.9)`` is ``170.00000000000003`` in floating point,
    and the paper's setting means 170.
    """
    _check_noise_fraction(noise_fraction)
    return round(num_real / (1.0 - noise_fraction))


def max_noise_fraction(num_real: int) -> float:
    """The largest ``noise_fraction`` the wrapper accepts for ``num_real`` real features: the
    largest float ``f`` with ``noisy_observation_size(num_real, f) <= max(num_real,
    MAX_FEATURES)``, exactly (the size grows with ``f``, so a few float steps find the edge)."""
    check_int("num_real", num_real)
    limit = max(int(num_real), MAX_FEATURES)
    # round() ties to even, so the size stays within limit up to limit + 0.5 when limit is even.
    f = max(0.0, 1.0 - num_real / (limit + 0.5))
    while f > 0.0 and noisy_observation_size(num_real, f) > limit:
        f = math.nextafter(f, 0.0)
    while (above := math.nextafter(f, 1.0)) < 1.0 and (
        noisy_observation_size(num_real, above) <= limit
    ):
        f = above
    return f


def _check_noise_fraction(noise_fraction: float) -> None:
    valid = isinstance(noise_fraction, (int, float, np.integer, np.floating)) and not isinstance(
        noise_fraction, (bool, np.bool_)
    )
    if not valid or not (0.0 <= float(noise_fraction) < 1.0):
        raise ValueError(f"noise_fraction must be a number in [0, 1), got {noise_fraction!r}")


def _seed_sequences(seed: int | None) -> list[np.random.SeedSequence]:
    """Independent (noise, permutation) streams: the noise kind never moves the permutation."""
    return np.random.SeedSequence(seed, spawn_key=(_STREAM_TAG,)).spawn(2)


class NoisyFeatures(
    gym.ObservationWrapper[NDArray[np.float32], Any, NDArray[Any]],
    gym.utils.RecordConstructorArgs,
):
    """Append (or mix in) noise features so that ``noise_fraction`` of the observation is noise.

    Seeding: ``reset(seed=s)`` reseeds the wrapper's own generators from ``s`` (independent of the
    env's), redraws the permutation and the empirical shadows, and empties the reservoir, so the
    same seed and actions give the same observations. ``reset()`` without a seed continues all of
    it, and so does the step count that drives re-permutation (it spans episodes).

    Permutation: with ``permute=True`` the features are shuffled by a permutation drawn at the
    seeded reset and kept; with ``repermute_every=N`` as well, a new one is drawn every ``N``
    steps (the transfer setting): the observation returned by step ``N`` (``2N``, ...) counted
    since the seeded reset already uses the new one. On those steps, and at every reset,
    ``info["real_indices"]`` carries the current positions. The observation-space bounds must not
    depend on the permutation, so permuted features all get the union of the real and noise
    bounds.

    :param env: env with a 1-D ``Box`` observation space (flatten dict observations first).
    :param noise_fraction: fraction ``f`` in [0, 1) of the features that are noise.
    :param noise: ``"gaussian"``, ``"uniform"`` or ``"empirical"`` (see the module docstring).
    :param noise_scale: standard deviation σ of Gaussian and uniform noise (ANF: 1, also 2-16);
        empirical noise has the real features' scale, so it accepts only the default.
    :param permute: shuffle all features with a seeded permutation.
    :param repermute_every: draw a new permutation every this many steps (needs ``permute``).
    :param reservoir_size: past observations kept for empirical noise.
    """

    def __init__(
        self,
        env: gym.Env[NDArray[Any], Any],
        noise_fraction: float,
        noise: NoiseKind = "gaussian",
        noise_scale: float = 1.0,
        permute: bool = False,
        repermute_every: int | None = None,
        reservoir_size: int = 10_000,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            noise_fraction=noise_fraction,
            noise=noise,
            noise_scale=noise_scale,
            permute=permute,
            repermute_every=repermute_every,
            reservoir_size=reservoir_size,
        )
        gym.ObservationWrapper.__init__(self, env)

        inner = env.observation_space
        if not isinstance(inner, spaces.Box) or len(inner.shape) != 1 or inner.shape[0] < 1:
            raise ValueError(
                "NoisyFeatures needs a non-empty 1-D Box observation space, got "
                f"{inner!r}; flatten it first (gymnasium.wrappers.FlattenObservation)"
            )
        _check_noise_fraction(noise_fraction)
        if noise not in NOISE_KINDS:
            raise ValueError(f"unknown noise {noise!r}; valid: {', '.join(map(repr, NOISE_KINDS))}")
        if isinstance(noise_scale, bool) or not (
            isinstance(noise_scale, (int, float, np.integer, np.floating))
            and math.isfinite(noise_scale)
            and noise_scale > 0
        ):
            raise ValueError(f"noise_scale must be a finite number > 0, got {noise_scale!r}")
        if noise == "empirical" and noise_scale != 1.0:
            raise ValueError(
                "noise_scale does not apply to empirical noise (it has the real features' scale)"
            )
        if repermute_every is not None:
            check_int("repermute_every", repermute_every)
            if not permute:
                raise ValueError("repermute_every needs permute=True")
        check_int("reservoir_size", reservoir_size)

        self.noise_fraction = float(noise_fraction)
        self.noise: NoiseKind = noise
        self.noise_scale = float(noise_scale)
        self.permute = bool(permute)
        self.repermute_every = None if repermute_every is None else int(repermute_every)
        self.reservoir_size = int(reservoir_size)
        self.num_real: int = int(inner.shape[0])
        self.num_features: int = noisy_observation_size(self.num_real, self.noise_fraction)
        if self.num_features > max(self.num_real, MAX_FEATURES):
            raise ValueError(
                f"noise_fraction={noise_fraction!r} makes {self.num_features} features of "
                f"{self.num_real} real ones, more than MAX_FEATURES={MAX_FEATURES} (networks "
                "and replay buffers that wide run out of memory); the largest valid "
                f"noise_fraction for {self.num_real} real features is "
                f"{max_noise_fraction(self.num_real)!r}"
            )
        self.num_noise: int = self.num_features - self.num_real

        d, n = self.num_real, self.num_noise
        real_low = np.asarray(inner.low, dtype=np.float32)
        real_high = np.asarray(inner.high, dtype=np.float32)
        if noise == "gaussian":
            noise_low, noise_high = np.float32(-np.inf), np.float32(np.inf)
        elif noise == "uniform":
            # Exact float32 bounds; drawn values are clipped to them after the float32 cast.
            noise_high = np.float32(math.sqrt(3.0) * self.noise_scale)
            noise_low = -noise_high
        else:  # a shadow may copy any real feature: the hull of their bounds
            noise_low, noise_high = real_low.min(), real_high.max()
        self._noise_bounds = (noise_low, noise_high)
        low = np.concatenate([real_low, np.full(n, noise_low, np.float32)])
        high = np.concatenate([real_high, np.full(n, noise_high, np.float32)])
        if self.permute:
            low = np.full(self.num_features, low.min(), np.float32)
            high = np.full(self.num_features, high.max(), np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

        # Observations are assembled in blocks of rows [real, noise], noise drawn for the whole
        # block at once (one numpy call per block, not per step); each step copies out one row.
        steps = max(2, min(_MAX_BLOCK_STEPS, _MAX_BLOCK_ELEMENTS // max(n, 1)))
        self._block_steps = steps - steps % 2  # even: Box-Muller fills half the rows with cos
        # No cached views of these buffers: copy.deepcopy and pickle would detach them.
        self._rows = np.zeros((self._block_steps, self.num_features), np.float32)
        if noise == "gaussian":
            half = (self._block_steps // 2, n)
            self._u_radius = np.empty(half, np.float64)
            self._radius = np.empty(half, np.float32)
            self._angle = np.empty(half, np.float32)
        elif noise == "uniform":
            self._u = np.empty((self._block_steps, n), np.float32)
        else:
            self._reservoir = np.empty(self.reservoir_size * d, np.float32)  # row-major (k, d)
            self._u = np.empty((self._block_steps, n), np.float64)
            self._flat_index = np.empty((self._block_steps, n), np.intp)
            self._slots = np.empty(self._block_steps, np.intp)
        self._perm: NDArray[np.intp] | None = None
        self._real_indices = _readonly(np.arange(d, dtype=np.intp))
        self._noise_indices = _readonly(np.arange(d, self.num_features, dtype=np.intp))
        self._reseed(None)

    # -- public -------------------------------------------------------------------------------

    @property
    def real_indices(self) -> NDArray[np.intp]:
        """Positions of the real features, in the inner env's order: ``obs[real_indices]`` is the
        inner observation. Read-only; a new array after every re-permutation."""
        return self._real_indices

    @property
    def noise_indices(self) -> NDArray[np.intp]:
        """Positions of the noise features (the complement of ``real_indices``). Read-only."""
        return self._noise_indices

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._reseed(seed)
        if self.permute:
            info = {**info, "real_indices": self._real_indices}
        return self.observation(obs), info

    def step(
        self, action: Any
    ) -> tuple[NDArray[np.float32], SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        every = self.repermute_every
        if every is not None and self._steps % every == 0:
            self._draw_permutation()
            info = {**info, "real_indices": self._real_indices}
        return self.observation(obs), reward, terminated, truncated, info

    def observation(self, observation: NDArray[Any]) -> NDArray[np.float32]:
        """The inner observation (cast to float32) with this step's noise, permuted if asked."""
        pos = self._block_pos
        if pos == self._block_steps:
            self._fill_block()
            pos = 0
        self._block_pos = pos + 1
        row = self._rows[pos]
        row[: self.num_real] = observation
        if self.noise == "empirical":
            self._empirical_noise(row, pos)
        perm = self._perm
        return row.copy() if perm is None else row.take(perm)

    # -- internals ----------------------------------------------------------------------------

    def _reseed(self, seed: int | None) -> None:
        noise_seq, perm_seq = _seed_sequences(seed)
        self._noise_rng = np.random.default_rng(noise_seq)
        self._perm_rng = np.random.default_rng(perm_seq)
        self._block_pos = self._block_steps  # the next observation draws a fresh block
        self._steps = 0
        if self.noise == "empirical":
            self._seen = 0  # observations offered to the reservoir so far
            # Shadows spread evenly over the real features, in random order.
            shadows = np.resize(np.arange(self.num_real, dtype=np.intp), self.num_noise)
            self._sources = self._noise_rng.permutation(shadows)
        if self.permute:
            self._draw_permutation()

    def _draw_permutation(self) -> None:
        """``obs = [real, noise][perm]``; real feature ``k`` lands at ``argsort(perm)[k]``."""
        perm = self._perm_rng.permutation(self.num_features)
        position = np.empty_like(perm)
        position[perm] = np.arange(self.num_features)
        self._perm = perm
        self._real_indices = _readonly(position[: self.num_real])
        self._noise_indices = _readonly(np.sort(position[self.num_real :]))

    def _fill_block(self) -> None:
        """Draw the noise of the next ``_block_steps`` observations in one go."""
        if self.noise == "gaussian":
            self._fill_gaussian_block()
        elif self.noise == "uniform":
            low, high = self._noise_bounds
            self._noise_rng.random(dtype=np.float32, out=self._u)
            noise = self._rows[:, self.num_real :]
            np.multiply(self._u, high - low, out=noise)
            noise += low
            np.clip(noise, low, high, out=noise)
        else:
            self._plan_empirical_block()

    def _fill_gaussian_block(self) -> None:
        """N(0, σ²) by vectorised Box-Muller, r = σ sqrt(-2 ln(1 - u1)), z = (r cos θ, r sin θ).

        Exact in distribution up to float32 rounding, and 3x faster than numpy's ziggurat (whose
        per-element cost alone would exceed the 10% step-time budget at f = 0.95). ``u1`` has
        float64 resolution, so the tails reach 8.5σ (float32 uniforms would stop at 5.8σ).
        """
        rng, radius, angle = self._noise_rng, self._radius, self._angle
        rng.random(out=self._u_radius)
        np.subtract(1.0, self._u_radius, out=radius, casting="unsafe")  # in (0, 1]
        np.log(radius, out=radius)
        np.multiply(radius, np.float32(-2.0 * self.noise_scale**2), out=radius)
        np.sqrt(radius, out=radius)
        rng.random(out=angle, dtype=np.float32)
        np.multiply(angle, np.float32(2.0 * np.pi), out=angle)
        half = self._block_steps // 2
        noise = self._rows[:, self.num_real :]
        cos, sin = noise[:half], noise[half:]
        np.cos(angle, out=cos)
        np.multiply(cos, radius, out=cos)
        np.sin(angle, out=sin)
        np.multiply(sin, radius, out=sin)

    def _plan_empirical_block(self) -> None:
        """Precompute, for the block's observations, which reservoir cells the shadows copy and
        where each observation is stored; the counts of past observations are known in advance."""
        k, steps, rng = self.reservoir_size, self._block_steps, self._noise_rng
        seen = self._seen + np.arange(steps, dtype=np.int64)  # observations before each one
        # Exclusive: sample among earlier observations; the very first one samples itself.
        pool = np.clip(seen, 1, k)
        if pool[0] == pool[-1]:  # the steady state, reservoir full: one cheap scalar bound
            rows = rng.integers(0, k, size=(steps, self.num_noise))
        else:
            rows = np.multiply(rng.random(out=self._u), pool[:, None]).astype(np.intp)
            np.minimum(rows, (pool - 1)[:, None], out=rows)
        np.multiply(rows, self.num_real, out=rows)
        np.add(rows, self._sources, out=self._flat_index, casting="unsafe")
        # Algorithm R: fill the first k slots, then keep observation s with probability k/(s+1).
        replace = np.multiply(rng.random(steps), seen + 1).astype(np.int64)
        self._slots[:] = np.where(seen < k, seen, np.where(replace < k, replace, -1))

    def _empirical_noise(self, row: NDArray[np.float32], pos: int) -> None:
        d = self.num_real
        if self._seen == 0:
            self._reservoir[:d] = row[:d]
        if self.num_noise:
            self._reservoir.take(self._flat_index[pos], out=row[d:])
        slot = self._slots[pos]
        if slot >= 0:
            self._reservoir[slot * d : slot * d + d] = row[:d]
        self._seen += 1


def _readonly(array: NDArray[np.intp]) -> NDArray[np.intp]:
    array.flags.writeable = False
    return array
