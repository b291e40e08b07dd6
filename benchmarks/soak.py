"""Soak the serial link: many inferences on an emulated board while a share of the request
frames is damaged on the way in (a flipped bit, or a dropped byte).

Counts wrong results accepted (device output that differs from the host reference yet was
taken as a reply), hangs (requests that never completed) and how every damaged frame was
caught. Prints a table; --json writes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table, write_json
from tbn.device import LinkError
from tbn.device.faults import FaultyPort
from tbn.device.session import open_device
from tbn.format import load
from tbn.parity import output_error, within
from tbn.paths import root
from tbn.runtime import Interpreter

ROOT = root()


def inputs(interp: Interpreter, n: int, data_dir: str | None) -> np.ndarray:
    if tuple(interp.input.shape) == (1, 28, 28):
        from tbn.data import load_mnist

        x = load_mnist("test", data_dir).normalized()
    else:
        x = np.random.default_rng(0).standard_normal((256, *interp.input.shape)).astype(np.float32)
    return np.concatenate([x] * (n // len(x) + 1))[:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--board", default="mps2_an500")
    p.add_argument("--model", type=Path, default=ROOT / "tests" / "vectors" / "mlp_int8.tbn")
    p.add_argument("--n", type=int, default=10_000, help="inferences (default 10000)")
    p.add_argument("--rate", type=float, default=0.01, help="share of request frames damaged (default 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--json")
    args = p.parse_args(argv)

    program = load(args.model)
    interp = Interpreter(program)
    x = inputs(interp, args.n, args.data_dir)
    prepared = [interp.prepare(xi)[0][0] for xi in x[: min(len(x), 10_000)]]
    expected = [interp.run(xi) for xi in x[: len(prepared)]]
    wrong = hangs = 0
    t0 = time.perf_counter()
    with open_device(args.board, model=args.model, embed=False) as link:
        faulty = FaultyPort(link.port, rate=args.rate, seed=args.seed)
        soak = link.via(faulty, timeout=1.0, retries=10)  # type: ignore[arg-type]
        for i in range(args.n):
            k = i % len(prepared)
            try:
                got = soak.infer(np.ascontiguousarray(prepared[k]))
            except LinkError:
                hangs += 1
                continue
            out = np.frombuffer(got.output, dtype=expected[k].dtype).reshape(expected[k].shape)
            err = output_error(out, expected[k])
            wrong += not within(err, program.int8)
    seconds = time.perf_counter() - t0
    s = soak.stats
    row = {
        "board": args.board, "model": args.model.name, "inferences": args.n, "frames_sent": faulty.frames,
        "damaged": faulty.damaged, "bit_flips": faulty.flipped, "dropped_bytes": faulty.dropped,
        "device_rejected": s.device_rejected, "host_timeouts": s.timeouts, "retries": s.retries,
        "wrong_accepted": wrong, "hangs": hangs, "seconds": round(seconds, 1),
    }
    print_table([row], [(k, k) for k in row])
    caught = s.retries >= faulty.damaged
    print(f"every damaged frame caught and retried: {'yes' if caught else 'NO'} "
          f"({s.by_status} device error replies, {s.timeouts} host timeouts)")
    write_json(args.json, {"soak": row, "device_errors": s.by_status})
    return 0 if (wrong == 0 and hangs == 0 and caught) else 1


if __name__ == "__main__":
    sys.exit(main())
