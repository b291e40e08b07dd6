"""Every engine that runs a model, behind one interface, by name.

An engine loads a model when it is made (``open_engine("c", data)``), runs one input or a
batch (``run``: the output tensor as stored, int8 or float32; ``run_float``: as float32),
and is closed when done (a device engine ends its emulator or link there). ``tbn run
--engine NAME``, the benchmarks and the parity tests pick engines from :data:`ENGINES`;
each entry names its class by import path, so listing the engines imports none of them
(the CUDA engine needs torch, the TFLite Micro one TensorFlow's interpreter).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tbn.errors import UsageError


@runtime_checkable
class Engine(Protocol):
    """What every engine does. ``name`` is its registry name."""

    name: str

    def run(self, x: np.ndarray) -> np.ndarray:
        """One input or a batch (a leading axis); the output tensor as stored."""

    def run_float(self, x: np.ndarray) -> np.ndarray:
        """Like :meth:`run`, with int8 outputs dequantised to float32."""

    def close(self) -> None:
        """Release what the engine holds (a device, an emulator); a no-op for most."""


@dataclass(frozen=True)
class EngineSpec:
    """One registry entry: the class (``module:Class``, imported on first use), the model
    files it takes and what it needs to run, as a user reads it."""

    name: str
    where: str
    takes: str  # "tbn" (a .tbn program) or "tflite" (a TFLite flatbuffer)
    needs: str

    def load(self) -> type:
        module, cls = self.where.split(":")
        return getattr(importlib.import_module(module), cls)

    def open(self, model: Any, **options: Any) -> Engine:
        """The engine running ``model`` (bytes, a path or a decoded program, as the class takes)."""
        return self.load().open(model, **options)


ENGINES: dict[str, EngineSpec] = {s.name: s for s in (
    EngineSpec("reference", "tbn.runtime.interpreter:Interpreter", "tbn",
               "numpy only: the golden semantics of docs/bytecode.md"),
    EngineSpec("c", "tbn.capi:CRuntime", "tbn", "the C runtime built for this machine (make lib)"),
    EngineSpec("cuda", "tbn.gpu.engine:CudaEngine", "tbn",
               "an NVIDIA GPU, torch with CUDA and nvcc or the built kernels_gpu fatbins"),
    EngineSpec("device", "tbn.device.runner:DeviceRunner", "tbn",
               "a board of boards/ (emulated ones are booted) or a running device's port"),
    EngineSpec("tflm", "tbn.keras.tflite:TflmModel", "tflite",
               "the TFLite Micro interpreter (pip install 'tbn[tf]')"),
)}


def engine(name: str) -> EngineSpec:
    """The registry entry ``name``, or a :class:`UsageError` listing them."""
    try:
        return ENGINES[name]
    except KeyError:
        known = ", ".join(f"{s.name} ({s.takes})" for s in ENGINES.values())
        raise UsageError(f"unknown engine {name!r}; the engines are {known}") from None


def names(takes: str = "tbn") -> tuple[str, ...]:
    """The engines that run models of kind ``takes``, in registry order."""
    return tuple(n for n, s in ENGINES.items() if s.takes == takes)


def open_engine(name: str, model: Any, **options: Any) -> Engine:
    """Open ``model`` on the engine ``name`` (see :data:`ENGINES`)."""
    return engine(name).open(model, **options)
