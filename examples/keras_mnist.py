"""Train a sub-bit MNIST model in Keras, compile it to .tbn and run it on an emulated
Cortex-M7 (QEMU mps2-an500), checking the board's outputs against the reference.

Run: python examples/keras_mnist.py [--epochs 3] [--board mps2_an500] [--data-dir DIR]
(about a minute on a laptop CPU; needs pip install 'tbn[tf]' and the firmware toolchain that
`make deps` installs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import tbn
from tbn.data import load_mnist
from tbn.device.runner import DeviceRunner
from tbn.device.session import open_device
from tbn.format import read
from tbn.keras import tile_model
from tbn.runtime import Interpreter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--subset", type=int, default=60000, help="train on the first N images")
    ap.add_argument("--board", default="mps2_an500")
    ap.add_argument("--n", type=int, default=5, help="images to run on the board")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    keras.utils.set_random_seed(0)

    # tbn's MNIST, channels-last as Keras reads it
    train, test = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    x = train.normalized()[: args.subset].transpose(0, 2, 3, 1)
    y = train.labels[: args.subset].astype(np.int64)
    x_test, y_test = test.normalized().transpose(0, 2, 3, 1), test.labels.astype(np.int64)

    # An ordinary Keras model; tile_model makes its Dense layers sub-bit (p=4 where they are large)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(256), keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.Dense(256), keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.Dense(10)])
    model, report = tile_model(model, p=4)
    print(report, end="\n\n")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=args.epochs, verbose=2)
    _, keras_acc = model.evaluate(x_test, y_test, verbose=0)

    # Compile: channels-last batches in, a .tbn that reads (C, H, W) out
    data = tbn.compile_model(model, x[:1], activations="int8", calibration=x[:512])
    tbn_acc = np.mean(Interpreter(data).run_float(x_test.transpose(0, 3, 1, 2)).argmax(1) == y_test)
    print(f"\ntest accuracy: Keras {100 * keras_acc:.2f}%, compiled int8 .tbn {100 * tbn_acc:.2f}% "
          f"({len(data)} bytes, arena {read(data).arena_size} bytes)")

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "keras_mnist.tbn"
        path.write_bytes(data)
        with open_device(args.board, model=path) as link:
            runner = DeviceRunner(link, read(data))
            results = [runner.compare(xi) for xi in x_test[: args.n].transpose(0, 3, 1, 2)]
    same = sum(r.matches for r in results)
    cost = int(np.mean([r.cost for r in results]))
    print(f"{args.board}: {same}/{len(results)} outputs equal to the reference, predictions "
          f"{[r.predicted for r in results]} (labels {y_test[: args.n].tolist()}), "
          f"{cost:,} instructions per inference")
    if same != len(results):
        raise SystemExit("the board's outputs differ from the reference")


if __name__ == "__main__":
    main()
