"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tbn.data import MnistNotFoundError
from tbn.data.mnist import find_file


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """Folder holding the gzip MNIST files (../shared/data/mnist, $TBN_DATA or the cache).

    Tests that train on MNIST skip, with the reason, where no local copy exists; CI has one.
    """
    try:
        return find_file("t10k-images-idx3-ubyte", download=False).parent
    except MnistNotFoundError as e:
        pytest.skip(f"no local MNIST copy: {e}")


def write_cifar10(folder: Path, n_train: int = 100, n_test: int = 50, archive: bool = True,
                  seed: int = 0) -> Path:
    """A small CIFAR-10 in the release's python format (pickled batches of uint8 (n, 3072) data
    and labels, in cifar-10-batches-py/, optionally packed as cifar-10-python.tar.gz). Each class
    is a colour template plus noise, so a model can learn it in a few steps."""
    import io
    import pickle
    import tarfile

    import numpy as np

    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 3, 1, 1)) + rng.integers(-40, 40, (10, 3, 32, 32))

    def batch(n: int, label: str) -> bytes:
        labels = rng.integers(0, 10, n)
        data = np.clip(templates[labels] + rng.integers(-30, 30, (n, 3, 32, 32)), 0, 255).astype(np.uint8)
        return pickle.dumps({b"batch_label": label.encode(), b"labels": [int(v) for v in labels],
                             b"data": data.reshape(n, 3072), b"filenames": [b"x.png"] * n}, protocol=2)

    per = -(-n_train // 5)
    files = {f"data_batch_{i + 1}": batch(per, f"training batch {i + 1} of 5") for i in range(5)}
    files["test_batch"] = batch(n_test, "testing batch 1 of 1")
    folder.mkdir(parents=True, exist_ok=True)
    if not archive:
        (folder / "cifar-10-batches-py").mkdir()
        for name, raw in files.items():
            (folder / "cifar-10-batches-py" / name).write_bytes(raw)
        return folder / "cifar-10-batches-py"
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture(scope="session")
def cifar10_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a small CIFAR-10 archive (see :func:`write_cifar10`)."""
    d = tmp_path_factory.mktemp("cifar10")
    write_cifar10(d)
    return d
