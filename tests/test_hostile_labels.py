"""Issue 15's hostile-input coverage for labels: moved, damaged and re-asked label stores.

A label costs a teacher's answer, so a model must find the labels it was trained with wherever it
is loaded from, refuse a store that lost or changed some of them, and never ask for a label twice
after a crash.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from helpers import PBRL_SMALL
from sparse_rl.agents.pbrl.agent import PbRLConfig, PrefSAC, pebble
from sparse_rl.agents.pbrl.label_store import LabelStore
from sparse_rl.agents.pbrl.labels import LabelStoreError, PreferenceLabel
from sparse_rl.agents.pbrl.replay_buffer import PreferenceReplayBuffer
from sparse_rl.agents.pbrl.teacher import SimulatedTeacher
from stable_baselines3.common.save_util import load_from_zip_file

from sparse_rl import envs

#: Sessions at steps 50, 100, 150, 200, 250 (learning_starts=50, no pre-training), 8 queries each.
SMALL = {
    **PBRL_SMALL,
    "session_every": 50,
    "budget": 40,
    "unsupervised_steps": 0,
    "entropy_space": "none",
}
SHAPES = {"obs_shape": (12,), "act_shape": (1,), "segment_length": 10}


def noisy_pendulum() -> gym.Env:
    return envs.NoisyFeatures(gym.make("Pendulum-v1"), noise_fraction=0.75)


def agent(store: str | Path, config: PbRLConfig | None = None, **kwargs) -> PrefSAC:
    return PrefSAC(
        "MlpPolicy",
        noisy_pendulum(),
        preference=config or pebble(**SMALL),
        label_store=store,
        learning_starts=50,
        batch_size=32,
        train_freq=4,  # SAC's own updates are not under test: a quarter of them is enough
        seed=0,
        policy_kwargs={"net_arch": [16, 16]},
        **kwargs,
    )


def sb3_load(save: Path, store: Path, buffer: Path, **_: object) -> PrefSAC:
    """The SB3 way: ``PrefSAC.load`` (the store path and the teacher come from the save)."""
    model = PrefSAC.load(save, env=noisy_pendulum())
    model.load_replay_buffer(buffer)
    return model


def cli_load(save: Path, store: Path, buffer: Path, **kwargs: object) -> PrefSAC:
    """The command line's way: a fresh model on the run's store, then ``set_parameters``."""
    data, params, _ = load_from_zip_file(save)
    model = agent(store, **kwargs)
    model.set_parameters(params, exact_match=True)
    model.num_timesteps = data["num_timesteps"]
    model.load_replay_buffer(buffer)
    return model


Loader = Callable[..., PrefSAC]
LOADERS = pytest.mark.parametrize("load", [sb3_load, cli_load], ids=["PrefSAC.load", "cli"])


def trained_and_saved(tmp_path: Path, steps: int = 100) -> tuple[PrefSAC, Path, Path]:
    """A model that learned ``steps`` steps (sessions at 50, 100, ...), saved with its buffer."""
    model = agent(tmp_path / "labels.sqlite")
    model.learn(steps)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")
    return model, tmp_path / "model.zip", tmp_path / "buffer.pkl"


def label(seed: int) -> PreferenceLabel:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(2, 10, 12)).astype(np.float32)
    act = rng.normal(size=(2, 10, 1)).astype(np.float32)
    return PreferenceLabel(obs[0], act[0], obs[1], act[1], float(seed % 2), {"seed": seed})


# -- 1. the store is found wherever the model is loaded from --------------------------------------


def test_model_loaded_from_another_directory_uses_its_own_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model built with a relative store path finds that store when loaded from elsewhere."""
    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    model = agent("labels.sqlite")
    model.learn(100)
    model.save(tmp_path / "model")
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded = PrefSAC.load(tmp_path / "model", env=noisy_pendulum())
    assert loaded.label_store.path == (tmp_path / "run" / "labels.sqlite").resolve()
    assert len(loaded.label_store) == len(model.label_store) == 16
    assert not (tmp_path / "elsewhere" / "labels.sqlite").exists()


def test_load_without_its_store_is_an_error_naming_the_path(tmp_path: Path) -> None:
    """A moved store is never replaced by a new empty one; label_store= says where it went."""
    model, save, _ = trained_and_saved(tmp_path)
    model.label_store.close()
    expected = tmp_path / "labels.sqlite"
    moved = tmp_path / "moved" / "labels.sqlite"
    moved.parent.mkdir()
    expected.rename(moved)
    with pytest.raises(FileNotFoundError, match=str(expected)):
        PrefSAC.load(save, env=noisy_pendulum())
    assert not expected.exists()
    loaded = PrefSAC.load(save, env=noisy_pendulum(), label_store=moved)
    assert loaded.label_store.path == moved.resolve() and len(loaded.label_store) == 16


# -- 2. a store file that exists is a store -------------------------------------------------------


def test_copy_of_the_main_file_alone_holds_every_session_label(tmp_path: Path) -> None:
    """Each feedback session moves its labels out of the -wal file into the store file itself."""
    model = agent(tmp_path / "labels.sqlite")
    model.learn(100)  # the store stays open, as in a process killed now
    copy = tmp_path / "copy" / "labels.sqlite"
    copy.parent.mkdir()
    shutil.copyfile(tmp_path / "labels.sqlite", copy)
    with LabelStore(copy, **SHAPES) as store:
        assert len(store) == len(model.label_store) == 16


@pytest.mark.parametrize("kind", ["empty file", "main file without its -wal"])
def test_file_that_is_not_a_store_is_refused_not_recreated(tmp_path: Path, kind: str) -> None:
    """Opening a file with no store in it fails, naming the file, and leaves it as it was."""
    path = tmp_path / "labels.sqlite"
    if kind == "empty file":
        path.write_bytes(b"")
    else:
        writer = LabelStore(tmp_path / "live.sqlite", **SHAPES)  # killed: its -wal not merged
        writer.extend([label(i) for i in range(3)])
        shutil.copyfile(tmp_path / "live.sqlite", path)
        writer.close()
    before = path.read_bytes()
    with pytest.raises(LabelStoreError, match=f"{path}.*-wal") as raised:
        LabelStore(path, **SHAPES)
    assert "delete it" in str(raised.value)
    assert path.read_bytes() == before


# -- 3. lost or changed labels are detected on load ------------------------------------------------


def test_damaged_wal_loses_labels_and_the_recorded_digest_says_so(tmp_path: Path) -> None:
    """Labels SQLite drops after a damaged -wal frame show up as missing against the record."""
    live = tmp_path / "live.sqlite"
    writer = LabelStore(live, **SHAPES)
    for i in range(300):
        writer.append(label(i))
    count, digest = len(writer), writer.digest()
    damaged = tmp_path / "damaged.sqlite"
    for suffix in ("", "-wal"):  # as a SIGKILL leaves them
        shutil.copyfile(f"{live}{suffix}", f"{damaged}{suffix}")
    writer.close()
    wal = Path(f"{damaged}-wal")
    data = bytearray(wal.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    wal.write_bytes(bytes(data))
    with LabelStore(damaged, **SHAPES) as store:
        held = len(store)
        assert 0 < held < 300  # SQLite silently dropped the frames after the damage
        with pytest.raises(LabelStoreError, match=f"{300 - held} of them are missing"):
            store.check_prefix(count, digest)


@LOADERS
def test_load_refuses_a_store_with_fewer_labels_than_recorded(tmp_path: Path, load: Loader) -> None:
    """A checkpoint remembers how many labels it was trained on; losing any of them is an error."""
    model, save, buffer = trained_and_saved(tmp_path)
    model.label_store.close()
    with sqlite3.connect(tmp_path / "labels.sqlite") as conn:
        conn.execute("DELETE FROM labels WHERE id > 13")
    conn.close()
    with pytest.raises(LabelStoreError, match="3 of them are missing"):
        load(save, tmp_path / "labels.sqlite", buffer)


@LOADERS
def test_load_refuses_a_store_whose_labels_changed(tmp_path: Path, load: Loader) -> None:
    """The same number of labels but different ones (another run's store) is an error too."""
    model, save, buffer = trained_and_saved(tmp_path)
    model.label_store.close()
    with sqlite3.connect(tmp_path / "labels.sqlite") as conn:
        conn.execute("UPDATE labels SET label = 1.0 - label WHERE id = 5")
    conn.close()
    with pytest.raises(LabelStoreError, match="the first 16 labels differ"):
        load(save, tmp_path / "labels.sqlite", buffer)


def test_digest_of_ten_thousand_labels_is_quick_to_check(tmp_path: Path) -> None:
    """Checking a resumed store costs one pass over its labels, not a session's worth of work."""
    import time

    path = tmp_path / "labels.sqlite"
    with LabelStore(path, **SHAPES) as store:
        one = label(0)
        store.extend([one] * 10_000)
        count, digest = len(store), store.digest()
        assert store.digest(count) == digest  # cached: nothing read again
    with LabelStore(path, **SHAPES) as store:
        start = time.perf_counter()
        store.check_prefix(count, digest)
        assert time.perf_counter() - start < 2.0


# -- 4. never ask twice ----------------------------------------------------------------------------


@LOADERS
def test_resume_from_an_older_save_never_asks_twice(tmp_path: Path, load: Loader) -> None:
    """Sessions held after the last checkpoint are booked from the store, not asked again."""
    model, save, buffer = trained_and_saved(tmp_path)  # sessions at 50, 100
    model.learn(100, reset_num_timesteps=False)  # 150, 200; then the process is "killed"
    assert len(model.label_store) == 32
    resumed = load(save, tmp_path / "labels.sqlite", buffer)
    assert resumed.num_timesteps == 100
    resumed.learn(200, reset_num_timesteps=False)  # to step 300: one more session, at 250
    batch = resumed.label_store.load()
    asked_at = Counter(info["env_step"] for info in batch.infos)
    assert asked_at == {50: 8, 100: 8, 150: 8, 200: 8, 250: 8}
    assert len(batch) == resumed.schedule.budget == resumed.schedule.labels_given == 40
    assert [s.step for s in resumed.label_store.sessions()] == [50, 100, 150, 200, 250]


@LOADERS
def test_labels_newer_than_the_checkpoint_train_the_reward_model(
    tmp_path: Path, load: Loader
) -> None:
    """Before training goes on, the reward model learns every stored label; the buffer follows."""
    model, save, buffer = trained_and_saved(tmp_path)
    model.learn(100, reset_num_timesteps=False)
    resumed = load(save, tmp_path / "labels.sqlite", buffer)
    trained: list[int] = []
    train = resumed.reward_model.train

    def spy(*args: object, **kwargs: object) -> object:
        trained.append(len(args[4]))  # type: ignore[arg-type]
        return train(*args, **kwargs)

    resumed.reward_model.train = spy  # type: ignore[method-assign]
    resumed.learn(1, reset_num_timesteps=False)
    assert trained == [32]
    replay = resumed.replay_buffer
    assert isinstance(replay, PreferenceReplayBuffer)
    n = replay.stored()
    learned = resumed.reward_model.reward(replay.observations[:n, 0], replay.actions[:n, 0])
    np.testing.assert_allclose(replay.rewards[:n, 0], learned, rtol=1e-5, atol=1e-6)


@LOADERS
def test_skipped_queries_spend_the_budget_once(tmp_path: Path, load: Loader) -> None:
    """Queries the teacher skipped count against the budget, and are not asked again either."""
    asked: list[int] = []

    def counting(teacher: SimulatedTeacher) -> None:
        answer = teacher.label

        def spy(rewards0: np.ndarray, rewards1: np.ndarray) -> object:
            asked.append(len(rewards0))
            return answer(rewards0, rewards1)

        teacher.label = spy  # type: ignore[method-assign]

    def skipper() -> SimulatedTeacher:
        return SimulatedTeacher(eps_skip=1.0, margin=1e9)  # skips every query

    model = agent(tmp_path / "labels.sqlite", teacher=skipper())
    counting(model.teacher)
    model.learn(100)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")
    model.learn(100, reset_num_timesteps=False)
    store, buffer = tmp_path / "labels.sqlite", tmp_path / "buffer.pkl"
    resumed = load(tmp_path / "model.zip", store, buffer, teacher=skipper())
    counting(resumed.teacher)
    resumed.learn(200, reset_num_timesteps=False)
    assert sum(asked) == 40 and len(resumed.label_store) == 0
    assert [(s.step, s.asked, s.labels) for s in resumed.label_store.sessions()] == [
        (step, 8, 0) for step in (50, 100, 150, 200, 250)
    ]


def test_new_model_on_the_store_of_a_run_killed_before_any_save_asks_no_session_again(
    tmp_path: Path,
) -> None:
    """A run restarted from step 0 on its store books the sessions it holds and learns them."""
    killed = agent(tmp_path / "labels.sqlite")
    killed.learn(100)  # sessions at 50, 100, then killed before any save
    model = agent(tmp_path / "labels.sqlite")
    assert (model.schedule.sessions, model.schedule.labels_given) == (2, 16)
    model.learn(300)
    asked_at = Counter(info["env_step"] for info in model.label_store.load().infos)
    assert asked_at == {50: 8, 100: 8, 150: 8, 200: 8, 250: 8}


def test_store_made_before_the_sessions_table_opens_and_gains_it(tmp_path: Path) -> None:
    """Stores written by earlier versions keep working: their labels stay, sessions start empty."""
    path = tmp_path / "labels.sqlite"
    with LabelStore(path, **SHAPES) as store:
        store.extend([label(i) for i in range(3)])
        digest = store.digest()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sessions")
    conn.close()
    with LabelStore(path, **SHAPES) as store:
        assert len(store) == 3 and store.sessions() == []
        store.check_prefix(3, digest)
        store.record_session(7, 2, [label(3)])
        assert store.sessions() == [(7, 2, 1)] and len(store) == 4
