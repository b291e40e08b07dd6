"""Compile kernels_gpu/*.cu with nvcc into fatbins (sm_80 and sm_90 by default).

The engine loads these with CuPy; ``make gpu-kernels`` (part of ``make test``) runs the
same compile on machines without a GPU, so a kernel that does not compile fails CI.
``python -m tbn.gpu.build [--arch 80 --arch 90] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from tbn.errors import TbnError
from tbn.paths import build_dir, c_runtime, root

ARCHS = ("80", "90")
FLAGS = ["-std=c++17", "-O3", "-Werror", "all-warnings", "-Xcompiler", "-Wall,-Wextra"]


def sources() -> Path:
    return root() / "kernels_gpu"


def default_out() -> Path:
    return build_dir() / "gpu"


class GpuBuildError(TbnError, RuntimeError):
    """nvcc is missing or a kernel does not compile."""


def nvcc() -> str:
    exe = shutil.which("nvcc") or next(
        (str(p) for p in (Path("/usr/local/cuda/bin/nvcc"),) if p.is_file()), None
    )
    if exe is None:
        raise GpuBuildError("nvcc not found: install the CUDA toolkit (or put nvcc on PATH)")
    return exe


def compile_kernels(archs: tuple[str, ...] = ARCHS, out: Path | None = None) -> list[Path]:
    """One fatbin per .cu file, rebuilt when the file or a header is newer."""
    out = out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    include = c_runtime().include  # tbn_format.h: the bytecode's constants
    headers = [*sources().glob("*.cuh"), include / "tbn_format.h"]
    built = []
    for src in sorted(sources().glob("*.cu")):
        target = out / f"{src.stem}.fatbin"
        newest = max([src.stat().st_mtime, *(h.stat().st_mtime for h in headers)])
        if not target.is_file() or target.stat().st_mtime < newest:
            gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
            gencode.append(
                f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"
            )  # PTX for newer GPUs
            cmd = [nvcc(), *FLAGS, f"-I{include}", *gencode, "-fatbin", str(src), "-o", str(target)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                target.unlink(missing_ok=True)
                raise GpuBuildError(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
        built.append(target)
    return built


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", action="append", help="compute capability, e.g. 80 (repeatable)")
    p.add_argument("--out", type=Path, default=None, help="default: build/gpu")
    args = p.parse_args(argv)
    try:
        for path in compile_kernels(tuple(args.arch or ARCHS), args.out):
            print(f"{path} ({path.stat().st_size} bytes)")
    except GpuBuildError as e:
        print(f"tbn.gpu.build: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
