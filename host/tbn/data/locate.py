"""Where a dataset's release is looked for and how it is fetched, one way for every dataset
stored as an archive or its unpacked folder (CIFAR-10, Speech Commands, Visual Wake Words;
docs/datasets.md): ``--data-dir`` (and ``DIR/<name>``) only, when given; else ``$TBN_DATA/<name>``,
``$TBN_DATA``, ``../shared/data/<name>`` and the user cache; when none has it, a download into
``--data-dir`` or the cache, unless downloads are off."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tbn.data.mnist import cache_dir, no_download_reason
from tbn.paths import shared_data


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order."""
    if data_dir is not None:
        return [Path(data_dir), Path(data_dir) / name]
    roots = []
    if os.environ.get("TBN_DATA"):
        roots += [Path(os.environ["TBN_DATA"]) / name, Path(os.environ["TBN_DATA"])]
    roots += [Path.cwd().parent / "shared" / "data" / name, shared_data() / name, cache_dir() / name]
    return list(dict.fromkeys(roots))


def find(name: str, folder: str, archive: str, data_dir: str | os.PathLike | None, download: bool,
         fetch: Callable[[Path], Path], error: type[Exception], what: str, hint: str) -> Path:
    """The unpacked ``folder`` or the ``archive`` file in the first place that has one; else
    ``fetch(place)`` when downloads are allowed; else ``error`` saying where it looked, why
    nothing was downloaded, and ``hint``."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise error(f"--data-dir {data_dir} does not exist (or is not a folder)")
    dirs = search_dirs(name, data_dir)
    for d in dirs:
        if (d / folder).is_dir():
            return d / folder
        if (d / archive).is_file():
            return d / archive
    reason = no_download_reason(download)
    if reason is None:
        try:
            return fetch(Path(data_dir) if data_dir is not None else cache_dir() / name)
        except error as e:
            reason = str(e)
    raise error(f"{what} not found; looked in: {', '.join(map(str, dirs))}; {reason}. {hint}")


def find_unchecked(name: str, folder: str, archive: str, data_dir: str | os.PathLike | None,
                   error: type[Exception], what: str, hint: str) -> Path:
    """:func:`find` for a release that publishes no checksum (ToyCar, ModelNet40): looked for
    the same way, never downloaded, as a download could not be checked; ``hint`` says where to
    fetch it."""
    def fetch(_: Path) -> Path:
        raise error("the release publishes no checksum tbn can check a download against")
    return find(name, folder, archive, data_dir, True, fetch, error, what, hint)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, size: int, sha256: str, error: type[Exception]) -> Path:
    """``url`` downloaded to the file ``dest``, checked for ``size`` and ``sha256`` while it
    streams, and moved into place only whole and right."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, h, n = dest.with_name(f".{dest.name}.part"), hashlib.sha256(), 0
    try:
        with open(part, "wb") as f, urllib.request.urlopen(url, timeout=60) as resp:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
                f.write(chunk)
        if n != size or h.hexdigest() != sha256:
            raise error(f"{url}: got {n} bytes with SHA-256 {h.hexdigest()}, expected {size} and {sha256}")
        os.replace(part, dest)
    except (urllib.error.URLError, OSError) as e:
        raise error(f"could not download {url}: {e}") from None
    finally:
        part.unlink(missing_ok=True)
    return dest
