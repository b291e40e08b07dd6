"""The CUDA path: tiled-bit kernels (kernels_gpu/) and an engine that runs a whole .tbn.

``CudaEngine(data, dtype="float32"|"float16"|"bfloat16").run(x)`` mirrors
:class:`tbn.runtime.Interpreter`; ``available()`` says whether this machine can run it.
Needs a CUDA GPU, CuPy and a CUDA build of torch; the kernels are compiled with nvcc on
first use (``python -m tbn.gpu.build`` does it ahead of time).
"""

from tbn.gpu.kernels import GpuUnavailable, available


def __getattr__(name: str):
    if name == "CudaEngine":
        from tbn.gpu.engine import CudaEngine

        return CudaEngine
    raise AttributeError(name)


__all__ = ["CudaEngine", "GpuUnavailable", "available"]
