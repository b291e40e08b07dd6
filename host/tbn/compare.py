"""tbn beside the TFLite int8 baseline on the same architecture (``tbn compare``).

The baseline is the float model (a teacher trained with ``tbn train --float``, or the tbn
model's own latent weights) converted to full-integer TFLite with a representative
dataset and run in the TFLite Micro Python interpreter; tbn's side is the INT8 ``.tbn`` in
the reference interpreter, whose bytes every tbn runtime reproduces. Both see the same test
images; both arenas are the runtimes' own figures.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tbn.errors import UsageError


@dataclass
class Side:
    """One runtime's figures on the shared test images."""

    name: str
    model_bytes: int
    arena_bytes: int
    accuracy: float  # percent
    instructions: int | None = None  # per inference on the board, when one was given


def float_twin(model: torch.nn.Module, recipe_name: str) -> torch.nn.Module:
    """The recipe's float model holding ``model``'s latent weights (alpha tensors dropped)."""
    from tbn.train.recipes import build

    twin = build(recipe_name).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("alpha_weight")}
    twin.load_state_dict(state)
    return twin


def _accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(100 * np.mean(scores.reshape(len(labels), -1).argmax(axis=1) == labels))


def compare(model_path: Path, tbn_path: Path | None = None, teacher: Path | None = None, n: int = 1000,
            calibration: int = 512, board: str | None = None, n_device: int = 3,
            data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """tbn's INT8 model and the TFLite int8 baseline side by side (see the module docstring)."""
    from tbn.compiler import compile_model
    from tbn.data.datasets import as_float
    from tbn.files import read_bounded
    from tbn.format import read
    from tbn.format.spec import MAX_FILE_BYTES
    from tbn.keras.from_torch import to_keras
    from tbn.keras.tflite import TflmModel, to_tflite_int8
    from tbn.runtime import Interpreter
    from tbn.train import dataset_tensors, load_model
    from tbn.train.recipes import input_shape, recipe

    model, config = load_model(model_path)
    if teacher is not None:  # before any data is read: a wrong teacher fails at once
        base_model, base_config = load_model(teacher)
        if base_config.recipe != config.recipe:
            raise UsageError(f"the teacher {teacher} is a {base_config.recipe!r} model, the tbn model a "
                             f"{config.recipe!r}: compare needs the same architecture")
        source = f"float model {teacher}"
    else:
        base_model, source = float_twin(model, config.recipe), "the tbn model's latent weights"
    data_name = recipe(config.recipe).dataset
    shape = input_shape(config.recipe)
    train_x = dataset_tensors(data_name, "train", data_dir, config.verify_data, stored=True)[0]
    calib = as_float(train_x[:calibration])
    if n < 1:
        raise UsageError("compare needs at least one test image (--n)")
    x, y = (t[:n] for t in dataset_tensors(data_name, "test", data_dir, config.verify_data, stored=True))
    x, y = as_float(x).numpy(), y.numpy()

    data = (read_bounded(tbn_path, MAX_FILE_BYTES, "a .tbn model") if tbn_path is not None else
            compile_model(model, torch.zeros(1, *shape), activations="int8", calibration=calib))
    prog = read(data)
    tbn = Side(f"tbn ({'p=' + str(config.p) if config.p else 'float'}, int8)", len(data), prog.arena_size,
               _accuracy(Interpreter(data).run_float(x), y))

    flat = to_tflite_int8(to_keras(base_model, shape), calib.numpy().transpose(0, 2, 3, 1))
    tflm = TflmModel(flat)
    tfl = Side("TFLite Micro (int8)", len(flat), tflm.arena_bytes(),
               _accuracy(tflm.run_float(x.transpose(0, 2, 3, 1)), y))
    if board is not None:
        tbn.instructions = _device_cost(data, board, x[:n_device])
    return {"recipe": config.recipe, "p": config.p, "test_images": len(y), "baseline_from": source,
            "board": board, "sides": [asdict(tbn), asdict(tfl)],
            "ratios": {"model_bytes": tfl.model_bytes / tbn.model_bytes,
                       "arena_bytes": tfl.arena_bytes / tbn.arena_bytes,
                       "accuracy_points": tbn.accuracy - tfl.accuracy}}


def _device_cost(data: bytes, board: str, x: np.ndarray) -> int:
    """tbn's mean instructions per inference on ``board`` (outputs checked against the
    reference on the way)."""
    import tempfile

    from tbn.device.runner import DeviceRunner
    from tbn.device.session import open_device
    from tbn.errors import DeviceError
    from tbn.format import read

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tbn"
        path.write_bytes(data)
        with open_device(board, model=path) as link:
            runner = DeviceRunner(link, read(data))
            results = [runner.compare(xi) for xi in x]
    if not all(r.matches for r in results):
        raise DeviceError(f"{board}: the device's outputs differ from the reference")
    return int(np.mean([r.cost for r in results]))


def render(result: dict[str, Any]) -> str:
    """The comparison as a table."""
    sides = result["sides"]
    cols = [("runtime", "name"), ("model bytes", "model_bytes"), ("arena bytes", "arena_bytes"),
            (f"accuracy % ({result['test_images']})", "accuracy")]
    if result["board"]:
        cols.append((f"{result['board']} instructions", "instructions"))
    rows = [[h for h, _ in cols]] + [[_cell(s[k]) for _, k in cols] for s in sides]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    r = result["ratios"]
    lines += ["", f"baseline from {result['baseline_from']}",
              f"TFLite / tbn: model bytes x{r['model_bytes']:.1f}, arena x{r['arena_bytes']:.2f}; "
              f"accuracy tbn - TFLite: {r['accuracy_points']:+.2f} points"]
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
