"""Preference-based SAC: PEBBLE, and R2N (PEBBLE whose reward models are sparse).

``PrefSAC`` is SB3's SAC (``learn``, ``save``, ``load``, callbacks, logger, VecEnvs) with a learned
reward: after the random warm-up (``learning_starts``) it explores on a state-entropy reward for
``unsupervised_steps``, resets the critic, then holds feedback sessions: segment pairs from the
replay buffer go to the teacher, the session's labels go to the durable :class:`LabelStore` with
a record of the session, the reward ensemble is trained on all stored labels and the whole buffer
is relabelled. R2N and PEBBLE are the same class; :func:`r2n` and :func:`pebble` are their
settings.

The store, not a checkpoint, is the record of what was asked. A save records how many labels the
reward model was trained on and their digest; loading it (``PrefSAC.load``, or a new model plus
``set_parameters``) refuses a store that lost or changed any of them (``LabelStoreError``), books
the sessions the store holds after the save's last one (so none is asked twice and the budget is
spent once), and retrains the reward model on every stored label when the next ``learn`` starts.
A store without a sessions table (made before it) gives nothing to book: such a run resumes as
before, asking again the sessions after its checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from gymnasium import spaces
from sparse_rl.agents.pbrl.label_store import LabelStore
from sparse_rl.agents.pbrl.labels import LabelStoreError, PreferenceLabel
from sparse_rl.agents.pbrl.queries import (
    QUERY_METHODS,
    FeedbackSchedule,
    candidate_count,
    gather_segments,
    sample_buffer_segments,
    select_queries,
)
from sparse_rl.agents.pbrl.replay_buffer import PreferenceReplayBuffer
from sparse_rl.agents.pbrl.reward_model import (
    RewardModel,
    check_shared_layers,
    reward_sparsity,
)
from sparse_rl.agents.pbrl.state_entropy import StateEntropyReward
from sparse_rl.agents.pbrl.teacher import SimulatedTeacher
from sparse_rl.agents.sparse.policies import SparseSACPolicy
from sparse_rl.supervised.data_pruning import POLICIES as PAIR_POLICIES
from stable_baselines3 import SAC
from stable_baselines3.common.policies import BasePolicy
from torch import nn

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_choice, check_fraction, check_int

ENTROPY_SPACES = ("obs", "reward_features", "none")


def r2n_reward_sparsity(reward_steps: int | None = None) -> sn.SparsitySettings:
    """R2N's reward models: a sparse input layer that finds the real features and keeps them.

    - ``fan_in=8`` active inputs per hidden unit (density 8 / inputs): room for the real
      features whatever the noise fraction, few connections left on noise. Capped at density
      1/6: below 48 inputs a fan-in of 8 would leave most of each unit's inputs on noise
      (Pendulum at 90% noise: 31 inputs, 4 of them real).
    - RigL growing at the strongest inputs first (``grow="input_strength"``): with the L1
      penalty of :func:`r2n` on the input layer, noise inputs' weights sit at zero and are
      dropped, and real inputs fill all their hidden units.
    - Drop fraction 0.3 every 20 reward-model steps, cosine-annealed to zero over the first 75%
      of the run's reward steps (``reward_steps``: their total), so the structure found is kept;
      without a total (epoch training) 0.1 for ever.

    Measured against SET (R2N as published, ANF's settings) and plain RigL in
    docs/reward_learning.md.
    """
    if reward_steps is None:
        updater = sn.RigL(interval=20, drop_fraction=0.1, grow="input_strength")
    else:
        end = max(int(0.75 * reward_steps), 21)
        updater = sn.RigL(
            interval=20, drop_fraction=0.3, schedule="cosine", end_step=end, grow="input_strength"
        )
    return sn.SparsitySettings(fan_in=8, density=1 / 6, layers="input", updater=updater)


@dataclass(frozen=True)
class PbRLConfig:
    """Settings of the preference loop (defaults: PEBBLE and the B-Pref benchmark).

    :param reward_sparsity: None for dense reward models (PEBBLE); for R2N
        ``sn.SparsitySettings``, or a mapping of its keys laid over R2N as published
        (``R2N_PUBLISHED``: input layer, density 0.2, SET).
    :param query_method: "uniform", "disagreement" or "entropy" (the first session is uniform).
    :param labels_per_session: queries per feedback session.
    :param session_every: env steps between sessions.
    :param budget: total queries.
    :param unsupervised_steps: env steps of state-entropy exploration after ``learning_starts``.
    :param reward_steps: reward-model gradient steps per feedback session (on all labels so
        far); None trains ``reward_epochs`` passes instead.
    :param reward_epochs: passes over the labels per session, B-Pref's way (needs
        ``reward_steps=None``).
    :param reward_target_accuracy: with ``reward_epochs``, a session stops once the ensemble
        reaches this accuracy on its labels (B-Pref: 0.97). Measured: it stops after 15-50 steps,
        long before the model generalises (docs/reward_learning.md).
    :param reward_input_l1: L1 penalty on each reward model's input layer (R2N: 0.03).
    :param reward_input_l2: L2 penalty (weight decay) on each reward model's input layer.
    :param reward_shared_layers: the first layers of the reward models as one trunk shared by
        all members, each member keeping its own head of the remaining layers (NeuroTrails);
        in [0, len(reward_hidden)], 0 (default) for independent members. ``reward_sparsity``
        applies to the whole model: its ``layers="input"`` is then the trunk's first layer.
    :param reward_pair_keep: dynamic data pruning of the labelled pairs (issue 20's sampler,
        docs/data_pruning.md): each pass of reward training uses this share of the pairs,
        chosen by ``reward_pair_policy`` from each pair's latest loss; new pairs come first.
        1.0 (default) trains on every pair. With ``reward_steps`` the steps stay the same: fewer
        steps are what saves time (measured in docs/reward_learning.md).
    :param reward_pair_policy: "infobatch" (default), "random", "hardest" or "epsilon_greedy".
    :param entropy_space: where k-NN distances are taken: "obs", "reward_features" (the first
        reward model's input layer, which R2N makes sparse), or "none" (skip pre-training).
    """

    ensemble_size: int = 3
    reward_hidden: tuple[int, ...] = (256, 256, 256)
    reward_lr: float = 3e-4
    reward_batch_size: int = 128
    reward_steps: int | None = 200
    reward_epochs: int | None = None
    reward_target_accuracy: float | None = None
    reward_input_l1: float = 0.0
    reward_input_l2: float = 0.0
    reward_sparsity: sn.SparsitySettings | Mapping[str, Any] | None = None
    reward_shared_layers: int = 0
    reward_pair_keep: float = 1.0
    reward_pair_policy: str = "infobatch"
    segment_length: int = 50
    query_method: str = "disagreement"
    candidate_multiplier: int = 10
    labels_per_session: int = 50
    session_every: int = 5000
    budget: int = 1000
    unsupervised_steps: int = 9000
    entropy_space: str = "obs"
    entropy_k: int = 5
    relabel_chunk: int = 65536

    def __post_init__(self) -> None:
        if self.reward_sparsity is not None:
            object.__setattr__(self, "reward_sparsity", reward_sparsity(self.reward_sparsity))
        check_choice("query_method", self.query_method, QUERY_METHODS)
        check_choice("entropy_space", self.entropy_space, ENTROPY_SPACES)
        check_fraction("reward_pair_keep", self.reward_pair_keep)
        check_choice("reward_pair_policy", self.reward_pair_policy, PAIR_POLICIES)
        for name in ("ensemble_size", "reward_batch_size", "reward_steps", "reward_epochs",
                     "segment_length", "candidate_multiplier", "labels_per_session",
                     "session_every", "entropy_k", "relabel_chunk"):  # fmt: skip
            value = getattr(self, name)
            if value is None and name in ("reward_steps", "reward_epochs"):
                continue
            check_int(name, value)
        if (self.reward_steps is None) == (self.reward_epochs is None):
            raise ValueError(
                "set one of reward_steps (gradient steps per session) and reward_epochs (passes "
                f"over the labels), the other None; got reward_steps={self.reward_steps!r}, "
                f"reward_epochs={self.reward_epochs!r}."
            )
        if self.reward_target_accuracy is not None and self.reward_epochs is None:
            raise ValueError(
                "reward_target_accuracy stops epoch training: set reward_epochs (and "
                "reward_steps=None) with it."
            )
        for name in ("reward_input_l1", "reward_input_l2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        for name in ("budget", "unsupervised_steps"):
            check_int(name, getattr(self, name), low=0)
        check_shared_layers(self.reward_shared_layers, self.reward_hidden, "reward_shared_layers")
        target = self.reward_target_accuracy
        if target is not None and (isinstance(target, bool) or not 0.0 < target <= 1.0):
            raise ValueError(
                f"reward_target_accuracy must be in (0, 1], or None to train every epoch; got "
                f"{target!r}."
            )
        if self.entropy_space == "none" and self.unsupervised_steps:
            raise ValueError(
                "entropy_space='none' skips pre-training: set unsupervised_steps=0 with it."
            )


def pebble(**overrides: Any) -> PbRLConfig:
    """PEBBLE: dense reward models (B-Pref's early stop: ``reward_steps=None, reward_epochs=50,
    reward_target_accuracy=0.97``)."""
    return replace(PbRLConfig(), **overrides)


def r2n(**overrides: Any) -> PbRLConfig:
    """R2N: PEBBLE whose reward models have sparse, rewired, L1-penalised input layers.

    The sparse settings are :func:`r2n_reward_sparsity` for the run's total reward-model steps
    (sessions × ``reward_steps``), unless ``reward_sparsity`` is given.
    """
    config = replace(PbRLConfig(reward_input_l1=0.03), **overrides)
    if "reward_sparsity" in overrides:
        return config
    total = None
    if config.reward_steps is not None:
        sessions = -(-config.budget // config.labels_per_session)
        total = max(sessions, 1) * config.reward_steps
    return replace(config, reward_sparsity=r2n_reward_sparsity(total))


class _PbRLState(nn.Module):
    """Carries the loop's non-tensor state through SB3's ``save``/``load`` (extra state)."""

    def __init__(self, agent: PrefSAC) -> None:
        super().__init__()
        object.__setattr__(self, "agent", agent)  # not a submodule: no recursion

    def get_extra_state(self) -> dict[str, Any]:
        agent: PrefSAC = self.agent  # type: ignore[assignment]
        return agent._loop_state()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        agent: PrefSAC = self.agent  # type: ignore[assignment]
        agent._load_loop_state(state)


@dataclass
class _Diagnostics:
    heldout_correct: int = 0
    heldout_total: int = 0
    fields: dict[str, float] = field(default_factory=dict)


class PrefSAC(SAC):
    """SAC trained on a reward learned from preferences (PEBBLE; R2N with ``r2n()`` settings).

    :param preference: the loop's settings, ``pebble()`` (default) or ``r2n()``.
    :param label_store: path of the SQLite label store, kept absolute (created if missing; an
        existing one is reused: its labels train the reward model before the next ``learn``
        goes on, and its recorded sessions are not asked again).
    :param teacher: answers queries from the env's true reward; default the B-Pref oracle.
    Other arguments are SAC's; ``policy="SparseMlpPolicy"`` gives R2N sparse SAC networks too.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **SAC.policy_aliases,
        "SparseMlpPolicy": SparseSACPolicy,
    }

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: Any,
        preference: PbRLConfig | None = None,
        label_store: str | Path | None = None,
        teacher: SimulatedTeacher | None = None,
        **kwargs: Any,
    ) -> None:
        if label_store is None and kwargs.get("_init_setup_model", True):
            raise ValueError(
                "label_store is required: a path for the SQLite file that keeps every label "
                "(e.g. label_store='run/labels.sqlite')."
            )
        if "replay_buffer_class" in kwargs:
            raise ValueError(
                "PrefSAC uses its own PreferenceReplayBuffer; drop replay_buffer_class."
            )
        self.preference = preference if preference is not None else pebble()
        if not isinstance(self.preference, PbRLConfig):
            raise TypeError(
                f"preference must be a PbRLConfig (pebble() or r2n()), got "
                f"{type(self.preference).__name__}."
            )
        # Absolute: a model loaded from another directory must find the same labels.
        self.label_store_path = None if label_store is None else _absolute(label_store)
        # SB3's load builds the model without setup: its labels must exist, never be made anew.
        self._store_must_exist = not kwargs.get("_init_setup_model", True)
        self.teacher = teacher if teacher is not None else SimulatedTeacher()
        super().__init__(policy, env, replay_buffer_class=PreferenceReplayBuffer, **kwargs)

    @classmethod
    def load(
        cls,
        path: Any,
        env: Any = None,
        device: torch.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        label_store: str | Path | None = None,
        **kwargs: Any,
    ) -> Self:
        """SB3's ``load``; the labels are read from the store the model was saved with.

        :param label_store: where that store is now, if it moved (default: the saved path).
        :raises FileNotFoundError: when the store is not there; a new one is never made.
        :raises LabelStoreError: when it lacks or changed labels the model was trained on.
        """
        if label_store is not None:
            kwargs["label_store_path"] = _absolute(label_store)
        try:
            return super().load(
                path,
                env=env,
                device=device,
                custom_objects=custom_objects,
                print_system_info=print_system_info,
                force_reset=force_reset,
                **kwargs,
            )
        except KeyError as error:
            # SB3 takes any ValueError of set_parameters for an old DQN save and retries with
            # params["policy.optimizer"], which SAC has not: raise the error that happened.
            original = error.__context__
            if error.args == ("policy.optimizer",) and isinstance(original, ValueError):
                raise original from None
            raise

    # -- construction -----------------------------------------------------------------------------

    def _setup_model(self) -> None:
        super()._setup_model()
        if (
            not isinstance(self.observation_space, spaces.Box)
            or len(self.observation_space.shape) != 1
        ):
            raise ValueError(
                f"PrefSAC needs a flat Box observation space, got {self.observation_space}."
            )
        cfg = self.preference
        obs_dim = int(self.observation_space.shape[0])
        act_dim = int(np.prod(self.action_space.shape))
        self.reward_model = RewardModel(
            obs_dim,
            act_dim,
            members=cfg.ensemble_size,
            hidden=cfg.reward_hidden,
            lr=cfg.reward_lr,
            batch_size=cfg.reward_batch_size,
            sparsity=cfg.reward_sparsity,
            input_l1=cfg.reward_input_l1,
            input_l2=cfg.reward_input_l2,
            device=self.device,
            seed=0 if self.seed is None else self.seed,
            shared_layers=cfg.reward_shared_layers,
            pair_keep=cfg.reward_pair_keep,
            pair_policy=cfg.reward_pair_policy,
        )
        self.label_store = self._open_label_store(obs_dim, act_dim)
        self.pretrain_end = self.learning_starts + cfg.unsupervised_steps
        self.schedule = FeedbackSchedule(
            cfg.labels_per_session, cfg.session_every, cfg.budget, first_step=self.pretrain_end
        )
        self.query_rng = np.random.default_rng(self.seed)
        self.pbrl_state = _PbRLState(self)
        self._pretraining = cfg.unsupervised_steps > 0
        self._last_session_step = 0
        self._diagnostics = _Diagnostics()
        self._book_stored_sessions()  # a store reused by a new model: its sessions are spent
        self._labels_trained = 0  # the first labels of the store the reward model learned
        self._retrain = len(self.label_store) > 0
        features = self._reward_features if cfg.entropy_space == "reward_features" else None
        self.entropy_reward = StateEntropyReward(features=features, k=cfg.entropy_k)
        self._link_buffer()

    def _open_label_store(self, obs_dim: int, act_dim: int) -> LabelStore:
        if self.label_store_path is None:
            raise ValueError("label_store is required: the path of the SQLite label store.")
        path = _absolute(self.label_store_path)  # saves before issue 15 kept a relative path
        must_exist = getattr(self, "_store_must_exist", False)
        if must_exist and not Path(path).exists():
            relative = "" if path == self.label_store_path else f" ({self.label_store_path!r})"
            raise FileNotFoundError(
                f"label store {path}{relative} not found: this model was trained on the labels "
                "there, and a new empty store would silently drop them. Pass "
                "PrefSAC.load(..., label_store='<where labels.sqlite is now>')."
            )
        self.label_store_path = path
        return LabelStore(  # segments keep the buffer's dtypes: stored losslessly
            path,
            (obs_dim,),
            (act_dim,),
            self.preference.segment_length,
            obs_dtype=self.observation_space.dtype,
            act_dtype=self.action_space.dtype,
            create=not must_exist,
        )

    def _book_stored_sessions(self) -> None:
        """Book the sessions the store holds after this model's last one: none is asked twice.

        Their queries come off the budget (skipped ones too, as ``FeedbackSchedule`` counts
        them), capped at what is left of this model's budget.
        """
        after = self._last_session_step if self.schedule.sessions else -1
        for session in self.label_store.sessions(after_step=after):
            self.schedule.record(session.step, min(session.asked, self.schedule.remaining))
            self._last_session_step = session.step

    def _reward_features(self, obs: torch.Tensor) -> torch.Tensor:
        """The first reward model's input layer applied to the observation part of its input."""
        layer = self.reward_model.ensemble.input_modules()[0]
        return torch.nn.functional.linear(obs, layer.weight[:, : obs.shape[-1]])

    def _link_buffer(self) -> None:
        buffer = self.replay_buffer
        assert isinstance(buffer, PreferenceReplayBuffer)
        trained = self.schedule.sessions > 0 or len(self.label_store) > 0
        buffer.reward_fn = self._learned_reward if trained else None
        buffer.intrinsic = self.entropy_reward if self._pretraining else None

    def _learned_reward(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        return self.reward_model.reward(obs, act, chunk=self.preference.relabel_chunk)

    def load_replay_buffer(self, path: Any, truncate_last_traj: bool = True) -> None:
        super().load_replay_buffer(path, truncate_last_traj)
        if not isinstance(self.replay_buffer, PreferenceReplayBuffer):
            raise TypeError(
                f"{path} holds a {type(self.replay_buffer).__name__}, not a PreferenceReplayBuffer."
            )
        self._link_buffer()

    # -- SB3 persistence ------------------------------------------------------------------------

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "reward_model",
            "label_store",
            "schedule",
            "query_rng",
            "pbrl_state",
            "entropy_reward",
            "_diagnostics",
            "_store_must_exist",
            "_retrain",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = super()._get_torch_save_params()
        extra = ["reward_model.ensemble", "reward_model.optimizer", "pbrl_state"]
        return [*state_dicts, *extra], tensors

    def _loop_state(self) -> dict[str, Any]:
        sparsity = self.reward_model.sparsity
        return {
            # What the reward model was trained on: a resumed run checks its store still has it.
            "labels": self._labels_trained,
            "labels_digest": self.label_store.digest(self._labels_trained),
            "schedule": self.schedule.state_dict(),
            "teacher": self.teacher.state_dict(),
            "query_rng": self.query_rng.bit_generator.state,
            "reward_rng": self.reward_model._rng.bit_generator.state,
            "reward_sparsity": None if sparsity is None else sparsity.state_dict(),
            "reward_pairs": self.reward_model.pairs_state_dict(),
            "entropy": self.entropy_reward.state_dict(),
            "pretraining": self._pretraining,
            "last_session_step": self._last_session_step,
            "heldout": [self._diagnostics.heldout_correct, self._diagnostics.heldout_total],
        }

    def _load_loop_state(self, state: dict[str, Any]) -> None:
        sparsity = self.reward_model.sparsity
        if (state["reward_sparsity"] is None) != (sparsity is None):
            raise ValueError(
                "the saved reward models and this agent's differ in sparsity (PEBBLE vs R2N); "
                "load with the preference settings it was trained with."
            )
        store = self.label_store
        trained = len(store)  # saves before issue 15 recorded nothing: trust the store
        if "labels" in state:
            trained = int(state["labels"])
            try:
                store.check_prefix(trained, state["labels_digest"])
            except LabelStoreError as error:
                raise LabelStoreError(
                    f"cannot resume: the saved model was trained on {trained} labels. {error}"
                ) from None
        self.schedule.load_state_dict(state["schedule"])
        self.teacher.load_state_dict(state["teacher"])
        self.query_rng.bit_generator.state = state["query_rng"]
        self.reward_model._rng.bit_generator.state = state["reward_rng"]
        if sparsity is not None:
            sparsity.load_state_dict(state["reward_sparsity"])
        self.reward_model.load_pairs_state_dict(state.get("reward_pairs"))  # None: saved before
        self.entropy_reward.load_state_dict(state["entropy"])
        self._pretraining = bool(state["pretraining"])
        self._last_session_step = int(state["last_session_step"])
        self._diagnostics.heldout_correct, self._diagnostics.heldout_total = state["heldout"]
        self._labels_trained = trained
        self._book_stored_sessions()
        self._retrain = len(store) > trained  # labels made after the save: learned before going on
        self._link_buffer()

    # -- the loop -------------------------------------------------------------------------------

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        """SB3's setup; then, after a resume, the reward model learns the labels made since the
        save (the replay buffer is in place by now), before any step trains on its reward."""
        result = super()._setup_learn(*args, **kwargs)
        if self._retrain:
            self._train_reward_model()
        return result

    def _on_step(self) -> None:
        super()._on_step()
        if self._pretraining and self.num_timesteps >= self.pretrain_end:
            self._end_pretraining()
        asked = self.schedule.due(self.num_timesteps)
        if asked:
            self._feedback_session(asked)

    def _end_pretraining(self) -> None:
        """PEBBLE resets the critic once: its values were fitted to the intrinsic reward."""
        self._pretraining = False
        critic, target = self.policy.critic, self.policy.critic_target
        if "critic" in getattr(self.policy, "sparse_networks", {}):
            self.policy.reset_network("critic")  # masks kept, rows at their initial scale
        else:
            with torch.no_grad():
                for module in critic.modules():
                    if isinstance(module, nn.Linear):
                        module.reset_parameters()
        target.load_state_dict(critic.state_dict())
        critic.optimizer.state.clear()
        self._link_buffer()
        self.logger.record("pbrl/critic_reset_step", self.num_timesteps)

    def _feedback_session(self, asked: int) -> None:
        cfg, buffer = self.preference, self.replay_buffer
        assert isinstance(buffer, PreferenceReplayBuffer)
        method = "uniform" if self.schedule.sessions == 0 else cfg.query_method
        k = candidate_count(method, asked, cfg.candidate_multiplier)
        first, second = (
            gather_segments(
                sample_buffer_segments(buffer, cfg.segment_length, k, self.query_rng),
                buffer.observations,
                buffer.actions,
                buffer.true_rewards,
            )
            for _ in range(2)
        )
        probabilities = None
        if method != "uniform":
            probabilities = self.reward_model.preference_probabilities(
                first.observations, first.actions, second.observations, second.actions
            )
        chosen = select_queries(method, k, asked, probabilities, self.query_rng)
        answer = self.teacher.label(first.rewards[chosen], second.rewards[chosen])
        labels: list[PreferenceLabel] = []
        for j, query in enumerate(chosen[answer.kept]):
            info = {
                "source": "simulated",
                "env_step": int(self.num_timesteps),
                "return0": float(answer.returns0[answer.kept[j]]),
                "return1": float(answer.returns1[answer.kept[j]]),
                "mistake": bool(answer.mistakes[j]),
                "method": method,
            }
            label = PreferenceLabel(
                first.observations[query],
                first.actions[query],
                second.observations[query],
                second.actions[query],
                float(answer.labels[j]),
                info,
            )
            labels.append(label)
        # Durable before anything else can fail: the labels with the session that asked for
        # them, so a run resumed from an older save books this session instead of asking again.
        self.label_store.record_session(self.num_timesteps, asked, labels)
        self.label_store.checkpoint()  # into the store file: a copy of it alone holds them
        self.schedule.record(self.num_timesteps, asked)
        self._score_unseen(labels)
        self._train_reward_model()
        self._last_session_step = self.num_timesteps

    def _score_unseen(self, labels: list[PreferenceLabel]) -> None:
        """Accuracy on the new labels before training on them: held-out accuracy for free."""
        strict = [lab for lab in labels if lab.label != 0.5]
        if not strict or (self.schedule.sessions <= 1 and len(self.label_store) == len(labels)):
            return  # the first model has not seen any label yet: nothing to hold out
        stack = [
            np.stack([getattr(lab, f) for lab in strict]) for f in ("obs0", "act0", "obs1", "act1")
        ]
        y = np.array([lab.label for lab in strict], dtype=np.float32)
        accuracy = self.reward_model.accuracy(*stack, y)
        d = self._diagnostics
        d.heldout_correct += round(accuracy * len(strict))
        d.heldout_total += len(strict)
        self.logger.record("pbrl/heldout_accuracy", accuracy)
        self.logger.record("pbrl/heldout_accuracy_cumulative", self.heldout_accuracy)

    def _train_reward_model(self) -> None:
        cfg, buffer = self.preference, self.replay_buffer
        assert isinstance(buffer, PreferenceReplayBuffer)
        batch = self.label_store.load()
        self._retrain = False
        if len(batch) == 0:
            return  # every query so far was skipped
        stats = self.reward_model.train(
            batch.obs0.astype(np.float32),
            batch.act0.astype(np.float32),
            batch.obs1.astype(np.float32),
            batch.act1.astype(np.float32),
            batch.labels,
            epochs=cfg.reward_epochs,
            target_accuracy=cfg.reward_target_accuracy,
            steps=cfg.reward_steps,
        )
        self._labels_trained = len(batch)
        self.label_store.digest(len(batch))  # keeps the digest a save records up to date
        if buffer.stored():
            buffer.relabel(self._learned_reward)
        self._link_buffer()
        record = self.logger.record
        record("pbrl/labels", len(batch))
        record("pbrl/sessions", self.schedule.sessions)
        record("pbrl/reward_loss", stats.loss)
        record("pbrl/reward_train_accuracy", stats.accuracy)
        record("pbrl/reward_steps", stats.steps)
        record("pbrl/reward_true_correlation", self._fresh_correlation())
        for key, value in self._connectivity().items():
            record(f"pbrl/{key}", value)

    @property
    def heldout_accuracy(self) -> float:
        """Accuracy on every label before the reward model trained on it (NaN before any)."""
        d = self._diagnostics
        return d.heldout_correct / d.heldout_total if d.heldout_total else float("nan")

    def _fresh_correlation(self) -> float:
        """Pearson r of learned vs true reward on transitions added since the previous session."""
        buffer = self.replay_buffer
        assert isinstance(buffer, PreferenceReplayBuffer)
        n = buffer.stored()
        if n < 2:
            return float("nan")
        fresh = min(max(self.num_timesteps - self._last_session_step, 2), n)
        rows = (np.arange(buffer.pos - fresh, buffer.pos)) % buffer.buffer_size
        obs = buffer.observations[rows].reshape(fresh * buffer.n_envs, -1)
        act = buffer.actions[rows].reshape(fresh * buffer.n_envs, -1)
        true = buffer.true_rewards[rows].reshape(-1)
        learned = self._learned_reward(obs, act)
        if true.std() == 0 or learned.std() == 0:
            return float("nan")
        return float(np.corrcoef(learned, true)[0, 1])

    def _connectivity(self) -> dict[str, float]:
        """Per member and averaged: active input connections per real vs noise feature."""
        env = self.get_env()
        if env is None or not env.has_attr("real_indices"):
            return {}
        real = np.asarray(env.get_attr("real_indices", indices=[0])[0], dtype=np.int64)
        conn = self.reward_model.input_connectivity()  # (members, obs_dim)
        noise = np.setdiff1d(np.arange(conn.shape[1]), real)
        values = {
            "reward_real_connections": float(conn[:, real].mean()),
            "reward_noise_connections": float(conn[:, noise].mean()) if noise.size else 0.0,
        }
        for i, row in enumerate(conn):
            values[f"reward{i}_real_connections"] = float(row[real].mean())
            values[f"reward{i}_noise_connections"] = float(row[noise].mean()) if noise.size else 0.0
        return values


def _absolute(path: str | Path) -> str:
    """``path`` as an absolute path, so it means the same file from any working directory."""
    return str(Path(path).expanduser().resolve())
