"""The preference label store: nothing a teacher said is lost, changed or silently mixed up."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sparse_rl.agents.pbrl import label_jsonl, label_store
from sparse_rl.agents.pbrl.label_store import LabelStore
from sparse_rl.agents.pbrl.labels import FORMAT_NAME, SEGMENT_FIELDS, LabelBatch, PreferenceLabel

OBS, ACT, T = (3,), (2,), 5
SPEC: dict[str, Any] = {"obs_shape": OBS, "act_shape": ACT, "segment_length": T}
F32 = np.finfo(np.float32)
#: float32 values whose decimal forms are easy to get wrong: inexact decimals, -0, extremes.
_EXTREMES = [-0.0, F32.smallest_subnormal, F32.tiny, F32.max, -F32.max, F32.eps, 16777217]
TRICKY = np.array([0.1, 1 / 3, 1e-7, 3.14159265, 123456.789, 6.02e23, *_EXTREMES], np.float32)


def make_label(
    seed: int,
    label: float = 1.0,
    obs_shape: tuple[int, ...] = OBS,
    act_shape: tuple[int, ...] = ACT,
    steps: int = T,
    obs_dtype: Any = np.float32,
    act_dtype: Any = np.float32,
    info: dict[str, Any] | None = None,
) -> PreferenceLabel:
    """A label of random values (wide-ranging floats, or small ints), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        if np.dtype(dtype).kind == "f":
            return (rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 4, shape)).astype(dtype)
        return rng.integers(0, 100, shape).astype(dtype)

    return PreferenceLabel(
        obs0=draw((steps, *obs_shape), obs_dtype),
        act0=draw((steps, *act_shape), act_dtype),
        obs1=draw((steps, *obs_shape), obs_dtype),
        act1=draw((steps, *act_shape), act_dtype),
        label=label,
        info={"seed": seed} if info is None else info,
    )


def tricky_label(seed: int, label: float = 1.0) -> PreferenceLabel:
    """A float32 label with ``TRICKY`` values in obs0 and act1."""
    base = make_label(seed, label=label)
    obs0 = np.array(base.obs0)
    obs0.flat[: TRICKY.size] = TRICKY
    act1 = np.array(base.act1)
    act1.flat[:] = TRICKY[: act1.size]
    return PreferenceLabel(obs0, base.act0, base.obs1, act1, base.label, base.info)


def assert_bit_equal(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # bytes, so -0.0 and NaN payloads count too


def assert_batch_holds(batch: LabelBatch, labels: list[PreferenceLabel]) -> None:
    assert len(batch) == len(labels)
    for name in SEGMENT_FIELDS:
        assert_bit_equal(getattr(batch, name), np.stack([getattr(x, name) for x in labels]))
    assert_bit_equal(batch.labels, np.array([x.label for x in labels], dtype=np.float32))
    assert batch.infos == [x.info for x in labels]


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    """Contents, mtime and the folder's listing: what 'left unchanged' means."""
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


def filled_store(path: Path, n: int = 2) -> list[PreferenceLabel]:
    labels = [make_label(seed) for seed in range(n)]
    with LabelStore(path, **SPEC) as store:
        store.extend(labels)
    return labels


# -- append / load ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obs_shape", "act_shape", "obs_dtype", "act_dtype"),
    [(OBS, ACT, "float32", "float32"), ((2, 2), (), "uint8", "int64")],
)
def test_append_load_round_trip_is_bit_exact(
    tmp_path: Path,
    obs_shape: tuple[int, ...],
    act_shape: tuple[int, ...],
    obs_dtype: str,
    act_dtype: str,
) -> None:
    dtypes = {"obs_dtype": obs_dtype, "act_dtype": act_dtype}
    shapes = {"obs_shape": obs_shape, "act_shape": act_shape}
    info = {"returns": (np.float32(1.5), np.float64(-2.25)), "mistake": np.bool_(False)}
    labels = [
        make_label(seed, label=value, info=info, **shapes, **dtypes)
        for seed, value in enumerate([0.0, 0.5, 1.0, 1])
    ]
    if obs_dtype == "float32":
        labels[0] = tricky_label(0, label=0.0)
    with LabelStore(tmp_path / "labels.db", segment_length=T, **shapes, **dtypes) as store:
        ids = [store.append(label) for label in labels]
        assert ids == [1, 2, 3, 4] and len(store) == 4
        batch = store.load()
        assert_batch_holds(batch, labels)
        assert batch.infos[1] == {"returns": [1.5, -2.25], "mistake": False}
        assert batch.ids.tolist() == ids and batch.labels.tolist() == [0.0, 0.5, 1.0, 1.0]
        tail = store.load(start=2)
        assert_batch_holds(tail, labels[2:])
        assert tail.ids.tolist() == [3, 4]
        empty = store.load(start=9)
        assert len(empty) == 0 and empty.obs0.shape == (0, T, *obs_shape)


def test_reopen_keeps_labels_and_continues_ids(tmp_path: Path) -> None:
    path = tmp_path / "run" / "labels.db"  # parent folders are made
    labels = filled_store(path, n=3)
    with LabelStore(path, **SPEC) as store:
        assert len(store) == 3
        assert_batch_holds(store.load(), labels)
        assert store.append(make_label(7)) == 4
    with LabelStore(path, **SPEC) as store:
        assert_batch_holds(store.load(), [*labels, make_label(7)])


def test_store_is_in_wal_mode_and_fsyncs_each_commit(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    with LabelStore(path, **SPEC) as store:
        # Per connection, so only the store's own connection can tell; 2 is FULL.
        assert store._conn is not None
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        store.append(make_label(0))
        with sqlite3.connect(path) as other:  # WAL is recorded in the file itself
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert other.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 1
        other.close()


def test_append_and_extend_check_labels_against_the_store(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "labels.db", **SPEC) as store:
        with pytest.raises(ValueError, match=re.escape("obs0 has shape (5, 4), but this store")):
            store.append(make_label(0, obs_shape=(4,)))
        with pytest.raises(ValueError, match=r"obs0 has shape \(6, 3\).*segment_length=5"):
            store.append(make_label(0, steps=6))
        with pytest.raises(ValueError, match=r"obs0 has dtype float64.*obs_dtype=float32"):
            store.append(make_label(0, obs_dtype=np.float64))
        with pytest.raises(ValueError, match=r"labels\[1\]: act0 has dtype int64"):
            store.extend([make_label(0), make_label(1, act_dtype=np.int64)])
        with pytest.raises(TypeError, match="expected a PreferenceLabel, got dict"):
            store.append({"label": 1.0})  # type: ignore[arg-type]
        assert len(store) == 0
        # A lossless conversion is fine: float16 actions land as the same float32 values.
        label = make_label(0, act_dtype=np.float16)
        store.append(label)
        assert_bit_equal(store.load().act0[0], label.act0.astype(np.float32))


# -- invalid input ---------------------------------------------------------------------------------


def _nan_obs0() -> np.ndarray:
    obs0 = np.zeros((T, *OBS), dtype=np.float32)
    obs0[2, 1] = np.nan
    return obs0


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"label": 0.3}, ValueError, r"label must be one of \[0.0, 0.5, 1.0\].*got 0.3"),
        ({"label": float("nan")}, ValueError, "label must be one of"),
        ({"label": True}, TypeError, "label must be a number"),
        ({"label": "1"}, TypeError, "label must be a number"),
        ({"obs0": _nan_obs0()}, ValueError, r"obs0 holds nan at index \(2, 1\)"),
        ({"act1": np.full((T, *ACT), np.inf)}, ValueError, "act1 holds inf"),
        ({"obs1": np.zeros((T, 4))}, ValueError, r"obs1 has shape \(5, 4\) but obs0 has \(5, 3\)"),
        ({"act0": np.zeros((T + 1, 2))}, ValueError, "act0 has shape .* obs0 has 5 steps"),
        ({"act1": np.zeros((T, 3))}, ValueError, r"act1 has shape \(5, 3\) but act0"),
        ({"obs0": np.zeros((0, 3)), "obs1": np.zeros((0, 3))}, ValueError, "T >= 1"),
        ({"obs0": np.array([["a"] * 3] * T)}, TypeError, "obs0 must hold numbers"),
        ({"info": {"returns": [1.0, float("nan")]}}, ValueError, r"info\['returns'\]\[1\] is nan"),
        ({"info": {1: "a"}}, TypeError, "info has key 1"),
        ({"info": {"when": object()}}, TypeError, r"info\['when'\] is a object"),
        ({"info": [1]}, TypeError, "info must be a dict"),
    ],
)
def test_invalid_labels_are_rejected_naming_the_field(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    good = make_label(0)
    fields = {name: getattr(good, name) for name in (*SEGMENT_FIELDS, "label", "info")}
    with pytest.raises(error, match=message):
        PreferenceLabel(**{**fields, **changes})


def test_label_holds_a_read_only_copy() -> None:
    obs0 = np.zeros((T, *OBS), dtype=np.float32)
    label = PreferenceLabel(obs0, np.zeros((T, 2)), obs0, np.zeros((T, 2)), 0)
    obs0[:] = 9.0  # e.g. a replay buffer overwriting the slots the segment came from
    assert not label.obs0.any() and label.label == 0.0 and isinstance(label.label, float)
    with pytest.raises(ValueError, match="read-only"):
        label.obs1[0, 0] = 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"obs_dtype": "complex64"}, r"obs_dtype: 'complex64' is not valid; choose one of \["),
        ({"act_dtype": "junk"}, "act_dtype: 'junk' is not valid"),
        ({"obs_dtype": None}, "obs_dtype: None is not valid"),
        ({"segment_length": 0}, "segment_length must be an integer >= 1, got 0"),
        ({"segment_length": 2.5}, "segment_length must be an integer >= 1"),
        ({"obs_shape": (0,)}, r"obs_shape must be a tuple of positive ints"),
        ({"act_shape": "2"}, r"act_shape must be a tuple of positive ints"),
    ],
)
def test_bad_store_arguments_name_the_parameter(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LabelStore(tmp_path / "labels.db", **{**SPEC, **kwargs})
    assert not (tmp_path / "labels.db").exists()
    with pytest.raises(ValueError, match="is a folder"):
        LabelStore(tmp_path, **SPEC)


def test_closed_store_raises(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "labels.db", **SPEC) as store:
        store.append(make_label(0))
    assert "closed" in repr(store)
    with pytest.raises(ValueError, match="is closed"):
        store.append(make_label(1))
    with pytest.raises(ValueError, match="is closed"):
        store.load()
    store.close()  # twice is fine


# -- opening what is not (this) store --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "stored", "given"),
    [
        ("obs_shape", (4,), "(3,)", "(4,)"),
        ("act_shape", (2, 1), "(2,)", "(2, 1)"),
        ("segment_length", 6, "5", "6"),
        ("obs_dtype", "float64", "'float32'", "'float64'"),
        ("act_dtype", np.float16, "'float32'", "'float16'"),
    ],
)
def test_metadata_mismatch_names_the_field_and_leaves_the_file_unchanged(
    tmp_path: Path, field: str, value: Any, stored: str, given: str
) -> None:
    path = tmp_path / "labels.db"
    labels = filled_store(path)
    before = snapshot(path)
    with pytest.raises(ValueError) as raised:
        LabelStore(path, **{**SPEC, field: value})
    message = str(raised.value)
    assert str(path) in message
    assert f"{field}={stored}" in message and f"{field}={given}" in message
    assert snapshot(path) == before
    with LabelStore(path, **SPEC) as store:
        assert_batch_holds(store.load(), labels)


@pytest.mark.parametrize(
    "contents",
    [b"not a database\n" * 200, b"x", b"SQLite format 3\x00" + bytes(range(256)) * 16],
    ids=["text", "one-byte", "sqlite-magic-then-garbage"],
)
def test_garbage_file_is_rejected_and_left_unchanged(tmp_path: Path, contents: bytes) -> None:
    path = tmp_path / "labels.db"
    path.write_bytes(contents)
    before = snapshot(path)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))} is not a sparse-rl preference"):
        LabelStore(path, **SPEC)
    assert snapshot(path) == before


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (["CREATE TABLE users (name TEXT)"], r"it holds \['users'\], not the 'metadata'"),
        (["CREATE TABLE labels (x)"], r"it holds \['labels'\]"),
        (["CREATE TABLE metadata (a)", "CREATE TABLE labels (b)"], "metadata table cannot be"),
        (
            [
                "CREATE TABLE metadata (key TEXT, value TEXT)",
                "CREATE TABLE labels (x)",
                """INSERT INTO metadata VALUES ('format', '"other-format"')""",
            ],
            "format='other-format', expected 'sparse-rl-preferences'",
        ),
    ],
)
def test_foreign_sqlite_database_is_rejected_and_left_unchanged(
    tmp_path: Path, statements: list[str], message: str
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()
    before = snapshot(path)
    with pytest.raises(ValueError, match=message) as raised:
        LabelStore(path, **SPEC)
    assert str(path) in str(raised.value)
    assert snapshot(path) == before


def test_newer_format_version_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    filled_store(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE metadata SET value = '2' WHERE key = 'version'")
    conn.close()
    before = snapshot(path)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: written in .* version 2, newer"):
        LabelStore(path, **SPEC)
    assert snapshot(path) == before


# -- crashes and other processes -------------------------------------------------------------------

WRITER = """
import importlib.util, sys
import numpy as np

modules = {}
for name in ("labels", "label_jsonl", "label_store"):  # each imports only the ones before it
    path = f"{sys.argv[1]}/{name}.py"
    spec = importlib.util.spec_from_file_location(f"sparse_rl.agents.pbrl.{name}", path)
    modules[name] = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = modules[name]
    spec.loader.exec_module(modules[name])
LabelStore = modules["label_store"].LabelStore
store = LabelStore(sys.argv[2], obs_shape=(3,), act_shape=(2,), segment_length=5)
i = 0
while True:
    v = np.float32(i) + np.float32(0.25)
    obs, act = np.full((5, 3), v, np.float32), np.full((5, 2), -v, np.float32)
    label = modules["labels"].PreferenceLabel(obs, act, -obs, act, i % 2, {"i": i})
    label_id = store.append(label)
    print(label_id, flush=True)  # after the commit: this label must survive
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_writer_loses_no_committed_label(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    # The modules are loaded from their files, so the child skips importing torch and SB3.
    command = [sys.executable, "-c", WRITER, str(Path(label_store.__file__).parent), str(path)]
    committed: list[int] = []
    pipe = subprocess.PIPE
    with subprocess.Popen(command, stdout=pipe, stderr=pipe, text=True) as child:
        assert child.stdout is not None and child.stderr is not None
        watchdog = threading.Timer(60.0, child.kill)
        watchdog.start()
        try:
            while len(committed) < 40:
                line = child.stdout.readline()
                if not line:
                    pytest.fail(f"the writer stopped: {child.stderr.read()}")
                committed.append(int(line))
                if len(committed) == 20:
                    with LabelStore(path, **SPEC) as reader:  # reads while the child writes
                        seen = reader.load()
                        assert len(seen) >= 20
                        assert len(seen) + len(reader.load(start=len(seen))) <= len(reader)
            child.send_signal(signal.SIGKILL)  # most likely inside an append
            child.wait(timeout=30)
        finally:
            watchdog.cancel()
            if child.poll() is None:
                child.kill()
    assert child.returncode == -signal.SIGKILL
    with LabelStore(path, **SPEC) as store:
        batch = store.load()
    assert set(committed) <= set(batch.ids.tolist())
    assert batch.ids.tolist() == list(range(1, len(batch) + 1))
    steps = np.array([info["i"] for info in batch.infos])
    assert steps.tolist() == list(range(len(batch)))
    values = steps.astype(np.float32) + np.float32(0.25)
    assert (batch.obs0 == values[:, None, None]).all() and (
        batch.act0 == -batch.obs0[..., :2]
    ).all()
    assert (batch.obs1 == -batch.obs0).all() and batch.labels.tolist() == (steps % 2).tolist()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


# -- interchange format ----------------------------------------------------------------------------


def _header(**changes: Any) -> dict[str, Any]:
    header = {
        "format": FORMAT_NAME,
        "version": 1,
        "obs_shape": [3],
        "act_shape": [2],
        "obs_dtype": "float32",
        "act_dtype": "float32",
        "segment_length": T,
    }
    return {**header, **changes}


def _line(source: PreferenceLabel, **changes: Any) -> dict[str, Any]:
    line = {name: getattr(source, name).tolist() for name in SEGMENT_FIELDS}
    line.update(label=source.label, info=source.info)
    return {**line, **changes}


def test_export_import_round_trip_is_bit_exact(tmp_path: Path) -> None:
    labels = [tricky_label(0), make_label(1, label=0.5), make_label(2, label=0.0)]
    exported = tmp_path / "out" / "labels.jsonl"
    with LabelStore(tmp_path / "a.db", **SPEC) as store:
        store.extend(labels)
        assert store.export_jsonl(exported) == 3
    assert sorted(os.listdir(exported.parent)) == ["labels.jsonl"]  # no temporary file left
    header, *lines = [json.loads(text) for text in exported.read_text("utf-8").splitlines()]
    assert header == _header()
    assert [line["label"] for line in lines] == [1, 0.5, 0]
    assert isinstance(lines[0]["label"], int) and set(lines[0]) == {
        *SEGMENT_FIELDS,
        "label",
        "info",
    }
    # What a front end does with the numbers: parse, convert to float32, get the same bits.
    assert_bit_equal(np.array(lines[0]["obs0"], dtype=np.float32), labels[0].obs0)
    with LabelStore(tmp_path / "b.db", **SPEC) as fresh:
        assert fresh.import_jsonl(exported) == 3
        assert_batch_holds(fresh.load(), labels)
        fresh.export_jsonl(tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == exported.read_bytes()


def test_import_reads_a_hand_written_file(tmp_path: Path) -> None:
    """What a human-labelling front end writes: ints, short decimals, its own info."""
    path = tmp_path / "human.jsonl"
    obs = [[0.1, 2, -3.5]] * T
    line = {"obs0": obs, "act0": [[0, 1]] * T, "obs1": obs, "act1": [[1, 0]] * T, "label": 0.5}
    line["info"] = {"source": "human", "labeller": "ana"}
    path.write_text(f"{json.dumps(_header())}\n{json.dumps(line)}\n\n", encoding="utf-8")
    with LabelStore(tmp_path / "labels.db", **SPEC) as store:
        assert store.import_jsonl(path) == 1
        batch = store.load()
    assert_bit_equal(batch.obs0[0], np.array(obs, dtype=np.float32))
    assert batch.labels.tolist() == [0.5] and batch.infos == [line["info"]]


def test_failed_export_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "labels.jsonl"
    target.write_text("previous export\n")
    with LabelStore(tmp_path / "labels.db", **SPEC) as store:
        store.append(make_label(0))

        def failing_fsync(descriptor: int) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(label_jsonl.os, "fsync", failing_fsync)
        with pytest.raises(OSError, match="disk full"):
            store.export_jsonl(target)
    assert target.read_text() == "previous export\n"
    assert sorted(os.listdir(tmp_path)) == ["labels.db", "labels.jsonl"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (_header(format="other"), "expected a header with format='sparse-rl-preferences'"),
        (_header(version=2), "version 2, newer than version 1"),
        (_header(version="1"), "version must be an int"),
        (
            _header(obs_shape=[4]),
            r"header says obs_shape=\(4,\), but the store .* has obs_shape=\(3,\)",
        ),
        (_header(act_shape=[]), r"header says act_shape=\(\), but"),
        (_header(obs_dtype="float64"), "header says obs_dtype='float64'"),
        (_header(segment_length=6), "header says segment_length=6"),
        ({k: v for k, v in _header().items() if k != "act_dtype"}, r"missing \['act_dtype'\]"),
        (_header(extra=1), r"unknown \['extra'\]"),
        ([1, 2], "expected a header"),
    ],
)
def test_import_with_a_bad_header_adds_nothing(tmp_path: Path, header: Any, message: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(f"{json.dumps(header)}\n{json.dumps(_line(make_label(1)))}\n")
    with LabelStore(tmp_path / "labels.db", **SPEC) as store:
        store.append(make_label(0))
        with pytest.raises(ValueError, match=f"{re.escape(str(path))} line 1: .*{message}"):
            store.import_jsonl(path)
        assert len(store) == 1


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps(_line(make_label(9), label=0.3)), r"label must be one of \[0.0, 0.5, 1.0\]"),
        (json.dumps(_line(make_label(9, obs_shape=(4,)))), r"obs0 has shape \(5, 4\)"),
        (json.dumps(_line(make_label(9, steps=4))), r"segment_length=5"),
        (json.dumps({k: v for k, v in _line(make_label(9)).items() if k != "info"}), "'info'"),
        (json.dumps(_line(make_label(9), note="x")), r"unknown \['note'\]"),
        (json.dumps(_line(make_label(9), act1=[["a", "b"]] * T)), "act1 must be nested lists"),
        (json.dumps(_line(make_label(9), obs1=[[1, 2, 3], [1]])), "obs1 is not a rectangular"),
        (json.dumps(_line(make_label(9), act0=[[1e39, 0]] * T)), "act0 holds values that float32"),
        (
            json.dumps(_line(make_label(9))).replace('"label": 1.0', '"label": NaN'),
            "NaN is not a JSON number",
        ),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_import_with_a_malformed_line_names_it_and_adds_nothing(
    tmp_path: Path, bad_line: str, message: str
) -> None:
    good = [json.dumps(_line(make_label(seed))) for seed in (1, 2, 3)]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join([json.dumps(_header()), good[0], good[1], bad_line, good[2]]) + "\n")
    with LabelStore(tmp_path / "labels.db", **SPEC) as store:
        store.append(make_label(0))
        with pytest.raises(ValueError, match=f"{re.escape(str(path))} line 4: .*{message}"):
            store.import_jsonl(path)
        assert len(store) == 1


def test_import_of_an_integer_store_takes_exact_values_only(tmp_path: Path) -> None:
    """uint8 images: 3.0 is 3, but 3.5 or 300 is a front-end bug, not something to round."""
    spec = {**SPEC, "obs_shape": (2,), "obs_dtype": "uint8"}
    header = _header(obs_shape=[2], obs_dtype="uint8")
    line = _line(make_label(0), obs0=[[3.0, 255]] * T, obs1=[[0, 1]] * T)
    path = tmp_path / "labels.jsonl"
    with LabelStore(tmp_path / "labels.db", **spec) as store:
        for bad, count in [(3.5, 0), (300, 0), (3, 1)]:
            line["obs1"] = [[bad, 1]] * T
            path.write_text(f"{json.dumps(header)}\n{json.dumps(line)}\n")
            if count:
                assert store.import_jsonl(path) == count
            else:
                with pytest.raises(ValueError, match="line 2: obs1 holds values that uint8"):
                    store.import_jsonl(path)
        batch = store.load()
    assert (
        len(batch) == 1 and batch.obs0.dtype == np.uint8 and batch.obs0[0, 0].tolist() == [3, 255]
    )


def test_import_of_an_empty_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text("\n")
    with (
        LabelStore(tmp_path / "labels.db", **SPEC) as store,
        pytest.raises(ValueError, match="is empty; a sparse-rl-preferences file starts"),
    ):
        store.import_jsonl(path)
