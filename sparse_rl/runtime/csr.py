"""Sparse (CSR) linear layers for the runtime's numpy backend, through ``scipy.sparse``.

A layer at 5% density does 20x fewer multiply-adds in CSR than dense. Plain numpy has no sparse
matmul (gathering the inputs and summing with ``reduceat`` was slower than a dense BLAS matmul
at every density we tried), so CSR layers use scipy's compiled kernels. scipy is imported only
when a layer is stored in CSR: a robot that keeps every layer dense needs numpy alone.
``Policy`` picks CSR per layer by density and width (``benchmarks/results/export_latency.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _scipy_sparse() -> Any:
    try:
        import scipy.sparse
    except ImportError:
        raise ImportError(
            "CSR layers need scipy (pip install scipy); or pass csr_max_density=0 to run every "
            "layer dense with numpy alone"
        ) from None
    return scipy.sparse


class CSRMatrix:
    """A ``(rows, cols)`` float32 matrix in compressed sparse rows."""

    def __init__(self, matrix: Any) -> None:
        self.matrix = matrix  # scipy.sparse.csr_array

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> CSRMatrix:
        """Store the non-zero entries of a 2-D array (as float32)."""
        dense = np.asarray(dense)
        if dense.ndim != 2:
            raise ValueError(f"CSRMatrix.from_dense needs a 2-D array, got shape {dense.shape}")
        matrix = _scipy_sparse().csr_array(dense.astype(np.float32))
        matrix.sort_indices()
        return cls(matrix)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.matrix.shape[0]), int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        """Number of stored values."""
        return int(self.matrix.nnz)

    @property
    def density(self) -> float:
        """Stored values over all entries."""
        return self.nnz / max(1, self.shape[0] * self.shape[1])

    def to_dense(self) -> np.ndarray:
        """The matrix as a dense float32 array."""
        return np.asarray(self.matrix.toarray(), dtype=np.float32)


def csr_matmul(x: np.ndarray, matrix: CSRMatrix) -> np.ndarray:
    """``x @ matrix.T`` for a batch ``x`` of shape ``(B, cols)``: ``(B, rows)`` float32.

    Computed as ``(W @ x.T).T`` with ``x.T`` made contiguous: scipy's CSR kernel then adds whole
    contiguous rows of the batch per stored weight.
    """
    if x.ndim != 2 or x.shape[1] != matrix.shape[1]:
        raise ValueError(
            f"csr_matmul: x has shape {x.shape}, matrix expects (B, {matrix.shape[1]})"
        )
    columns = np.ascontiguousarray(x.T, dtype=np.float32)
    return np.asarray(matrix.matrix @ columns, dtype=np.float32).T


def csr_linear(x: np.ndarray, matrix: CSRMatrix, bias: np.ndarray | None = None) -> np.ndarray:
    """A linear layer ``x @ W.T + b`` with ``W`` in CSR, for ``x`` of shape ``(B, in)``."""
    out = csr_matmul(x, matrix)
    if bias is not None:
        out = out + bias
    return out
