"""Tiled-bit GEMV and GEMM on a CUDA GPU against cuBLAS fp16 on the dense weight.

GEMV: (1 x 8192) by (8192 x 8192); GEMM: (4096 x 8192) by (8192 x 8192); p = 1, 4, 8, 16.
Rows: cuBLAS fp16 with the dense weight (torch.matmul); expanding the tile to the dense
weight then multiplying (what a runtime without tile reuse does, per call); and the tbn
kernels (GEMV: warp per distinct row; GEMM: the shared-memory kernel and the tensor-core
route over the O/p distinct rows). Median of --repeat timed runs with CUDA events.
Prints time, effective TFLOP/s (2*N*O*K / time) and weight bytes; --json writes them.
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


def timed(torch, fn, repeat: int) -> float:
    """Median milliseconds of fn() over `repeat` runs after warm-up."""
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
    return float(np.median(times))


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
        ms = timed(torch, lambda x=x: torch.matmul(x, dense.t()), args.repeat)
        base = ms
        rows.append(
            {
                "shape": shape,
                "p": "-",
                "method": "cuBLAS fp16, dense weight",
                "ms": ms,
                "tflops": flops / ms / 1e9,
                "weight_bytes": N_OUT * N_IN * 2,
                "speedup": 1.0,
            }
        )
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

            ms = timed(torch, expand_then_multiply, args.repeat)
            rows.append(
                {
                    "shape": shape,
                    "p": p,
                    "method": "expand tile, then cuBLAS",
                    "ms": ms,
                    "tflops": flops / ms / 1e9,
                    "weight_bytes": weight_bytes,
                    "speedup": base / ms,
                }
            )
            routes = ["gemv"] if n == 1 else ["gemm", "tensorcore"]
            for route in routes:
                cache: dict = {}

                def tiled(x=x, words=words, plan=plan, route=route, cache=cache):
                    return kern.linear(x, words, plan, scale, None, 0, route=route, signs=cache)

                ms = timed(torch, tiled, args.repeat)
                rows.append(
                    {
                        "shape": shape,
                        "p": p,
                        "method": f"tbn {route}",
                        "ms": ms,
                        "tflops": flops / ms / 1e9,
                        "weight_bytes": weight_bytes
                        + (plan.distinct * N_IN * 2 if route == "tensorcore" else 0),
                        "speedup": base / ms,
                    }
                )
    print(f"device: {device}")
    print_table(
        rows,
        [
            ("shape", "shape"),
            ("p", "p"),
            ("method", "method"),
            ("ms", "ms"),
            ("tflops", "effective TFLOP/s"),
            ("weight_bytes", "weight bytes"),
            ("speedup", "vs cuBLAS"),
        ],
    )
    gemv8 = max(
        r["speedup"] for r in rows if r["shape"] == "GEMV" and r["p"] == 8 and r["method"].startswith("tbn")
    )
    gemm8 = max(
        r["speedup"] for r in rows if r["shape"] == "GEMM" and r["p"] == 8 and r["method"].startswith("tbn")
    )
    print(
        f"GEMV p=8: {gemv8:.2f}x cuBLAS fp16 (goal >= 5x: {'met' if gemv8 >= 5 else 'NOT met'}); "
        f"GEMM p=8: {gemm8:.2f}x (goal >= 3x: {'met' if gemm8 >= 3 else 'NOT met'})"
    )
    write_json(args.json, {"device": device, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
