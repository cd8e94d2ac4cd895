"""SB3 SAC policy for pixels: one conv encoder shared by actor and critic, trained by the critic.

Following DrQ / SVEA / MaDi: the critic's loss trains the conv layers (and the Masker, when there
is one); the actor reuses the conv output detached and has its own projection head. The target
critic has its own (Polyak-averaged) encoder copy but the online Masker itself: MaDi keeps no
target Masker.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from sparse_rl.agents.sparse.policies import (
    SparsePolicyMixin,
    first_linear,
    linear_layers,
)
from sparse_rl.agents.sparse.settings import POLICY_KEYS, RENAMED
from sparse_rl.agents.visual.encoders import PixelEncoder
from sparse_rl.agents.visual.masker import Masker
from stable_baselines3.sac.policies import SACPolicy
from torch import Tensor, nn


class MaskedEncoder(nn.Module):
    """Optional Masker in front of a :class:`PixelEncoder` (inputs scaled to [0, 1])."""

    def __init__(self, encoder: PixelEncoder, masker: Masker | None = None) -> None:
        super().__init__()
        self.encoder, self.masker = encoder, masker
        self.features_dim = encoder.features_dim

    def mask(self, obs: Tensor) -> Tensor:
        """``obs`` with the Masker's masks applied (unchanged without a Masker)."""
        return self.masker(obs) if self.masker is not None else obs

    def conv_features(self, obs: Tensor) -> Tensor:
        return self.encoder.convs(self.mask(obs))

    def forward(self, obs: Tensor) -> Tensor:
        return self.encoder.projection(self.conv_features(obs))


class ActorEncoder(nn.Module):
    """The shared conv features, detached, through the actor's own projection.

    ``shared`` is held without registering it, so the actor's parameters (and optimizer) are only
    its own; the critic owns and trains the shared encoder.
    """

    def __init__(self, shared: MaskedEncoder) -> None:
        super().__init__()
        object.__setattr__(self, "shared", shared)
        self.projection = copy.deepcopy(shared.encoder.projection)
        self.features_dim = shared.features_dim

    def forward(self, obs: Tensor) -> Tensor:
        with torch.no_grad():
            conv = self.shared.conv_features(obs)
        return self.projection(conv)


class VisualSACPolicy(SparsePolicyMixin, SACPolicy):
    """SAC policy on (3·k, H, W) uint8 pixels.

    Dense unless given a sparse key (``density``, ``updater``, ``layers``, ...,
    ``actor_sparsity``, ``critic_sparsity``: the sparse policies' keys and defaults). The critic
    network includes the shared encoder's convs and projection (the critic trains them), so its
    input layer is the first conv; the Masker stays dense.

    :param encoder: "small" (CPU default) or "gb" (DMControl-GB's 11-layer encoder).
    :param masker: None, or ``Masker`` keyword arguments (``{}`` for MaDi's soft mask).
    :param masker_lr: the Masker's own Adam learning rate (MaDi: 1e-3), stepped with the critic.
    """

    def __init__(
        self,
        *args: Any,
        encoder: str = "small",
        masker: dict[str, Any] | None = None,
        masker_lr: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        for key in ("features_extractor_class", "share_features_extractor"):
            if key in kwargs:
                raise ValueError(f"VisualSACPolicy sets {key} itself; use encoder= instead.")
        self.encoder_arch, self.masker_kwargs, self.masker_lr = encoder, masker, masker_lr
        if not any(k in kwargs for k in (*POLICY_KEYS, *RENAMED)):
            kwargs["density"] = 1.0  # dense unless asked
        kwargs = self._pop_sparse_kwargs(kwargs)
        extractor_kwargs = {"arch": encoder, **kwargs.pop("features_extractor_kwargs", {})}
        super().__init__(
            *args,
            features_extractor_class=PixelEncoder,
            features_extractor_kwargs=extractor_kwargs,
            share_features_extractor=False,  # the critic's forward must train the encoder
            **kwargs,
        )

    def _build(self, lr_schedule: Any) -> None:
        masker = None if self.masker_kwargs is None else Masker(pixel_max=1.0, **self.masker_kwargs)
        shared = MaskedEncoder(self.make_features_extractor(), masker)
        self.actor = self.make_actor(features_extractor=ActorEncoder(shared))
        self.actor.optimizer = self.optimizer_class(
            self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.critic = self.make_critic(features_extractor=shared)
        critic_params = [p for n, p in self.critic.named_parameters() if ".masker." not in n]
        self.critic.optimizer = self.optimizer_class(
            critic_params, lr=lr_schedule(1), **self.optimizer_kwargs
        )
        target_encoder = copy.deepcopy(shared.encoder)
        self.critic_target = self.make_critic(
            features_extractor=MaskedEncoder(target_encoder, masker)
        )
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self._sparsify_visual_networks()
        self.masker = masker
        self.masker_optimizer: torch.optim.Optimizer | None = None
        if masker is not None:
            self.masker_optimizer = torch.optim.Adam(masker.parameters(), lr=self.masker_lr)
            self.critic.optimizer.register_step_post_hook(lambda *_: self._step_masker())

    def _sparsify_visual_networks(self) -> None:
        actor_inputs = first_linear(self.actor.latent_pi, "latent_pi") or ["mu", "log_std"]
        actor_layers = [*linear_layers(self.actor), "features_extractor.projection.0"]
        self._sparsify_network(
            "actor", self.actor, self.actor.optimizer, actor_layers, actor_inputs
        )
        encoder = "features_extractor.encoder"
        convs = [
            f"{encoder}.convs.{n}"
            for n, m in self.critic.features_extractor.encoder.convs.named_children()
            if isinstance(m, nn.Conv2d)
        ]
        self._sparsify_network(
            "critic",
            self.critic,
            self.critic.optimizer,
            [*convs, f"{encoder}.projection.0", *linear_layers(self.critic)],
            convs[:1],
            targets=[self.critic_target],
        )

    def _step_masker(self) -> None:
        """The Masker learns from the critic loss only: step it with the critic, then clear."""
        assert self.masker_optimizer is not None
        self.masker_optimizer.step()
        self.masker_optimizer.zero_grad(set_to_none=True)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in ("features_extractor_class", "share_features_extractor"):
            data.pop(key, None)
        kwargs = dict(data.get("features_extractor_kwargs") or {})
        kwargs.pop("arch", None)
        data["features_extractor_kwargs"] = kwargs
        data.update(
            encoder=self.encoder_arch,
            masker=self.masker_kwargs,
            masker_lr=self.masker_lr,
        )
        return self._with_sparse_kwargs(data)
