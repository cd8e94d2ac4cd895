"""Sparse SB3 policies: SAC, TD3/DDPG, PPO/A2C and DQN with networks kept sparse by the core.

``SAC(SparseSACPolicy, env, policy_kwargs=dict(density=0.1, distribution="erk"))`` works with the
stock SB3 classes. Each network (actor, critic / value, DQN's Q-network) is sparsified right after
SB3 builds it, with the optimizer SB3 made for it, so masking and topology updates ride on that
optimizer's steps. Target networks take their online network's masks at every topology update.
SB3's feature extractors (``NatureCNN``, ``CombinedExtractor``) stay dense unless given
``features_extractor_sparsity``; then each is a sparse network of its own, driven by the optimizer
that trains it. The ``Cnn`` / ``MultiInput`` classes only change the default extractor, as SB3's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from sparse_rl.agents.sparse.settings import (
    FEATURES,
    FEATURES_KEY,
    NETWORKS,
    POLICY_KEYS,
    RENAMED,
    network_settings,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    NatureCNN,
)
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

#: A feature extractor to sparsify: (extractor, the optimizer training it, its target copies).
Extractor = tuple[nn.Module, torch.optim.Optimizer, Sequence[nn.Module]]


def first_linear(
    module: nn.Module, prefix: str, kinds: tuple[type[nn.Module], ...] = (nn.Linear,)
) -> list[str]:
    """The name of ``module``'s first layer of ``kinds`` (its input layer), or [] when none."""
    names = [n for n, m in module.named_modules() if isinstance(m, kinds)]
    return [f"{prefix}.{names[0]}" if prefix else names[0]] if names else []


class _NetworkState:
    """One sparse network: its Sparsity, its input layers and the targets that follow it."""

    def __init__(
        self,
        module: nn.Module,
        sparsity: sn.Sparsity,
        settings: sn.SparsitySettings,
        input_layers: Sequence[str],
        targets: Sequence[nn.Module],
        copy_to_targets: bool = False,
    ) -> None:
        self.module = module
        self.sparsity = sparsity
        self.settings = settings
        self.input_layers = list(input_layers)
        self._follow: list[tuple[Tensor, Tensor, Tensor]] = []  # (online mask, target mask, weight)
        for target in targets:
            for name in sparsity.masks:
                online = module.get_submodule(name)
                copy = target.get_submodule(name)
                mask = getattr(online, sn.MASK)
                copy.register_buffer(sn.MASK, mask.clone(), persistent=True)
                self._follow.append((mask, getattr(copy, sn.MASK), copy.weight))
            if copy_to_targets:  # SB3 copied the dense net; masking and rescaling changed it
                target.load_state_dict(module.state_dict())
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
    #: The networks the sparse settings describe (DQN: only "critic", its Q-network).
    sparse_network_names: ClassVar[tuple[str, ...]] = NETWORKS
    #: Whether ``features_extractor_sparsity`` applies (the policy sparsifies SB3's extractors).
    sparse_extractors: ClassVar[bool] = False
    #: The ``features_extractor_class`` unless given (the Cnn / MultiInput variants).
    default_features_extractor: ClassVar[type[BaseFeaturesExtractor] | None] = None

    def _pop_sparse_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Remove our keys before SB3 sees them; keep them for ``_get_constructor_parameters``."""
        given = {k: kwargs.pop(k) for k in (*POLICY_KEYS, *RENAMED) if k in kwargs}
        settings = network_settings(given, networks=self.sparse_network_names)
        if FEATURES in settings and not self.sparse_extractors:
            raise ConfigError(
                f"{type(self).__name__} does not take {FEATURES_KEY}: its sparse networks are "
                f"{', '.join(self.sparse_network_names)}."
            )
        object.__setattr__(self, "_sparse_settings", settings)
        object.__setattr__(self, "_sparse_kwargs", given)
        if self.default_features_extractor is not None:
            kwargs.setdefault("features_extractor_class", self.default_features_extractor)
        return kwargs

    def _sparsify_network(
        self,
        network: str,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        layers: Sequence[str],
        input_layers: Sequence[str],
        targets: Sequence[nn.Module] = (),
        settings: sn.SparsitySettings | None = None,
        copy_to_targets: bool = False,
    ) -> None:
        """Make ``layers`` of ``module`` sparse with ``settings`` (default: the network's own),
        driven by ``optimizer``; ``targets`` follow its masks (``copy_to_targets``: and start as
        copies of it, as SB3 made them)."""
        if not hasattr(self, "sparse_networks"):
            self.sparse_networks = {}
        settings = self._sparse_settings[network] if settings is None else settings
        if settings.dense:
            return
        # Masks follow SB3's `seed`: SB3 seeds torch before building the policy.
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        sparsity = settings.apply(
            module, optimizer, seed=seed, layers=layers, input_layers=input_layers
        )
        assert sparsity is not None
        self.sparse_networks[network] = _NetworkState(
            module, sparsity, settings, input_layers, targets, copy_to_targets
        )

    def _sparsify_extractors(self, extractors: Mapping[str, Extractor]) -> None:
        """SB3's feature extractors, each its own sparse network, when
        ``features_extractor_sparsity`` is given (they stay dense otherwise)."""
        settings = self._sparse_settings.get(FEATURES)
        if settings is None or settings.dense:
            return
        for network, (extractor, optimizer, targets) in extractors.items():
            layers = [n for n, m in extractor.named_modules() if isinstance(m, sn.SPARSIFIABLE)]
            if not layers:
                raise ConfigError(
                    f"{FEATURES_KEY}: the feature extractor {type(extractor).__name__} has no "
                    "Linear or Conv layer to make sparse; leave it unset (None)."
                )
            unique = {id(t): t for t in targets if t is not extractor}
            self._sparsify_network(
                network,
                extractor,
                optimizer,
                layers,
                extractor_input_layers(extractor),
                targets=list(unique.values()),
                settings=settings,
                copy_to_targets=True,
            )

    def _sparsify_actor_critic_extractors(
        self, actor_targets: Sequence[nn.Module], critic_targets: Sequence[nn.Module]
    ) -> None:
        """SAC's / TD3's extractors: the actor's optimizer trains a shared one (SB3 leaves it
        out of the critic's); each target network's extractor follows its online one."""
        actor, critic = self.actor, self.critic  # type: ignore[attr-defined]
        if self.share_features_extractor:  # type: ignore[attr-defined]
            targets = [t.features_extractor for t in (*actor_targets, *critic_targets)]
            extractors = {FEATURES: (actor.features_extractor, actor.optimizer, targets)}
        else:
            extractors = {
                f"{name}_{FEATURES}": (
                    net.features_extractor,
                    net.optimizer,
                    [t.features_extractor for t in net_targets],
                )
                for name, net, net_targets in (
                    ("actor", actor, actor_targets),
                    ("critic", critic, critic_targets),
                )
            }
        self._sparsify_extractors(extractors)

    def reset_network(self, network: str) -> None:
        """Re-initialise one sparse network as at construction (PEBBLE resets the critic after
        pre-training): default init, its masks, rows rescaled as its settings say."""
        state = self.sparse_networks[network]
        state.settings.reset_(state.module)

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


def extractor_input_layers(extractor: nn.Module) -> list[str]:
    """The layers of a feature extractor that read the observation: its first conv / linear
    layer, or for SB3's ``CombinedExtractor`` the first one of each key's extractor."""
    parts = getattr(extractor, "extractors", None)
    if not isinstance(parts, nn.ModuleDict):
        return first_linear(extractor, "", sn.SPARSIFIABLE)
    return [
        name
        for key, part in parts.items()
        for name in first_linear(part, f"extractors.{key}", sn.SPARSIFIABLE)
    ]


class SparseSACPolicy(SparsePolicyMixin, SACPolicy):
    """SB3's SAC policy with a sparse actor and critic; the critic target follows the critic."""

    sparse_extractors = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **self._pop_sparse_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        actor_inputs = first_linear(self.actor.latent_pi, "latent_pi") or ["mu", "log_std"]
        self._sparsify_network(
            "actor", self.actor, self.actor.optimizer, linear_layers(self.actor), actor_inputs
        )
        self._sparsify_q_critic()
        self._sparsify_actor_critic_extractors([], [self.critic_target])

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return self._with_sparse_kwargs(super()._get_constructor_parameters())


class SparseTD3Policy(SparsePolicyMixin, TD3Policy):
    """SB3's TD3 (and DDPG) policy with sparse actor and critic; both targets follow."""

    sparse_extractors = True

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
        self._sparsify_actor_critic_extractors([self.actor_target], [self.critic_target])

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return self._with_sparse_kwargs(super()._get_constructor_parameters())


class SparseActorCriticPolicy(SparsePolicyMixin, ActorCriticPolicy):
    """SB3's PPO/A2C policy with a sparse policy branch ("actor") and value branch ("critic").

    Both share SB3's single optimizer; SB3's orthogonal init runs first, then each sparse row is
    rescaled to its dense norm so the orthogonal gains still hold.
    """

    sparse_extractors = True

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
        if self.share_features_extractor:
            extractors = {FEATURES: (self.features_extractor, self.optimizer, [])}
        else:
            extractors = {
                f"actor_{FEATURES}": (self.pi_features_extractor, self.optimizer, []),
                f"critic_{FEATURES}": (self.vf_features_extractor, self.optimizer, []),
            }
        self._sparsify_extractors(extractors)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return self._with_sparse_kwargs(super()._get_constructor_parameters())


class SparseDQNPolicy(SparsePolicyMixin, DQNPolicy):
    """SB3's DQN policy with a sparse Q-network, whose settings are the "critic" ones.

    The target Q-network starts as a copy of the sparse one and takes its masks at every topology
    update (its weights are zero wherever the online mask is), so SB3's hard copy every
    ``target_update_interval`` steps keeps both consistent. DQN has no actor: ``actor_sparsity``
    is an error.
    """

    sparse_network_names = ("critic",)
    sparse_extractors = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **self._pop_sparse_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        q_net, target = self.q_net, self.q_net_target
        self._sparsify_network(
            "critic",
            q_net,
            self.optimizer,
            linear_layers(q_net),
            first_linear(q_net.q_net, "q_net"),
            targets=[target],
            copy_to_targets=True,
        )
        extractor = (q_net.features_extractor, self.optimizer, [target.features_extractor])
        self._sparsify_extractors({f"critic_{FEATURES}": extractor})

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return self._with_sparse_kwargs(super()._get_constructor_parameters())


# -- image and dict observations: SB3's CnnPolicy / MultiInputPolicy defaults ---------------------


_P = TypeVar("_P", bound=SparsePolicyMixin)


def with_extractor(policy: type[_P], extractor: type[BaseFeaturesExtractor], kind: str) -> type[_P]:
    """``policy`` whose ``features_extractor_class`` defaults to ``extractor``, as SB3's
    ``CnnPolicy`` / ``MultiInputPolicy`` do; named ``policy``'s name with ``kind`` before
    "Policy" and defined in this module, so saved models find it."""
    name = policy.__name__.removesuffix("Policy") + f"{kind}Policy"
    doc = f"{policy.__name__} with SB3's {extractor.__name__} unless told otherwise."
    body = {"default_features_extractor": extractor, "__module__": __name__, "__doc__": doc}
    return type(name, (policy,), body)


SparseSACCnnPolicy = with_extractor(SparseSACPolicy, NatureCNN, "Cnn")
SparseSACMultiInputPolicy = with_extractor(SparseSACPolicy, CombinedExtractor, "MultiInput")
SparseTD3CnnPolicy = with_extractor(SparseTD3Policy, NatureCNN, "Cnn")
SparseTD3MultiInputPolicy = with_extractor(SparseTD3Policy, CombinedExtractor, "MultiInput")
SparseActorCriticCnnPolicy = with_extractor(SparseActorCriticPolicy, NatureCNN, "Cnn")
SparseActorCriticMultiInputPolicy = with_extractor(
    SparseActorCriticPolicy, CombinedExtractor, "MultiInput"
)
SparseDQNCnnPolicy = with_extractor(SparseDQNPolicy, NatureCNN, "Cnn")
SparseDQNMultiInputPolicy = with_extractor(SparseDQNPolicy, CombinedExtractor, "MultiInput")
