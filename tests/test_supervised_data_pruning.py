"""Dynamic data pruning: the checks fail when ranks draw different kept sets, when InfoBatch's
weights leave the epoch loss biased, when a resumed sampler draws another sequence, when a
policy keeps the wrong samples or the wrong count, and when segments are dropped wrongly."""

from __future__ import annotations

import importlib
import io
import json
import math
import re
import sys
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
from helpers import run_gloo_workers
from sparse_rl.supervised import (
    POLICIES,
    DynamicPruningSampler,
    IndexedDataset,
    drop_timesteps,
    fit,
    mlp,
    train_epoch_pruned,
)
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from sparse_rl.validation import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "data_pruning.md"
BENCHMARKS = ROOT / "benchmarks"
WORLD = 2


def expected_count(n: int, keep: float) -> int:
    """``keep × n`` rounded half up, at least 1."""
    return max(1, math.floor(keep * n + 0.5))


def scored(n: int, policy: str, scores: np.ndarray, **kwargs) -> DynamicPruningSampler:
    sampler = DynamicPruningSampler(n, policy=policy, **kwargs)
    sampler.update(np.arange(n), scores)
    return sampler


def drawn(sampler: DynamicPruningSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


# -- counts, annealing and the policies -------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_len_is_keep_times_n_for_every_policy_and_epoch(policy: str) -> None:
    rng = np.random.default_rng(0)
    for n in (1, 7, 100, 333):
        for keep in (0.05, 0.3, 0.7, 1.0):
            sampler = DynamicPruningSampler(n, keep, policy, seed=1)
            for epoch in range(3):
                items = drawn(sampler, epoch)
                assert len(sampler) == len(items) == expected_count(n, keep), (n, keep, epoch)
                assert len(set(items)) == len(items) and all(0 <= i < n for i in items)
                assert sampler.stats().kept == len(items)
                sampler.update(items, rng.exponential(size=len(items)))  # half scored, then all


@pytest.mark.parametrize("policy", POLICIES)
def test_annealing_gives_all_data_in_the_last_epochs(policy: str) -> None:
    n = 50
    sampler = scored(n, policy, np.linspace(0, 1, n), keep=0.7, epochs=8, anneal=0.25)
    for epoch in range(8):
        items = drawn(sampler, epoch)
        if epoch >= 6:  # ceil((1 - 0.25) * 8) = 6
            assert sorted(items) == list(range(n)) and sampler.stats().full_data
            assert torch.equal(sampler.weights(items), torch.ones(n))
        else:
            assert len(items) == 35 and not sampler.stats().full_data
    infobatch = DynamicPruningSampler(n, epochs=10)  # the default 0.125: only the last epoch
    assert [infobatch.full_data(e) for e in range(10)] == [False] * 9 + [True]
    never = DynamicPruningSampler(n)  # no epochs: no annealing, however late
    assert len(drawn(never, 500)) == 35
    assert len(drawn(DynamicPruningSampler(n, epochs=8, anneal=0.0), 7)) == 35


def test_hardest_keeps_the_highest_scores_and_the_unscored_first() -> None:
    n = 200
    scores = np.random.default_rng(0).permutation(n).astype(float)
    sampler = scored(n, "hardest", scores, keep=0.7)
    assert set(drawn(sampler, 1)) == set(np.argsort(-scores)[:140].tolist())
    partly = DynamicPruningSampler(n, 0.7, "hardest")
    partly.update(np.arange(100), scores[:100])  # 100..199 unscored: kept first
    kept = set(drawn(partly, 1))
    assert set(range(100, 200)) <= kept
    assert kept - set(range(100, 200)) == set(np.argsort(-scores[:100])[:40].tolist())
    first = set(drawn(DynamicPruningSampler(n, 0.7, "hardest"), 0))  # all tied: not by index
    assert first != set(range(140))


def test_epsilon_greedy_keeps_the_greedy_part_and_draws_some_non_hardest() -> None:
    n, keep, epsilon = 200, 0.7, 0.2
    scores = np.random.default_rng(1).permutation(n).astype(float)
    ranked = np.argsort(-scores)
    for seed in range(5):
        sampler = scored(n, "epsilon_greedy", scores, keep=keep, epsilon=epsilon, seed=seed)
        kept = set(drawn(sampler, 1))
        assert len(kept) == 140 and set(ranked[:112].tolist()) <= kept  # 140 - round(0.2 * 140)
        assert kept - set(ranked[:140].tolist()), f"seed {seed}: only the hardest were drawn"
    greedy = scored(n, "epsilon_greedy", scores, keep=keep, epsilon=0.0)
    assert set(drawn(greedy, 1)) == set(ranked[:140].tolist())


def test_random_ignores_the_scores() -> None:
    n = 100
    a = scored(n, "random", np.arange(n, dtype=float), seed=4)
    b = scored(n, "random", -np.arange(n, dtype=float), seed=4)
    assert drawn(a, 2) == drawn(b, 2) and drawn(a, 3) != drawn(a, 2)
    assert torch.equal(a.weights(range(n)), torch.ones(n))


# -- InfoBatch: unbiased weights -------------------------------------------------------------


def _bias_z(estimates: list[float], truth: float) -> float:
    """|mean − truth| in standard errors of the mean over Monte Carlo draws."""
    values = np.asarray(estimates)
    return abs(values.mean() - truth) / (values.std(ddof=1) / math.sqrt(len(values)))


def test_infobatch_weights_keep_the_epoch_loss_unbiased() -> None:
    n, keep = 300, 0.7
    losses = np.random.default_rng(0).lognormal(0.0, 1.0, n)
    high = losses >= losses.mean()
    n_low, k = int((~high).sum()), expected_count(n, keep)
    weighted, unweighted = [], []
    for seed in range(400):
        sampler = scored(n, "infobatch", losses, keep=keep, seed=seed)
        kept = np.asarray(drawn(sampler, 1))
        w = sampler.weights(kept).double().numpy()
        assert set(np.flatnonzero(high)) <= set(kept.tolist())  # above the mean: always kept
        np.testing.assert_allclose(w.sum(), n)  # the weights stand for the whole data set
        np.testing.assert_allclose(w[~high[kept]], n_low / (k - high.sum()))
        weighted.append(float((w * losses[kept]).sum() / w.sum()))
        unweighted.append(float(losses[kept].mean()))
    truth = float(losses.mean())
    assert _bias_z(weighted, truth) < 4, "InfoBatch's weighted mean is biased"
    assert _bias_z(unweighted, truth) > 10, "the check cannot see the bias of unweighted losses"


# -- resuming ---------------------------------------------------------------------------------


def _losses(index: list[int], epoch: int) -> np.ndarray:
    return 2 + np.sin(np.asarray(index) * 1.7 + epoch)


def _batches(order: list[int], size: int = 16) -> Iterator[list[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


@pytest.mark.parametrize("policy", ["infobatch", "hardest", "epsilon_greedy"])
def test_a_resumed_sampler_draws_the_same_sequence(policy: str) -> None:
    """Saved mid-epoch 2, round-tripped through torch.save, loaded into a sampler made with
    another seed: the rest of epoch 2 and every later epoch are drawn as by the original."""
    make = partial(DynamicPruningSampler, 120, 0.7, policy, epochs=8)
    original, history, saved = make(seed=3), [], None
    for epoch in range(6):
        order = drawn(original, epoch)
        history.append((order, original.weights(order)))
        for b, batch in enumerate(_batches(order)):
            if (epoch, b) == (2, 3):
                buffer = io.BytesIO()
                torch.save(original.state_dict(), buffer)
                buffer.seek(0)
                saved = torch.load(buffer)
            original.update(batch, _losses(batch, epoch))
    resumed = make(seed=99)
    resumed.load_state_dict(saved)
    assert list(resumed) == history[2][0]  # the interrupted epoch, without a new set_epoch
    for b, batch in enumerate(_batches(history[2][0])):
        if b >= 3:
            resumed.update(batch, _losses(batch, 2))
    for epoch in range(3, 6):
        order = drawn(resumed, epoch)
        assert order == history[epoch][0], f"epoch {epoch} differs after resuming"
        assert torch.equal(resumed.weights(order), history[epoch][1])
        for batch in _batches(order):
            resumed.update(batch, _losses(batch, epoch))
    assert drawn(make(seed=3), 3) != history[3][0]  # without the scores the draw differs


def test_load_state_dict_refuses_another_sampler() -> None:
    state = DynamicPruningSampler(10).state_dict()
    with pytest.raises(ValueError, match="state_dict: n is 10 there but 12 here"):
        DynamicPruningSampler(12).load_state_dict(state)
    with pytest.raises(ValueError, match="policy is 'infobatch' there but 'random' here"):
        DynamicPruningSampler(10, policy="random").load_state_dict(state)


# -- two gloo ranks ---------------------------------------------------------------------------


def _rank_scores(index: list[int], rank: int, epoch: int) -> np.ndarray:
    """Scores that differ by rank: without gathering, the ranks' tables would differ."""
    return np.asarray(index) * (0.37 + rank) % 1.3 + 0.1 * epoch


def _worker(rank: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    try:
        record: dict[str, object] = {}
        for policy in ("infobatch", "hardest"):
            sampler = DynamicPruningSampler(51, 0.7, policy, seed=5)  # ranks from the group
            assert (sampler.num_replicas, sampler.rank) == (WORLD, rank)
            epochs = []
            for epoch in range(4):
                shard = drawn(sampler, epoch)
                plan = sampler.state_dict()["plan"]
                for batch in _batches(shard, 4):
                    sampler.update(batch, _rank_scores(batch, rank, epoch))
                extra = [] if rank == 0 else [0, 1, 2]  # batches of unequal size
                sampler.update(extra, _rank_scores(extra, rank, epoch))
                epochs.append(
                    {
                        "shard": shard,
                        "order": plan["order"].tolist(),
                        "scores": sampler.state_dict()["scores"],
                    }
                )
            record[policy] = epochs
        own = DynamicPruningSampler(
            20, 0.5, "hardest", score=lambda index: index.double() * (rank + 1) % 7
        )
        own.set_epoch(0)
        record["callable"] = own.state_dict()["scores"]
        torch.save(record, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # leave together (see tests/test_distributed.py)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_draw_the_same_kept_set(tmp_path: Path) -> None:
    """Two processes score their own shards with rank-specific values; after every epoch both
    hold the same table, draw the same kept set and shard it without overlap."""
    records = run_gloo_workers(_worker, tmp_path, WORLD)
    for policy in ("infobatch", "hardest"):
        orders = []
        for epoch, (a, b) in enumerate(zip(records[0][policy], records[1][policy], strict=True)):
            assert a["order"] == b["order"], f"{policy} epoch {epoch}: kept sets differ"
            assert torch.equal(a["scores"], b["scores"]), f"{policy} epoch {epoch}: tables differ"
            order = a["order"]
            assert len(order) == 36 and len(a["shard"]) == len(b["shard"]) == 18
            padded = np.resize(order, 36).tolist()
            assert a["shard"] == padded[0::2] and b["shard"] == padded[1::2]
            assert set(a["shard"]) | set(b["shard"]) == set(order)
            assert not set(a["shard"]) & set(b["shard"])
            finite = torch.isfinite(a["scores"])
            assert set(torch.nonzero(finite).flatten().tolist()) >= set(order)  # both shards scored
            orders.append(order)
        assert orders[0] != orders[1]  # re-drawn each epoch
    np.testing.assert_allclose(records[0]["callable"], np.arange(20) % 7)  # rank 0's scores
    assert torch.equal(records[0]["callable"], records[1]["callable"])


# -- drop_timesteps ---------------------------------------------------------------------------


def _coded(batch: int, steps: int) -> torch.Tensor:
    """Frame (b, t) holds (t + 1, b + 1): every kept frame says where it came from."""
    t = torch.arange(1, steps + 1, dtype=torch.float32)[None].expand(batch, steps)
    b = torch.arange(1, batch + 1, dtype=torch.float32)[:, None].expand(batch, steps)
    return torch.stack([t, b], dim=-1)


def test_drop_timesteps_keeps_the_right_share_in_order_and_in_segments() -> None:
    lengths = [50, 37, 10, 1, 0, 23]
    x = _coded(len(lengths), 50)
    out, new = drop_timesteps(x, torch.tensor(lengths), 0.7, span=5, seed=0)
    assert new.tolist() == [35, 26, 7, 1, 0, 16]  # 0.7 × L rounded half up, at least 1
    assert out.shape == (6, 35, 2)
    for row, (length, kept) in enumerate(zip(lengths, new.tolist(), strict=True)):
        times = out[row, :kept, 0].long().tolist()
        assert all(a < b for a, b in pairwise(times))  # in order
        assert all(1 <= t <= length for t in times) and (out[row, :kept, 1] == row + 1).all()
        assert (out[row, kept:] == 0).all()  # padding
        dropped = sorted(set(range(1, length + 1)) - set(times))
        runs = sum(1 for i, t in enumerate(dropped) if i == 0 or dropped[i - 1] != t - 1)
        assert runs <= math.ceil(len(dropped) / 5), f"row {row}: scattered frames dropped"
    again, _ = drop_timesteps(x, torch.tensor(lengths), 0.7, span=5, seed=0)
    other, _ = drop_timesteps(x, torch.tensor(lengths), 0.7, span=5, seed=1)
    assert torch.equal(out, again) and not torch.equal(out, other)
    same, full = drop_timesteps(x[:, :, 0], None, 1.0, seed=3)  # 2-D input, nothing dropped
    assert torch.equal(same, x[:, :, 0]) and full.tolist() == [50] * 6
    share = drop_timesteps(torch.zeros(64, 40, 3), torch.arange(1, 65) % 40 + 1, 0.8, seed=2)[1]
    assert abs(share.sum().item() / (torch.arange(1, 65) % 40 + 1).sum().item() - 0.8) < 0.01


# -- the training loop ------------------------------------------------------------------------


def test_indexed_dataset_puts_the_index_first() -> None:
    data = IndexedDataset(TensorDataset(torch.arange(5.0), torch.arange(5) * 2))
    index, x, y = data[3]
    assert (index, float(x), int(y)) == (3, 3.0, 6) and len(data) == 5
    assert IndexedDataset([7, 8])[1] == (1, 8)


def test_train_epoch_pruned_steps_on_the_weighted_loss_and_feeds_back_the_scores() -> None:
    n = 40
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, generator=generator), torch.randn(n, generator=generator)
    sampler = DynamicPruningSampler(n, 0.75, "infobatch", seed=0)
    sampler.update(range(n), np.linspace(0.1, 2.0, n))  # 10 of the 20 below the mean, weight 2
    sampler.set_epoch(1)
    loader = DataLoader(IndexedDataset(TensorDataset(x, y)), batch_size=n, sampler=sampler)
    model = nn.Linear(3, 1, bias=False)
    start = model.weight.detach().clone()
    order = list(sampler)
    weights = sampler.weights(order)
    assert sorted(weights.unique().tolist()) == [1.0, 2.0]  # the weighting is exercised

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (out[:, 0] - target) ** 2

    result = train_epoch_pruned(model, torch.optim.SGD(model.parameters(), lr=0.1), loader,
                                sampler, loss_fn)  # fmt: skip
    w = start.clone().requires_grad_(True)
    ((x[order] @ w[0] - y[order]) ** 2 * weights).mean().backward()
    torch.testing.assert_close(model.weight.detach(), start - 0.1 * w.grad)
    assert (result.samples, result.batches) == (30, 1)
    fed_back = sampler.state_dict()["scores"].numpy()[order]  # the losses before the step
    np.testing.assert_allclose(fed_back, ((x[order] @ start[0] - y[order]) ** 2).numpy(), 1e-5)
    with pytest.raises(ValueError, match="reduction='none'"):
        train_epoch_pruned(model, torch.optim.SGD(model.parameters(), lr=0.1), loader, sampler,
                           lambda out, target: F.mse_loss(out[:, 0], target))  # fmt: skip
    other = DataLoader(IndexedDataset(TensorDataset(x, y)), batch_size=4)
    with pytest.raises(ValueError, match="loader must draw from sampler"):
        train_epoch_pruned(model, torch.optim.SGD(model.parameters(), lr=0.1), other, sampler,
                           loss_fn)  # fmt: skip


def _fit_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] - x[:, 1] > 0).long()


def test_fit_with_a_sampler_trains_each_epoch_on_the_kept_share_and_plans_over_it() -> None:
    x, y = _fit_data(100)
    sampler = DynamicPruningSampler(100, 0.7, "infobatch", epochs=8, seed=1)
    torch.manual_seed(0)
    model = mlp(6, (16,), 2)
    steps: list[int] = []
    history = fit(model, (x[:100], y[:100]), _fit_data(140), epochs=8, batch_size=16, lr=1e-2,
                  sampler=sampler, sparsity={"density": 0.5},
                  on_batch=lambda *_: steps.append(1))  # fmt: skip
    assert history.column("samples") == [70] * 7 + [100]  # the last epoch is annealed
    assert len(steps) == 7 * 5 + 7  # ceil(70/16), ceil(100/16)
    assert history.sparsity is not None
    assert history.sparsity.updater.end_step == round(0.75 * len(steps))  # planned, not 8 × 7
    assert sampler.stats().scored == 100  # the per-sample losses went back as scores
    assert history.column("val_loss")[-1] < history.column("val_loss")[0]  # a batch mean
    dense = fit(mlp(6, (16,), 2), (x, y), epochs=2, batch_size=16, seed=1)
    assert dense.column("samples") == [100, 100]


def test_fit_refuses_a_sampler_made_for_other_data_or_another_length_of_run() -> None:
    x, y = _fit_data(50)
    with pytest.raises(ConfigError, match="made for 40 samples, train_data has 50"):
        fit(mlp(6, (8,), 2), (x, y), epochs=2, sampler=DynamicPruningSampler(40))
    with pytest.raises(ConfigError, match=r"epochs=5 .* fit's epochs=2"):
        fit(mlp(6, (8,), 2), (x, y), epochs=2, sampler=DynamicPruningSampler(50, epochs=5))
    with pytest.raises(ValueError, match="reduction='none'"):
        fit(mlp(6, (8,), 2), (x, y), None, lambda out, t: F.cross_entropy(out, t), epochs=1,
            sampler=DynamicPruningSampler(50))  # fmt: skip


def test_a_grown_sampler_keeps_the_old_scores_and_draws_the_new_samples_first() -> None:
    sampler = DynamicPruningSampler(10, 0.5, "hardest", seed=0)
    sampler.update(range(10), np.arange(10.0))
    sampler.grow(13)
    assert len(sampler) == 7 and sampler.stats().scored == 10
    sampler.set_epoch(1)
    assert set(sampler) == {10, 11, 12, 9, 8, 7, 6}  # unscored first, then the hardest
    with pytest.raises(ValueError, match="at least the current size 13, got 12"):
        sampler.grow(12)


# -- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: DynamicPruningSampler(10, keep=0), r"keep must lie in \(0, 1\], got 0"),
        (lambda: DynamicPruningSampler(10, keep=1.5), r"keep must lie in \(0, 1\], got 1.5"),
        (
            lambda: DynamicPruningSampler(10, policy="infobach"),
            r"policy: 'infobach' is not valid \(did you mean 'infobatch'\?\); choose one of "
            r"\['infobatch', 'random', 'hardest', 'epsilon_greedy'\]",
        ),
        (lambda: DynamicPruningSampler(10, anneal=1.0), r"anneal must lie in \[0, 1\), got 1.0"),
        (lambda: DynamicPruningSampler(10, epsilon=-0.1), r"epsilon must lie in \[0, 1\], got"),
        (
            lambda: DynamicPruningSampler(10, score="los"),
            r"score: 'los' is not valid; choose one of \['loss'\] or a callable",
        ),
        (lambda: DynamicPruningSampler(10, epochs=0), r"epochs must be an integer >= 1, got 0"),
        (lambda: DynamicPruningSampler(10, seed=-1), r"seed must be an integer >= 0, got -1"),
        (lambda: DynamicPruningSampler(0), r"dataset_or_length must be an integer >= 1, got 0"),
        (lambda: DynamicPruningSampler(10, shuffle="yes"), r"shuffle must be True or False"),
        (
            lambda: DynamicPruningSampler(10, num_replicas=2, rank=2),
            r"rank: 2 is not valid; choose an integer in \[0, 1\]",
        ),
        (lambda: DynamicPruningSampler(10).set_epoch(-1), r"epoch must be an integer >= 0"),
        (lambda: DynamicPruningSampler(10).update([0, 1], [1.0]), r"must have shape \(2,\)"),
        (lambda: DynamicPruningSampler(10).update([0], [math.nan]), r"scores must be finite"),
        (lambda: DynamicPruningSampler(10).update([10], [1.0]), r"indices must lie in \[0, 9\]"),
        (lambda: DynamicPruningSampler(10).weights([0.5]), r"indices must be a 1-D sequence"),
        (lambda: drop_timesteps(torch.zeros(2, 5), keep=0, seed=0), r"keep must lie in \(0, 1\]"),
        (lambda: drop_timesteps(torch.zeros(2, 5), span=0, seed=0), r"span must be an integer"),
        (lambda: drop_timesteps(torch.zeros(2, 5), [3, 6], seed=0), r"lengths must lie in \[0, 5"),
        (lambda: drop_timesteps(torch.zeros(5), seed=0), r"x must be a tensor \(batch, time"),
    ],
)
def test_bad_arguments_say_what_is_valid(call, match: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=match):
        call()


# -- the docs ---------------------------------------------------------------------------------


def test_every_python_block_of_the_docs_runs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), {})
    table = text[text.index("| policy | kept | weights |") :].split("\n\n")[0]
    assert re.findall(r"^\| `(\w+)` \|", table, re.M) == list(POLICIES)


# -- the benchmark ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench() -> Iterator[SimpleNamespace]:
    """The benchmark scripts, imported the way they import each other when run."""
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        names = ("data_pruning", "data_pruning_report")
        yield SimpleNamespace(**{n: importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_benchmark_quick_runs_resumes_and_reports(
    bench: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--quick", "--out", str(tmp_path), "--jobs", "1", "--problems", "digits"]
    args += ["sequences", "--arms", "full", "infobatch-70", "equal-compute", "timesteps-70"]
    bench.data_pruning.main(args)
    path = tmp_path / "data_pruning" / "rows.jsonl"
    rows = {(r["problem"], r["arm"]): r for r in map(json.loads, path.read_text().splitlines())}
    assert len(rows) == 7 and ("digits", "timesteps-70") not in rows
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and len(row["curve"]) == row["epochs"]
    assert rows[("digits", "infobatch-70")]["samples_share"] == pytest.approx(0.7, abs=0.01)
    assert rows[("digits", "equal-compute")]["epochs"] == 2  # round(3 × 0.7)
    steps = rows[("sequences", "timesteps-70")]
    assert steps["samples_share"] == 1 and steps["frames_share"] == pytest.approx(0.7, abs=0.02)
    md = (tmp_path / "data_pruning.md").read_text()
    assert "Quick smoke" in md and "| digits | infobatch-70 | 1 |" in md
    assert (tmp_path / "data_pruning.png").stat().st_size > 10_000
    capsys.readouterr()
    bench.data_pruning.main(args)
    assert "0 runs to do, 7 done" in capsys.readouterr().out
    target = bench.data_pruning.offline.RESULTS / "smoke"
    with pytest.raises(SystemExit, match="outside"):
        bench.data_pruning.main(["run", "--quick", "--out", str(target)])
    assert not target.exists()


def _row(arm: str, seed: int, accuracy: float, seconds: float, share: float) -> dict:
    curve = [[500 * share, accuracy - 0.1, share / 2], [1000 * share, accuracy, share]]
    return {"problem": "synthetic", "arm": arm, "seed": seed, "scale": "full", "epochs": 16,
            "accuracy": accuracy, "samples_seen": 1000 * share, "samples_share": share,
            "compute_share": share, "seconds": seconds, "curve": curve}  # fmt: skip


def test_benchmark_report_judges_the_goal(bench: SimpleNamespace, tmp_path: Path) -> None:
    """Made-up rows: infobatch ties full and beats equal-compute (met); hardest falls below
    both (not met); infobatch's time is 0.7 of full's (a 30% saving)."""
    rows = []
    for seed, j in enumerate((-0.004, 0.0, 0.004, 0.002, -0.002)):
        rows += [
            _row("full", seed, 0.90 + j, 10.0, 1.0),
            _row("equal-compute", seed, 0.88 + j, 7.5, 0.75),
            _row("infobatch-70", seed, 0.90 + j, 7.0, 0.74),
            _row("hardest-70", seed, 0.85 + j, 7.2, 0.74),
        ]
    md = bench.data_pruning_report.write_report(rows, tmp_path, "python z report").read_text()
    assert "Quick smoke" not in md and "`python z report`" in md
    assert "Goal met in 1 of 2 (problem, arm) cells: synthetic/infobatch-70." in md
    assert re.search(
        r"\| synthetic \| infobatch-70 \| 0.74 \|.*\| within .*\| better .*\| met \|", md
    )
    assert re.search(r"\| synthetic \| hardest-70 \|.*\| below .*\| worse .*\| not met \|", md)
    assert "Measured wall-time saving of infobatch-70 against full data: synthetic 30%." in md
    one = [r for r in rows if r["seed"] == 0]
    md = bench.data_pruning_report.write_report(one, tmp_path, "python z report").read_text()
    assert "Goal met in 0 of 2" in md and "one seed: no interval" in md
