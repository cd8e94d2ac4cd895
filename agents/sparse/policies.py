"""Sparse SB3 policies: SAC, TD3/DDPG and PPO/A2C with networks kept sparse by the sparse core.

``SAC(SparseSACPolicy, env, policy_kwargs=dict(density=0.1, distribution="erk"))`` works with the
stock SB3 classes. Each network (actor, critic / value) is sparsified right after SB3 builds it,
with the optimizer SB3 made for it, so masking and topology updates ride on that optimizer's
steps. Target networks take their online network's masks at every topology update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sparse_rl.agents.sparse.settings import POLICY_KEYS, RENAMED, network_settings
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn


def first_linear(module: nn.Module, prefix: str) -> list[str]:
    """The name of ``module``'s first Linear layer (its input layer), or [] when it has none."""
    names = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    return [f"{prefix}.{names[0]}" if prefix else names[0]] if names else []


class _NetworkState:
    """One sparse network: its Sparsity, its input layers and the targets that follow it."""

    def __init__(
        self,
        module: nn.Module,
        sparsity: sn.Sparsity,
        input_layers: Sequence[str],
        targets: Sequence[nn.Module],
    ) -> None:
        self.module = module
        self.sparsity = sparsity
        self.input_layers = list(input_layers)
        self._follow: list[tuple[Tensor, Tensor, Tensor]] = []  # (online mask, target mask, weight)
        for target in targets:
            for name in sparsity.masks:
                online = module.get_submodule(name)
                copy = target.get_submodule(name)
                mask = getattr(online, sn.MASK)
                copy.register_buffer(sn.MASK, mask.clone(), persistent=True)
                self._follow.append((mask, getattr(copy, sn.MASK), copy.weight))
        self.follow_masks()
        if self._follow and sparsity.optimizer is not None:
            sparsity.optimizer.register_step_post_hook(lambda *_: self._after_step())

    def _after_step(self) -> None:
        # Between topology updates the masks do not change, and SB3's Polyak update keeps the
        # target at zero wherever both nets are zero: only an update step needs following.
        if self.sparsity.updater.is_update_step(self.sparsity.step_count):
            self.follow_masks()

    @torch.no_grad()
    def follow_masks(self) -> None:
        """Copy the online masks to the targets and zero target weights the online net dropped.

        Runs after the Sparsity's own step hook, so it sees this step's topology update. SB3's
        Polyak update comes later in the same gradient step: target = τ·online + (1-τ)·target is
        then zero at every inactive position, and grown positions (0 in both) fade in at rate τ.
        """
        if not self._follow:
            return
        online, target_masks, weights = zip(*self._follow, strict=True)
        torch._foreach_copy_(list(target_masks), list(online))
        torch._foreach_mul_(list(weights), list(target_masks))

    def log_values(self, real: np.ndarray | None, obs_dim: int | None) -> dict[str, float]:
        stats = self.sparsity.stats()
        active = sum(layer.active for layer in stats.layers)
        numel = sum(layer.numel for layer in stats.layers)
        values = {
            "density": active / numel,
            "churn": sum(layer.churn * layer.active for layer in stats.layers) / max(active, 1),
            "itop": sum(layer.itop * layer.numel for layer in stats.layers) / numel,
            "optimizer_steps": float(stats.step),
        }
        sparse_inputs = [n for n in self.input_layers if n in self.sparsity.masks]
        if real is not None and obs_dim is not None and sparse_inputs:
            per_input = torch.stack(
                [self.sparsity.input_connectivity(n)[:obs_dim].float() for n in sparse_inputs]
            ).mean(0)
            noise = np.setdiff1d(np.arange(obs_dim), real)
            values["real_connections"] = float(per_input[real].mean())
            values["noise_connections"] = float(per_input[noise].mean()) if noise.size else 0.0
        return values


class SparsePolicyMixin:
    """Shared machinery; the concrete policies say which modules form which network."""

    _sparse_settings: dict[str, sn.SparsitySettings]
    _sparse_kwargs: dict[str, Any]
    sparse_networks: dict[str, _NetworkState]

    def _pop_sparse_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Remove our keys before SB3 sees them; keep them for ``_get_constructor_parameters``."""
        given = {k: kwargs.pop(k) for k in (*POLICY_KEYS, *RENAMED) if k in kwargs}
        object.__setattr__(self, "_sparse_settings", network_settings(given))
        object.__setattr__(self, "_sparse_kwargs", given)
        return kwargs

    def _sparsify_network(
        self,
        network: str,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        layers: Sequence[str],
        input_layers: Sequence[str],
        targets: Sequence[nn.Module] = (),
    ) -> None:
        if not hasattr(self, "sparse_networks"):
            self.sparse_networks = {}
        settings = self._sparse_settings[network]
        if settings.dense:
            return
        # Masks follow SB3's `seed`: SB3 seeds torch before building the policy.
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        sparsity = settings.apply(
            module, optimizer, seed=seed, layers=layers, input_layers=input_layers
        )
        assert sparsity is not None
        self.sparse_networks[network] = _NetworkState(module, sparsity, input_layers, targets)

    def reset_network(self, network: str) -> None:
        """Re-initialise one sparse network as at construction (PEBBLE resets the critic after
        pre-training): default init, its masks, rows rescaled as its settings say."""
        self._sparse_settings[network].reset_(self.sparse_networks[network].module)

    def _sparsify_q_critic(self) -> None:
        """SAC's and TD3's Q-networks; the target critic follows their masks."""
        critic = self.critic  # type: ignore[attr-defined]
        self._sparsify_network(
            "critic",
            critic,
            critic.optimizer,
            linear_layers(critic),
            critic_input_layers(critic),
            targets=[self.critic_target],  # type: ignore[attr-defined]
        )

    # -- state that SB3's save()/load() carry inside the policy's state_dict ---------------------

    def get_extra_state(self) -> dict[str, Any]:
        return {n: s.sparsity.state_dict() for n, s in self.sparse_networks.items()}

    def set_extra_state(self, state: Mapping[str, Any]) -> None:
        if sorted(state) != sorted(self.sparse_networks):
            raise ValueError(
                f"saved sparse networks {sorted(state)} differ from this policy's "
                f"{sorted(self.sparse_networks)}; load with the policy_kwargs it was trained with."
            )
        for name, sub in state.items():  # other density / distribution: other per-layer counts
            ours = self.sparse_networks[name].sparsity.state_dict()["layers"]
            saved = {k: int(v["final"]) for k, v in sub.get("layers", {}).items()}
            expected = {k: int(v["final"]) for k, v in ours.items()}
            if saved.keys() == expected.keys() and saved != expected:
                raise ValueError(
                    f"saved {name} has active weights per layer {saved}, this policy's settings "
                    f"give {expected} (another density or distribution); load with the "
                    "policy_kwargs it was trained with."
                )
        for name, sub in state.items():
            self.sparse_networks[name].sparsity.load_state_dict(sub)
            self.sparse_networks[name].follow_masks()

    def sparsity_log_values(self, real_indices: np.ndarray | None = None) -> dict[str, float]:
        """Density, churn, ITOP and (given the noisy wrapper's real indices) ANF's diagnostic."""
        obs_shape = self.observation_space.shape  # type: ignore[attr-defined]
        obs_dim = int(obs_shape[0]) if obs_shape is not None and len(obs_shape) == 1 else None
        real = None if real_indices is None else np.array(real_indices, dtype=np.int64)
        return {
            f"{network}_{key}": value
            for network, state in self.sparse_networks.items()
            for key, value in state.log_values(real, obs_dim).items()
        }

    def _with_sparse_kwargs(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**data, **self._sparse_kwargs}


def linear_layers(module: nn.Module, prefix: str = "") -> list[str]:
    return [
        f"{prefix}{n}"
        for n, m in module.named_modules()
        if isinstance(m, nn.Linear) and "features_extractor" not in f"{prefix}{n}"
    ]


def critic_input_layers(critic: nn.Module) -> list[str]:
    return [name for i, q in enumerate(critic.q_networks) for name in first_linear(q, f"qf{i}")]


class SparseSACPolicy(SparsePolicyMixin, SACPolicy):
    """SB3's SAC policy with a sparse actor and critic; the critic target follows the critic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **self._pop_sparse_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        actor_inputs = first_linear(self.actor.latent_pi, "latent_pi") or ["mu", "log_std"]
        self._sparsify_network(
            "actor", self.actor, self.actor.optimizer, linear_layers(self.actor), actor_inputs
        )
        self._sparsify_q_critic()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return self._with_sparse_kwargs(super()._get_constructor_parameters())


class SparseTD3Policy(SparsePolicyMixin, TD3Policy):
    """SB3's TD3 (and DDPG) policy with sparse actor and critic; both targets follow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **self._pop_sparse_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self._sparsify_network(
            "actor",
            self.actor,
            self.actor.optimizer,
            linear_layers(self.actor),
            first_linear(self.actor.mu, "mu"),
            targets=[self.actor_target],
        )
        self._sparsify_q_critic()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return self._with_sparse_kwargs(super()._get_constructor_parameters())


class SparseActorCriticPolicy(SparsePolicyMixin, ActorCriticPolicy):
    """SB3's PPO/A2C policy with a sparse policy branch ("actor") and value branch ("critic").

    Both share SB3's single optimizer; SB3's orthogonal init runs first, then each sparse row is
    rescaled to its dense norm so the orthogonal gains still hold.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **self._pop_sparse_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        branches = {
            "actor": ("mlp_extractor.policy_net", "action_net"),
            "critic": ("mlp_extractor.value_net", "value_net"),
        }
        for network, (body, head) in branches.items():
            layers = [*linear_layers(self.get_submodule(body), f"{body}."), head]
            inputs = first_linear(self.get_submodule(body), body) or [head]
            self._sparsify_network(network, self, self.optimizer, layers, inputs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return self._with_sparse_kwargs(super()._get_constructor_parameters())
