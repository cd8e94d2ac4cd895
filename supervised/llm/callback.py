"""Sparse fine-tuning with ``transformers.Trainer``: one callback, and a plain export.

``SparsityCallback`` makes the model sparse when the Trainer is built, so the masks are buffers
of the model before any checkpoint is loaded (the Trainer loads state dicts non-strictly and
drops keys the model lacks: masks made later would be lost on resume without a word). When
training begins it hooks the torch optimizer inside accelerate's wrapper, so every optimizer
step re-masks the weights and drives the topology updater (SEFT by default). It saves the
sparsity state with each checkpoint and restores it on resume, and adds the core's statistics
to the Trainer's logs. :func:`export_pretrained` saves a checkpoint the stock model class loads,
with the masks folded into the weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

from ..training import training_sparsity
from .pruning import target_layers

#: The file beside each checkpoint's model weights that holds the sparsity state.
STATE_FILE = "sparsity.pt"

#: What a mapping given to :class:`SparsityCallback` is laid over: SEFT, and when its updater is
#: a name or a mapping, an update every ``interval`` optimizer steps replacing ``drop_fraction``
#: of each layer's weights, kept at that fraction (``schedule``) and stopped at ``stop_at`` of
#: ``TrainingArguments.max_steps``, so the weights grown have most of the run to train (in
#: benchmarks/results/seft.md updates until 80% of the run cost 0.06 nats against the static mask,
#: until 30% they were on a par with it).
LLM_SPARSITY = sn.SparsitySettings(density=0.5, updater="seft")
SEFT_SCHEDULE = MappingProxyType(
    {"interval": 20, "drop_fraction": 0.1, "schedule": "constant", "stop_at": 0.3}
)


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's ``AcceleratedOptimizer`` (and any wrapper that
    keeps it as ``.optimizer``): hooks registered on a wrapper never run."""
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"the Trainer's optimizer is a {type(optimizer).__name__}, not a torch optimizer "
            "(or a wrapper keeping one as .optimizer): nothing to hook."
        )
    return optimizer


def resolve_settings(
    settings: sn.SparsitySettings | Mapping[str, Any], max_steps: int | None
) -> sn.SparsitySettings:
    """Settings as given, or a mapping laid over :data:`LLM_SPARSITY`: with masks as ``init``
    and no ``density``, the masks' own density; a named updater gets :data:`SEFT_SCHEDULE` over
    ``max_steps``."""
    if isinstance(settings, sn.SparsitySettings):
        return settings
    if not isinstance(settings, Mapping):
        raise ConfigError(
            "settings: expected sn.SparsitySettings or a mapping of its keys "
            f"({', '.join(f.name for f in fields(sn.SparsitySettings))}), got {settings!r}."
        )
    changes = dict(settings)
    init = changes.get("init")
    if isinstance(init, Mapping) and "density" not in changes and "fan_in" not in changes:
        active = sum(int(m.count_nonzero()) for m in init.values())
        changes["density"] = active / max(sum(m.numel() for m in init.values()), 1)
    changes.setdefault("updater", LLM_SPARSITY.updater.name)  # a name gets SEFT_SCHEDULE
    if not isinstance(changes["updater"], sn.TopologyUpdater) and max_steps is None:
        raise ConfigError(
            f"settings.updater={changes['updater']!r} needs the run's length to plan its updates: "
            "set TrainingArguments(max_steps=...) or pass an updater instance, e.g. "
            "sn.SEFT(interval=20, drop_fraction=0.1, end_step=800)."
        )
    schedule = dict(SEFT_SCHEDULE)
    return training_sparsity(changes, max_steps or 1, base=LLM_SPARSITY, **schedule)


class SparsityCallback(TrainerCallback):
    """Fine-tune a (pruned) model sparse under ``transformers.Trainer``.

    :param settings: ``sn.SparsitySettings`` or a mapping of its keys laid over
        :data:`LLM_SPARSITY`, e.g. ``{"init": prune_wanda(model, batches, 0.6)}`` (density: the
        masks'; updater: SEFT) or ``{"density": 0.4, "updater": "static"}``.
    :param seed: seeds the core's random choices (a random initial mask, random growth).
    :param include_head: make the output head sparse too (kept dense by default; a head tied to
        the input embedding is refused by the core either way).
    :param log_layers: log every layer's density, churn and in-time over-parameterization, not
        only the totals.

    After the Trainer is built, ``.sparsity`` is the live :class:`sn.Sparsity` (``stats()``,
    ``masks``). Pass the callback to ``Trainer(callbacks=[...])``: one added later misses the
    moment the masks must exist, and refuses to resume.
    """

    def __init__(
        self,
        settings: sn.SparsitySettings | Mapping[str, Any],
        *,
        seed: int = 0,
        include_head: bool = False,
        log_layers: bool = False,
    ) -> None:
        if not isinstance(settings, (sn.SparsitySettings, Mapping)):
            raise ConfigError(
                "settings: expected sn.SparsitySettings or a mapping of its keys, got "
                f"{settings!r}."
            )
        self.given = settings
        self.seed = seed
        self.include_head = include_head
        self.log_layers = log_layers
        self.settings: sn.SparsitySettings | None = None
        self.sparsity: sn.Sparsity | None = None
        self._model: nn.Module | None = None

    # -- the Trainer's events ----------------------------------------------------------------

    def on_init_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Masks now, before ``train(resume_from_checkpoint=...)`` loads a checkpoint."""
        self._make(kwargs["model"], args)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Hook the torch optimizer; on resume, restore the sparsity state of the checkpoint."""
        model = kwargs["model"]
        if self.sparsity is None:
            if state.global_step > 0:
                raise RuntimeError(
                    "SparsityCallback was added after the Trainer was built, so the checkpoint "
                    "was loaded before the model had masks, and the Trainer dropped them: pass "
                    "it as Trainer(..., callbacks=[SparsityCallback(...)])."
                )
            self._make(model, args)
        elif model is not self._model:
            raise RuntimeError(
                "the Trainer trains another model than the one made sparse when it was built "
                "(model_init?): build the Trainer with the model itself."
            )
        self.sparsity.attach_optimizer(unwrap_optimizer(kwargs["optimizer"]))  # type: ignore[union-attr]
        if state.global_step > 0:
            self._restore(args, state)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """The core's statistics join the logs (and ``state.log_history``)."""
        if logs is None or self.sparsity is None:
            return
        stats = self.sparsity.stats()
        extra = {
            "sparsity/density": stats.density,
            "sparsity/churn": sum(s.churn * s.active for s in stats.layers) / max(stats.active, 1),
            "sparsity/itop": sum(s.itop * s.numel for s in stats.layers) / stats.numel,
            "sparsity/step": float(stats.step),
        }
        if self.log_layers:
            extra.update(stats.as_dict())
        logs.update(extra)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """The sparsity state goes into the checkpoint folder the Trainer just wrote."""
        if self.sparsity is None or not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"no checkpoint folder {folder} to save the sparsity state in; SparsityCallback "
                "expects the Trainer's checkpoint-<step> folders under output_dir."
            )
        state_dict = {"global_step": state.global_step, "sparsity": self.sparsity.state_dict()}
        torch.save(state_dict, folder / STATE_FILE)

    # -- helpers -----------------------------------------------------------------------------

    def _make(self, model: nn.Module, args: TrainingArguments) -> None:
        if self.sparsity is not None:
            return
        max_steps = args.max_steps if args.max_steps > 0 else None
        self.settings = resolve_settings(self.given, max_steps)
        init = self.settings.init
        if isinstance(init, Mapping):
            candidates = list(init)  # type: ignore[arg-type]
        else:
            candidates = list(target_layers(model, include_head=self.include_head))
        sparsity = self.settings.apply(model, None, seed=self.seed, layers=candidates)
        if sparsity is None:
            raise ConfigError(
                "settings.density is 1.0: the model would stay dense; give a density below 1 "
                "or initial masks (init=prune_wanda(...))."
            )
        self.sparsity = sparsity
        self._model = model

    def _restore(self, args: TrainingArguments, state: TrainerState) -> None:
        assert self.sparsity is not None
        folders = [
            Path(p)
            for p in (
                args.resume_from_checkpoint
                if isinstance(args.resume_from_checkpoint, str)
                else None,
                os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"),
            )
            if p
        ]
        for folder in folders:
            path = folder / STATE_FILE
            if not path.is_file():
                continue
            saved = torch.load(path, weights_only=True)
            if saved.get("global_step") != state.global_step:
                continue
            self.sparsity.load_state_dict(saved["sparsity"])
            layers = saved["sparsity"]["layers"]
            wrong = [s.name for s in self.sparsity.stats().layers
                     if s.active != int(layers[s.name]["target"])]  # fmt: skip
            if wrong:
                raise RuntimeError(
                    f"the masks loaded from {folder} do not match its sparsity state (layers "
                    f"{wrong[:3]}): was the checkpoint written by another run?"
                )
            return
        raise FileNotFoundError(
            f"resuming at step {state.global_step}, but none of {[str(f) for f in folders]} "
            f"holds a {STATE_FILE} of that step. Resume from a checkpoint saved with "
            "SparsityCallback; if it lies outside output_dir, also set "
            "TrainingArguments(resume_from_checkpoint=<its folder>)."
        )


@torch.no_grad()
def export_pretrained(
    model: nn.Module, save_directory: str | os.PathLike[str], **kwargs: Any
) -> None:
    """Save a plain Hugging Face checkpoint: masks folded into the weights, no mask buffers.

    The stock class's ``from_pretrained`` loads it without unexpected keys, with the exact
    sparsity of the masks (zero weights, stored dense). ``kwargs`` go to ``save_pretrained``.
    The model itself keeps its masks and hooks; nothing is copied but the state dict's views.
    """
    save = getattr(model, "save_pretrained", None)
    if not callable(save):
        raise TypeError(
            f"model is a {type(model).__name__} without save_pretrained; use sn.densify(model) "
            "and torch.save for a plain torch model."
        )
    state = model.state_dict()
    for name, module in model.named_modules():
        mask = module._buffers.get(sn.MASK)
        if mask is None:
            continue
        prefix = f"{name}." if name else ""
        del state[prefix + sn.MASK]
        state[prefix + "weight"] = module.weight.detach() * mask
    save(save_directory, state_dict=state, **kwargs)
