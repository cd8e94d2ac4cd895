"""NeuroTrails against a single network, TreeNet and a full ensemble on small tabular tasks
(issue 19).

Claim to test (NeuroTrails, arXiv 2505.17909): a shared trunk with several heads, the whole
model sparse with evolving topology, gives ensemble-class accuracy and calibration at the active
parameters of one dense model. Goals here, per problem, for NeuroTrails at the TreeNet split:
NLL and ECE below the single dense network's with non-overlapping 95% intervals; accuracy within
(or above) the full ensemble's 95% interval; head disagreement between TreeNet's and the full
ensemble's.

Problems. ``digits``: ``load_digits`` (64 grey levels / 16, 10 classes), per seed a stratified
75/25 split, 15% of the training part held out for early stopping, then a seeded random 30% of
the rest trained on (about 340 samples): the data-limited regime where ensembles help.
``digits-small``: the same with 10% (about 110 samples), a lever run on the main arms
(``run --problems digits-small --arms single full treenet neurotrails-0 neurotrails-1
neurotrails-2 neurotrails-3 neurotrails-0-d0.2 neurotrails-2-d0.2 neurotrails-0-h5``).
``synthetic``: ``make_classification`` (3000 × 40, 20 informative and 5 redundant columns,
10 classes of 2 clusters, class_sep 1.0, 5% flipped labels; fixed data, ``random_state=0``),
the same split without the 30% subset, standardised on the training part. ``language`` (the
transformer variant): next-token prediction on a generated language
(``MarkovLanguage(16, concentration=0.1)``: a random second-order Markov chain, fixed), 600
training, 100 validation and 400 test sequences of 32 tokens drawn per seed; every token is
one prediction in the metrics.

Network: ``mlp(features, (256, 256, 128), classes)``, an ``nn.Sequential`` of 4 Linear layers
with ReLU between them, initialised once per seed and shared by every arm; for ``language``,
``tiny_causal_lm(TinyLMConfig(vocab_size=16, dim=48, layers=3, attention_heads=4))``, where "K
shared layers" is the embedding and the first K transformer blocks (K = 0: nothing shared; the
last block, the final norm and the output layer are always per head). Arms, each a
:class:`MultiHeadEnsemble.split` of it (heads re-initialised under the seed):

- ``single``: one head, the whole network, dense;
- ``full``: 3 heads, nothing shared (independent networks), dense;
- ``treenet``: 3 heads, the first 2 Linear layers shared, dense;
- ``neurotrails-K``: 3 heads, the first K in 0-3 Linear layers shared, the whole model sparse
  (ERK over every layer; RigL every 10 steps, drop fraction 0.5 cosine-decayed to 0 at 75% of
  the planned steps: ``NEUROTRAILS_SPARSITY`` through ``fit``) at ``budget_density``, so its
  active parameters are at most the single network's. ``neurotrails-2`` is the TreeNet split;
- ``neurotrails-K-d0.2`` (K = 0, 2): the same at the paper's fixed density 0.2;
- ``neurotrails-1-x2``: ``neurotrails-1`` trained for twice the epochs (the paper scales a sparse
  LM's steps by 1/density);
- ``neurotrails-K-h5`` (K = 0, 1), ``neurotrails-0-h5-d0.2`` and ``neurotrails-0-h8``: five (or
  eight) heads instead of three in the same budget (or at density 0.2), run on the tabular
  problems (``run --problems digits synthetic --arms neurotrails-0-h5 neurotrails-1-h5
  neurotrails-0-h5-d0.2 neurotrails-0-h8``).

Training: ``fit`` with the mean of the heads' cross-entropies, Adam 1e-3, batch 64 (language:
3e-3, batch 32), a fixed 100 epochs on digits and 20 on the synthetic and language tasks
(``EPOCHS``: why), the weights and masks of the epoch of lowest validation loss kept. Metrics on
the test part, the prediction being the mean of the heads' logits: accuracy, NLL, ECE (15 fixed
bins), Brier; NLL and ECE also for the mean of probabilities; mean accuracy of the heads alone;
pairwise head disagreement; active and dense parameters; multiply-accumulates per sample at
active weights; training seconds.

Run (resumable, one thread per process; ``--jobs 2`` runs two processes)::

    python benchmarks/neurotrails.py run --jobs 2
    python benchmarks/neurotrails.py report

Rows go to ``results/neurotrails/rows.jsonl`` as they finish; ``report`` writes
``results/neurotrails.{md,png}`` with 95% bootstrap intervals over seeds. ``run --quick`` runs
tiny sizes with one seed into a temporary folder (or ``--out``), then reports there: a smoke
test, never results. The rows, the runner and the command line are those of ``_offline.py``;
the report by ``neurotrails_report.py``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import _offline as offline
import numpy as np

NAME = "neurotrails"
PROBLEMS = ("digits", "digits-small", "synthetic", "language")
#: Share of the digits training part trained on, per problem (the data-limited regime).
DIGITS_SHARE = {"digits": 0.3, "digits-small": 0.1}
HIDDEN = (256, 256, 128)
HEADS = 3
TREENET_SHARED = 2  # Linear layers in the trunk: the middle of 4
SEEDS = (0, 1, 2, 3, 4)
BATCH, LR = 64, 1e-3
#: Batch size and learning rate where a problem differs (a one-seed pilot: at 1e-3 the LM's
#: single network was still far from its best after 20 epochs).
TRAINING = {"language": (32, 3e-3)}
#: The language problem: vocabulary, sequence length, sequences per part.
VOCAB, LENGTH = 16, 32
SEQUENCES = {"train": 600, "val": 100, "test": 400}


@dataclass(frozen=True)
class Arm:
    """Linear layers in the shared trunk, heads, whether the whole model is sparse, and at what
    density (None: ``budget_density``, the active parameters of one dense network)."""

    shared: int
    heads: int
    sparse: bool
    density: float | None = None
    epochs_factor: int = 1  # × the problem's epochs (the paper scales a sparse LM's steps)


ARMS = {
    "single": Arm(0, 1, False),
    "full": Arm(0, HEADS, False),
    "treenet": Arm(TREENET_SHARED, HEADS, False),
    **{f"neurotrails-{k}": Arm(k, HEADS, True) for k in range(len(HIDDEN) + 1)},
    # The paper's fixed density (0.2, below one dense network's budget) at splits 0 and 2.
    **{f"neurotrails-{k}-d0.2": Arm(k, HEADS, True, 0.2) for k in (0, TREENET_SHARED)},
    # Twice the epochs at split 1 (the LM's best split): is 20 too short for a sparse LM?
    "neurotrails-1-x2": Arm(1, HEADS, True, None, 2),
    # More heads in the same budget: five sparser members instead of three.
    "neurotrails-0-h5": Arm(0, 5, True),
    "neurotrails-1-h5": Arm(1, 5, True),
    "neurotrails-0-h5-d0.2": Arm(0, 5, True, 0.2),
    "neurotrails-0-h8": Arm(0, 8, True),
}
MAIN = f"neurotrails-{TREENET_SHARED}"


#: Epochs per problem, each a fixed run whose best-validation epoch is kept: in a one-seed pilot
#: the dense single network's validation loss was lowest near epoch 40 on digits and epoch 8 on
#: the synthetic task. Early stopping with patience ended the synthetic runs long before the
#: updater's planned end, so the sparse arms were judged while half their weights were still
#: being replaced every 10 steps.
EPOCHS = {"digits": 100, "digits-small": 100, "synthetic": 20, "language": 20}


@dataclass(frozen=True)
class Scale:
    """Training budget: ``full`` for the results, ``quick`` for a smoke."""

    name: str
    epochs: int | None  # None: the problem's EPOCHS
    samples: int | None  # None: every sample of the problem


FULL = Scale("full", None, None)
QUICK = Scale("quick", 2, 500)
SCALES = {s.name: s for s in (FULL, QUICK)}


Cell = offline.ProblemCell


cells = offline.problem_cells


@cache
def split(problem: str, seed: int, samples: int | None) -> dict[str, Any]:
    """Train / validation / test tensors of one problem and seed (the same for every arm)."""
    import torch
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sparse_rl.supervised import random_subset
    from sparse_rl.supervised.language import MarkovLanguage

    if problem == "language":
        language = MarkovLanguage(VOCAB, 0.1, seed=0)
        scale = 1 if samples is None else max(samples / sum(SEQUENCES.values()), 0.05)
        return {
            part: language.sample(max(2, round(scale * n)), LENGTH, seed=10 * seed + i)
            for i, (part, n) in enumerate(SEQUENCES.items())
        }
    if problem in DIGITS_SHARE:
        digits = load_digits()
        x, y = digits.data / 16, digits.target
    elif problem == "synthetic":
        x, y = make_classification(
            n_samples=3000, n_features=40, n_informative=20, n_redundant=5, n_classes=10,
            n_clusters_per_class=2, class_sep=1.0, flip_y=0.05, random_state=0,
        )  # fmt: skip
    else:
        raise ValueError(f"problem={problem!r} is not valid; choose one of {list(PROBLEMS)}.")
    index = np.arange(len(y))
    if samples is not None:
        index = np.random.default_rng(0).permutation(len(y))[:samples]
    rest, test = train_test_split(index, test_size=0.25, random_state=seed, stratify=y[index])
    train, val = train_test_split(rest, test_size=0.15, random_state=seed, stratify=y[rest])
    if problem in DIGITS_SHARE:  # data-limited: a seeded random share of the training part
        train = train[random_subset(len(train), DIGITS_SHARE[problem], seed=seed).numpy()]
    if problem == "synthetic":  # standardised on the training part
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        x = (x - mean) / np.where(std > 0, std, 1.0)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y)
    return {part: (x[ix], y[ix]) for part, ix in (("train", train), ("val", val), ("test", test))}


def make_ensemble(arm: str, features: int, classes: int, seed: int) -> Any:
    """The seed's dense network and its split as ``arm`` says (``mlp`` alternates Linear and
    ReLU, so index ``2k`` leaves k Linear layers in the trunk)."""
    from sparse_rl.supervised import MultiHeadEnsemble, mlp
    from sparse_rl.supervised.language import TinyLMConfig, tiny_causal_lm

    from sparse_rl import sparse_nets as sn

    spec = ARMS[arm]
    with sn.seeded(seed):  # one initialisation per seed, shared by every arm
        if features == 0:  # the language model: index 1 + K is the cut after K blocks
            config = TinyLMConfig(vocab_size=classes, dim=48, layers=3, attention_heads=4)
            base = tiny_causal_lm(config)
            at = 0 if spec.shared == 0 else 1 + spec.shared
        else:
            base, at = mlp(features, HIDDEN, classes), 2 * spec.shared
    return base, MultiHeadEnsemble.split(base, at, spec.heads, seed=seed)


def run_cell(cell: Cell) -> dict[str, Any]:
    """Train one arm on one problem and seed; evaluate the combined prediction and the heads."""
    import torch
    from sparse_rl.supervised import (
        NEUROTRAILS_SPARSITY,
        MultiHeadEnsemble,
        active_parameters,
        budget_density,
        dense_parameters,
        ensemble_metrics,
        fit,
        forward_macs,
    )

    scale = SCALES[cell.scale]
    data = split(cell.problem, cell.seed, scale.samples)
    x, y = data["train"]
    language = cell.problem == "language"
    classes = VOCAB if language else int(torch.cat([y, data["val"][1], data["test"][1]]).max()) + 1
    base, model = make_ensemble(cell.arm, 0 if language else x.shape[1], classes, cell.seed)
    batch, lr = TRAINING.get(cell.problem, (BATCH, LR))
    sparsity = None
    if ARMS[cell.arm].sparse:
        density = ARMS[cell.arm].density or budget_density(model, dense_parameters(base))
        sparsity = {**NEUROTRAILS_SPARSITY, "density": density}
    start = time.perf_counter()
    history = fit(
        model, (x, y), data["val"], MultiHeadEnsemble.loss,
        epochs=(scale.epochs or EPOCHS[cell.problem]) * ARMS[cell.arm].epochs_factor,
        batch_size=batch, lr=lr, seed=cell.seed,
        sparsity=sparsity, metric=MultiHeadEnsemble.accuracy,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    x_test, y_test = data["test"]
    with torch.no_grad():
        outputs = model(x_test)
    by_logit = ensemble_metrics(outputs, y_test, "logit")
    by_prob = ensemble_metrics(outputs, y_test, "prob")
    parts = model.part_sparsity()
    return {
        **asdict(cell),
        "train_samples": len(y),
        "shared_layers": ARMS[cell.arm].shared,
        "heads": ARMS[cell.arm].heads,
        **by_logit,
        "nll_prob": by_prob["nll"],
        "ece_prob": by_prob["ece"],
        "active_parameters": active_parameters(model),
        "dense_parameters": dense_parameters(model),
        "single_parameters": dense_parameters(base),
        "macs": forward_macs(model, x_test[:1]),
        "head_density": [parts[f"heads.{i}"].density for i in range(model.num_heads)],
        "trunk_density": parts["trunk"].density if parts["trunk"].weights else None,
        "density": 1.0 if history.sparsity_stats is None else history.sparsity_stats.density,
        "best_epoch": history.best_epoch,
        "epochs_run": len(history),
        "seconds": seconds,
    }


def describe(row: dict[str, Any]) -> str:
    spread = "-" if row["disagreement"] is None else f"{row['disagreement']:.3f}"
    return (
        f"acc {row['accuracy']:.3f}, NLL {row['nll']:.3f}, ECE {row['ece']:.3f}, "
        f"disagreement {spread}, {row['active_parameters']} active, {row['seconds']:.1f} s"
    )


def main(argv: list[str] | None = None) -> None:
    offline.main(
        argv,
        sys.modules[__name__],
        what="train every missing (problem, arm, seed)",
        choices={"arms": tuple(ARMS), "problems": PROBLEMS},
    )


if __name__ == "__main__":
    main()
