"""``sparse-rl sweep``: a grid of method x env x seed, run in local processes or on Ray.

A sweep file holds a base run config, named overrides per method (and optionally per env) and a
list of seeds. Every run it expands to is validated before any starts. Runs are idempotent:
finished ones are skipped and interrupted ones resume, so re-running a sweep into the same output
folder is how a failed or killed run is retried.

Example sweep file (YAML or TOML)::

    base:                 # a run config as for `sparse-rl train`, without name and seed
      algo: r2n
      env: {id: HalfCheetah-v5, noise_fraction: 0.9}
      steps: 15000
      log_formats: [csv]  # parallel runs printing SB3's tables to one terminal is noise
    methods:              # label -> overrides of base; the label becomes the run's name
      pebble: {algo: pebble}
      r2n: {}
      r2n+none: {preference: {entropy_space: none, unsupervised_steps: 0}}
    envs:                 # optional: label -> overrides; default: the base env, labelled by id
      cheetah: {}
      hopper: {env: {id: Hopper-v5}}
    seeds: [0, 1, 2, 3, 4]

Overrides merge into the base key by key (``env: {id: Hopper-v5}`` keeps ``noise_fraction``).
Runs go to ``OUT/<method>-<env>-s<seed>``, seed-major, so a sweep cut short has every method
for the seeds it reached. ``OUT/sweep.yaml`` records the sweep, its runs and every invocation
(command, backend, machine); another sweep into the same ``OUT`` is refused.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import os
import re
import shlex
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from sparse_rl.config import (
    ConfigError,
    RunConfig,
    config_from_dict,
    read_config_file,  # the run configs' own reader
)
from sparse_rl.machine import machine_info
from sparse_rl.validation import check_int, positive_int_arg

#: The keys of a sweep file; ``envs`` is optional.
SWEEP_KEYS = ("base", "methods", "envs", "seeds")
#: Where a sweep is run: worker processes on this machine, or Ray tasks.
BACKENDS = ("local", "ray")
#: The record a sweep keeps in its output folder: what was asked, the runs, who ran it where.
RECORD = "sweep.yaml"
#: Keys a sweep sets on every run itself; sections that set them are rejected, not overridden.
OWNED_KEYS = ("name", "seed")

Action = Literal["skip", "resume", "start"]
Status = Literal["planned", "skipped", "finished", "failed"]
#: ``train(config, run_dir, *, resume=...)``; the real one is ``sparse_rl.training.train``.
TrainFn = Callable[..., Any]


class SweepError(ValueError):
    """A sweep file, option or output folder that cannot be run as asked."""


@dataclass(frozen=True)
class SweepRun:
    """One cell of the grid: a validated run config and the folder name it runs in."""

    method: str
    env: str
    seed: int
    config: RunConfig
    name: str


@dataclass(frozen=True)
class RunResult:
    """What happened to one run (``planned`` in a dry run); ``error`` says why one failed."""

    name: str
    method: str
    env: str
    seed: int
    action: Action
    status: Status
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class SweepSummary:
    """Every run of a sweep, in sweep order, with what was done to it."""

    out_dir: Path
    results: tuple[RunResult, ...]
    dry_run: bool = False

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    def __str__(self) -> str:
        if self.dry_run:
            acts = [r.action for r in self.results]
            head = (
                f"dry run: {len(acts)} runs in {self.out_dir}: {acts.count('skip')} finished "
                f"(skip), {acts.count('resume')} to resume, {acts.count('start')} to start"
            )
            return "\n".join([head, *(f"  {r.action:<6} {r.name}" for r in self.results)])
        head = (
            f"sweep: {len(self.results)} runs in {self.out_dir}: {self.count('finished')} "
            f"finished, {self.count('skipped')} skipped (already finished), "
            f"{self.count('failed')} failed"
        )
        return "\n".join([head, *(f"  FAILED {r.name}: {r.error}" for r in self.failed)])


# --- the sweep file ---------------------------------------------------------------------------


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read a sweep file (YAML or TOML, read as run configs are) and check its top-level keys."""
    try:
        data = read_config_file(path, what="sweep file")  # capped like run configs
    except ConfigError as err:
        raise SweepError(str(err)) from err
    _check_top_keys(data)
    return dict(data)


def expand_sweep(sweep: Mapping[str, Any]) -> list[SweepRun]:
    """Every run of ``sweep``, seed-major (a sweep cut short has every method for its seeds).

    Raises SweepError naming the method/env label for a run config that does not validate; no
    run starts before all of them do.
    """
    _check_top_keys(sweep)
    base = _section(sweep, "base")
    methods = _labelled(sweep, "methods", required=True)
    envs = _labelled(sweep, "envs", required=False)
    seeds = _seeds(sweep.get("seeds"))
    sections = {"base": base}
    sections.update({f"methods.{label}": o for label, o in methods.items()})
    sections.update({f"envs.{label}": o for label, o in envs.items()})
    for where, overrides in sections.items():
        owned = [k for k in OWNED_KEYS if k in overrides]
        if owned:
            raise SweepError(
                f"{where} sets {owned}: a sweep sets each run's name (its method label) and seed "
                "(from `seeds`) itself; remove them."
            )

    env_items: list[tuple[str | None, Mapping[str, Any]]] = list(envs.items()) or [(None, {})]
    runs: list[SweepRun] = []
    errors: dict[str, dict[tuple[str, str | None], None]] = {}  # message -> (method, env) pairs
    for seed in seeds:
        for env_label, env_overrides in env_items:
            for method, method_overrides in methods.items():
                data = _merged(_merged(base, env_overrides), method_overrides)
                data["name"], data["seed"] = method, seed
                try:
                    config = config_from_dict(data)
                except (ConfigError, ValueError) as err:
                    errors.setdefault(str(err).rstrip("."), {})[(method, env_label)] = None
                    continue
                label = env_label if env_label is not None else str(config.env.id)
                name = _dir_name(f"{method}-{label}-s{seed}")
                runs.append(SweepRun(method, label, seed, config, name))
    if errors:
        said = [f"{_where(pairs, methods, envs)}: {message}" for message, pairs in errors.items()]
        raise SweepError("; ".join(said) + ".")
    clashes = sorted({r.name for r in runs if sum(o.name == r.name for o in runs) > 1})
    if clashes:
        raise SweepError(
            f"method/env labels give the same run folder {clashes}; labels must differ after "
            "characters other than letters, digits and ._+=- become '_'."
        )
    return runs


def _where(pairs: Mapping[tuple[str, str | None], None], methods: Mapping, envs: Mapping) -> str:
    """Which labels an invalid run config came from: ``methods.x on envs.y``, ``envs.y`` or
    ``base`` (when every method fails the same way)."""
    bad_methods = list(dict.fromkeys(m for m, _ in pairs))
    bad_envs = list(dict.fromkeys(e for _, e in pairs if e is not None))
    if len(methods) > 1 and len(pairs) == len(methods) * max(len(envs), 1):
        return "base (every method)"
    every_method = len(methods) > 1 and len(bad_methods) == len(methods)
    if every_method and envs and len(pairs) == len(methods) * len(bad_envs):
        return ", ".join(f"envs.{e}" for e in bad_envs) + " (every method)"
    where = ", ".join(f"methods.{m}" for m in bad_methods)
    if envs and len(bad_envs) < len(envs):
        where += " on " + ", ".join(f"envs.{e}" for e in bad_envs)
    return where


def _check_top_keys(sweep: Mapping[str, Any]) -> None:
    unknown = [k for k in sweep if k not in SWEEP_KEYS]
    if unknown:
        said = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), SWEEP_KEYS, n=1)
            said.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SweepError(
            f"sweep has unknown keys {', '.join(said)}; valid keys: {list(SWEEP_KEYS)}."
        )
    missing = [k for k in ("base", "methods", "seeds") if k not in sweep]
    if missing:
        raise SweepError(
            f"sweep lacks {missing}; it needs base, methods and seeds (envs optional)."
        )


def _section(sweep: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = sweep.get(key)
    if not isinstance(value, Mapping):
        raise SweepError(f"sweep {key} must be a mapping (a run config), got {value!r}.")
    return value


def _labelled(sweep: Mapping[str, Any], key: str, *, required: bool) -> dict[str, Mapping]:
    """``label -> overrides`` of one section, labels checked to be non-empty strings."""
    value = sweep.get(key)
    if value is None and not required:
        return {}
    example = "{pebble: {algo: pebble}}" if key == "methods" else "{cheetah: {env: {id: ...}}}"
    if not isinstance(value, Mapping) or not value:
        raise SweepError(
            f"sweep {key} must map labels to overrides, like {example}; got {value!r}."
        )
    out: dict[str, Mapping] = {}
    for label, overrides in value.items():
        if not isinstance(label, str) or not label.strip():
            raise SweepError(f"sweep {key} labels must be non-empty strings, got {label!r}.")
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, Mapping):
            raise SweepError(
                f"sweep {key}.{label} must be a mapping of overrides (or empty), got {overrides!r}."
            )
        out[label] = overrides
    return out


def _seeds(value: object) -> list[int]:
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
    )
    if not ok:
        raise SweepError(
            f"sweep seeds must be a list of integers >= 0 like [0, 1, 2], got {value!r}."
        )
    repeated = sorted({s for s in value if value.count(s) > 1})
    if repeated:
        raise SweepError(f"sweep seeds repeat {repeated}; each seed may appear once.")
    return list(value)


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _dir_name(name: str) -> str:
    """A folder name safe on any filesystem: letters, digits and ``._+=-``; others become ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._+=-]", "_", name)
    return "_" + safe if safe.startswith(".") else safe


# --- running ----------------------------------------------------------------------------------


def run_sweep(
    sweep: str | Path | Mapping[str, Any],
    out_dir: str | Path,
    *,
    backend: str = "local",
    jobs: int = 2,
    address: str | None = None,
    threads: int = 1,
    train_fn: TrainFn | None = None,
    dry_run: bool = False,
    command: str | None = None,
    echo: Callable[[str], None] = print,
) -> SweepSummary:
    """Run every run of ``sweep`` (a file or a mapping) under ``out_dir``; see the module doc.

    :param backend: ``"local"`` (``jobs`` worker processes) or ``"ray"`` (one task per run).
    :param jobs: runs at once locally, and the CPUs of a local Ray instance (x ``threads``).
    :param address: a Ray cluster to join (``backend="ray"`` only); None starts a fresh local
        instance, ``"auto"`` joins the one ``ray start`` started on this machine.
    :param threads: torch threads per run (a run config's own ``threads`` wins).
    :param train_fn: ``train(config, run_dir, *, resume)``, picklable; None: the real one.
    :param dry_run: only say which runs would be skipped, resumed or started.
    :param command: recorded in ``sweep.yaml``; default: this process's command line.
    :param echo: where progress lines go.
    """
    if backend not in BACKENDS:
        close = difflib.get_close_matches(str(backend), BACKENDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SweepError(f"backend={backend!r} is not valid; choose one of {list(BACKENDS)}.{hint}")
    for param, value in (("jobs", jobs), ("threads", threads)):
        try:
            check_int(param, value)
        except ConfigError as error:
            raise SweepError(str(error)) from None
    if address is not None and backend != "ray":
        raise SweepError(f"address={address!r} is for backend='ray' only (backend={backend!r}).")
    if backend == "ray":
        _ray(address)
    data = load_sweep(sweep) if isinstance(sweep, (str, Path)) else dict(sweep)
    runs = expand_sweep(data)
    out = Path(out_dir)
    record = _check_out_dir(out, data)
    plan = [(run, _decide(out / run.name)) for run in runs]

    if dry_run:
        results = tuple(_result(run, action, "planned") for run, action in plan)
        summary = SweepSummary(out, results, dry_run=True)
        echo(str(summary))
        return summary

    out.mkdir(parents=True, exist_ok=True)
    _write_record(out, data, runs, record, command, backend, jobs, threads, address)
    todo = [(run, action) for run, action in plan if action != "skip"]
    done: dict[str, RunResult] = {
        run.name: _result(run, action, "skipped") for run, action in plan if action == "skip"
    }
    echo(
        f"sweep: {len(runs)} runs in {out}: {len(done)} finished (skipped), "
        f"{sum(a == 'resume' for _, a in todo)} to resume, {sum(a == 'start' for _, a in todo)} "
        f"to start; backend {backend}, jobs={jobs}, threads={threads}"
    )

    def report(result: RunResult) -> None:
        done[result.name] = result
        n = len(done) - (len(runs) - len(todo))
        if result.status == "finished":
            echo(f"[{n}/{len(todo)}] {result.name}: finished in {result.seconds:.1f} s")
        else:
            echo(f"[{n}/{len(todo)}] {result.name}: FAILED: {result.error}")
            if result.traceback:
                echo(result.traceback.rstrip())

    if todo:
        execute = _run_local if backend == "local" else _run_ray
        execute(
            todo, out, jobs=jobs, threads=threads, address=address, train_fn=train_fn, report=report
        )
    summary = SweepSummary(out, tuple(done[run.name] for run in runs))
    echo(str(summary))
    return summary


def _decide(run_dir: Path) -> Action:
    """Skip a finished run, resume one that started (a config or checkpoints), start the rest."""
    from sparse_rl.run_dir import CHECKPOINTS_DIR, CONFIG_FILE, RunError, is_finished

    try:
        if is_finished(run_dir):
            return "skip"
    except (RunError, ValueError, KeyError, OSError) as err:
        raise SweepError(f"run folder {run_dir} cannot be read ({err}); move it aside.") from err
    started = (run_dir / CONFIG_FILE).exists() or (run_dir / CHECKPOINTS_DIR).exists()
    return "resume" if started else "start"


def _result(run: SweepRun, action: Action, status: Status, **kw: Any) -> RunResult:
    return RunResult(run.name, run.method, run.env, run.seed, action, status, **kw)


def _init_worker(threads: int) -> None:
    """Pin a worker's math libraries to ``threads`` threads, so parallel runs do not fight, and
    make it end with the sweep process (a killed sweep must not leave runs training unseen)."""
    global _worker_threads
    _die_with_parent()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    _worker_threads = threads  # torch is pinned when a run imports it (_real_train)


#: Threads a worker's runs use (set by :func:`_init_worker`; None outside a worker).
_worker_threads: int | None = None


def _die_with_parent() -> None:
    """On Linux, ask the kernel to send SIGTERM to this worker when the sweep process dies (SIGKILL
    included); the pool's own shutdown does not happen then. Elsewhere, Ctrl-C reaches the whole
    process group as before."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the sweep died before the request took effect
        os._exit(1)


def _train_one(
    train_fn: TrainFn | None, config: RunConfig, run_dir: str, resume: bool
) -> tuple[float, str | None, str | None]:
    """Run one training in a worker: (seconds, error, traceback); errors are returned, not
    raised, so one failing run is reported and the others go on."""
    start = time.perf_counter()
    try:
        (train_fn or _real_train)(config, run_dir, resume=resume)
    except Exception as err:  # any failure of a run is that run's, reported by label
        return time.perf_counter() - start, f"{type(err).__name__}: {err}", traceback.format_exc()
    return time.perf_counter() - start, None, None


def _real_train(config: RunConfig, run_dir: str, *, resume: bool) -> None:
    """``sparse_rl.training.train``, imported in the worker (it pulls in torch and SB3)."""
    import torch

    from sparse_rl.training import train

    if _worker_threads is not None:
        torch.set_num_threads(_worker_threads)
    train(config, run_dir, resume=resume)


def _train_one_ray(
    threads: int, train_fn: TrainFn | None, config: RunConfig, run_dir: str, resume: bool
) -> tuple[float, str | None, str | None]:
    _init_worker(threads)
    return _train_one(train_fn, config, run_dir, resume)


def _outcome(
    run: SweepRun, action: Action, value: tuple[float, str | None, str | None]
) -> RunResult:
    seconds, error, tb = value
    status: Status = "failed" if error else "finished"
    return _result(run, action, status, seconds=seconds, error=error, traceback=tb)


def _run_local(
    todo: list[tuple[SweepRun, Action]],
    out: Path,
    *,
    jobs: int,
    threads: int,
    address: str | None,
    train_fn: TrainFn | None,
    report: Callable[[RunResult], None],
) -> None:
    """``jobs`` spawned worker processes, runs handed out in sweep order."""
    import multiprocessing

    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)),
        mp_context=multiprocessing.get_context("spawn"),  # no fork of a process holding threads
        initializer=_init_worker,
        initargs=(threads,),
    )
    try:
        futures: dict[Future, tuple[SweepRun, Action]] = {
            pool.submit(
                _train_one, train_fn, run.config, str(out.resolve() / run.name), action == "resume"
            ): (run, action)
            for run, action in todo
        }
        for future in as_completed(futures):
            run, action = futures[future]
            try:
                report(_outcome(run, action, future.result()))
            except Exception as err:  # the worker died (killed, out of memory) or did not start
                report(_result(run, action, "failed", error=f"{type(err).__name__}: {err}"))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_ray(
    todo: list[tuple[SweepRun, Action]],
    out: Path,
    *,
    jobs: int,
    threads: int,
    address: str | None,
    train_fn: TrainFn | None,
    report: Callable[[RunResult], None],
) -> None:
    """One Ray task per run (``num_cpus`` = its threads) on the Ray this process already joined,
    the cluster at ``address`` (``out`` must be on a filesystem its nodes share), or a fresh
    local instance with ``jobs * threads`` CPUs."""
    ray = _ray(address)
    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(address="local", num_cpus=jobs * threads, include_dashboard=False)
        else:
            ray.init(address=address)
    try:
        task = ray.remote(max_retries=0)(_train_one_ray)
        refs = {}
        for run, action in todo:
            n = run.config.threads or threads  # a run config's own threads win
            ref = task.options(num_cpus=n).remote(
                n, train_fn, run.config, str(out.resolve() / run.name), action == "resume"
            )
            refs[ref] = (run, action)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            run, action = refs[ready[0]]
            try:
                report(_outcome(run, action, ray.get(ready[0])))
            except Exception as err:  # the task's worker died or its arguments did not travel
                report(_result(run, action, "failed", error=f"{type(err).__name__}: {err}"))
    finally:
        if started:
            ray.shutdown()


def _ray(address: str | None) -> Any:
    """The ``ray`` module, once it is known that ``address`` can be used."""
    try:
        import ray
    except ImportError as err:
        raise SweepError("backend='ray' needs ray: pip install 'sparse-rl[distributed]'.") from err
    if ray.is_initialized() and address is not None:
        raise SweepError(
            f"address={address!r}: this process has joined a Ray already; leave address unset to "
            "use that one, or call ray.shutdown() first."
        )
    return ray


# --- the record in the output folder ---------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` as plain YAML data (dicts, lists, scalars), so two sweeps compare as data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _check_out_dir(out: Path, sweep: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record already in ``out`` (None if new); raise if ``out`` holds something else."""
    path = out / RECORD
    if not path.is_file():
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise SweepError(
                f"--out {out} exists and holds no {RECORD}; give a new or empty folder, "
                "or the folder of this sweep."
            )
        return None
    try:
        record = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SweepError(f"{path} is not valid YAML ({err}); is {out} a sweep folder?") from err
    if not isinstance(record, Mapping) or "sweep" not in record:
        raise SweepError(f"{path} holds no sweep; is {out} a sweep folder?")
    given = _plain(sweep)
    if record["sweep"] != given:
        old = record["sweep"] if isinstance(record["sweep"], Mapping) else {}
        keys = sorted(k for k in set(old) | set(given) if old.get(k) != given.get(k))
        raise SweepError(
            f"--out {out} holds a different sweep (differs in {keys}); re-run that sweep there "
            "to resume it, or give another --out."
        )
    return dict(record)


def _write_record(
    out: Path,
    sweep: Mapping[str, Any],
    runs: Sequence[SweepRun],
    record: Mapping[str, Any] | None,
    command: str | None,
    backend: str,
    jobs: int,
    threads: int,
    address: str | None,
) -> None:
    """Write ``sweep.yaml``: the sweep as given, its runs, and one entry per invocation."""
    invocation = {
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "cwd": os.getcwd(),
        "backend": backend,
        "jobs": jobs,
        "threads": threads,
        "address": address,
        "machine": machine_info(),
    }
    previous = list(record.get("invocations") or []) if record else []
    body = {
        "sweep": _plain(sweep),
        "runs": [{"name": r.name, "method": r.method, "env": r.env, "seed": r.seed} for r in runs],
        "invocations": [*previous, invocation],
    }
    tmp = out / f".{RECORD}.tmp"
    tmp.write_text(yaml.safe_dump(body, sort_keys=False))
    tmp.replace(out / RECORD)


# --- command line -----------------------------------------------------------------------------


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sparse-rl sweep``."""
    parser.add_argument(
        "sweep_file",
        metavar="SWEEP_FILE",
        help="a sweep file (.yaml/.yml/.toml) with keys base (a run config), methods "
        "(label -> overrides), envs (optional, label -> overrides) and seeds (a list)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder: one run folder per run (METHOD-ENV-sSEED) and sweep.yaml; "
        "re-running the same sweep here skips finished runs and resumes interrupted ones",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: worker processes on this machine; ray: one Ray task per run "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join: 'auto' (the one `ray start` started here), 'HOST:PORT' or "
        "'ray://HOST:10001' (--backend ray only; default: start a fresh local Ray instance)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int_arg,
        default=2,
        metavar="N",
        help="runs at once: the local pool's size, or a fresh local Ray instance gets N x T CPUs; "
        "with --address the cluster's CPUs decide (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int_arg,
        default=1,
        metavar="T",
        help="torch threads per run; a run config's own threads key wins (default: %(default)s)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print which runs would be skipped, resumed or started, and run nothing",
    )


def run_sweep_command(args: argparse.Namespace, *, train_fn: TrainFn | None = None) -> int:
    """``sparse-rl sweep``: 0 when every run finished, 1 when any failed, 2 on bad input.

    :param train_fn: for tests: a picklable stand-in for ``sparse_rl.training.train``.
    """
    try:
        summary = run_sweep(
            args.sweep_file,
            args.out,
            backend=args.backend,
            jobs=args.jobs,
            address=args.address,
            threads=args.threads,
            dry_run=args.dry_run,
            train_fn=train_fn,
        )
    except (SweepError, ConfigError, OSError) as err:  # bad input: one line, no traceback
        print(f"sparse-rl sweep: error: {err}", file=sys.stderr)
        return 2
    return 0 if summary.ok else 1
