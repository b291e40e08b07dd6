"""ModelNet40 (tbn.data.modelnet40) on a fixture in the PointNet release's format (HDF5 files
listed by train_files.txt / test_files.txt, zipped or unpacked), PointNet's augmentation, and the
pointnet-modelnet40 recipe trained for a step."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py", reason="ModelNet40 needs h5py (pip install 'tbn[data]')")

from tbn.data.modelnet40 import (  # noqa: E402
    ARCHIVE,
    CLASSES,
    FOLDER,
    POINTS,
    ModelNetError,
    load_modelnet40,
    write_synthetic,
)
from tbn.errors import UsageError  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBN_OFFLINE", "1")


def test_a_split_is_the_first_1024_points_channels_first(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path, per_class=2, archive=False)
    x, y = load_modelnet40("train", tmp_path)
    assert x.shape == (2 * CLASSES, 3, POINTS) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [2] * CLASSES
    with h5py.File(root / "ply_data_train0.h5") as f:
        np.testing.assert_array_equal(x, f["data"][:, :POINTS].transpose(0, 2, 1))
    assert len(load_modelnet40("test", tmp_path)[0]) == 2 * CLASSES


def test_the_zip_reads_as_the_folder(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "z", per_class=1)
    write_synthetic(tmp_path / "f", per_class=1, archive=False)
    for split in ("train", "test"):
        a, b = load_modelnet40(split, tmp_path / "z"), load_modelnet40(split, tmp_path / "f")
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def _rewrite(root: Path, **arrays: np.ndarray) -> None:
    with h5py.File(root / "ply_data_train0.h5", "w") as f:
        for k, v in arrays.items():
            f[k] = v


@pytest.mark.parametrize("arrays, message", [
    ({"data": np.zeros((2, 2048, 3), np.float32)}, "not the release's data and label"),
    ({"data": np.zeros((2, 512, 3), np.float32), "label": np.zeros((2, 1), np.uint8)},
     r"float \(n, 2048, 3\)"),
    ({"data": np.zeros((2, 2048, 3), np.float32), "label": np.full((2, 1), 40, np.uint8)}, "in 0..39"),
    ({"data": np.full((1, 2048, 3), np.nan, np.float32), "label": np.zeros((1, 1), np.uint8)}, "not finite"),
], ids=["no-label", "few-points", "label-40", "nan"])
def test_a_bad_file_is_named(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    root = write_synthetic(tmp_path, per_class=1, archive=False)
    _rewrite(root, **arrays)
    with pytest.raises(ModelNetError, match=message):
        load_modelnet40("train", tmp_path)


def test_bad_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelNetError, match=r"shapenet\.cs\.stanford\.edu"):
        load_modelnet40("train", tmp_path)  # nothing there: where it comes from
    (tmp_path / ARCHIVE).write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(ModelNetError, match="not a complete zip archive"):
        load_modelnet40("train", tmp_path)
    root = write_synthetic(tmp_path / "lists", per_class=1, archive=False)
    (root / "train_files.txt").unlink()
    with pytest.raises(ModelNetError, match=r"no train_files\.txt"):
        load_modelnet40("train", tmp_path / "lists")
    (root / "ply_data_test0.h5").write_bytes(b"not hdf5")
    with pytest.raises(ModelNetError, match="not an HDF5 file"):
        load_modelnet40("test", tmp_path / "lists")
    with pytest.raises(UsageError, match="split 'validation'"):
        load_modelnet40("validation", tmp_path / "lists")
    assert zipfile.is_zipfile(write_synthetic(tmp_path / "ok", per_class=1))
    assert (tmp_path / "ok" / ARCHIVE).is_file() and not (tmp_path / "ok" / FOLDER).exists()


def test_pointnets_augmentation_turns_about_the_up_axis() -> None:
    """A rotation about y keeps each point's height and distance from the axis; the jitter is
    clipped at 5 deviations."""
    from tbn.train import TrainConfig
    from tbn.train.loop import _rotate_jitter

    x = torch.randn(4, 3, 64)
    g = torch.Generator().manual_seed(0)
    turned = _rotate_jitter(x, TrainConfig.for_recipe("pointnet-modelnet40", augment=0.0), g)
    torch.testing.assert_close(turned[:, 1], x[:, 1])
    torch.testing.assert_close(turned[:, [0, 2]].norm(dim=1), x[:, [0, 2]].norm(dim=1))
    assert not torch.allclose(turned, x)
    jittered = _rotate_jitter(torch.zeros(4, 3, 64), TrainConfig.for_recipe("pointnet-modelnet40"), g)
    assert 0 < jittered.abs().max() <= 0.05


def test_the_pointnet_modelnet40_recipe_trains(tmp_path: Path) -> None:
    from tbn.train import TrainConfig, train

    write_synthetic(tmp_path / "data", per_class=1)
    metrics = train(TrainConfig.for_recipe("pointnet-modelnet40", epochs=1, batch_size=8,
                                           data_dir=str(tmp_path / "data")), tmp_path / "run", progress=False)
    assert metrics["recipe"] == "pointnet-modelnet40" and 0 <= metrics["test_accuracy"] <= 1
    assert np.isfinite(metrics["history"][0]["loss"])
