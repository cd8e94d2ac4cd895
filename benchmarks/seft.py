"""SEFT against static-mask fine-tuning, LoRA* and dense fine-tuning of a pruned tiny LLaMA on a
generated language (issue 22).

Claim to test (SEFT, arXiv 2505.24037): fine-tuning a pruned language model while its sparse
topology evolves (drop by magnitude, grow by gradient, prune back to the exact sparsity by
sensitivity) beats keeping the pruned mask fixed and beats LoRA merged then re-pruned (LoRA*),
at the same sparsity. Goals here: SEFT's held-out loss below static-mask fine-tuning's and
LoRA*'s with disjoint 95% intervals, and closing at least half of the gap between the pruned
model (no fine-tuning) and dense fine-tuning.

Language. A mixture of ``TOPICS`` first-order Markov chains over ``vocab`` tokens: each sequence
draws a topic, then every token's successor from that topic's row, which puts its mass on
``SUCCESSORS`` tokens (Dirichlet(1) weights) plus 5% spread over all tokens; so a model must
infer the topic from the context and look up the topic's successors. The fine-tuning task is
the same language shifted: in every topic, a ``SHIFT`` share of the tokens get new successors,
and one new topic is added. Languages are fixed (seed 0); a benchmark seed draws the model's
initialisation, the data samples and their order.

Pipeline per seed (``LlamaForCausalLM``, vocab 128, hidden 64, intermediate 172, 4 layers, 4
heads, built from a config; sequences of 64 tokens, batches of 16): pre-train on the base
language for 1500 steps (AdamW 3e-3, warm-up then cosine), cached in
``results/seft/pretrained/`` as safetensors keyed by seed and settings and shared by the arms;
prune every projection (not ``lm_head``) to 60% sparsity with Wanda (sequential, 64 calibration
sequences of the base language; each row keeps ``cols − round(0.6·cols)`` weights, so 59.4% in
the 64-input layers). Arms, each fine-tuned for 600 steps with ``transformers.Trainer`` (AdamW,
warm-up then cosine, batch 16) on 2000 sequences of the shifted task:

- ``none``: the pruned model, not fine-tuned;
- ``static``: the Wanda mask kept (``SparsityCallback`` with the static updater);
- ``seft``: ``SparsityCallback`` with SEFT (``SEFT_ARM``: interval, drop fraction, share removed
  by sensitivity, updates stopped before the end);
- ``lora``: LoRA* (peft LoRA on every projection of the pruned model, merged, then re-pruned to
  60% with Wanda on the fine-tuning data);
- ``dense``: the unpruned pre-trained model fine-tuned dense (the upper bound).

Levers (run only when named, e.g. ``--arms seft-late``): ``seft-late`` (updates until 80% of the
steps, the first setting tried), ``seft-magnitude`` (no sensitivity share: RigL's drop rule;
updates until 50%), ``seft-gentle`` (an update every 10 steps replacing 5%, until 50%),
``static-lr1e-3`` (the first learning rate tried); the pipeline pruned to 80% instead of 60%
(``none-s80``, ``static-s80``, ``seft-s80``, ``seft-magnitude-s80``, ``lora-s80``), where the
pruned mask leaves more for fine-tuning to recover; and a new skill instead of a shift (arms
``*-new``, task ``new``): pre-training never shows the last ``NEW_SHARE`` of the vocabulary, so
Wanda's calibration never sees them, and the fine-tuning language uses them (``languages``).
The learning rate (3e-3 for all but LoRA*) and
``SEFT_ARM`` were chosen on the validation split of ``PILOT_SEEDS`` (100, 101), never on the
benchmark's seeds or held-out sets.

Every arm's model is saved with ``export_pretrained`` (or ``save_pretrained``) and loaded back
with the stock ``LlamaForCausalLM.from_pretrained``; that model is measured: held-out loss
(mean token cross-entropy on sequences of the shifted task never trained on), the exact share
of zero weights of each projection, peak resident memory above the arm's start (VmHWM, reset per
arm), and wall seconds of the fine-tuning (LoRA*: with merging and re-pruning).

Run (resumable, one thread per process)::

    python benchmarks/seft.py run --jobs 1
    python benchmarks/seft.py run --jobs 1 --arms seft-late seft-magnitude
    python benchmarks/seft.py run --jobs 1 --seeds 100 101 --arms static seft seft-late
    python benchmarks/seft.py run --jobs 1 --seeds 100 101 --arms seft-magnitude seft-gentle
    python benchmarks/seft.py run --jobs 1 --seeds 100 101 --arms static-lr1e-3
    python benchmarks/seft.py run --jobs 1 --arms none-s80 static-s80 seft-s80 lora-s80
    python benchmarks/seft.py run --jobs 1 --arms seft-magnitude-s80
    python benchmarks/seft.py run --jobs 1 --arms none-new static-new seft-new dense-new
    python benchmarks/seft.py run --jobs 1 --arms seft-magnitude-new
    python benchmarks/seft.py run --jobs 1 --seeds 100 101 --arms static-new seft-new \
        seft-magnitude-new seft-magnitude-late-new seft-magnitude-wide-new
    python benchmarks/seft.py report

Rows go to ``results/seft/rows.jsonl`` as they finish; ``report`` writes
``results/seft.{md,png}`` with 95% bootstrap intervals over seeds. ``run --quick`` runs tiny
sizes with one seed into a temporary folder (or ``--out``), then reports there: a smoke test,
never results. The rows, the runner and the command line are those of ``_offline.py``; the
report by ``seft_report.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import gc
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import _offline as offline

NAME = "seft"
ARMS = ("none", "static", "seft", "lora", "dense")
#: Levers, run only when named (``--arms seft-late ...``): an arm with settings changed, SEFT's
#: (``SEFT_ARM`` keys) or the learning rate ``lr``.
LEVER_ARMS: dict[str, tuple[str, dict[str, float]]] = {
    "seft-late": ("seft", {"stop_at": 0.8}),  # updates until 80% of the steps (the first try)
    "seft-magnitude": ("seft", {"sensitivity_fraction": 0.0, "stop_at": 0.5}),  # RigL's rule
    "seft-gentle": ("seft", {"interval": 10, "drop_fraction": 0.05, "stop_at": 0.5}),
    "static-lr1e-3": ("static", {"lr": 1e-3}),
    # The same pipeline pruned to 80%: where the pruned mask leaves more to recover.
    **{f"{arm}-s80": (arm, {"sparsity": 0.8}) for arm in ("none", "static", "seft", "lora")},
    "seft-magnitude-s80": ("seft", {"sensitivity_fraction": 0.0, "stop_at": 0.5, "sparsity": 0.8}),
    # A new skill: tokens pre-training never showed (``task`` "new", see ``languages``).
    **{f"{arm}-new": (arm, {"task": "new"}) for arm in ("none", "static", "seft", "dense")},
    "seft-magnitude-new": ("seft", {"sensitivity_fraction": 0.0, "stop_at": 0.5, "task": "new"}),
    # Reselection with more room on the new skill (chosen on the pilot seeds' validation split).
    "seft-magnitude-late-new": (
        "seft",
        {"sensitivity_fraction": 0.0, "stop_at": 0.8, "task": "new"},
    ),
    "seft-magnitude-wide-new": (
        "seft",
        {"sensitivity_fraction": 0.0, "drop_fraction": 0.3, "stop_at": 0.5, "task": "new"},
    ),
}
SEEDS = (0, 1, 2, 3, 4)
#: Seeds the levers were chosen on (validation split), apart from the benchmark's.
PILOT_SEEDS = (100, 101)
SPARSITY = 0.6
TOPICS, SUCCESSORS, SHIFT, NOISE = 4, 3, 0.5, 0.05
LANGUAGE_SEED = 0
#: Task ``new``: the share of the vocabulary (its last tokens) that pre-training never shows.
NEW_SHARE = 0.25
TASKS = ("shift", "new")


@dataclass(frozen=True)
class Scale:
    """Sizes and training budgets: ``full`` for the results, ``quick`` for a smoke."""

    name: str
    vocab: int = 128
    hidden: int = 64
    intermediate: int = 172
    layers: int = 4
    heads: int = 4
    length: int = 64
    batch: int = 16
    pretrain_steps: int = 1500
    pretrain_lr: float = 3e-3
    steps: int = 600  # fine-tuning steps, every arm
    lr: float = 3e-3  # fine-tuning, static / SEFT / dense
    lora_lr: float = 3e-3
    lora_rank: int = 8
    train_sequences: int = 2000  # the finite fine-tuning set
    held_out: int = 512
    calibration: int = 64


FULL = Scale("full")
QUICK = Scale(
    "quick", vocab=32, hidden=32, intermediate=64, layers=2, length=16, batch=8,
    pretrain_steps=20, steps=12, train_sequences=64, held_out=32, calibration=8,
)  # fmt: skip
SCALES = {s.name: s for s in (FULL, QUICK)}

#: SEFT's settings in the ``seft`` arm: an update every 20 steps replacing 10% of each layer's
#: weights, half of them removed by sensitivity, no update after 30% of the steps (chosen on the
#: validation split of pilot seeds 100 and 101, see the report's levers).
SEFT_ARM = {"interval": 20, "drop_fraction": 0.1, "sensitivity_fraction": 0.5, "stop_at": 0.3}


@dataclass(frozen=True)
class Cell(offline.Cell):
    arm: str
    seed: int
    scale: str = "full"


def cells(args: argparse.Namespace) -> list[Cell]:
    """Every (seed, arm) of the command line, a seed's arms together (they share its model);
    the lever arms only when named (``--arms`` left out means the five main arms)."""
    arms = ARMS if list(args.arms) == [*ARMS, *LEVER_ARMS] else args.arms
    return [Cell(a, seed, args.scale) for seed in args.seeds for a in arms]


# -- the language -------------------------------------------------------------------------------


@cache
def languages(vocab: int, task: str = "shift") -> tuple[Any, Any]:
    """Transition tensors (topics, vocab, vocab) of the base (pre-training) language and of the
    fine-tuning one. ``shift``: the same tokens, new successors. ``new``: the base language
    lives on the first ``1 - NEW_SHARE`` of the tokens (the others never occur); the fine-tuning
    language is shifted the same way over every token, and every unseen token's row is new."""
    import torch

    if task not in TASKS:
        raise ValueError(f"task={task!r} is not valid; choose one of {list(TASKS)}.")
    seen = vocab if task == "shift" else vocab - round(NEW_SHARE * vocab)
    gen = torch.Generator().manual_seed(LANGUAGE_SEED + (task != "shift"))

    def rows(topics: int, among: int = vocab) -> Any:
        out = torch.zeros(topics, vocab, vocab)
        out[:, :, :among] = NOISE / among
        for k in range(topics):
            for a in range(vocab):
                successors = torch.randperm(among, generator=gen)[:SUCCESSORS]
                weights = torch.distributions.Dirichlet(torch.ones(SUCCESSORS)).sample()
                out[k, a, successors] += (1 - NOISE) * weights
        return out

    with torch.random.fork_rng():
        torch.manual_seed(LANGUAGE_SEED + (task != "shift"))  # the Dirichlet draws
        base = rows(TOPICS, seen)
        shifted = torch.cat([base, rows(1)])
        fresh = rows(TOPICS)
        changed = torch.rand(TOPICS, vocab, generator=gen) < SHIFT
        changed[:, seen:] = True
        shifted[:TOPICS][changed] = fresh[changed]
    return base, shifted


def sample(transitions: Any, n: int, length: int, gen: Any) -> Any:
    """``n`` sequences of ``length`` tokens: a topic each, a uniform first token among those
    that occur, then Markov."""
    import torch

    topics, _, _ = transitions.shape
    occurring = torch.nonzero(transitions.sum((0, 1)) > 0).squeeze(1)  # every token, or the seen
    topic = torch.randint(topics, (n,), generator=gen)
    out = torch.empty(n, length, dtype=torch.long)
    out[:, 0] = occurring[torch.randint(len(occurring), (n,), generator=gen)]
    for t in range(1, length):
        probs = transitions[topic, out[:, t - 1]]
        out[:, t] = torch.multinomial(probs, 1, generator=gen).squeeze(1)
    return out


def data(seed: int, scale: Scale, task: str = "shift") -> dict[str, Any]:
    """The seed's calibration (base language), fine-tuning, validation and held-out sets."""
    import torch

    base, shifted = languages(scale.vocab, task)
    gen = torch.Generator().manual_seed(10_000 + seed)
    return {
        "calibration": sample(base, scale.calibration, scale.length, gen),
        "train": sample(shifted, scale.train_sequences, scale.length, gen),
        "validation": sample(shifted, scale.held_out, scale.length, gen),
        "held_out": sample(shifted, scale.held_out, scale.length, gen),
    }


def entropy_rate(transitions: Any) -> float:
    """Mean next-token entropy given the topic (nats): a floor no model reaches without it."""
    p = transitions.clamp_min(1e-12)
    return float(-(p * p.log()).sum(-1).mean())


# -- the model ----------------------------------------------------------------------------------


def config(scale: Scale) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=scale.vocab, hidden_size=scale.hidden, intermediate_size=scale.intermediate,
        num_hidden_layers=scale.layers, num_attention_heads=scale.heads,
        max_position_embeddings=scale.length, tie_word_embeddings=False,
    )  # fmt: skip


def pretrained(seed: int, scale: Scale, folder: Path, task: str = "shift") -> Any:
    """The seed's model pre-trained on the task's base language, cached as safetensors (a lock
    keeps two workers from training the same one)."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import LlamaForCausalLM

    from sparse_rl import sparse_nets as sn

    settings = {"scale": asdict(scale), "language": [TOPICS, SUCCESSORS, NOISE, LANGUAGE_SEED]}
    if task != "shift":  # the shift task's cached models keep their names
        settings["task"] = [task, NEW_SHARE]
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"seed{seed}-{key}.safetensors"
    with sn.seeded(seed):
        model = LlamaForCausalLM(config(scale))
    with (folder / ".lock").open("w") as lock:  # one at a time; ignored by git
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            model.load_state_dict(load_file(path))
            return model
        base, _ = languages(scale.vocab, task)
        gen = torch.Generator().manual_seed(20_000 + seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=scale.pretrain_lr, weight_decay=0.0)
        warmup, total = max(1, scale.pretrain_steps // 20), scale.pretrain_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then cosine to 0
            optimizer,
            lambda t: (
                (t + 1) / warmup
                if t < warmup
                else 0.5 * (1 + math.cos(math.pi * (t - warmup) / max(total - warmup, 1)))
            ),
        )
        model.train()
        for _ in range(scale.pretrain_steps):
            x = sample(base, scale.batch, scale.length, gen)
            loss = model(input_ids=x, labels=x).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
        tmp = path.with_suffix(".tmp")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp)
        os.replace(tmp, path)
    return model


def held_out_loss(model: Any, x: Any, batch: int = 64) -> float:
    """Mean next-token cross-entropy over every position of ``x``."""
    import torch

    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            part = x[i : i + batch]
            total += float(model(input_ids=part, labels=part).loss) * len(part)
    return total / len(x)


# -- fine-tuning --------------------------------------------------------------------------------


class Sequences:
    """A map-style dataset of generated sequences, each its own label."""

    def __init__(self, x: Any) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.x[i], "labels": self.x[i]}


def finetune(
    model: Any, train: Any, scale: Scale, seed: int, lr: float, callbacks: list[Any]
) -> dict[str, float]:
    """Train with ``transformers.Trainer``; the MB of trainable parameters and of optimizer
    state (what masked fine-tuning keeps dense)."""
    from transformers import PrinterCallback, Trainer, TrainingArguments

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=scale.steps, per_device_train_batch_size=scale.batch,
            learning_rate=lr, lr_scheduler_type="cosine", warmup_steps=max(1, scale.steps // 20),
            weight_decay=0.0, save_strategy="no", logging_strategy="no", report_to="none",
            use_cpu=True, disable_tqdm=True, seed=seed, data_seed=seed,
            dataloader_num_workers=0,
        )  # fmt: skip
        trainer = Trainer(
            model=model, args=args, train_dataset=Sequences(train), callbacks=callbacks
        )
        trainer.remove_callback(PrinterCallback)  # the end-of-training summary line
        trainer.train()
        state = trainer.optimizer.state.values()
        return {
            "trainable_mb": sum(p.numel() * p.element_size() for p in model.parameters()
                                if p.requires_grad) / 2**20,
            "optimizer_state_mb": sum(v.numel() * v.element_size() for s in state
                                      for v in s.values() if hasattr(v, "numel")) / 2**20,
        }  # fmt: skip


def seft_updater(scale: Scale, settings: dict[str, Any]) -> Any:
    from sparse_rl import sparse_nets as sn

    return sn.SEFT(
        interval=settings["interval"],
        drop_fraction=settings["drop_fraction"],
        sensitivity_fraction=settings["sensitivity_fraction"],
        end_step=max(2, round(settings["stop_at"] * scale.steps)),
    )


def train_arm(
    arm: str, seed: int, scale: Scale, sets: dict[str, Any], folder: Path, **levers: Any
) -> tuple[Any, list[str], dict[str, float]]:
    """The arm's fine-tuned model (pruned where the arm says), its targeted layer names and
    the memory its training state took."""
    from sparse_rl.supervised.llm import SparsityCallback, prune_wanda

    from sparse_rl import sparse_nets as sn

    if arm in LEVER_ARMS:
        base, changes = LEVER_ARMS[arm]
        return train_arm(base, seed, scale, sets, folder, **{**changes, **levers})
    lr = levers.get("lr", scale.lr)
    sparsity = levers.get("sparsity", SPARSITY)
    model = pretrained(seed, scale, folder, levers.get("task", "shift"))
    masks = prune_wanda(model, sets["calibration"].split(16), sparsity)
    names = list(masks)
    memory = {"trainable_mb": 0.0, "optimizer_state_mb": 0.0}
    if arm == "dense":
        memory = finetune(model, sets["train"], scale, seed, lr, [])
    elif arm in ("none", "static", "seft"):
        updater = "static" if arm != "seft" else seft_updater(scale, {**SEFT_ARM, **levers})
        if arm == "none":  # pruned as the callback would, no step taken
            sn.sparsify(model, None, 1 - sparsity, init=masks)
        else:
            callback = SparsityCallback({"init": masks, "updater": updater}, seed=seed)
            memory = finetune(model, sets["train"], scale, seed, lr, [callback])
    elif arm == "lora":
        lora_lr = levers.get("lora_lr", scale.lora_lr)
        model, memory = lora_star(model, masks, sets, scale, seed, lora_lr, sparsity)
    else:
        raise ValueError(f"arm={arm!r} is not valid; choose one of {[*ARMS, *LEVER_ARMS]}.")
    return model, names, memory


def lora_star(
    model: Any,
    masks: Any,
    sets: dict[str, Any],
    scale: Scale,
    seed: int,
    lr: float,
    sparsity: float = SPARSITY,
) -> tuple[Any, dict[str, float]]:
    """LoRA on the pruned model, merged, then re-pruned to the sparsity with Wanda; with the
    memory of its training state."""
    import torch
    from peft import LoraConfig, get_peft_model
    from sparse_rl.supervised.llm import prune_wanda

    from sparse_rl import sparse_nets as sn

    with torch.no_grad():  # the pruned model LoRA starts from
        for name, mask in masks.items():
            model.get_submodule(name).weight.mul_(mask)
    targets = sorted({n.rsplit(".", 1)[-1] for n in masks})
    lora = LoraConfig(r=scale.lora_rank, lora_alpha=2 * scale.lora_rank, lora_dropout=0.0,
                      target_modules=targets, task_type="CAUSAL_LM")  # fmt: skip
    peft_model = get_peft_model(model, lora)
    memory = finetune(peft_model, sets["train"], scale, seed, lr, [])
    merged = peft_model.merge_and_unload()
    again = prune_wanda(merged, sets["train"][: scale.calibration].split(16), sparsity)
    sn.sparsify(merged, None, 1 - sparsity, init=again)
    return merged, memory


# -- one cell -----------------------------------------------------------------------------------


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux)
        return True
    except OSError:
        return False


def run_cell(cell: Cell, **levers: Any) -> dict[str, Any]:
    """Fine-tune one arm of one seed; save, reload with the stock class, measure."""
    from sparse_rl.supervised.llm import export_pretrained, measured_sparsity
    from transformers import LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # shard-writing and weight-loading bars, per arm
    hf_logging.set_verbosity_error()
    scale = SCALES[cell.scale]
    folder = offline.RESULTS / NAME / "pretrained" if cell.scale == "full" else _quick_folder()
    settings = {**LEVER_ARMS.get(cell.arm, ("", {}))[1], **levers}
    task = settings.get("task", "shift")
    sets = data(cell.seed, scale, task)
    pretrained(cell.seed, scale, folder, task)  # outside the timed and measured part
    gc.collect()
    _trim()  # freed memory back to the system, so the arm's allocations show in RSS
    resettable = _reset_peak()
    start_rss = _status()["VmRSS"]
    start = time.perf_counter()
    model, names, memory = train_arm(cell.arm, cell.seed, scale, sets, folder, **levers)
    seconds = time.perf_counter() - start
    peak = _status()["VmHWM"] - start_rss if resettable else None
    with tempfile.TemporaryDirectory() as saved:
        export_pretrained(model, saved)
        loaded = LlamaForCausalLM.from_pretrained(saved)
    zeros = measured_sparsity(loaded, names)
    trainable = sum(p.numel() for p in model.parameters())
    return {
        **asdict(cell),
        "levers": settings,
        "held_out_loss": held_out_loss(loaded, sets["held_out"]),
        "validation_loss": held_out_loss(loaded, sets["validation"]),
        "base_loss": held_out_loss(
            loaded,
            sample(languages(scale.vocab, task)[0], scale.held_out, scale.length, _gen(cell.seed)),
        ),
        "sparsity": zeros,
        "sparsity_min": min(zeros.values()),
        "sparsity_max": max(zeros.values()),
        "parameters": trainable,
        "peak_rss_mb": None if peak is None else peak / 2**20,
        **memory,
        "seconds": seconds,
        "steps": 0 if cell.arm == "none" else scale.steps,
        "entropy_floor": entropy_rate(languages(scale.vocab, task)[1]),
    }


def _gen(seed: int) -> Any:
    import torch

    return torch.Generator().manual_seed(30_000 + seed)


@cache
def _quick_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="seft_quick_models_"))


def describe(row: dict[str, Any]) -> str:
    return (
        f"held-out loss {row['held_out_loss']:.4f}, sparsity {row['sparsity_min']:.4f}-"
        f"{row['sparsity_max']:.4f}, peak +{row['peak_rss_mb'] or 0:.0f} MB, "
        f"{row['seconds']:.1f} s"
    )


def main(argv: list[str] | None = None) -> None:
    offline.main(
        argv,
        sys.modules[__name__],
        what="fine-tune every missing (seed, arm)",
        choices={"arms": (*ARMS, *LEVER_ARMS)},
    )


if __name__ == "__main__":
    main()
