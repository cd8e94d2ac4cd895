"""SEFT for language models (issue 22): Wanda and magnitude pruning, the Trainer callback
(resume, optimizer, logs, checkpoints), the plain export, tied heads and GPT-2's Conv1D.

Tiny models built from configs, data generated: nothing is downloaded."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn

transformers = pytest.importorskip("transformers")
from accelerate.optimizer import AcceleratedOptimizer  # noqa: E402
from sparse_rl.supervised.llm import (  # noqa: E402
    SparsityCallback,
    export_pretrained,
    measured_sparsity,
    prune_magnitude,
    prune_wanda,
    resolve_settings,
)
from transformers import (  # noqa: E402
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
    TrainingArguments,
)

VOCAB = 64


def tiny_llama(tied: bool = False, seed: int = 0) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=32, tie_word_embeddings=tied,
    )  # fmt: skip
    with sn.seeded(seed):
        return LlamaForCausalLM(config)


def tokens(n: int, seed: int = 0) -> Tensor:
    return torch.randint(0, VOCAB, (n, 16), generator=torch.Generator().manual_seed(seed))


class Tokens(torch.utils.data.Dataset):
    """Generated sequences, each its own label (causal LM)."""

    def __init__(self, n: int = 64) -> None:
        self.x = tokens(n, seed=1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"input_ids": self.x[i], "labels": self.x[i]}


# -- pruning --------------------------------------------------------------------------------------


def _two_linears() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(
            torch.tensor([[1.0, 2, 3, 4], [4, 3, 2, 1], [1, -1, 1, -1], [2, 2, 1, 1]])
        )
        model[0].bias.copy_(torch.tensor([0.5, -0.5, 0.0, 1.0]))
        model[1].weight.copy_(torch.tensor([[1.0, 2, 3, 4], [4, 3, 2, 1]]))
    return model


def _by_hand(w: Tensor, x: Tensor, keep: int) -> Tensor:
    score = w.abs() * x.reshape(-1, x.shape[-1]).pow(2).sum(0).sqrt()
    mask = torch.zeros_like(w, dtype=torch.bool)
    return mask.scatter_(1, torch.topk(score, keep, dim=1).indices, True)


@pytest.mark.parametrize("sequential", [True, False])
def test_wanda_scores_by_activation_norms(sequential: bool) -> None:
    """Wanda keeps, per output row, the largest |W|·‖X_j‖₂; sequentially the second layer sees
    the pruned first layer's outputs. Magnitude, blind to the inputs, chooses otherwise."""
    model = _two_linears()
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [10, 1, 1, 0.1]
    )
    masks = prune_wanda(model, [x[:16], x[16:]], 0.5, sequential=sequential)
    first = _by_hand(model[0].weight, x, 2)
    with torch.no_grad():
        w0 = model[0].weight * first if sequential else model[0].weight
        hidden = nn.functional.linear(x, w0, model[0].bias)
    assert torch.equal(masks["0"], first)
    assert torch.equal(masks["1"], _by_hand(model[1].weight, hidden, 2))
    magnitude = prune_magnitude(model, 0.5)
    assert not torch.equal(magnitude["0"], masks["0"])
    assert masks["0"][:, 0].all()  # the loud input survives in every row under Wanda
    assert torch.equal(model[0].weight, _two_linears()[0].weight)  # pruning leaves weights alone


def test_wanda_on_a_llama_counts_rows_and_skips_the_head() -> None:
    model = tiny_llama()
    batch = tokens(4)
    masks = prune_wanda(
        model, [{"input_ids": batch, "attention_mask": torch.ones_like(batch)}], 0.6
    )
    assert "lm_head" not in masks and len(masks) == 14  # 7 projections x 2 blocks
    for name, mask in masks.items():
        cols = mask.shape[1]
        assert torch.all(mask.sum(1) == cols - round(0.6 * cols)), name
    assert not any(torch.equal(masks[n], m) for n, m in prune_magnitude(model, 0.6).items())


def test_n_m_masks() -> None:
    model = tiny_llama()
    for masks in (
        prune_magnitude(model, 0.5, n_m=(2, 4)),
        prune_wanda(model, [tokens(2)], 0.5, n_m=(2, 4)),
    ):
        for mask in masks.values():
            assert torch.all(mask.reshape(mask.shape[0], -1, 4).sum(2) == 2)
    with pytest.raises(
        ValueError, match=r"n_m=\(2, 4\) prunes 0.5 .* sparsity=0.6; pass sparsity=0.5"
    ):
        prune_magnitude(model, 0.6, n_m=(2, 4))
    with pytest.raises(ValueError, match=r"layer '0' has 6 inputs, not a multiple of M=4"):
        prune_magnitude(nn.Sequential(nn.Linear(6, 2)), 0.5, n_m=(2, 4))
    with pytest.raises(ValueError, match=r"sparsity must lie in \[0, 1\), got 1.0"):
        prune_wanda(model, [tokens(2)], 1.0)


@pytest.mark.parametrize("family", ["mistral", "qwen2"])
def test_other_families_prune_and_train_sparse_in_a_torch_loop(family: str) -> None:
    """Mistral / Qwen-style models: nn.Linear projections, the same path; SEFT in a plain
    torch loop keeps each layer's pruned count exactly."""
    config_cls = {"mistral": transformers.MistralConfig, "qwen2": transformers.Qwen2Config}[family]
    model_cls = {"mistral": transformers.MistralForCausalLM, "qwen2": transformers.Qwen2ForCausalLM}
    config = config_cls(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    with sn.seeded(0):
        model = model_cls[family](config)
    masks = prune_wanda(model, [tokens(4)], 0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sparsity = sn.sparsify(model, optimizer, 0.5, updater=sn.SEFT(interval=1), init=masks)
    x = tokens(8, seed=3)
    for _ in range(3):
        loss = model(input_ids=x, labels=x).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    counts = {n: int(m.sum()) for n, m in masks.items()}
    assert {s.name: s.active for s in sparsity.stats().layers} == counts
    assert any(s.itop > s.density for s in sparsity.stats().layers)  # pruned positions regrown


def test_gpt2_conv1d_is_refused_by_name() -> None:
    config = transformers.GPT2Config(
        n_layer=1, n_embd=16, n_head=2, vocab_size=VOCAB, n_positions=16
    )
    model = transformers.GPT2LMHeadModel(config)
    with pytest.raises(ValueError, match=r"layer 'transformer.h.0.attn.c_attn' is a .*Conv1D"):
        prune_magnitude(model, 0.5)
    with pytest.raises(ValueError, match=r"Conv1D .*replace each Conv1D with an nn.Linear"):
        prune_wanda(model, [tokens(2)], 0.5)


def test_tied_head_is_never_sparsified() -> None:
    """With tie_word_embeddings the head is the input embedding: pruning and the callback leave
    it dense, and asking for it is refused rather than masking the embedding."""
    model = tiny_llama(tied=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    masks = prune_wanda(model, [tokens(4)], 0.5)
    assert "lm_head" not in masks
    with_head = prune_magnitude(model, 0.5, include_head=True)
    assert "lm_head" in with_head
    tied = r"layer 'lm_head' shares its weight with \['model.embed_tokens.weight'\]"
    with pytest.raises(ValueError, match=tied):
        sn.sparsify(model, None, 0.5, init=with_head)
    callback = SparsityCallback({"init": masks, "updater": sn.SEFT(interval=1)})
    args = _args(Path("/nonexistent"), steps=2, save=0)
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback])
    trainer.train()
    assert "lm_head" not in callback.sparsity.masks
    assert bool((model.model.embed_tokens.weight != 0).all())


# -- the Trainer callback -------------------------------------------------------------------------

STEPS, SAVE = 8, 4


def _args(out: Path, steps: int = STEPS, save: int = SAVE) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=8, learning_rate=1e-2,
        save_strategy="steps" if save else "no", save_steps=save or 1, logging_steps=save or 1,
        report_to="none", use_cpu=True, disable_tqdm=True, seed=0, data_seed=0,
    )  # fmt: skip


def _seft() -> sn.SEFT:
    # Updates at steps 2, 4 and 6; steps 7 and 8 train what step 6 grew (the export's zeros are
    # then exactly the pruned positions).
    return sn.SEFT(interval=2, drop_fraction=0.3, end_step=7)


def _run(out: Path, masks: dict[str, Tensor], resume: str | None = None) -> tuple[Any, ...]:
    model = tiny_llama()
    callback = SparsityCallback({"init": masks, "updater": _seft()})
    trainer = Trainer(model=model, args=_args(out), train_dataset=Tokens(), callbacks=[callback])
    trainer.train(resume_from_checkpoint=resume)
    return model, callback, trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One SEFT fine-tuning run of 8 steps, checkpoints at 4 and 8."""
    out = tmp_path_factory.mktemp("seft")
    masks = prune_wanda(tiny_llama(), [tokens(8)], 0.6)
    model, callback, trainer = _run(out, masks)
    return {"out": out, "masks": masks, "model": model, "callback": callback, "trainer": trainer}


def test_resume_keeps_masks_and_sparsity_state(run: dict[str, Any]) -> None:
    """A new Trainer resumed from checkpoint-4 ends with the very masks, sparsity state and
    weights of the uninterrupted run (lost masks would restart from the Wanda masks)."""
    out = run["out"]
    assert (out / "checkpoint-4" / "sparsity.pt").is_file()
    model, callback, _ = _run(out, run["masks"], resume=str(out / "checkpoint-4"))
    first, again = run["callback"].sparsity, callback.sparsity
    assert all(torch.equal(first.masks[n], m) for n, m in again.masks.items())
    assert any(not torch.equal(run["masks"][n], m) for n, m in again.masks.items())
    a, b = first.state_dict(), again.state_dict()
    assert a["step"] == b["step"] == STEPS
    for name, layer in a["layers"].items():
        assert torch.equal(layer["ever_active"], b["layers"][name]["ever_active"])
        assert layer["target"] == b["layers"][name]["target"]
    for (name, p), q in zip(run["model"].named_parameters(), model.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6), name


def test_seft_updates_keep_the_exact_pruned_counts(run: dict[str, Any]) -> None:
    stats = run["callback"].sparsity.stats()
    assert {s.name: s.active for s in stats.layers} == {
        n: int(m.sum()) for n, m in run["masks"].items()
    }
    assert all(s.itop > s.density for s in stats.layers)  # the updates did move weights


def test_the_inner_optimizer_is_attached(run: dict[str, Any]) -> None:
    trainer, sparsity = run["trainer"], run["callback"].sparsity
    assert isinstance(trainer.optimizer, AcceleratedOptimizer)
    assert sparsity.optimizer is trainer.optimizer.optimizer
    assert isinstance(sparsity.optimizer, torch.optim.AdamW)
    assert sparsity.step_count == trainer.state.global_step == STEPS


def test_stats_join_the_trainer_logs(run: dict[str, Any]) -> None:
    logged = [e for e in run["trainer"].state.log_history if "loss" in e]
    assert [e["step"] for e in logged] == [4, 8]
    density = run["callback"].sparsity.stats().density
    assert all(e["sparsity/density"] == pytest.approx(density) for e in logged)
    assert logged[-1]["sparsity/itop"] > logged[0]["sparsity/itop"] > density


def test_export_loads_in_the_stock_class_with_exact_sparsity(
    run: dict[str, Any], tmp_path: Path
) -> None:
    export_pretrained(run["model"], tmp_path)
    loaded = LlamaForCausalLM.from_pretrained(tmp_path)
    assert not any(k.endswith(sn.MASK) for k in loaded.state_dict())
    masks = run["callback"].sparsity.masks
    for name, got in measured_sparsity(loaded, masks).items():
        assert got == 1 - int(masks[name].sum()) / masks[name].numel(), name
    x = tokens(2, seed=5)
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, run["model"](x).logits, atol=1e-5)
    assert sn.MASK in run["model"].model.layers[0].mlp.up_proj._buffers  # the model stays sparse


def test_resume_without_sparsity_state_is_an_error(run: dict[str, Any], tmp_path: Path) -> None:
    shutil.copytree(run["out"] / "checkpoint-4", tmp_path / "checkpoint-4")
    (tmp_path / "checkpoint-4" / "sparsity.pt").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"resuming at step 4, but none of .* holds a sparsity.pt"
    ):
        _run(tmp_path, run["masks"], resume=str(tmp_path / "checkpoint-4"))


def test_a_callback_added_after_init_refuses_to_resume(run: dict[str, Any]) -> None:
    trainer = Trainer(model=tiny_llama(), args=_args(run["out"]), train_dataset=Tokens())
    trainer.add_callback(SparsityCallback({"init": run["masks"], "updater": _seft()}))
    with pytest.raises(RuntimeError, match=r"added after the Trainer was built"):
        trainer.train(resume_from_checkpoint=str(run["out"] / "checkpoint-4"))


def test_settings_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"settings: expected sn.SparsitySettings or a mapping"):
        SparsityCallback("seft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"needs the run's length .*max_steps"):
        resolve_settings({"density": 0.5, "updater": "seft"}, None)
    masks = {"a": torch.tensor([[True, False], [False, False]])}
    assert resolve_settings({"init": masks}, 100).density == 0.25
    default = resolve_settings({"density": 0.5}, 100).updater  # SEFT_SCHEDULE over 100 steps
    assert default == sn.SEFT(interval=20, drop_fraction=0.1, end_step=30)
    assert resolve_settings({"density": 0.5, "updater": "static"}, 100).updater.name == "static"


# -- the docs and the benchmark -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "seft.md"


def test_the_docs_python_blocks_run_as_written(tmp_path: Path, monkeypatch) -> None:
    """docs/seft.md's examples, in order, in one namespace (the second continues the first)."""
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), namespace)
    reloaded, masks = namespace["reloaded"], namespace["masks"]
    assert (tmp_path / "out" / "checkpoint-12" / "sparsity.pt").is_file()
    assert all(
        v == pytest.approx(0.6, abs=0.01) for v in measured_sparsity(reloaded, masks).values()
    )


@pytest.mark.slow
def test_the_benchmark_quick_path_runs_and_reports(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        bench = importlib.import_module("seft")
        bench.main(["run", "--quick", "--jobs", "1", "--out", str(tmp_path)])
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = [
        json.loads(line) for line in (tmp_path / "seft" / "rows.jsonl").read_text().splitlines()
    ]
    assert sorted(r["arm"] for r in rows) == sorted(bench.ARMS)
    by_arm = {r["arm"]: r for r in rows}
    for arm in ("none", "static", "seft", "lora"):
        assert by_arm[arm]["sparsity_min"] >= 0.59, arm
    assert by_arm["dense"]["sparsity_max"] < 0.01
    assert "## Goals" in (tmp_path / "seft.md").read_text()


def test_the_benchmark_new_skill_task_hides_its_tokens_from_pre_training() -> None:
    """The ``new`` task's point: Wanda's calibration (base language) never holds the unseen
    tokens, the fine-tuning set does, and both languages are proper distributions."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        bench = importlib.import_module("seft")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    scale = bench.QUICK
    seen = scale.vocab - round(bench.NEW_SHARE * scale.vocab)
    base, tuned = bench.languages(scale.vocab, "new")
    assert torch.allclose(base.sum(-1), torch.ones(base.shape[:2]))
    assert torch.allclose(tuned.sum(-1), torch.ones(tuned.shape[:2]))
    assert base[:, :, seen:].sum() == 0
    sets = bench.data(0, scale, "new")
    assert int(sets["calibration"].max()) < seen
    assert (sets["train"] >= seen).float().mean() > 0.1
    shift_base, _ = bench.languages(scale.vocab, "shift")
    assert shift_base[:, :, seen:].sum() > 0  # the main task uses every token
    with pytest.raises(ValueError, match=r"task='old'.*'shift', 'new'"):
        bench.languages(scale.vocab, "old")
