"""ModelNet40 as PointNet trains on it: the PointNet authors' release of point clouds sampled
from the meshes, ``modelnet40_ply_hdf5_2048.zip`` (Stanford's shapenet server; it unpacks to
``modelnet40_ply_hdf5_2048/``).

The release holds HDF5 files, ``ply_data_train0.h5`` to ``ply_data_train4.h5`` (9,840 shapes)
and ``ply_data_test0.h5``, ``ply_data_test1.h5`` (2,468), each with ``data``, float32
``(n, 2048, 3)`` points (centred, within the unit sphere), and ``label``, integers ``(n, 1)``
in 0..39 (``shape_names.txt`` names them). The files a split reads are those
``train_files.txt`` / ``test_files.txt`` list, in order (PointNet's ``provider.getDataFiles``).
A model reads the first 1,024 points of each shape, as PointNet's ``train.py`` does, channels
first: float32 ``(n, 3, 1024)``.

Found like the other datasets (:mod:`tbn.data.locate`): the unpacked folder or the zip, read in
place. The release publishes no checksum, so nothing is downloaded; what is read is checked
(the layout, each array's shape, dtype and labels). Reading needs h5py (``pip install
'tbn[data]'``).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from tbn.data import locate
from tbn.errors import MissingExtraError, TbnError, UsageError

FOLDER = "modelnet40_ply_hdf5_2048"
ARCHIVE = f"{FOLDER}.zip"
URL = "https://shapenet.cs.stanford.edu/media/modelnet40_ply_hdf5_2048.zip"
CLASSES = 40
POINTS = 1024  # what the model reads of each shape's 2,048
SPLITS = ("train", "test")
_MAX_FILE_BYTES = 512 << 20  # a release file is about 100 MB


class ModelNetError(TbnError, RuntimeError):
    """ModelNet40 cannot be found or read."""


def find(data_dir: str | os.PathLike | None = None) -> Path:
    """The unpacked folder or the zip in the first place that has one."""
    hint = f"Download {URL} (or a mirror), put it or its unpacked {FOLDER}/ in DIR and pass --data-dir DIR."
    return locate.find_unchecked("modelnet40", FOLDER, ARCHIVE, data_dir, ModelNetError,
                                 f"ModelNet40 ({ARCHIVE})", hint)


class _Source:
    """The release's files by name, from the folder or the zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            self.names = {p.name: p for p in path.iterdir() if p.is_file()}
            return
        try:
            with zipfile.ZipFile(path) as z:
                self.names = {Path(i.filename).name: i for i in z.infolist()
                              if not i.is_dir() and Path(i.filename).parent.name == FOLDER}
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelNetError(f"{path}: not a complete zip archive ({e}); delete it and fetch it "
                                "again") from None

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise ModelNetError(f"{self.path}: no {name}: not the {FOLDER} layout")
        entry = self.names[name]
        size = entry.stat().st_size if isinstance(entry, Path) else entry.file_size
        if size > _MAX_FILE_BYTES:
            raise ModelNetError(f"{self.path}: {name} is {size} bytes, more than any file of the release")
        if isinstance(entry, Path):
            return entry.read_bytes()
        try:
            with zipfile.ZipFile(self.path) as z:
                return z.read(entry)  # its CRC is checked as it is read
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelNetError(f"{self.path}:{entry.filename}: {e}; the archive is corrupt: fetch it "
                                "again") from None


def _arrays(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError as e:
        raise MissingExtraError("reading ModelNet40 needs h5py: pip install 'tbn[data]'") from e
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            if "data" not in f or "label" not in f:
                raise ModelNetError(f"{where}: holds {sorted(f)}, not the release's data and label")
            x, y = np.asarray(f["data"]), np.asarray(f["label"])
    except OSError as e:
        raise ModelNetError(f"{where}: not an HDF5 file ({e})") from None
    if x.ndim != 3 or x.shape[2] != 3 or x.shape[1] < POINTS or x.dtype.kind != "f":
        raise ModelNetError(f"{where}: data is {x.dtype} {x.shape}; the release's is float (n, 2048, 3), "
                            f"and a model reads {POINTS} points")
    y = y.reshape(-1)
    if len(y) != len(x) or y.dtype.kind not in "iu" or (len(y) and not 0 <= y.min() <= y.max() < CLASSES):
        raise ModelNetError(f"{where}: {len(y)} labels ({y.dtype}) for {len(x)} shapes; the release's are "
                            f"one integer in 0..{CLASSES - 1} a shape")
    if not np.isfinite(x[:, :POINTS]).all():
        raise ModelNetError(f"{where}: points that are not finite")
    return x, y


def load_modelnet40(split: str = "train",
                    data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A split as PointNet reads it: float32 ``(n, 3, 1024)`` points and int64 labels."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    src = _Source(find(data_dir))
    listed = src.read(f"{split}_files.txt").decode(errors="replace").split()
    if not listed:
        raise ModelNetError(f"{src.path}: {split}_files.txt lists no files")
    xs, ys = [], []
    for entry in listed:
        name = entry.replace("\\", "/").rsplit("/", 1)[-1]  # the release lists data/<folder>/<name>
        x, y = _arrays(src.read(name), f"{src.path}:{name}")
        xs.append(np.ascontiguousarray(x[:, :POINTS].transpose(0, 2, 1), dtype=np.float32))
        ys.append(y.astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def write_synthetic(folder: Path, per_class: int = 2, points: int = 2048, seed: int = 0,
                    archive: bool = True) -> Path:
    """The release's layout, small (one train and one test file, ``per_class`` shapes of each of
    the 40 classes, each a noisy ellipsoid of its own proportions), zipped unless ``archive`` is
    False. For tests and offline trials; needs h5py."""
    import h5py

    rng = np.random.default_rng(seed)
    root = folder / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    axes = 0.3 + 0.7 * rng.random((CLASSES, 3))
    for split in SPLITS:
        labels = np.repeat(np.arange(CLASSES), per_class)
        v = rng.normal(size=(len(labels), points, 3))
        v /= np.linalg.norm(v, axis=2, keepdims=True)
        data = (v * axes[labels][:, None, :] + rng.normal(0, 0.01, v.shape)).astype(np.float32)
        with h5py.File(root / f"ply_data_{split}0.h5", "w") as f:
            f["data"], f["label"] = data, labels[:, None].astype(np.uint8)
        (root / f"{split}_files.txt").write_text(f"data/{FOLDER}/ply_data_{split}0.h5\n")
    (root / "shape_names.txt").write_text("".join(f"class{i}\n" for i in range(CLASSES)))
    if not archive:
        return root
    with zipfile.ZipFile(folder / ARCHIVE, "w") as z:
        for p in sorted(root.iterdir()):
            z.write(p, f"{FOLDER}/{p.name}")
    for p in root.iterdir():
        p.unlink()
    root.rmdir()
    return folder / ARCHIVE
