"""Tiled-bit GEMV and GEMM on a CUDA GPU against cuBLAS fp16 on the dense weight.

GEMV: (1 x 8192) by (8192 x 8192); GEMM: (4096 x 8192) by (8192 x 8192); p = 1, 4, 8, 16.
Rows: cuBLAS fp16 with the dense weight (torch.matmul); expanding the tile to the dense
weight then multiplying (what a runtime without tile reuse does, per call); and the tbn
kernels (GEMV: a block per distinct row; GEMM: the shared-memory kernel and the tensor-core
route over the O/p distinct rows). Two times per row: "call", the median of --repeat
single calls from Python timed with CUDA events (what a caller waits, launch overhead
included), and "GPU", the kernels' own time per call as the CUDA profiler (CUPTI) reads
it over --repeat calls. Prints both, effective TFLOP/s (2*N*O*K / GPU time) and weight
bytes; --json writes them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table, write_json
from tbn.format.spec import ScaleMode
from tbn.gpu.plan import TiledPlan

N_OUT = N_IN = 8192


def gpu_ms(torch, fn, repeat: int) -> float:
    """Milliseconds per fn() that the GPU spends in kernels and copies (CUPTI's records)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(repeat):
            fn()
        torch.cuda.synchronize()
    return sum(e.self_device_time_total for e in prof.key_averages()) / 1e3 / repeat


def timed(torch, fn, repeat: int) -> dict[str, float]:
    """Median milliseconds of one call of fn() after warm-up, and its GPU time."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return {"call_ms": float(np.median(times)), "ms": gpu_ms(torch, fn, repeat)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--p", type=int, action="append", help="tiling factors (default 1 4 8 16)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--gemm-n", type=int, default=4096)
    p.add_argument("--json")
    args = p.parse_args(argv)
    from tbn.gpu import available

    ok, why = available()
    if not ok:
        print(f"benchmarks/gpu.py: no CUDA GPU here ({why})", file=sys.stderr)
        return 2
    import torch

    from tbn.gpu.kernels import Kernels

    kern = Kernels()
    rng = np.random.default_rng(0)
    device = torch.cuda.get_device_name()
    rows = []
    dense = torch.randn(N_OUT, N_IN, device="cuda", dtype=torch.float16) / N_IN**0.5
    scale = torch.rand(N_OUT, device="cuda", dtype=torch.float32) + 0.5
    for n, shape in ((1, "GEMV"), (args.gemm_n, "GEMM")):
        x = torch.randn(n, N_IN, device="cuda", dtype=torch.float16)
        flops = 2.0 * n * N_OUT * N_IN
        base = timed(torch, lambda x=x: torch.matmul(x, dense.t()), args.repeat)

        def row(p, method, t, weight_bytes, shape=shape, flops=flops, base=base):
            return {
                "shape": shape,
                "p": p,
                "method": method,
                **t,
                "tflops": flops / t["ms"] / 1e9,
                "weight_bytes": weight_bytes,
                "speedup": base["ms"] / t["ms"],
                "call_speedup": base["call_ms"] / t["call_ms"],
            }

        rows.append(row("-", "cuBLAS fp16, dense weight", base, N_OUT * N_IN * 2))
        for p in args.p or [1, 4, 8, 16]:
            t = N_OUT * N_IN // p
            words = torch.as_tensor(
                rng.integers(0, 2**32, (t + 31) // 32, dtype=np.uint64).astype(np.uint32).view(np.int32),
                device="cuda",
            )
            plan = TiledPlan(N_OUT, N_IN, t, p, N_OUT // p, ScaleMode.PER_OUTPUT, False)
            full = TiledPlan(N_OUT, N_IN, t, p, N_OUT, ScaleMode.PER_OUTPUT, False)  # every row expanded
            weight_bytes = t // 8 + 4 * N_OUT

            def expand_then_multiply(x=x, words=words, full=full):
                w = kern.sign_rows(words, full, torch.float16) * scale[:, None].half()
                return torch.matmul(x, w.t())

            times = timed(torch, expand_then_multiply, args.repeat)
            rows.append(row(p, "expand tile, then cuBLAS", times, weight_bytes))
            for route in ["gemv"] if n == 1 else ["gemm", "tensorcore"]:
                cache: dict = {}

                def tiled(x=x, words=words, plan=plan, route=route, cache=cache):
                    return kern.linear(x, words, plan, scale, None, 0, route=route, signs=cache)

                signs = plan.distinct * N_IN * 2 if route == "tensorcore" else 0  # the cached ±1 rows
                rows.append(row(p, f"tbn {route}", timed(torch, tiled, args.repeat), weight_bytes + signs))
    print(f"device: {device}")
    print_table(
        rows,
        [
            ("shape", "shape"),
            ("p", "p"),
            ("method", "method"),
            ("ms", "GPU ms"),
            ("call_ms", "call ms"),
            ("tflops", "effective TFLOP/s (GPU)"),
            ("weight_bytes", "weight bytes"),
            ("speedup", "vs cuBLAS (GPU)"),
            ("call_speedup", "vs cuBLAS (call)"),
        ],
    )
    for shape, goal in (("GEMV", 5.0), ("GEMM", 3.0)):
        best = [r for r in rows if r["shape"] == shape and r["p"] == 8 and r["method"].startswith("tbn")]
        gpu, call = max(r["speedup"] for r in best), max(r["call_speedup"] for r in best)
        print(
            f"{shape} p=8: {gpu:.2f}x cuBLAS fp16 in GPU time, {call:.2f}x per call "
            f"(goal >= {goal:g}x: {'met' if gpu >= goal else 'NOT met'} in GPU time, "
            f"{'met' if call >= goal else 'NOT met'} per call)"
        )
    write_json(args.json, {"device": device, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
