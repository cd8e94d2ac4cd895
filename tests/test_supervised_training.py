"""The supervised training loop: seeded, early stopping that restores weights *and* masks,
sparsity through the core's settings object, and a package that stays off the RL side."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from sparse_rl.supervised import fit, metrics, mlp, training_sparsity
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

#: Masks change at every step: any topology update after the best epoch would show.
CHURNING = sn.SparsitySettings(density=0.5, updater=sn.SET(interval=1, drop_fraction=0.3))


def _data(n: int, seed: int, noise_labels: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    if noise_labels:  # nothing to learn: validation loss rises as the model memorises
        y = torch.randint(0, 2, (n,), generator=g)
    return x, y


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return mlp(8, (32,), 2)


def _run(model: torch.nn.Module | None = None, **kwargs):
    model = _model() if model is None else model
    kwargs = {"epochs": 6, "batch_size": 16, "lr": 1e-2, "seed": 3, **kwargs}
    history = fit(model, _data(96, 0), _data(48, 1), metric=metrics.accuracy, **kwargs)
    return model, history


def test_same_seed_same_history_weights_and_masks() -> None:
    model_a, a = _run(sparsity=CHURNING)
    model_b, b = _run(sparsity=CHURNING)
    assert a.records and [r.train_loss for r in a.records] == [r.train_loss for r in b.records]
    assert a.column("val_loss") == b.column("val_loss")
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key
    _, c = _run(sparsity=CHURNING, seed=4)
    assert a.column("train_loss") != c.column("train_loss")


def test_fit_restores_the_caller_generator_state() -> None:
    model = _model()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _run(model, augment=lambda x: x + 0.1 * torch.randn_like(x))
    assert torch.equal(torch.rand(3), expected)


def test_early_stopping_restores_best_weights_and_masks() -> None:
    model = _model()
    seen: list[dict[str, torch.Tensor]] = []

    def keep(net: torch.nn.Module, record) -> None:
        seen.append({k: v.clone() for k, v in net.state_dict().items()})

    history = fit(
        model,
        _data(64, 0, noise_labels=True),
        _data(64, 1, noise_labels=True),
        epochs=40,
        batch_size=8,
        lr=1e-2,
        patience=3,
        seed=0,
        sparsity=CHURNING,
        on_epoch=keep,
    )
    best = history.best_epoch
    assert history.stopped_early and len(history) == best + 4
    losses = history.column("val_loss")
    assert losses[best] == min(losses)
    last_mask = seen[-1]["0.weight_mask"]
    assert not torch.equal(last_mask, seen[best]["0.weight_mask"]), "masks moved after best"
    for key, value in model.state_dict().items():
        assert torch.equal(value, seen[best][key]), key
    assert history.sparsity is not None
    assert history.sparsity.masks["0"].equal(seen[best]["0.weight_mask"] != 0)
    assert history.sparsity_stats is not None and history.sparsity_stats.density == 0.5
    assert not model.training


def test_history_records_losses_metric_and_density() -> None:
    model, history = _run(sparsity={"density": 0.25})
    assert len(history) == 6 and not history.stopped_early
    assert history.column("density") == [0.25] * 6
    assert all(0.0 <= m <= 1.0 for m in history.column("val_metric"))
    assert history.column("train_loss")[-1] < history.column("train_loss")[0]
    assert "0.weight_mask" in model.state_dict()
    with pytest.raises(ConfigError, match="did you mean 'val_loss'"):
        history.column("val_los")


def test_a_mapping_gets_a_stopping_updater_and_settings_are_used_as_given() -> None:
    settings = training_sparsity({"density": 0.3, "updater": "rigl"}, total_steps=1000)
    assert settings is not None and settings.distribution == "erk"
    updater = settings.updater
    assert isinstance(updater, sn.RigL)
    assert (updater.interval, updater.schedule, updater.end_step) == (10, "cosine", 750)
    mine = training_sparsity(
        {"updater": {"name": "set", "end_step": None, "schedule": "constant"}}, 10
    )
    assert mine is not None and mine.updater.end_step is None and mine.density == 0.2
    assert training_sparsity(CHURNING, 10) is CHURNING
    assert training_sparsity(None, 10) is None
    with pytest.raises(ConfigError, match=re.escape("sparsity.updater.name: 'rgl' is not valid")):
        training_sparsity({"updater": {"name": "rgl"}}, 10)


def test_progress_bar_and_pickling_the_history(capsys) -> None:
    _, history = _run(sparsity=CHURNING, progress=True, epochs=2)
    assert "fit" in capsys.readouterr().err
    again = pickle.loads(pickle.dumps(history))
    assert again.records == history.records and again.sparsity is None
    assert again.sparsity_stats == history.sparsity_stats and history.sparsity is not None


def test_a_torch_dataset_trains_like_tensors() -> None:
    model = _model()
    x, y = _data(40, 0)
    history = fit(model, TensorDataset(x, y), TensorDataset(*_data(20, 1)), epochs=2, seed=0)
    assert len(history) == 2 and history.records[0].val_loss is not None


def test_without_validation_the_last_epoch_is_kept() -> None:
    model = _model()
    history = fit(model, _data(32, 0), None, F.cross_entropy, epochs=3, patience=1, seed=0)
    assert history.best_epoch == 2 and history.column("val_loss") == [None] * 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"optimizer": "adm"}, "optimizer: 'adm' is not valid (did you mean 'adam'?)"),
        ({"lr": -1.0}, "lr: -1.0 is not valid"),
        ({"patience": 0}, "patience must be an integer >= 1"),
        ({"sparsity": {"densty": 0.1}}, "unknown key 'sparsity.densty'"),
    ],
)
def test_bad_fit_arguments_name_the_parameter(kwargs, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        fit(_model(), _data(8, 0), **kwargs)
    assert message in str(error.value)


def test_the_package_imports_nothing_from_the_rl_side() -> None:
    script = textwrap.dedent(
        """
        import sys
        import sparse_rl.supervised
        # scikit-learn too: the selectors load it on first use, so the loop and metrics
        # work without the extra
        heavy = ("stable_baselines3", "gymnasium", "sklearn", "sparse_rl.agents", "sparse_rl.envs")
        loaded = [m for m in heavy if m in sys.modules]
        assert not loaded, loaded
        print("OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
