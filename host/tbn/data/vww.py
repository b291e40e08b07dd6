"""Visual Wake Words at 96x96, as MLPerf Tiny's vww01 reference trains on it: Silicon Labs'
``vw_coco2014_96.tar.gz`` (COCO 2014 crops, RGB, in ``vw_coco2014_96/person/`` and
``vw_coco2014_96/non_person/``, the layout the reference's download script unpacks).

Classes and splits are Keras' ``flow_from_directory`` with ``validation_split=0.1``, as the
reference's ``train_vww.py`` reads the folder: classes in sorted order (``non_person`` 0,
``person`` 1), each class's files in sorted order, the first 10% of each class for
``validation`` and the rest for ``train``. The reference has no test split: ``test`` is the
validation split. Images are decoded as RGB, resized to 96x96 (nearest, Keras' default) where
they are not already, and kept as uint8 ``(n, 3, 96, 96)``; ``normalized()`` gives the
reference's ``1/255`` scaling.

Found like the other datasets (:mod:`tbn.data.cifar10`); the archive is checked against its
size and SHA-256 (234,810,765 bytes, f8746b9e...; docs/datasets.md says where that figure comes
from). Decoding needs Pillow.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from tbn.data import locate
from tbn.data.split import Split
from tbn.errors import MissingExtraError, TbnError, UsageError

ARCHIVE = "vw_coco2014_96.tar.gz"
FOLDER = "vw_coco2014_96"
URL = "https://www.silabs.com/public/files/github/machine_learning/benchmarks/datasets/vw_coco2014_96.tar.gz"
ARCHIVE_BYTES = 234_810_765
ARCHIVE_SHA256 = "f8746b9e44f8a7a4293f73be9ba6e8da9239fe69798d42364aae62b915cfab58"
CLASSES = ("non_person", "person")
SIZE = 96
VALIDATION_SPLIT = 0.1
SPLITS = ("train", "validation", "test")
_MAX_IMAGE_BYTES = 4 << 20
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class VwwError(TbnError, RuntimeError):
    """Visual Wake Words cannot be found, downloaded or read."""


class Vww(Split):
    """One split: ``images`` uint8 ``(n, 3, 96, 96)``, ``labels`` uint8 ``(n,)``; pixels scaled
    by 1/255 as the reference does (no mean or deviation)."""

    MEAN: ClassVar[tuple[float, ...]] = (0.0, 0.0, 0.0)
    STD: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0)


def find(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The unpacked folder or the archive in the first place that has one."""
    return locate.find("vww", FOLDER, ARCHIVE, data_dir, download,
                       lambda d: locate.fetch(URL, d / ARCHIVE, ARCHIVE_BYTES, ARCHIVE_SHA256, VwwError),
                       VwwError, "Visual Wake Words",
                       f"Put {ARCHIVE} (from {URL}) or its unpacked {FOLDER}/ folder in DIR and pass "
                       "--data-dir DIR.")


def _image(where: str, size: int) -> bool:
    """Whether a file of that name is one of the dataset's images; one far past any 96x96
    image's size is refused by name, not read."""
    if Path(where).suffix.lower() not in _IMAGE_SUFFIXES:
        return False
    if size > _MAX_IMAGE_BYTES:
        raise VwwError(f"{where}: {size} bytes, more than a 96x96 image can be ({_MAX_IMAGE_BYTES})")
    return True


def _files(source: Path) -> Iterator[tuple[str, bytes]]:
    """(class folder / file name, bytes) of every image, from the folder or the archive."""
    if source.is_dir():
        for cls in CLASSES:
            for p in sorted((source / cls).glob("*")) if (source / cls).is_dir() else []:
                if p.is_file() and _image(str(p), p.stat().st_size):
                    yield f"{cls}/{p.name}", p.read_bytes()
        return
    try:
        with tarfile.open(source, mode="r|gz") as tar:
            for m in tar:
                parts = m.name.removeprefix("./").split("/")
                if (m.isfile() and len(parts) == 3 and parts[0] == FOLDER and parts[1] in CLASSES
                        and _image(f"{source}:{m.name}", m.size)):
                    f = tar.extractfile(m)
                    if f is not None:
                        yield f"{parts[1]}/{parts[2]}", f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise VwwError(f"{source}: not a complete .tar.gz ({e or type(e).__name__}); the file is truncated "
                       "or corrupt: delete it and fetch it again") from None


def _decode(data: bytes, where: str) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:
        raise MissingExtraError("reading Visual Wake Words needs Pillow: pip install 'tbn[data]'") from e
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            if im.size != (SIZE, SIZE):
                im = im.resize((SIZE, SIZE), Image.Resampling.NEAREST)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise VwwError(f"{where}: not an image ({e})") from None


def _verified(path: Path) -> None:
    digest = locate.sha256_file(path)
    if path.stat().st_size != ARCHIVE_BYTES or digest != ARCHIVE_SHA256:
        raise VwwError(f"{path}: {path.stat().st_size} bytes with SHA-256 {digest}, not the "
                       f"release's {ARCHIVE_BYTES} and {ARCHIVE_SHA256}: truncated, corrupt or other data; "
                       "delete it and fetch it again (verify=False or --no-verify accepts other data in this "
                       "layout)")


def load_vww(split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True,
             verify: bool = True) -> Vww:
    """A split (``train``, ``validation``; ``test`` is ``validation``) of Visual Wake Words."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    source = find(data_dir, download)
    if source.is_file() and verify:
        _verified(source)
    data = dict(_files(source))  # "class/file name" -> bytes
    names = {c: sorted(n for n in data if n.startswith(f"{c}/")) for c in CLASSES}
    if missing := [c for c in CLASSES if not names[c]]:
        raise VwwError(f"{source}: no images in {', '.join(missing)}/: not the {FOLDER} layout "
                       f"({'/, '.join(CLASSES)}/ of JPEG files)")
    chosen: list[tuple[str, int]] = []
    for label, cls in enumerate(CLASSES):
        files = names[cls]
        cut = int(VALIDATION_SPLIT * len(files))
        chosen += [(f, label) for f in (files[:cut] if split in ("validation", "test") else files[cut:])]
    images = np.stack([_decode(data[f], f"{source}:{f}") for f, _ in chosen]) if chosen else \
        np.zeros((0, 3, SIZE, SIZE), np.uint8)
    return Vww(images, np.array([label for _, label in chosen], np.uint8))


def write_synthetic(folder: Path, per_class: int = 20, archive: bool = True, seed: int = 0) -> Path:
    """A small dataset in the release's layout (JPEG files in ``vw_coco2014_96/person/`` and
    ``non_person/``, packed as ``vw_coco2014_96.tar.gz`` unless ``archive=False``): a person is a
    bright vertical bar, a non-person a dark field. For tests and offline trials (``verify=False``)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = {}
    for cls in CLASSES:
        for i in range(per_class):
            img = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
            if cls == "person":
                x = int(rng.integers(10, SIZE - 30))
                img[:, x:x + 20] = 220
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=95)
            files[f"{FOLDER}/{cls}/COCO_{i:012d}.jpg"] = buf.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    if not archive:
        for name, raw in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(raw)
        return folder / FOLDER
    with tarfile.open(folder / ARCHIVE, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return folder / ARCHIVE
