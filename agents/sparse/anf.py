"""ANF (Automatic Noise Filtering, Grooten et al. 2023) as a named sparse-policy configuration.

Only the input layer is sparse (80%); SET drops 5% of its connections every 1000 gradient steps and
never stops, so it keeps moving connections from noise features to the real ones.
"""

from __future__ import annotations

from typing import Any

from sparse_rl import sparse_nets as sn

ANF_ALGOS = ("sac", "td3")


def anf_policy_kwargs(**overrides: Any) -> dict[str, Any]:
    """The sparse-policy settings of ANF; ``overrides`` replace or add policy_kwargs keys."""
    return {
        "density": 0.2,
        "layers": "input",
        "updater": sn.SET(interval=1000, drop_fraction=0.05),
        **overrides,
    }


def anf_kwargs(algo: str = "sac", paper: bool = False, **policy_overrides: Any) -> dict[str, Any]:
    """Constructor kwargs for ``SAC(SparseSACPolicy, env, **anf_kwargs("sac"))`` (or TD3).

    :param paper: also use ANF's other settings (paper, code): lr 1e-3 for everything, Adam
        weight decay 2e-4, batch 100, γ 0.99, τ 0.005, 2×256 ReLU, 25k random steps, and for SAC
        a fixed entropy coefficient 0.2. Without it, SB3's defaults stay (e.g. batch 256,
        learned α), which suits short budgets better.
    """
    if algo not in ANF_ALGOS:
        raise ValueError(f"algo={algo!r} is not valid for ANF; choose one of {list(ANF_ALGOS)}.")
    policy_kwargs = anf_policy_kwargs(**policy_overrides)
    if not paper:
        return {"policy_kwargs": policy_kwargs}
    policy_kwargs.setdefault("net_arch", [256, 256])
    policy_kwargs.setdefault("optimizer_kwargs", {"weight_decay": 2e-4})
    kwargs: dict[str, Any] = {
        "policy_kwargs": policy_kwargs,
        "learning_rate": 1e-3,
        "batch_size": 100,
        "gamma": 0.99,
        "tau": 0.005,
        "learning_starts": 25_000,
    }
    if algo == "sac":
        kwargs["ent_coef"] = 0.2
    return kwargs
