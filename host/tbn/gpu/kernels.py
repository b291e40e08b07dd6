"""Launching the kernels of kernels_gpu/ from Python: CuPy RawModules over torch tensors.

Why CuPy's RawModule rather than a torch C++ extension: the kernels are plain CUDA with
``extern "C"`` entry points, so CI compiles them with nvcc alone (no torch headers, no
C++ ABI to match), the fatbins load in milliseconds instead of a minute-long extension
build, and torch tensors pass in without copies, as bare device addresses (a pointer
parameter is 8 bytes, as CuPy packs a numpy uint64; wrapping each tensor in a CuPy array
cost more host time than a GEMV's kernel). Both libraries use the legacy default stream
here, so their work is ordered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tbn.errors import TbnError, UsageError
from tbn.gpu.plan import TiledPlan

SUFFIX = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
THREADS = 256
EXPAND = 8  # outputs per thread of tbn_scale_expand (tiled_linear.cu: EXPAND)


class GpuUnavailable(TbnError, RuntimeError):
    """No usable CUDA device, or CuPy / a CUDA build of torch is missing."""


def _require() -> tuple[Any, Any]:
    try:
        import cupy
        import torch
    except ImportError as e:
        raise GpuUnavailable(f"the CUDA engine needs CuPy and a CUDA build of torch ({e})") from e
    if not torch.cuda.is_available():
        raise GpuUnavailable("torch sees no CUDA device")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise GpuUnavailable("CuPy sees no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError as e:
        raise GpuUnavailable(f"CuPy cannot reach a CUDA device: {e}") from e
    return cupy, torch


def available() -> tuple[bool, str]:
    """(whether the CUDA engine can run here, the reason when it cannot)."""
    try:
        _require()
    except GpuUnavailable as e:
        return False, str(e)
    return True, ""


class Kernels:
    """The compiled kernels, and typed launchers for them."""

    def __init__(self) -> None:
        from tbn.gpu.build import compile_kernels

        self.cupy, self.torch = _require()
        self.modules = {path.stem: self.cupy.RawModule(path=str(path)) for path in compile_kernels()}
        self.functions: dict[str, Any] = {}

    def _fn(self, module: str, name: str) -> Any:
        if name not in self.functions:
            self.functions[name] = self.modules[module].get_function(name)
        return self.functions[name]

    @staticmethod
    def _arr(t: Any) -> np.uint64:
        """The device address of a contiguous torch tensor, which the caller keeps alive until
        the launch is queued."""
        if not t.is_contiguous():
            raise ValueError("kernel arguments must be contiguous tensors")
        return np.uint64(t.data_ptr())

    def _launch(self, module: str, name: str, threads_total: int, args: tuple) -> None:
        blocks = max(1, (threads_total + THREADS - 1) // THREADS)
        self._fn(module, name)((blocks,), (THREADS,), args)

    def _gemv_args(self, x: Any, tile: Any, plan: TiledPlan) -> tuple:
        """The leading arguments of the GEMV kernels: x (N, K), the tile, T and D."""
        n, k = x.shape
        return (self._arr(x), np.int32(n), np.int32(k), self._arr(tile), np.uint64(plan.n_bits),
                np.int32(plan.distinct))

    def _epilogue(self, scale: Any, plan: TiledPlan, bias: Any | None, act: int) -> tuple:
        dummy = scale  # any valid pointer when there is no bias
        return (
            self._arr(scale),
            np.int32(plan.scale_mode),
            self._arr(bias if bias is not None else dummy),
            np.int32(bias is not None),
            np.int32(act),
        )

    def linear(
        self,
        x: Any,
        tile: Any,
        plan: TiledPlan,
        scale: Any,
        bias: Any | None,
        act: int,
        route: str = "auto",
        signs: dict | None = None,
    ) -> Any:
        """y (N, O) = tiled linear of x (N, K), in x's dtype (float32, float16 or bfloat16)."""
        torch = self.torch
        x = x.contiguous()
        n, k = x.shape
        o, d = plan.out_features, plan.distinct
        sfx = SUFFIX[str(x.dtype).removeprefix("torch.")]
        y = torch.empty((n, o), dtype=x.dtype, device=x.device)
        ep = self._epilogue(scale, plan, bias, act)
        if route == "auto":
            route = "gemv" if n < 8 or not plan.aligned else "gemm" if n <= 256 else "tensorcore"
        if route == "gemm" and not plan.aligned:
            raise UsageError("the shared-memory GEMM needs K % 32 == 0 and p dividing O")
        if route == "gemv":  # one block per (input, distinct row)
            self._fn("tiled_linear", f"tbn_tiled_gemv_{sfx}")(
                (n * d,), (THREADS,), (*self._gemv_args(x, tile, plan), np.int32(o), *ep, self._arr(y))
            )
        elif route == "gemm":
            grid = ((d + 31) // 32, (n + 31) // 32)
            self._fn("tiled_linear", f"tbn_tiled_gemm_{sfx}")(
                grid,
                (THREADS,),
                (
                    self._arr(x),
                    np.int32(n),
                    np.int32(k),
                    self._arr(tile),
                    np.int32(d),
                    np.int32(o),
                    *ep,
                    self._arr(y),
                ),
            )
        elif route == "tensorcore":
            s = self.sign_rows(tile, plan, x.dtype, signs)
            sums = torch.matmul(x, s.t()).contiguous()  # (N, D) on cuBLAS: only the distinct rows
            self._fn("tiled_linear", f"tbn_scale_expand_{sfx}")(
                ((o + EXPAND * THREADS - 1) // (EXPAND * THREADS), min(n, 65535)),
                (THREADS,),
                (self._arr(sums), np.int32(n), np.int32(d), np.int32(o), *ep, self._arr(y)),
            )
        else:
            raise UsageError(f"unknown route {route!r}: auto, gemv, gemm or tensorcore")
        return y

    def sign_rows(self, tile: Any, plan: TiledPlan, dtype: Any, cache: dict | None = None) -> Any:
        """The (D, K) +1/-1 matrix of the distinct rows, made once per layer and dtype."""
        key = str(dtype)
        if cache is not None and key in cache:
            return cache[key]
        d, k = plan.distinct, plan.fan_in
        s = self.torch.empty((d, k), dtype=dtype, device="cuda")
        sfx = SUFFIX[key.removeprefix("torch.")]
        self._launch(
            "tiled_linear",
            f"tbn_unpack_signs_{sfx}",
            d * k,
            (self._arr(tile), np.uint64(plan.n_bits), np.int32(d), np.int32(k), self._arr(s)),
        )
        if cache is not None:
            cache[key] = s
        return s

    def linear_raw(self, x: Any, tile: Any, plan: TiledPlan) -> Any:
        """INT8 models: the (N, D) int32 sign sums of x (N, K) int32 (already minus the zero point)."""
        x = x.contiguous()
        n = x.shape[0]
        d = plan.distinct
        y = self.torch.empty((n, d), dtype=self.torch.int32, device=x.device)
        self._fn("tiled_linear", "tbn_tiled_gemv_raw_i32")(
            (n * d,), (THREADS,), (*self._gemv_args(x, tile, plan), self._arr(y))
        )
        return y

    def _geometry(self, x: Any, a: dict[str, int], o: int, ho: int, wo: int) -> Any:
        n, c, h, w = x.shape
        g = [
            n,
            c,
            h,
            w,
            o,
            ho,
            wo,
            a["kh"],
            a["kw"],
            a["sh"],
            a["sw"],
            a["dh"],
            a["dw"],
            a["pt"],
            a["pl"],
            a["groups"],
        ]
        return self.torch.tensor(g, dtype=self.torch.int32, device=x.device)

    def conv2d(
        self,
        x: Any,
        tile: Any,
        plan: TiledPlan,
        a: dict[str, int],
        out_hw: tuple[int, int],
        scale: Any,
        bias: Any | None,
        act: int,
    ) -> Any:
        """y (N, O, Ho, Wo) = tiled conv2d of x (N, C, H, W), in x's dtype."""
        x = x.contiguous()
        n = x.shape[0]
        ho, wo = out_hw
        o, d = plan.out_features, plan.distinct
        sfx = SUFFIX[str(x.dtype).removeprefix("torch.")]
        y = self.torch.empty((n, o, ho, wo), dtype=x.dtype, device=x.device)
        geometry = self._geometry(x, a, o, ho, wo)
        self._launch(
            "tiled_conv2d",
            f"tbn_tiled_conv2d_{sfx}",
            n * ho * wo * d * 32,
            (
                self._arr(x),
                self._arr(geometry),
                self._arr(tile),
                np.uint64(plan.n_bits),
                np.int32(d),
                *self._epilogue(scale, plan, bias, act),
                self._arr(y),
            ),
        )
        return y

    def conv2d_raw(
        self, x: Any, tile: Any, plan: TiledPlan, a: dict[str, int], out_hw: tuple[int, int]
    ) -> Any:
        """INT8 models: (N, D, Ho, Wo) int32 sign sums of x int32 (already minus the zero point)."""
        x = x.contiguous()
        n = x.shape[0]
        ho, wo = out_hw
        d = plan.distinct
        y = self.torch.empty((n, d, ho, wo), dtype=self.torch.int32, device=x.device)
        geometry = self._geometry(x, a, plan.out_features, ho, wo)
        self._launch(
            "tiled_conv2d",
            "tbn_tiled_conv2d_raw_i32",
            n * ho * wo * d * 32,
            (
                self._arr(x),
                self._arr(geometry),
                self._arr(tile),
                np.uint64(plan.n_bits),
                np.int32(d),
                self._arr(y),
            ),
        )
        return y
