"""A tiny causal language model built from a config, and a generated language to train it on,
offline: NeuroTrails' transformer variant, whose heads are the last blocks of the model.

The model is an ``nn.Sequential`` (embedding, blocks, final norm, output layer), so
:meth:`MultiHeadEnsemble.split` cuts it at a block like any other network, and its attention and
MLP projections are plain ``nn.Linear`` layers the sparse core masks. The language is a random
second-order Markov chain: its true next-token distribution is known, so the held-out
cross-entropy has a floor (:attr:`MarkovLanguage.entropy`) to read results against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl.validation import check_int, check_number


@dataclass(frozen=True)
class TinyLMConfig:
    """Sizes of :func:`tiny_causal_lm`: vocabulary, width, blocks, attention heads, the longest
    sequence (learned positions), and the MLP's width as a multiple of ``dim``."""

    vocab_size: int = 32
    dim: int = 64
    layers: int = 4
    attention_heads: int = 4
    context: int = 32
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "layers", "attention_heads", "context", "mlp_ratio"):
            check_int(name, getattr(self, name))
        if self.dim % self.attention_heads:
            raise ValueError(
                f"dim={self.dim} must be a multiple of attention_heads={self.attention_heads}."
            )


class TokenEmbedding(nn.Module):
    """Token plus learned position embeddings: ``(batch, time)`` ids to ``(batch, time, dim)``."""

    def __init__(self, vocab_size: int, dim: int, context: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(context, dim)

    def forward(self, ids: Tensor) -> Tensor:
        if ids.shape[-1] > self.positions.num_embeddings:
            raise ValueError(
                f"sequences of {ids.shape[-1]} tokens exceed the context of "
                f"{self.positions.num_embeddings}."
            )
        positions = torch.arange(ids.shape[-1], device=ids.device)
        return self.tokens(ids) + self.positions(positions)


class CausalBlock(nn.Module):
    """A pre-norm transformer block: causal self-attention, then an MLP, each residual. The four
    attention projections are separate ``nn.Linear`` layers so each gets its own mask."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        h = self.norm1(x)
        q, k, v = (p(h).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.query, self.key, self.value))  # fmt: skip
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


def tiny_causal_lm(config: TinyLMConfig | None = None) -> nn.Sequential:
    """``TokenEmbedding, CausalBlock × layers, LayerNorm, Linear``: ``(batch, time)`` token ids
    to ``(batch, time, vocab)`` next-token logits. Index ``1 + k`` is the cut after ``k``
    blocks for :meth:`MultiHeadEnsemble.split`."""
    c = TinyLMConfig() if config is None else config
    blocks = [CausalBlock(c.dim, c.attention_heads, c.mlp_ratio) for _ in range(c.layers)]
    return nn.Sequential(
        TokenEmbedding(c.vocab_size, c.dim, c.context),
        *blocks,
        nn.LayerNorm(c.dim),
        nn.Linear(c.dim, c.vocab_size),
    )


class MarkovLanguage:
    """A random second-order Markov chain over ``vocab_size`` tokens: each pair of previous
    tokens has its own next-token distribution, drawn from a Dirichlet with concentration
    ``concentration`` (small: a few likely successors). Fixed by ``seed``."""

    def __init__(self, vocab_size: int = 32, concentration: float = 0.1, seed: int = 0) -> None:
        self.vocab_size = check_int("vocab_size", vocab_size, 2)
        check_number("concentration", concentration, low=0, low_open=True)
        rng = np.random.default_rng(check_int("seed", seed, 0))
        alpha = np.full(self.vocab_size, float(concentration))
        self.table = rng.dirichlet(alpha, size=(self.vocab_size, self.vocab_size))

    @property
    def entropy(self) -> float:
        """Mean entropy (nats) of the next token over contexts drawn uniformly: roughly the
        lowest held-out cross-entropy a model can reach (the visited contexts weigh it)."""
        p = self.table
        return float(-(p * np.log(np.clip(p, 1e-30, None))).sum(-1).mean())

    def sample(self, sequences: int, length: int, seed: int) -> tuple[Tensor, Tensor]:
        """``(inputs, targets)``, both ``(sequences, length)`` int64: targets are the inputs
        shifted by one token (next-token prediction); the first two tokens are uniform."""
        n, t = check_int("sequences", sequences), check_int("length", length, 2)
        rng = np.random.default_rng(check_int("seed", seed, 0))
        tokens = np.empty((n, t + 1), dtype=np.int64)
        tokens[:, :2] = rng.integers(0, self.vocab_size, size=(n, 2))
        cumulative = self.table.cumsum(-1)
        for i in range(2, t + 1):
            rows = cumulative[tokens[:, i - 2], tokens[:, i - 1]]
            draws = rng.random((n, 1))
            tokens[:, i] = np.minimum((rows < draws).sum(-1), self.vocab_size - 1)
        data = torch.from_numpy(tokens)
        return data[:, :-1].contiguous(), data[:, 1:].contiguous()
