"""Preference labels in an SQLite file, each on disk the moment the teacher gives it.

A label costs a teacher's answer (a human's seconds, or a simulated teacher's query budget), so a
crash must lose none and a resumed run must start with every label made so far: this module is
the durable store and only that (schema, write-ahead log, digest chain, feedback sessions, labels
in and out). The label types are in ``labels``, the JSON Lines interchange format in
``label_jsonl``::

    with LabelStore("run/labels.db", obs_shape=(17,), act_shape=(6,), segment_length=50) as store:
        store.append(PreferenceLabel(obs0, act0, obs1, act1, label=1.0, info={"source": "human"}))
        batch = store.load()                 # stacked arrays for the reward model

Durability
----------
- ``append`` commits one SQLite transaction per label; ``extend`` and ``import_jsonl`` commit one
  per call, all or nothing. Once they return, the labels are on disk: the write-ahead log is
  fsynced at each commit (``synchronous=FULL``), so they survive the process being killed and the
  machine losing power.
- A crash mid-transaction loses that transaction only; SQLite rolls it back on the next open, so a
  store never holds half a label or half an import.
- WAL mode lets one process write while others read: a reader sees every committed label, and
  ``load(start=n)`` fetches only those after the first ``n``.
- Committed labels sit in the write-ahead log ``<path>-wal`` until a checkpoint copies them into
  the store file: ``checkpoint()`` (PrefSAC calls it after every feedback session) and ``close``
  do, so a copy of the store file alone holds every label up to then. After a crash the newest
  labels may live in the ``-wal`` file only: copy or move the two files together.
- SQLite silently drops the rest of a write-ahead log after a damaged frame, so damage to the
  ``-wal`` file loses labels without an error. ``digest(n)`` (a SHA-256 chained over the first
  ``n`` labels) and ``check_prefix(n, digest)`` let a reader that recorded both (PrefSAC records
  them in every save) detect lost or changed labels: ``LabelStoreError``.
- Opening a store checks its metadata before writing anything: a file that is not a store, is a
  newer format version, or was made for other shapes / dtypes / segment length raises
  ``LabelStoreError`` (a ValueError) and is left as it was. Only a missing file becomes a new
  store (and only with ``create=True``); an existing file without the store's tables, a 0-byte
  one included, is an error: it may be a store file copied without its ``-wal``.
- Open one ``LabelStore`` per process: SQLite connections must not cross a ``fork``.
- ``import_jsonl`` appends: importing the same file twice stores its labels twice.

Database layout (format ``sparse-rl-preferences``, version 1)
-------------------------------------------------------------
- ``metadata(key TEXT PRIMARY KEY, value TEXT)``: JSON values for ``format``, ``version``,
  ``obs_shape``, ``act_shape``, ``obs_dtype``, ``act_dtype`` and ``segment_length``.
- ``labels(id INTEGER PRIMARY KEY AUTOINCREMENT, obs0, act0, obs1, act1 BLOB, label REAL,
  info TEXT, created REAL)``: arrays as C-order little-endian bytes of the store's dtype, ``info``
  as JSON, ``created`` as Unix time. Ids grow in append order and are never reused.
- ``sessions(id INTEGER PRIMARY KEY AUTOINCREMENT, step INTEGER, asked INTEGER, labels INTEGER,
  created REAL)``: one row per feedback session (``record_session``), committed in the same
  transaction as that session's labels: the env step it was held at, the queries asked (answered
  or skipped) and the labels stored. A learner rebuilds its query schedule from it, so a session
  held after its last checkpoint is not asked again. Added without a version change: opening a
  store made before it adds the (empty) table, and older readers ignore it.
- The digest of the first ``n`` labels is ``d_n``: ``d_0`` is 32 zero bytes and ``d_i`` is the
  SHA-256 of ``d_{i-1}``, then for each of obs0, act0, obs1, act1 its byte length (8 bytes,
  little-endian) and its stored bytes, then the label as a little-endian float64, then the byte
  length and UTF-8 bytes of the stored ``info`` text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sparse_rl.agents.pbrl.label_jsonl import export_jsonl as _export_jsonl
from sparse_rl.agents.pbrl.label_jsonl import import_jsonl as _import_jsonl

# The label types stay importable from here: pickles and the sparse_rl.agents.preference_store
# alias name them by this module.
from sparse_rl.agents.pbrl.labels import (
    FORMAT_NAME,
    FORMAT_VERSION,
    SEGMENT_FIELDS,
    LabelBatch,
    LabelStoreError,
    PreferenceLabel,
    SessionRecord,
    _check_version,
    _dumps,
    _Layout,
    _show,
)

from sparse_rl.validation import check_choice, check_int

#: dtypes a store can hold: those whose values JSON carries exactly.
_INTS = ("int8", "int16", "int32", "int64")
DTYPES = ("bool", *_INTS, *(f"u{name}" for name in _INTS), "float16", "float32", "float64")

_SQLITE_MAGIC = b"SQLite format 3\x00"
_LABEL_COLUMNS = ("id", *SEGMENT_FIELDS, "label", "info", "created")
_SCHEMA = (
    "CREATE TABLE metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE labels ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "obs0 BLOB NOT NULL, act0 BLOB NOT NULL, obs1 BLOB NOT NULL, act1 BLOB NOT NULL, "
    "label REAL NOT NULL CHECK (label IN (0.0, 0.5, 1.0)), "
    "info TEXT NOT NULL, "
    "created REAL NOT NULL)",
)
#: Made with a new store, and added on opening one made before it (format version 1 either way).
_SESSIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS sessions ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "step INTEGER NOT NULL CHECK (step >= 0), "
    "asked INTEGER NOT NULL CHECK (asked >= 0), "
    "labels INTEGER NOT NULL CHECK (labels >= 0 AND labels <= asked), "
    "created REAL NOT NULL)"
)
_SESSION_COLUMNS = ("id", "step", "asked", "labels", "created")
_INSERT_SESSION = "INSERT INTO sessions (step, asked, labels, created) VALUES (?, ?, ?, ?)"
_DIGEST_SELECT = "SELECT obs0, act0, obs1, act1, label, info FROM labels ORDER BY id"
_DIGEST_START = bytes(32)
_INSERT = (
    "INSERT INTO labels (obs0, act0, obs1, act1, label, info, created) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = "SELECT id, obs0, act0, obs1, act1, label, info FROM labels ORDER BY id"


class LabelStore:
    """Preference labels in an SQLite file, committed one by one as the teacher makes them.

    :param path: the database file. An existing file must be a store made with the same shapes,
        dtypes and segment length (a file without a store in it is an error, never a new store).
    :param obs_shape: shape of one observation.
    :param act_shape: shape of one action; ``()`` for a discrete action.
    :param segment_length: steps per segment (T).
    :param obs_dtype: dtype the observations are stored in; one of ``DTYPES``.
    :param act_dtype: dtype the actions are stored in; one of ``DTYPES``.
    :param create: make a new store, with its parent folders, if ``path`` is missing; False
        raises FileNotFoundError instead (a resumed run must find the labels it made).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        obs_shape: int | Sequence[int],
        act_shape: int | Sequence[int],
        segment_length: int,
        obs_dtype: str | np.dtype | type = "float32",
        act_dtype: str | np.dtype | type = "float32",
        *,
        create: bool = True,
    ) -> None:
        self._layout = _Layout(
            obs_shape=_shape("obs_shape", obs_shape),
            act_shape=_shape("act_shape", act_shape),
            obs_dtype=_dtype_name("obs_dtype", obs_dtype),
            act_dtype=_dtype_name("act_dtype", act_dtype),
            segment_length=check_int("segment_length", segment_length),
        )
        self._path = Path(path)
        if self._path.is_dir():
            raise ValueError(f"path {self._path} is a folder; pass the path of a database file.")
        existed = self._path.exists()
        if not existed and not create:
            raise FileNotFoundError(
                f"label store {self._path} does not exist; pass the path of the store the labels "
                "were written to (a new store is only made with create=True)."
            )
        _check_sqlite_header(self._path)
        if create:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        # mode=rw never creates the file: between the check above and here it may have gone.
        target = self._path.absolute().as_uri() + ("" if create else "?mode=rw")
        # Autocommit (isolation_level=None): this class opens every transaction itself.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            target, timeout=30.0, isolation_level=None, uri=True
        )
        #: (n, digest of the first n labels): ``digest`` extends it instead of starting over.
        self._digested = (0, _DIGEST_START)
        try:
            self._open(existed)
        except BaseException:
            self._close(checkpoint=False)
            raise

    # -- public API -----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self._layout.obs_shape

    @property
    def act_shape(self) -> tuple[int, ...]:
        return self._layout.act_shape

    @property
    def obs_dtype(self) -> np.dtype:
        return np.dtype(self._layout.obs_dtype)

    @property
    def act_dtype(self) -> np.dtype:
        return np.dtype(self._layout.act_dtype)

    @property
    def segment_length(self) -> int:
        return self._layout.segment_length

    def append(self, label: PreferenceLabel) -> int:
        """Commit one label now and return its id; once this returns, the label is on disk.

        Arrays must have this store's shapes and a dtype that converts to its dtypes losslessly.
        """
        return self._insert([self._row(label, "")])[0]

    def extend(self, labels: Iterable[PreferenceLabel]) -> list[int]:
        """Commit several labels in one transaction (all or none) and return their ids."""
        return self._insert([self._row(label, f"labels[{i}]") for i, label in enumerate(labels)])

    def record_session(
        self, step: int, asked: int, labels: Iterable[PreferenceLabel] = ()
    ) -> list[int]:
        """Commit a feedback session's labels and its ``sessions`` row in one transaction.

        All or nothing, so after a crash the store holds either the whole session (and a learner
        resuming from an older checkpoint books it instead of asking again) or none of it.

        :param step: the env step the session was held at.
        :param asked: queries asked, including those the teacher skipped (they cost budget too).
        :param labels: the answers, at most ``asked``.
        :return: the ids of the labels.
        """
        for name, value in (("step", step), ("asked", asked)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}.")
        rows = [self._row(label, f"labels[{i}]") for i, label in enumerate(labels)]
        if len(rows) > asked:
            raise ValueError(f"{len(rows)} labels for a session that asked only {asked} queries.")
        with self._transaction() as conn:
            ids = [int(conn.execute(_INSERT, row).lastrowid or 0) for row in rows]
            conn.execute(_INSERT_SESSION, (int(step), int(asked), len(rows), time.time()))
        return ids

    def sessions(self, after_step: int = -1) -> list[SessionRecord]:
        """The recorded feedback sessions held after env step ``after_step``, oldest first."""
        rows = self._connection().execute(
            "SELECT step, asked, labels FROM sessions WHERE step > ? ORDER BY id", (after_step,)
        )
        return [SessionRecord(int(step), int(asked), int(n)) for step, asked, n in rows]

    def __len__(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM labels").fetchone()[0])

    def digest(self, count: int | None = None) -> str:
        """Hex SHA-256 chained over the first ``count`` labels (default: all), in append order.

        Record it with ``count`` to tell later that the store still starts with those labels
        (``check_prefix``). The longest prefix digested so far is kept, so calls with a growing
        ``count`` read only the labels added since.
        """
        if count is None:
            count = len(self)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"count must be an int >= 0, got {count!r}.")
        done, value = self._digested
        if count < done:
            done, value = 0, _DIGEST_START
        if count > done:
            rows = self._connection().execute(
                f"{_DIGEST_SELECT} LIMIT ? OFFSET ?", (int(count) - done, done)
            )
            for row in rows:
                value = _chain(value, row)
                done += 1
            if done < count:
                raise LabelStoreError(
                    f"{self._path} holds {done} labels; cannot digest the first {count}."
                )
        if done >= self._digested[0]:
            self._digested = (done, value)
        return value.hex()

    def check_prefix(self, count: int, digest: str) -> None:
        """Raise LabelStoreError unless the store starts with the ``count`` labels of ``digest``.

        Labels after them are fine (a run goes on labelling); fewer, or different ones, are not.
        """
        held = len(self)
        if held < count:
            raise LabelStoreError(
                f"{self._path} holds {held} labels, but {count} were recorded: {count - held} of "
                "them are missing. SQLite drops the rest of a damaged write-ahead log "
                f"({self._path.name}-wal) without an error, and a store file copied without its "
                "-wal misses its newest labels. Restore the store and its -wal from a backup, or "
                "use the store the labels were recorded in."
            )
        if self.digest(count) != digest:
            raise LabelStoreError(
                f"{self._path}: the first {count} labels differ from the {count} recorded (their "
                "digests do not match): this is another store, or its labels were changed. Use "
                "the store the labels were recorded in."
            )

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the store file and empty it; False if readers or a
        writer in another process kept it from finishing (within 2 s).

        Labels are durable either way; this makes the store file alone hold them, so a copy of
        it (or a crash that loses the ``-wal`` file) keeps every label up to now.
        """
        conn = self._connection()
        conn.execute("PRAGMA busy_timeout = 2000")
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            conn.execute("PRAGMA busy_timeout = 30000")
        return busy == 0

    def load(self, start: int = 0) -> LabelBatch:
        """All committed labels from the ``start``-th on (0-based, in append order).

        ``load(start=n)`` skips the first ``n``, so a learner holding ``n`` labels fetches only
        the ones added since, by this process or another.
        """
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start must be an int >= 0, got {start!r}.")
        rows = self._select(int(start)).fetchall()
        arrays = {}
        for name in SEGMENT_FIELDS:
            _, shape, dtype = self._layout.segment(name)
            arrays[name] = np.empty((len(rows), *shape), dtype=dtype)
        labels = np.empty(len(rows), dtype=np.float32)
        ids = np.empty(len(rows), dtype=np.int64)
        infos = []
        for i, (row_id, *blobs, label, info) in enumerate(rows):
            for name, blob in zip(SEGMENT_FIELDS, blobs, strict=True):
                arrays[name][i] = self._decode(row_id, name, blob)
            labels[i] = label
            ids[i] = row_id
            infos.append(json.loads(info))
        return LabelBatch(**arrays, labels=labels, infos=infos, ids=ids)

    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every label to ``path`` in the interchange format; returns how many.

        See :func:`sparse_rl.agents.pbrl.label_jsonl.export_jsonl`.
        """
        return _export_jsonl(self, path)

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Append every label of an interchange file in one transaction; returns how many.

        See :func:`sparse_rl.agents.pbrl.label_jsonl.import_jsonl`.
        """
        return _import_jsonl(self, path)

    def close(self) -> None:
        """Checkpoint the write-ahead log and close; committed labels are already on disk.

        Closing twice is fine.
        """
        self._close(checkpoint=True)

    def _close(self, checkpoint: bool) -> None:
        if self._conn is None:
            return
        try:
            if checkpoint:
                with contextlib.suppress(sqlite3.Error):  # the labels are durable anyway
                    self.checkpoint()
        finally:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={_show(v)}" for k, v in self._layout.as_json().items())
        state = "closed" if self._conn is None else f"{len(self)} labels"
        return f"LabelStore({str(self._path)!r}, {fields}; {state})"

    # -- opening --------------------------------------------------------------------------------

    def _open(self, existed: bool) -> None:
        conn = self._connection()
        objects = self._schema()  # first, so a file that is not a store fails before any pragma
        # FULL, not NORMAL: in WAL mode NORMAL survives a killed process but may drop the last
        # commits on power loss. A label costs a teacher query and arrives at most a few times a
        # second, so one fsync (~ms) per label is a price worth paying. Per connection; no write.
        conn.execute("PRAGMA synchronous=FULL")
        if objects:
            self._check(objects)  # before anything that could write to a file that is not ours
            self._use_wal()
            if "sessions" not in objects:  # a store made before the sessions table
                with self._transaction():
                    conn.execute(_SESSIONS_TABLE)
            return
        if existed:
            size = self._path.stat().st_size
            raise LabelStoreError(
                f"{self._path} exists but holds no label store ({size} bytes, no tables). If it "
                f"was copied or moved without its {self._path.name}-wal file, bring that file "
                "beside it (after a crash the labels can sit there only); if it holds no labels "
                "you need, delete it and a new store is made."
            )
        self._use_wal()
        with self._transaction():
            objects = self._schema()  # another process may have created the store meanwhile
            if not objects:
                for statement in (*_SCHEMA, _SESSIONS_TABLE):
                    conn.execute(statement)
                metadata = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
                metadata.update(self._layout.as_json())
                conn.executemany(
                    "INSERT INTO metadata (key, value) VALUES (?, ?)",
                    [(key, json.dumps(value)) for key, value in metadata.items()],
                )
        if objects:
            self._check(objects)

    def _use_wal(self) -> None:
        """WAL lets readers in other processes see committed labels while this one writes."""
        mode = self._connection().execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ValueError(
                f"{self._path}: SQLite could not use WAL mode (got journal_mode={mode!r}); a "
                "store needs a file on a local file system."
            )

    def _schema(self) -> dict[str, str]:
        """Name -> type of every table, index, view and trigger in the file."""
        try:
            rows = self._connection().execute("SELECT name, type FROM sqlite_master").fetchall()
        except sqlite3.OperationalError:
            raise  # locked, unreadable, ...: a real I/O problem, not a foreign file
        except sqlite3.DatabaseError as error:
            raise LabelStoreError(
                f"{self._path} is not a sparse-rl preference store: SQLite cannot read it as a "
                f"database ({error}). Pass a new path, or the path of a store LabelStore made."
            ) from None
        return dict(rows)

    def _check(self, objects: Mapping[str, str]) -> None:
        """Raise LabelStoreError unless the file is a store of this format and layout."""
        path = self._path
        if objects.get("metadata") != "table" or objects.get("labels") != "table":
            raise LabelStoreError(
                f"{path} is an SQLite database but not a sparse-rl preference store: it holds "
                f"{sorted(objects)}, not the 'metadata' and 'labels' tables. Pass a new path."
            )
        conn = self._connection()
        try:
            metadata = {
                k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM metadata")
            }
            columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(labels)"))
        except (sqlite3.DatabaseError, ValueError, TypeError) as error:
            raise LabelStoreError(
                f"{path} is not a sparse-rl preference store: its metadata table cannot be read "
                f"({error})."
            ) from None
        if metadata.get("format") != FORMAT_NAME:
            raise LabelStoreError(
                f"{path} is not a sparse-rl preference store: its metadata says "
                f"format={metadata.get('format')!r}, expected {FORMAT_NAME!r}."
            )
        _check_version(metadata.get("version"), str(path))
        if sorted(columns) != sorted(_LABEL_COLUMNS):
            raise LabelStoreError(
                f"{path} is not a valid sparse-rl preference store: its labels table has "
                f"columns {list(columns)}, expected {list(_LABEL_COLUMNS)}."
            )
        if "sessions" in objects:
            columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(sessions)"))
            if sorted(columns) != sorted(_SESSION_COLUMNS):
                raise LabelStoreError(
                    f"{path} is not a valid sparse-rl preference store: its sessions table has "
                    f"columns {list(columns)}, expected {list(_SESSION_COLUMNS)}."
                )
        for key, given in self._layout.as_json().items():
            if key not in metadata:
                raise LabelStoreError(f"{path} is an incomplete store: its metadata lacks {key!r}.")
            if metadata[key] != given:
                raise LabelStoreError(
                    f"{path} holds a store with {key}={_show(metadata[key])}, but "
                    f"{key}={_show(given)} was given. Open it with {key}={_show(metadata[key])}, "
                    "or pass a new path for a new store."
                )

    # -- labels in and out ----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"LabelStore({str(self._path)!r}) is closed.")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed on success and rolled back on any error."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock later
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _insert(self, rows: list[tuple[Any, ...]]) -> list[int]:
        with self._transaction() as conn:
            return [int(conn.execute(_INSERT, row).lastrowid or 0) for row in rows]

    def _row(self, label: PreferenceLabel, where: str) -> tuple[Any, ...]:
        """The values of one labels row, after checking ``label`` against this store."""
        prefix = f"{where}: " if where else ""
        if not isinstance(label, PreferenceLabel):
            raise TypeError(f"{prefix}expected a PreferenceLabel, got {type(label).__name__}.")
        blobs = []
        for name in SEGMENT_FIELDS:
            array = getattr(label, name)
            kind, shape, dtype = self._layout.segment(name)
            if array.shape != shape:
                raise ValueError(
                    f"{prefix}{name} has shape {array.shape}, but this store holds {kind} "
                    f"segments of shape {shape} (segment_length={shape[0]}, "
                    f"{kind}_shape={shape[1:]})."
                )
            if not np.can_cast(array.dtype, dtype, casting="safe"):
                raise ValueError(
                    f"{prefix}{name} has dtype {array.dtype}, which {kind}_dtype={dtype.name} of "
                    f"this store cannot hold losslessly; convert it with "
                    f".astype(np.{dtype.name}) if the loss is intended."
                )
            blobs.append(array.astype(dtype.newbyteorder("<")).tobytes())
        return (*blobs, label.label, _dumps(label.info), time.time())

    def _select(self, start: int = 0) -> sqlite3.Cursor:
        """The stored rows (id, obs0, act0, obs1, act1, label, info) from the ``start``-th on."""
        # One statement reads one snapshot, even while another process appends.
        return self._connection().execute(f"{_SELECT} LIMIT -1 OFFSET ?", (start,))

    def _decode(self, row_id: int, name: str, blob: bytes) -> np.ndarray:
        _, shape, dtype = self._layout.segment(name)
        stored = dtype.newbyteorder("<")
        expected = stored.itemsize * math.prod(shape)
        if len(blob) != expected:
            raise LabelStoreError(
                f"{self._path}: label id {row_id} has {len(blob)} bytes of {name}, expected "
                f"{expected}; the store is corrupted."
            )
        return np.frombuffer(blob, dtype=stored).reshape(shape).astype(dtype)


def _check_sqlite_header(path: Path) -> None:
    """Refuse a non-empty file that is not SQLite (SQLite takes a short one for an empty one)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as file:
        magic = file.read(len(_SQLITE_MAGIC))
    if magic != _SQLITE_MAGIC:
        raise LabelStoreError(
            f"{path} is not a sparse-rl preference store: it is not an SQLite database (it starts "
            f"with {magic[:16]!r}). Pass a new path, or the path of a store LabelStore made."
        )


def _chain(previous: bytes, row: Sequence[Any]) -> bytes:
    """The next digest of the chain: ``previous`` and one label's stored values (module doc)."""
    *blobs, label, info = row
    step = hashlib.sha256(previous)
    for blob in blobs:
        step.update(len(blob).to_bytes(8, "little"))
        step.update(blob)
    step.update(struct.pack("<d", float(label)))
    text = info.encode("utf-8")
    step.update(len(text).to_bytes(8, "little"))
    step.update(text)
    return step.digest()


def _shape(param: str, value: object) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    sequence = isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))
    dims = tuple(value) if sequence else None
    if dims is None or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in dims
    ):
        raise ValueError(
            f"{param} must be a tuple of positive ints (() for a scalar), got {value!r}."
        )
    return tuple(int(d) for d in dims)


def _dtype_name(param: str, value: object) -> str:
    name = None
    if value is not None:  # np.dtype(None) would silently mean float64
        with contextlib.suppress(TypeError):
            name = np.dtype(value).name
    if name not in DTYPES:
        check_choice(param, value, DTYPES)
    return name
