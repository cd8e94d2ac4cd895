"""NeuroTrails' multi-head ensembles: the checks fail for heads that share weights or start
equal, for a combined prediction that is not the mean of the heads' logits, for a sparse model
over one dense network's active parameters, and for training that loses its masks. Small MLPs
on generated data, a few epochs each."""

from __future__ import annotations

import copy
import importlib
import itertools
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from sparse_rl.supervised import (
    NEUROTRAILS_SPARSITY,
    MarkovLanguage,
    MultiHeadEnsemble,
    TinyLMConfig,
    active_parameters,
    budget_density,
    dense_parameters,
    ensemble_metrics,
    fit,
    forward_macs,
    metrics,
    mlp,
    tiny_causal_lm,
)
from torch import nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "neurotrails.md"


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes from the signs of two of ten columns."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def _base(seed: int = 0) -> nn.Sequential:
    with sn.seeded(seed):
        return mlp(10, (32, 32), 3)  # Linear, ReLU, Linear, ReLU, Linear


def _sharing_problems(ensemble: MultiHeadEnsemble) -> list[str]:
    """Pairs of heads that hold the same memory or start with equal weights."""
    problems = []
    for (i, a), (j, b) in itertools.combinations(enumerate(ensemble.heads), 2):
        for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            if p.untyped_storage().data_ptr() == q.untyped_storage().data_ptr():
                problems.append(f"heads {i} and {j} share the storage of {name}")
            elif torch.equal(p, q):
                problems.append(f"heads {i} and {j} have equal {name}")
    return problems


def test_split_heads_are_independent_and_the_check_sees_sharing() -> None:
    base = _base()
    for at in (0, 2, 4):
        assert _sharing_problems(MultiHeadEnsemble.split(base, at, 3, seed=1)) == []
    head = nn.Linear(4, 3)
    # a factory that hands out copies of one module: separate memory, equal weights
    equal = MultiHeadEnsemble(nn.Identity(), lambda: copy.deepcopy(head), 2)
    assert _sharing_problems(equal) == [
        "heads 0 and 1 have equal weight",
        "heads 0 and 1 have equal bias",
    ]
    # the same module twice, or one Linear inside two heads: the constructor refuses
    with pytest.raises(ValueError, match=r"heads\.0 and heads\.1 share weights"):
        MultiHeadEnsemble(nn.Identity(), lambda: head, 2)
    with pytest.raises(ValueError, match=r"heads\.0 and heads\.1 share weights"):
        MultiHeadEnsemble(nn.Identity(), lambda: nn.Sequential(head, nn.ReLU()), 2)
    with pytest.raises(ValueError, match=r"trunk and heads\.0 share weights"):
        MultiHeadEnsemble(head, lambda: nn.Sequential(head), 1)


def test_split_shapes_trunk_weights_and_seeds() -> None:
    base = _base()
    before = copy.deepcopy(base.state_dict())
    x = torch.randn(5, 10)
    for at in range(len(base)):
        ensemble = MultiHeadEnsemble.split(base, at, 3, seed=0)
        assert len(ensemble.trunk) == at and ensemble.num_heads == 3
        assert all(len(h) == len(base) - at for h in ensemble.heads)
        assert ensemble(x).shape == (5, 3, 3)
        for name, value in ensemble.trunk.state_dict().items():  # the model's own weights
            assert torch.equal(value, base.state_dict()[name]), name
        assert not any(p is q for p in ensemble.parameters() for q in base.parameters())
    full = MultiHeadEnsemble.split(base, 0, 2)
    assert len(full.trunk) == 0 and dense_parameters(full) == 2 * dense_parameters(base)
    for name, value in base.state_dict().items():  # the model is left as it was
        assert torch.equal(value, before[name]), name
    # the seed decides the heads' weights, without touching the caller's generator
    state = torch.get_rng_state()
    a, b = (MultiHeadEnsemble.split(base, 2, 2, seed=s) for s in (5, 5))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = MultiHeadEnsemble.split(base, 2, 2, seed=6)
    assert not torch.equal(a.heads[0][0].weight, c.heads[0][0].weight)


def test_forward_runs_the_trunk_once_into_every_head() -> None:
    ensemble = MultiHeadEnsemble.split(_base(), 2, 3, seed=0)
    x = torch.randn(7, 10)
    out = ensemble(x)
    features = ensemble.trunk(x)
    for i, head in enumerate(ensemble.heads):
        assert torch.allclose(out[:, i], head(features))


def test_combined_prediction_is_the_mean_of_the_heads_logits() -> None:
    ensemble = MultiHeadEnsemble.split(_base(), 2, 3, seed=0)
    x, y = _data(50, 1)
    heads = [head(ensemble.trunk(x)) for head in ensemble.heads]
    by_logit = torch.softmax(sum(heads) / 3, dim=1)
    by_prob = sum(torch.softmax(h, dim=1) for h in heads) / 3
    ensemble.train()
    assert torch.allclose(ensemble.predict_proba(x), by_logit, atol=1e-6)
    assert torch.allclose(ensemble.predict_proba(x, combine="prob"), by_prob, atol=1e-6)
    assert ensemble.training  # predict_proba evaluated in eval mode and put the mode back
    assert not torch.allclose(by_logit, by_prob, atol=1e-4)  # the two rules differ
    out = ensemble(x)
    assert torch.allclose(ensemble.combined_logits(out), sum(heads) / 3, atol=1e-6)
    per_head = torch.stack([F.cross_entropy(h, y) for h in heads]).mean()
    assert torch.allclose(ensemble.loss(out, y), per_head, atol=1e-6)
    # the metrics: of the combined prediction, of the heads alone, and their disagreement
    found = ensemble_metrics(out.detach(), y, "prob")
    assert found["nll"] == pytest.approx(metrics.nll(by_prob, y))
    assert found["ece"] == pytest.approx(metrics.ece(by_prob, y))
    assert found["accuracy"] == metrics.accuracy(by_prob, y)
    members = torch.stack(heads).detach()
    assert found["disagreement"] == metrics.disagreement(members) > 0
    assert found["member_accuracy"] == pytest.approx(
        sum(metrics.accuracy(h, y) for h in members) / 3
    )
    assert ensemble_metrics(out[:, :1].detach(), y)["disagreement"] is None


def test_neurotrails_stays_within_one_dense_model() -> None:
    base = _base()
    single = MultiHeadEnsemble.split(base, 0, 1)
    budget = dense_parameters(single)
    treenet = MultiHeadEnsemble.split(base, 2, 3)
    assert active_parameters(treenet) == dense_parameters(treenet) > budget
    for at in (0, 2, 4):
        model = MultiHeadEnsemble.split(base, at, 3)
        density = budget_density(model, budget)
        settings = sn.SparsitySettings(density=density, distribution="erk")
        settings.apply(model, None, seed=0)
        assert budget - 3 <= active_parameters(model) <= budget, at
        parts = model.part_sparsity()
        assert sum(p.active_parameters for p in parts.values()) == active_parameters(model)
        assert sum(p.active_weights for p in parts.values()) < sum(
            p.weights for p in parts.values()
        )
    # a density of 1/heads over independent networks misses: their biases stay dense
    naive = MultiHeadEnsemble.split(base, 0, 3)
    sn.SparsitySettings(density=1 / 3, distribution="erk").apply(naive, None, seed=0)
    biases = sum(m.bias.numel() for m in base if isinstance(m, nn.Linear))
    assert active_parameters(naive) == budget + 2 * biases


def test_counts_follow_the_masks() -> None:
    layer = nn.Linear(6, 4)
    sn.sparsify(layer, None, density=0.5, seed=0)
    assert active_parameters(layer) == 12 + 4 and dense_parameters(layer) == 28
    assert forward_macs(layer, torch.randn(3, 6)) == 12
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(50, 3))
    assert forward_macs(conv, torch.randn(2, 1, 5, 5)) == 18 * 25 + 150
    with torch.no_grad():
        conv[0].weight.zero_()  # zeros without a mask still count: only masks say inactive
    assert active_parameters(conv) == dense_parameters(conv)
    # splitting a sparse model: re-initialised heads keep their masks' zeros
    sparse = _base()
    sn.sparsify(sparse, None, density=0.5, seed=0)
    ensemble = MultiHeadEnsemble.split(sparse, 2, 2)
    for layer in [m for m in ensemble.modules() if isinstance(m, nn.Linear)]:
        assert torch.all(layer.weight[layer.weight_mask == 0] == 0)
    assert active_parameters(ensemble) == 2 * active_parameters(sparse) - active_parameters(
        sparse[:2]
    )


def test_fit_trains_the_ensemble_sparse_and_keeps_its_masks() -> None:
    x, y = _data(300, 0)
    base = _base()
    model = MultiHeadEnsemble.split(base, 2, 3, seed=0)
    density = budget_density(model, dense_parameters(base))
    history = fit(
        model, (x[:240], y[:240]), (x[240:], y[240:]), MultiHeadEnsemble.loss, epochs=12,
        batch_size=24, lr=1e-2, seed=0, metric=MultiHeadEnsemble.accuracy,
        sparsity={**NEUROTRAILS_SPARSITY, "density": density},
    )  # fmt: skip
    losses = history.column("train_loss")
    assert losses[-1] < 0.6 * losses[0]
    assert max(history.column("val_metric")) > 0.8
    assert history.sparsity.updater.drop_fraction == 0.5
    stats = history.sparsity_stats
    assert any(layer.itop > layer.density for layer in stats.layers)  # RigL moved weights
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 1 + 3 * 2 and len(stats.layers) == len(layers)  # trunk and heads
    for layer in layers:
        mask = layer.weight_mask
        assert torch.all(layer.weight[mask == 0] == 0)
    assert active_parameters(model) <= dense_parameters(base)
    assert {p.name for p in model.part_sparsity().values()} == {
        "trunk",
        *(f"heads.{i}" for i in range(3)),
    }


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: MultiHeadEnsemble(nn.Identity(), lambda: nn.Linear(2, 2), 0), "num_heads"),
        (lambda: MultiHeadEnsemble(nn.Identity(), lambda: nn.Linear(2, 2), 2.0), "num_heads"),
        (lambda: MultiHeadEnsemble(nn.Identity(), lambda: nn.Linear(2, 2), True), "num_heads"),
        (lambda: MultiHeadEnsemble(nn.Identity(), nn.Linear(2, 2), 2), "builds a new head"),
        (lambda: MultiHeadEnsemble(nn.Identity(), lambda: 3, 2), "returned int"),
        (lambda: MultiHeadEnsemble.split(_base(), 5, 2), r"at=5 .* \[0, 4\]"),
        (lambda: MultiHeadEnsemble.split(_base(), -1, 2), "at must be an integer >= 0"),
        (lambda: MultiHeadEnsemble.split(_base(), 2, 0), "num_heads"),
        (lambda: MultiHeadEnsemble.split(nn.Linear(2, 2), 0, 2), "nn.Sequential"),
        (lambda: MultiHeadEnsemble.split(nn.Sequential(_Scale()), 0, 2), "reset_parameters"),
        (lambda: budget_density(_base(), 10), "budget=10 is below the 67 parameters"),
        (lambda: budget_density(nn.Sequential(nn.ReLU()), 10), "no sparsifiable layer"),
        (lambda: MultiHeadEnsemble.loss(torch.zeros(4, 3), torch.zeros(4).long()), "shape"),
    ],
)
def test_bad_arguments_say_what_is_valid(call, match: str) -> None:
    with pytest.raises((ConfigError, ValueError, TypeError), match=match):
        call()


def test_bad_combine_names_the_parameter_and_the_choices() -> None:
    ensemble = MultiHeadEnsemble.split(_base(), 2, 2)
    message = re.escape("combine: 'mean' is not valid; choose one of ['logit', 'prob']")
    with pytest.raises(ValueError, match=message):
        ensemble.predict_proba(torch.zeros(2, 10), combine="mean")
    with pytest.raises(ValueError, match=message):
        ensemble_metrics(torch.zeros(2, 2, 3), torch.zeros(2).long(), "mean")


class _Scale(nn.Module):
    """A parameter without ``reset_parameters``: ``split`` cannot make heads differ here."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def test_the_docs_python_blocks_run_as_written(tmp_path: Path, monkeypatch) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(encoding="utf-8"), re.M | re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), {})


def test_the_benchmark_quick_path_runs_and_reports(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        bench = importlib.import_module("neurotrails")
        bench.main(
            ["run", "--quick", "--out", str(tmp_path), "--jobs", "1", "--problems", "synthetic",
             "--arms", "single", "full", "treenet", "neurotrails-2"]
        )  # fmt: skip
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = [json.loads(line) for line in (tmp_path / "neurotrails" / "rows.jsonl").open()]
    assert [r["arm"] for r in rows] == ["single", "full", "treenet", "neurotrails-2"]
    by_arm = {r["arm"]: r for r in rows}
    single = by_arm["single"]["active_parameters"]
    assert by_arm["full"]["active_parameters"] == 3 * single
    assert by_arm["neurotrails-2"]["active_parameters"] <= single
    assert by_arm["neurotrails-2"]["density"] < 1.0 and by_arm["single"]["disagreement"] is None
    md = (tmp_path / "neurotrails.md").read_text()
    assert "Quick smoke" in md and "| synthetic | neurotrails-2 | 1 | 2 | 3 |" in md
    assert (tmp_path / "neurotrails.png").stat().st_size > 10_000


# -- the transformer variant ------------------------------------------------------------------

LM = TinyLMConfig(vocab_size=8, dim=16, layers=2, attention_heads=2, context=12)


def test_the_tiny_lm_is_causal_and_its_ensemble_cuts_at_a_block() -> None:
    torch.manual_seed(0)
    base = tiny_causal_lm(LM)
    ids = torch.randint(0, 8, (3, 10))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 8
    with torch.no_grad():
        a, b = base(ids), base(changed)
    assert a.shape == (3, 10, 8)
    torch.testing.assert_close(a[:, :6], b[:, :6])  # no position reads a later token
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    model = MultiHeadEnsemble.split(base, 2, 3, seed=0)  # embedding + 1 block shared
    assert len(model.trunk) == 2 and len(model.heads[0]) == 3  # block, norm, output layer
    with torch.no_grad():
        outputs = model(ids)
    assert outputs.shape == (3, 3, 10, 8)
    heads = [F.cross_entropy(outputs[:, h].reshape(-1, 8), ids.reshape(-1)) for h in range(3)]
    torch.testing.assert_close(MultiHeadEnsemble.loss(outputs, ids), torch.stack(heads).mean())
    probs = model.predict_proba(ids)
    torch.testing.assert_close(probs, outputs.mean(1).softmax(-1))
    with pytest.raises(ValueError, match=r"targets of shape \(3,\) do not match"):
        MultiHeadEnsemble.loss(outputs, ids[:, 0])


def test_a_sparse_lm_ensemble_learns_the_generated_language() -> None:
    language = MarkovLanguage(8, 0.1, seed=0)
    x, y = language.sample(64, 12, seed=1)
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(language.sample(64, 12, seed=1)[0], x)
    torch.manual_seed(0)
    base = tiny_causal_lm(LM)
    model = MultiHeadEnsemble.split(base, 2, 2, seed=0)
    density = budget_density(model, dense_parameters(base))
    history = fit(model, (x, y), language.sample(32, 12, seed=2), MultiHeadEnsemble.loss,
                  epochs=6, batch_size=16, lr=3e-3, seed=0, metric=MultiHeadEnsemble.accuracy,
                  sparsity={**NEUROTRAILS_SPARSITY, "density": density})  # fmt: skip
    assert active_parameters(model) <= dense_parameters(base)
    assert history.column("val_loss")[-1] < history.column("val_loss")[0]
    test = language.sample(32, 12, seed=3)
    with torch.no_grad():
        scores = ensemble_metrics(model(test[0]), test[1])
    assert scores["nll"] < math.log(8) and 0.0 <= scores["disagreement"] <= 1.0
