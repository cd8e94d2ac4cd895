"""Deployment speed: batch-1 latency torch vs onnxruntime, and CSR vs dense layer throughput.

1. Batch-1 latency (p50 / p99 per call, one thread each) of the deterministic action for
   - an MLP policy: SAC's actor, 2×256 hidden, on noisy HalfCheetah's 170 inputs, 6 actions;
   - a MaDi pixel policy: Masker + small encoder + actor on 84×84 RGB, 3 stacked frames.
   Backends: SB3's ``model.predict`` (what a user had), the exported torch module called
   directly, and onnxruntime on the exported ONNX file. They alternate call blocks within one run.
2. Batch-256 throughput of one 1024×1024 linear layer at density 10% / 5% / 1%: the runtime's
   numpy CSR kernel vs a dense numpy matmul (the runtime's two options), onnxruntime dense for
   reference. Medians over interleaved repeats.

Run: ``python benchmarks/export_latency.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/export_latency.{json,md}``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one BLAS thread for numpy too, like the other backends

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _machine import machine_info  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _mlp_agent() -> Any:
    from sparse_rl.agents import SparseSAC

    from sparse_rl import envs

    env = envs.make_env("HalfCheetah-v5", noise_fraction=0.9)
    return SparseSAC("SparseMlpPolicy", env, seed=0, policy_kwargs={"net_arch": [256, 256]})


def _madi_agent() -> Any:
    from sparse_rl.agents import VisualSAC

    from sparse_rl import envs

    env = envs.make_env("walker-walk", obs="pixels", size=84)
    return VisualSAC("VisualPolicy", env, method="madi", buffer_size=100, seed=0)


def latency(name: str, agent: Any, calls: int, blocks: int, out: Path) -> dict[str, Any]:
    """Per-call milliseconds of each backend on the same observations, blocks interleaved."""
    from sparse_rl.agents.export import DeterministicPolicy, _example_obs, export_policy

    export_policy(agent, out / name, formats=("onnx",))
    session = _session(out / name / "policy.onnx")
    module = DeterministicPolicy(agent.policy).eval()
    obs = _example_obs(agent.observation_space, calls, seed=2).numpy()

    def torch_call(o: np.ndarray) -> None:
        with torch.inference_mode():
            module(torch.as_tensor(o[None]))

    backends: dict[str, Callable[[np.ndarray], Any]] = {
        "sb3_predict": lambda o: agent.predict(o, deterministic=True),
        "torch": torch_call,
        "onnxruntime": lambda o: session.run(["action"], {"obs": o[None]}),
    }
    times: dict[str, list[float]] = {k: [] for k in backends}
    per_block = max(calls // blocks, 1)
    for block in range(blocks):
        for key, call in backends.items():
            for o in obs[block * per_block : (block + 1) * per_block]:
                start = time.perf_counter()
                call(o)
                times[key].append((time.perf_counter() - start) * 1e3)
    result = {
        key: {
            "p50_ms": float(np.percentile(t, 50)),
            "p99_ms": float(np.percentile(t, 99)),
            "calls": len(t),
        }
        for key, t in times.items()
    }
    result["torch_over_onnxruntime_p50"] = (
        result["torch"]["p50_ms"] / result["onnxruntime"]["p50_ms"]
    )
    return result


def csr_throughput(density: float, batch: int, repeats: int) -> dict[str, Any]:
    """Samples per second through one 1024×1024 layer: numpy CSR vs numpy dense vs ORT dense."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from sparse_rl.runtime.csr import CSRMatrix, csr_linear

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((1024, 1024)).astype(np.float32)
    weight *= rng.random(weight.shape) < density
    bias = rng.standard_normal(1024).astype(np.float32)
    x = rng.standard_normal((batch, 1024)).astype(np.float32)
    csr = CSRMatrix.from_dense(weight)
    weight_t = np.ascontiguousarray(weight.T)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1024])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.onnx"
        onnx.save(helper.make_model(graph), str(path))
        session = _session(path)
        backends = {
            "numpy_csr": lambda: csr_linear(x, csr, bias),
            "numpy_dense": lambda: x @ weight_t + bias,
            "onnxruntime_dense": lambda: session.run(["y"], {"x": x}),
        }
        np.testing.assert_allclose(backends["numpy_csr"](), backends["numpy_dense"](), atol=1e-3)
        times: dict[str, list[float]] = {k: [] for k in backends}
        for _ in range(repeats):
            for key, call in backends.items():
                start = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - start)
    result: dict[str, Any] = {k: batch / statistics.median(t) for k, t in times.items()}
    result["csr_over_dense"] = result["numpy_csr"] / result["numpy_dense"]
    result["csr_over_onnxruntime"] = result["numpy_csr"] / result["onnxruntime_dense"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few calls: a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    calls, pixel_calls, repeats = (50, 10, 3) if args.quick else (3000, 300, 30)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        results: dict[str, Any] = {
            "machine": machine_info(),
            "latency": {
                "mlp_256x256": latency("mlp", _mlp_agent(), calls, 10, out),
                "madi_84x84": latency("madi", _madi_agent(), pixel_calls, 10, out),
            },
            "csr_1024": {str(d): csr_throughput(d, 256, repeats) for d in (0.1, 0.05, 0.01)},
        }
    suffix = "_quick" if args.quick else ""
    (RESULTS / f"export_latency{suffix}.json").write_text(json.dumps(results, indent=1))
    m = results["machine"]
    lines = [
        "# Exported policies: batch-1 latency and CSR throughput",
        "",
        f"Command: `{m['command']}`. Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, "
        f"one thread per backend; {m['date']}.",
        "",
        "## Batch-1 latency per action (ms)",
        "",
        "| policy | SB3 predict p50 / p99 | torch p50 / p99 | onnxruntime p50 / p99 | "
        "torch / ORT (p50) |",
        "|---|---|---|---|---|",
    ]
    for name, r in results["latency"].items():
        cells = [f"{r[k]['p50_ms']:.3f} / {r[k]['p99_ms']:.3f}"
                 for k in ("sb3_predict", "torch", "onnxruntime")]  # fmt: skip
        lines.append(f"| {name} | {' | '.join(cells)} | {r['torch_over_onnxruntime_p50']:.2f} |")
    lines += [
        "",
        "## One 1024×1024 layer, batch 256: samples per second (median)",
        "",
        "| density | numpy CSR (scipy) | numpy dense | onnxruntime dense | CSR / numpy dense | "
        "CSR / onnxruntime |",
        "|---|---|---|---|---|---|",
    ]
    for density, r in results["csr_1024"].items():
        lines.append(
            f"| {float(density):.0%} | {r['numpy_csr']:,.0f} | {r['numpy_dense']:,.0f} | "
            f"{r['onnxruntime_dense']:,.0f} | {r['csr_over_dense']:.2f} | "
            f"{r['csr_over_onnxruntime']:.2f} |"
        )
    lines.append("")
    (RESULTS / f"export_latency{suffix}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
