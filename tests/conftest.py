"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Under pytest-xdist (`make unit`: a worker per core) one thread a worker, for torch here and
# for the training commands the tests start: more threads than cores only slows both workers.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from tbn.data import MnistNotFoundError
from tbn.data.cifar10 import write_synthetic
from tbn.data.mnist import find_file

if TYPE_CHECKING:
    import torch


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """Folder holding the gzip MNIST files (../shared/data/mnist, $TBN_DATA or the cache).

    Tests that train on MNIST skip, with the reason, where no local copy exists; CI has one.
    """
    try:
        return find_file("t10k-images-idx3-ubyte", download=False).parent
    except MnistNotFoundError as e:
        pytest.skip(f"no local MNIST copy: {e}")


@pytest.fixture(scope="session")
def cifar10_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a small CIFAR-10 archive (see :func:`tbn.data.cifar10.write_synthetic`)."""
    d = tmp_path_factory.mktemp("cifar10")
    write_synthetic(d)
    return d


def kill_after_checkpoint(argv: list[str], out: Path, env: dict[str, str], timeout: float = 300) -> int:
    """Run a training command into ``out`` and SIGKILL it once it has written a checkpoint, before
    it finishes; returns the epoch that checkpoint holds."""
    import signal
    import subprocess
    import time

    import torch

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.pt").exists(), "the run finished before it could be killed"
    return int(torch.load(out / "checkpoint.pt", weights_only=True)["epoch"])


def untrained_mnist_mlp(p: int = 4) -> torch.nn.Module:
    """The MNIST MLP recipe tiled at ``p`` with seeded random weights and BatchNorm statistics
    (means and variances away from 0 and 1, so folding them matters), in eval mode."""
    import torch

    from tbn import tile_model
    from tbn.train.models import mlp

    torch.manual_seed(0)
    model = mlp()
    tile_model(model, p=p)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2)
    return model.eval()
