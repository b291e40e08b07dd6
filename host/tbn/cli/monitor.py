"""``tbn monitor``: a device's info, then one line per inference as inputs stream in:
class, top scores, cost; with --model, the host reference's class beside it."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tbn.cli.infer import add_device_arguments, check_device_outputs, cost_text, describe_device
from tbn.cli.inputs import load_inputs, score
from tbn.cli.types import seconds
from tbn.errors import UsageError
from tbn.format import load
from tbn.runtime.interpreter import check_finite


def add_parser(sub: Any) -> None:
    p = sub.add_parser("monitor", help="watch a device's inference results live", description=__doc__)
    add_device_arguments(p, model_required=False)
    p.add_argument("--interval", type=seconds, default=0.0, help="seconds between inputs (0 or more)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tbn.device.runner import DeviceRunner
    from tbn.device.session import open_device

    program = load(args.model) if args.model else None
    x, labels = load_inputs(args, program)
    check_device_outputs(args)
    with open_device(args.board, args.port, args.model, embed=not args.load, log=args.log) as link:
        info = link.info()
        print(describe_device(info))
        if info.model is None:
            print("no model on the device: flash one (tbn-flash --model) or pass --model")
            return 1
        m = info.model
        print(
            f"model ({info.model_source}): {m.model_bytes} bytes, input {m.input_bytes} B, "
            f"output {m.output_bytes} B, arena {m.arena_bytes} B, {'int8' if m.int8 else 'f32'}"
        )
        runner = DeviceRunner(link, program) if program is not None else None
        if runner is None and m.int8:
            raise UsageError("the device runs an int8 model: pass --model so inputs can be quantised")
        for i, xi in enumerate(x):
            if runner is not None:
                r = runner.compare(xi)
                scores, cost = r.scores.reshape(-1), r.cost
                classes = labels is None or labels.ndim == 1  # a forecast or an anomaly row has none
                extra = (f"  reference {f'{r.reference_predicted} ' if classes else ''}"
                         f"{'ok' if r.matches else 'MISMATCH'}")
            else:  # no reference to prepare the input: check it here
                check_finite(xi)
                got = link.infer(np.ascontiguousarray(xi, dtype=np.float32))
                scores, cost, extra = np.frombuffer(got.output, np.float32), got.cost, ""
            print(f"#{i:<5d} {_what(scores, None if labels is None else labels[i], xi)}  "
                  f"{cost_text(cost, info)}{extra}", flush=True)
            if args.interval:
                time.sleep(args.interval)
    return 0


def _what(scores: np.ndarray, label: np.ndarray | None, x: np.ndarray) -> str:
    """One output in words: the class and the top 3, a forecast's first values and RMSE, or an
    autoencoder's reconstruction error of input ``x``."""
    if label is not None and label.ndim == 1 and label.dtype.kind in "iu":  # machine, clip, anomalous
        error = float(np.mean((scores.astype(np.float64) - np.asarray(x, np.float64).reshape(-1)) ** 2))
        return (f"reconstruction mse {error:.4g}  machine {label[0]:02d} clip {label[1]} "
                f"{'anomalous' if label[2] else 'normal'}")
    if label is not None and label.dtype.kind == "f":  # a forecast's recorded values
        return (f"forecast {' '.join(f'{v:.3g}' for v in scores[:3])} ... rmse "
                f"{score(scores[None], label[None])[1]:.3g}")
    top = np.argsort(scores)[::-1][:3]
    return (f"class {int(top[0])}{'' if label is None else f'  label {label}'}  top "
            + " ".join(f"{int(k)}:{scores[k]:.3g}" for k in top))
