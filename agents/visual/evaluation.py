"""Evaluate a pixel agent on several distraction modes: returns, mask quality, pictures.

Trained on the clean env, an agent is scored on e.g. color_hard, video_easy, video_hard and the
Distracting Control Suite presets; for MaDi the Masker's masks are also scored against the
ground-truth agent pixels that the envs render (``info["agent_mask"]``), and an obs | mask |
masked-obs grid (PNG) and a short GIF are written per mode.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sparse_rl.agents.rollouts import rollout_returns
from sparse_rl.agents.visual.masker import mask_quality
from stable_baselines3.common.callbacks import BaseCallback

from sparse_rl import envs
from sparse_rl.validation import check_int

DEFAULT_MODES = ("clean", "color_hard", "video_easy", "video_hard", "medium")
QUALITY_KEYS = ("iou", "precision", "recall", "mean_agent", "mean_background")


def _masker(model: Any) -> Any:
    return getattr(model.policy, "masker", None)


@torch.no_grad()
def _last_frame_mask(model: Any, obs: np.ndarray) -> np.ndarray:
    """The Masker's mask of the newest frame of one observation (H, W) in [0, 1]."""
    x = torch.as_tensor(obs[None], device=model.device).float() / 255.0  # SB3's scaling
    return _masker(model).masks(x)[0, -1].cpu().numpy()


def evaluate_mode(
    model: Any,
    task: str,
    mode: str,
    episodes: int = 5,
    seed: int = 0,
    record_frames: int = 0,
    **env_kwargs: Any,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Deterministic returns on ``task`` with distraction preset ``mode``, plus mask quality.

    :param record_frames: keep this many (obs frame, mask) pictures of the first episode.
    :param env_kwargs: for ``envs.make_env`` (size, action_repeat, ... as in training).
    :returns: the row of scores and the recorded pictures (H, 3·W, 3) uint8.
    """
    masker = _masker(model)
    env = envs.make_env(task, preset=mode, return_agent_mask=masker is not None, **env_kwargs)
    masks, agents, pictures = [], [], []

    def score_mask(episode: int, obs: np.ndarray, info: dict[str, Any]) -> None:
        mask = _last_frame_mask(model, obs)
        masks.append(mask)
        agents.append(info["agent_mask"])
        if episode == 0 and len(pictures) < record_frames:
            frame = np.moveaxis(obs[-3:], 0, -1)
            shown = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=-1)
            masked = (frame * mask[..., None]).astype(np.uint8)
            pictures.append(np.concatenate([frame, shown, masked], axis=1))

    returns = rollout_returns(
        model, env, episodes, seed, observe=None if masker is None else score_mask
    )
    env.close()
    row: dict[str, float] = {"return_mean": float(np.mean(returns)),
                             "return_std": float(np.std(returns))}  # fmt: skip
    if masks:
        quality = mask_quality(torch.as_tensor(np.stack(masks)), torch.as_tensor(np.stack(agents)))
        row |= {f"mask_{k}": v for k, v in quality.items()}
    return row, pictures


def evaluate_modes(
    model: Any,
    task: str,
    modes: Sequence[str] = DEFAULT_MODES,
    episodes: int = 5,
    seed: int = 0,
    out_dir: str | Path | None = None,
    record_frames: int = 30,
    **env_kwargs: Any,
) -> list[dict[str, Any]]:
    """Evaluate on every mode; with ``out_dir`` write ``eval.md``/``eval.csv`` and, for a
    Masker, ``<mode>_masks.png`` (obs | mask | masked obs, a few steps) and ``<mode>.gif``."""
    rows = []
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for mode in modes:
        row, pictures = evaluate_mode(
            model, task, mode, episodes, seed, record_frames if out else 0, **env_kwargs
        )
        rows.append({"task": task, "mode": mode, "episodes": episodes, **row})
        if out is not None and pictures:
            _write_pictures(out, mode, pictures)
    if out is not None:
        _write_table(out, rows)
    return rows


def _write_pictures(out: Path, mode: str, pictures: list[np.ndarray]) -> None:
    try:
        from PIL import Image
    except ImportError as error:  # pillow comes with the `bench` and `dev` extras
        raise ImportError(
            "writing mask pictures needs pillow: pip install sparse-rl[bench]"
        ) from error
    picks = pictures[:: max(len(pictures) // 4, 1)][:4]
    grid = np.concatenate(picks, axis=0)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(
        out / f"{mode}_masks.png"
    )
    frames = [Image.fromarray(p) for p in pictures]
    frames[0].save(
        out / f"{mode}.gif", save_all=True, append_images=frames[1:], duration=80, loop=0
    )


def _write_table(out: Path, rows: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with (out / "eval.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    (out / "eval.json").write_text(json.dumps(rows, indent=1))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{row.get(k, ''):.3f}" if isinstance(row.get(k), float) else str(row.get(k, ""))
                 for k in keys]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    (out / "eval.md").write_text("\n".join(lines) + "\n")


class DistractionEval(BaseCallback):
    """Every ``every`` env steps, evaluate on ``modes`` and log ``eval/<mode>/return_mean`` (and
    mask quality for MaDi) through SB3's logger; pictures go to ``out_dir/<step>/``."""

    def __init__(
        self,
        task: str,
        modes: Sequence[str] = DEFAULT_MODES,
        every: int = 10_000,
        episodes: int = 3,
        out_dir: str | Path | None = None,
        **env_kwargs: Any,
    ) -> None:
        super().__init__()
        check_int("every", every)
        for mode in modes:
            envs.distractions_for(mode)  # a typo fails here, not after hours of training
        self.task, self.modes, self.every, self.episodes = task, tuple(modes), every, episodes
        self.out_dir, self.env_kwargs = out_dir, env_kwargs
        self._next = every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every
            out = None if self.out_dir is None else Path(self.out_dir) / str(self.num_timesteps)
            rows = evaluate_modes(self.model, self.task, self.modes, self.episodes,
                                  out_dir=out, **self.env_kwargs)  # fmt: skip
            for row in rows:
                for key, value in row.items():
                    if isinstance(value, float):
                        self.logger.record(f"eval/{row['mode']}/{key}", value)
            self.logger.dump(self.num_timesteps)
        return True
