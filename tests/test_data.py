"""MNIST loading: search order, raw and gzip IDX, checksums, clear failures."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn.data import IdxFormatError, MnistNotFoundError, load_mnist, parse_idx
from tbn.data import mnist as mnist_mod


@pytest.fixture()
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No shared data, no cache, no network: only what a test puts in place is found."""
    monkeypatch.delenv("TBN_DATA", raising=False)
    monkeypatch.setenv("TBN_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(mnist_mod, "shared_data", lambda: tmp_path / "shared" / "data")  # = ../shared
    return tmp_path


def test_parse_idx_round_trip() -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">III", 2, 3, 4) + arr.tobytes()
    assert np.array_equal(parse_idx(data), arr)


@pytest.mark.parametrize(("data", "message"), [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "bad magic"),
    (b"\x00\x00\x42\x01\x00\x00\x00\x01\x07", "unknown IDX element type 0x42"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x07", "header says shape (5,)"),
])
def test_parse_idx_rejects_malformed(data: bytes, message: str) -> None:
    with pytest.raises(IdxFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_idx(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_parse_idx_never_raises_anything_else(data: bytes) -> None:
    try:
        parse_idx(data)
    except IdxFormatError:
        pass


def test_finds_raw_copy_via_tbn_data(isolated: Path, shared_mnist: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    raw = isolated / "raw"
    raw.mkdir()
    for f in shared_mnist.glob("t10k-*.gz"):
        (raw / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    monkeypatch.setenv("TBN_DATA", str(raw))
    test = load_mnist("test")
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_data_dir_takes_precedence_and_checksum_is_verified(isolated: Path, shared_mnist: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bad = isolated / "bad"
    bad.mkdir()
    labels = bytearray(gzip.decompress((shared_mnist / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] ^= 1
    (bad / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    for f in shared_mnist.glob("t10k-images*.gz"):
        (bad / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("TBN_DATA", str(shared_mnist))
    with pytest.raises(IdxFormatError, match=r"MD5 of the decompressed data is .* corrupt or not MNIST"):
        load_mnist("test", data_dir=bad)


def test_search_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBN_DATA", "/env")
    assert [str(d) for d in mnist_mod.search_dirs("/opt")] == ["/opt", "/opt/mnist"]  # only there
    dirs = [str(d) for d in mnist_mod.search_dirs()]
    assert dirs == ["/env", "/env/mnist",
                    str(isolated / "shared" / "data"), str(isolated / "shared" / "data" / "mnist"),
                    str(isolated / "cache" / "tbn"), str(isolated / "cache" / "tbn" / "mnist")]


def test_missing_and_offline_says_where_it_looked(isolated: Path) -> None:
    with pytest.raises(MnistNotFoundError, match=r"nowhere does not exist"):
        load_mnist("train", data_dir=isolated / "nowhere")
    (isolated / "empty").mkdir()
    with pytest.raises(MnistNotFoundError, match=r"not found; looked in: .*empty.*TBN_OFFLINE.*--data-dir"):
        load_mnist("train", data_dir=isolated / "empty")


def test_a_truncated_gzip_is_named(isolated: Path, shared_mnist: Path) -> None:
    d = isolated / "cut"
    d.mkdir()
    for f in shared_mnist.glob("t10k-*.gz"):
        data = f.read_bytes()
        (d / f.name).write_bytes(data[: len(data) // 2])
    with pytest.raises(IdxFormatError, match=r"not a complete gzip file .* truncated or corrupt"):
        load_mnist("test", data_dir=d)


def test_unknown_split() -> None:
    with pytest.raises(ValueError, match="split 'dev'"):
        load_mnist("dev")


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 40), out=st.integers(1, 20))
def test_downsample_is_pytorchs_adaptive_average_pool(size: int, out: int) -> None:
    import torch
    import torch.nn.functional as F

    from tbn.data.datasets import downsample

    out = min(out, size)
    x = np.random.default_rng(size * 100 + out).standard_normal((2, 1, size, size)).astype(np.float32)
    want = F.adaptive_avg_pool2d(torch.from_numpy(x), out).numpy()
    np.testing.assert_allclose(downsample(x, out), want, rtol=1e-5, atol=1e-6)


def test_mnist16_crops_the_border_then_averages() -> None:
    """The small-RAM recipes' 16x16 MNIST sees only the inner 24x24: ink in the 2-pixel border
    is dropped, and the 24x24 crop is area-averaged (adaptive pooling: 2x2 windows here)."""
    from tbn.data.datasets import MNIST16_CROP, downsample, mnist16

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    c = MNIST16_CROP
    np.testing.assert_array_equal(mnist16(x), downsample(x[:, :, c:-c, c:-c], 16))
    border = np.zeros_like(x)
    border[:, :, :c], border[:, :, -c:], border[:, :, :, :c], border[:, :, :, -c:] = 1, 1, 1, 1
    assert mnist16(x + border).shape == (3, 1, 16, 16)
    np.testing.assert_allclose(mnist16(x + border), mnist16(x), atol=1e-6)
    one = np.zeros((1, 1, 28, 28), np.float32)
    one[0, 0, c, c] = 1.0  # the crop's first pixel: output (0, 0) averages crop rows/cols 0-1
    np.testing.assert_allclose(mnist16(one)[0, 0, 0, 0], 0.25, rtol=1e-6)


def test_a_model_input_finds_its_dataset() -> None:
    from tbn.data.datasets import dataset_for_input
    from tbn.errors import UsageError

    assert dataset_for_input((1, 16, 16)).name == "mnist16"
    assert dataset_for_input((1, 28, 28)).name == "mnist"
    with pytest.raises(UsageError, match=r"no dataset has inputs of shape \(1, 5, 5\); known: mnist"):
        dataset_for_input((1, 5, 5))


def test_the_membrane_series_is_matplotlibs_recording_in_time_ordered_windows(tmp_path: Path) -> None:
    """The forecasting data (tbn.data.membrane): every window is the recording's next samples, the
    training part comes before the test part with no window across the cut, and both are
    standardised by the training part."""
    from tbn.data import membrane as mb

    raw = mb.read_series(mb.find())
    assert raw.shape == (mb.SAMPLES,) and raw.dtype == np.float32
    cut = int(mb.SAMPLES * mb.TRAIN_SHARE)
    mean, std = float(raw[:cut].mean()), float(raw[:cut].std())
    span = mb.WINDOW + mb.HORIZON
    for split, part in (("train", raw[:cut]), ("test", raw[cut:])):
        x, y = mb.load_membrane(split)
        assert x.shape == (len(part) - span + 1, 1, mb.WINDOW) and y.shape == (len(x), mb.HORIZON)
        if split == "test":  # in time order
            for i in (0, 7, len(x) - 1):
                want = (part[i:i + span] - mean) / std
                np.testing.assert_allclose(np.concatenate([x[i, 0], y[i]]), want, rtol=1e-5, atol=1e-5)
        else:  # every window once, shuffled: the first 512 span the recording, not its quiet start
            got = np.concatenate([x[:, 0], y], axis=1)
            want = np.lib.stride_tricks.sliding_window_view((part - mean) / std, span)
            np.testing.assert_allclose(got[np.lexsort(got.T[::-1])], want[np.lexsort(want.T[::-1])],
                                       rtol=1e-5, atol=1e-5)
            assert np.ptp(x[:512]) > 0.9 * np.ptp(x)
    x, y = mb.load_membrane("train")
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    assert 12.0 < mb.scale_mv() < 12.6  # the training part's deviation, in mV


def test_a_bad_membrane_copy_is_named(tmp_path: Path) -> None:
    from tbn.data import membrane as mb

    good = mb.find().read_bytes()
    (tmp_path / mb.FILE).write_bytes(good)
    assert mb.find(tmp_path) == tmp_path / mb.FILE  # the data folder's copy comes first
    (tmp_path / mb.FILE).write_bytes(good[:-4])
    with pytest.raises(mb.MembraneError, match=r"holds 47996 bytes; the recording is 12000 float32"):
        mb.load_membrane("train", tmp_path)
    nan = bytearray(good)
    nan[400:404] = np.float32(np.nan).tobytes()
    (tmp_path / mb.FILE).write_bytes(bytes(nan))
    with pytest.raises(mb.MembraneError, match="not the recording's SHA-256"):
        mb.load_membrane("test", tmp_path)
    with pytest.raises(mb.MembraneError, match="1 values that are not finite"):
        mb.load_membrane("test", tmp_path, verify=False)
    with pytest.raises(mb.MembraneError, match="splits train, test, not 'validation'"):
        mb.load_membrane("validation")
