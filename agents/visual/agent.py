"""Pixel SAC family on SB3: SAC with random shift (DrQ/RAD), SVEA, and MaDi (SVEA + Masker).

``VisualSAC`` keeps SB3's SAC (``learn``, ``save``, ``load``, ``predict``, callbacks, logger) and
replaces only its gradient step: observations are randomly shifted (pad 4); SVEA adds a strongly
augmented copy of the batch to the critic loss (weights α = β = 0.5 on clean and augmented);
MaDi is SVEA whose policy has a Masker in front of the encoder, trained by that same critic loss.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from sparse_rl.agents.visual.augmentations import (
    AUGMENTATIONS,
    ImageSource,
    random_shift,
    strong_augment,
)
from sparse_rl.agents.visual.frame_buffer import FrameReplayBuffer
from sparse_rl.agents.visual.policy import VisualSACPolicy
from stable_baselines3 import SAC
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN
from torch.nn import functional as F

from sparse_rl.validation import check_choice

METHODS = ("sac", "svea", "madi")


class VisualSAC(SAC):
    """SAC on stacked uint8 pixels; ``method`` picks SAC+shift, SVEA or MaDi.

    :param method: "sac" (default: SAC with random shift, what the name says), "svea" or "madi"
        (SVEA + Masker).
    :param strong_augmentation: SVEA's strong augmentation, "overlay" (default) or "conv".
    :param images: overlay's images (default procedural; ``DirectoryImages(path)`` for Places365).
    :param svea_alpha: weight of the clean batch in the critic loss.
    :param svea_beta: weight of the strongly augmented batch.
    Other arguments are SAC's; ``policy_kwargs`` go to :class:`VisualSACPolicy` (``encoder``,
    ``masker`` settings, ``net_arch``...).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"VisualPolicy": VisualSACPolicy}

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: Any,
        method: str = "sac",
        strong_augmentation: str = "overlay",
        images: ImageSource | None = None,
        svea_alpha: float = 0.5,
        svea_beta: float = 0.5,
        shift_pad: int = 4,
        **kwargs: Any,
    ) -> None:
        check_choice("method", method, METHODS)
        if kwargs.get("use_sde"):
            raise ValueError("VisualSAC does not support use_sde (gSDE); leave use_sde=False.")
        check_choice("strong_augmentation", strong_augmentation, AUGMENTATIONS)
        for name, value in (("svea_alpha", svea_alpha), ("svea_beta", svea_beta)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
        self.method, self.strong_augmentation = method, strong_augmentation
        self.svea_alpha, self.svea_beta, self.shift_pad = svea_alpha, svea_beta, shift_pad
        self.images = images
        # Frames stored once: 100k 84×84 transitions fit in a few GB instead of SB3's 12.7.
        kwargs.setdefault("replay_buffer_class", FrameReplayBuffer)
        policy_kwargs = dict(kwargs.pop("policy_kwargs", None) or {})
        if method == "madi":
            policy_kwargs.setdefault("masker", {})
        elif policy_kwargs.get("masker") is not None:
            raise ValueError(f"method={method!r} has no Masker; use method='madi'.")
        super().__init__(policy, env, policy_kwargs=policy_kwargs, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.policy, VisualSACPolicy):
            raise TypeError(
                f"VisualSAC needs a VisualSACPolicy ('VisualPolicy'), got "
                f"{type(self.policy).__name__}."
            )
        images = None if self.strong_augmentation == "conv" else self.images
        self._strong = strong_augment(self.strong_augmentation, images=images)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_strong", "images"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        if self.method == "madi":
            state_dicts = [*state_dicts, "policy.masker_optimizer"]
        return state_dicts, tensors

    def _shift(self, obs: torch.Tensor) -> torch.Tensor:
        return random_shift(obs, pad=self.shift_pad) if self.shift_pad else obs

    def _actor_from_conv(self, conv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squashed actions and log-probs from shared conv features (SB3's Actor, minus the
        feature extraction, which the caller has already done once for several uses)."""
        actor = self.actor
        latent = actor.latent_pi(actor.features_extractor.projection(conv))
        log_std = torch.clamp(actor.log_std(latent), LOG_STD_MIN, LOG_STD_MAX)
        actions, log_prob = actor.action_dist.log_prob_from_params(actor.mu(latent), log_std)
        return actions, log_prob.reshape(-1, 1)

    @staticmethod
    def _q_values(
        critic: Any, encoder: Any, conv: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """(B, n_critics) Q-values from conv features, through ``encoder``'s projection."""
        q_input = torch.cat([encoder.projection(conv), actions], dim=1)
        return torch.cat([q_net(q_input) for q_net in critic.q_networks], dim=1)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SB3's SAC step with augmented observations; the encoder learns from the critic only.

        It differs from SB3's ``SAC.train`` in one place, on purpose: the actor and the temperature
        are updated after the critic, on the critic's updated encoder, as SVEA's reference code
        does (one encoder pass serves the actor loss, its Q-values and the temperature loss). The
        temperature used by every loss of a step is the one before that step's update, as in SB3.
        Logged names and the target update (Polyak, batch-norm statistics copied) are SB3's.
        """
        policy = self.policy
        assert isinstance(policy, VisualSACPolicy)
        policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        stats: dict[str, list[float]] = {
            "actor": [],
            "critic": [],
            "ent_coef": [],
            "ent_coef_loss": [],
            "mask_kept": [],
        }
        svea = self.method in ("svea", "madi")
        shared = policy.critic.features_extractor
        target_encoder = policy.critic_target.features_extractor.encoder
        for step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            obs = self._shift(data.observations.float())
            next_obs = self._shift(data.next_observations.float())
            ent_coef = (
                torch.exp(self.log_ent_coef.detach())
                if self.log_ent_coef is not None
                else self.ent_coef_tensor
            )

            with torch.no_grad():  # TD target: masked next frames computed once, for both nets
                masked_next = shared.mask(next_obs / 255.0)
                if shared.masker is not None:  # near 0: the Masker has died (sigmoid saturated)
                    kept = masked_next.sum() / (next_obs.sum() / 255.0).clamp_min(1e-6)
                    stats["mask_kept"].append(kept.item())
                next_actions, next_log_prob = self._actor_from_conv(
                    shared.encoder.convs(masked_next)
                )
                next_q = self._q_values(
                    policy.critic_target, target_encoder, target_encoder.convs(masked_next),
                    next_actions,
                ).min(dim=1, keepdim=True).values  # fmt: skip
                next_q = next_q - ent_coef * next_log_prob
                target_q = data.rewards + (1 - data.dones) * self.gamma * next_q

            if svea:  # SVEA: clean and strongly augmented views share the TD target
                strong = self._strong(obs)
                current = self.critic(torch.cat([obs, strong]), data.actions.repeat(2, 1))
                n = len(obs)
                critic_loss = 0.5 * sum(
                    self.svea_alpha * F.mse_loss(q[:n], target_q)
                    + self.svea_beta * F.mse_loss(q[n:], target_q)
                    for q in current
                )
            else:
                current = self.critic(obs, data.actions)
                critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current)
            assert isinstance(critic_loss, torch.Tensor)
            stats["critic"].append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()  # also steps the Masker (its own Adam), for MaDi

            # Actor and temperature after the critic, on its updated encoder (as SVEA does); the
            # conv features are computed once, without gradient, for the actor and its Q-values.
            with torch.no_grad():
                conv = shared.conv_features(obs / 255.0)
            actions_pi, log_prob = self._actor_from_conv(conv)
            q_pi = self._q_values(self.critic, shared.encoder, conv, actions_pi)
            actor_loss = (ent_coef * log_prob - q_pi.min(dim=1, keepdim=True).values).mean()
            stats["actor"].append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                alpha_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                self.ent_coef_optimizer.zero_grad()
                alpha_loss.backward()
                self.ent_coef_optimizer.step()
                stats["ent_coef_loss"].append(alpha_loss.item())
            stats["ent_coef"].append(ent_coef.item())

            if step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in stats.items():
            if values:
                self.logger.record(f"train/{key}_loss" if key in ("actor", "critic") else
                                   f"train/{key}", float(np.mean(values)))  # fmt: skip
