"""ToyCar (tbn.data.toycar) on a fixture in the release's layout, the numpy log-mel
(tbn.data.logmel) against librosa's, the AUC, and the ad recipe trained end to end."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from tbn.data.logmel import CENTRE, FRAMES, MELS, log_mel, mel_matrix, vectors
from tbn.data.toycar import ARCHIVE, EXTRA_ARCHIVE, ToyCarError, auc, load_toycar, roc_auc, write_synthetic
from tbn.data.wav import pcm16
from tbn.errors import UsageError

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBN_OFFLINE", "1")


@pytest.fixture
def release(tmp_path: Path) -> Path:
    write_synthetic(tmp_path / "toycar", clips=2)
    return tmp_path / "toycar"


def _wav(samples: np.ndarray, rate: int = 16000, channels: int = 1) -> bytes:
    return pcm16(samples, rate, channels)


def _zip(folder: Path, members: dict[str, bytes], name: str = ARCHIVE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as z:
        for k, v in members.items():
            z.writestr(f"ToyCar/{k}", v)
    return folder


def test_the_splits_are_the_references(release: Path) -> None:
    """196 vectors of 640 a 9 s clip; train holds the normal clips, test both kinds, with each
    vector's machine, clip and label."""
    x, y = load_toycar("train", release)
    assert x.shape == (4 * 196, 640) and x.dtype == np.float32 and y.dtype == np.int64
    assert (y[:, 2] == 0).all() and sorted(set(y[:, 0])) == [1, 2]
    assert np.bincount(y[:, 1]).tolist() == [196] * 4
    x, y = load_toycar("test", release)
    assert x.shape == (8 * 196, 640)
    clips = y[::196]
    # machine by machine, a normal clip then the anomalous one of its number: any 2 clips hold both
    assert clips[:, 0].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert clips[:, 2].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert clips[:, 1].tolist() == list(range(8))


def test_a_vector_is_five_central_frames_in_a_row() -> None:
    t = np.arange(9 * 16000) / 16000
    samples = (3000 * np.sin(2 * np.pi * (300 + 200 * t) * t)).astype(np.int16)
    frames = log_mel(samples, 16000)
    v = vectors(frames)
    assert v.shape == (CENTRE[1] - CENTRE[0] - FRAMES + 1, MELS * FRAMES)
    for t0 in (0, 57, len(v) - 1):
        for k in range(FRAMES):
            np.testing.assert_array_equal(v[t0, k * MELS:(k + 1) * MELS], frames[CENTRE[0] + t0 + k])
    assert vectors(frames[:CENTRE[0] + 4]).shape == (0, 640)  # too short: skipped, as the reference does


def test_log_mel_equals_librosas() -> None:
    """Frames of librosa 0.11's melspectrogram (n_fft 1024, hop 512, 128 mels, power 2,
    pad_mode "reflect" as librosa 0.6 pads) and 10 log10(mel + eps), stored in
    tests/data/librosa_logmel.npy for frames 0, 1, 100, 250 and 312 of this signal."""
    t = np.arange(160000) / 16000
    x = (3000 * np.sin(2 * np.pi * 440 * t) + 1500 * np.sin(2 * np.pi * (200 + 300 * t) * t)
         + 800 * np.sin(2 * np.pi * 5100 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.int16)
    ours = log_mel(x, 16000)
    assert ours.shape == (313, 128)
    # librosa's STFT is float32: at -90 dB its rounding reaches 4e-5 of the value
    np.testing.assert_allclose(ours[[0, 1, 100, 250, 312]], np.load(DATA / "librosa_logmel.npy"),
                               rtol=1e-4, atol=1e-3)


def test_log_mel_equals_librosa_live() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3000, 48000).astype(np.int16)
    ref = librosa.feature.melspectrogram(y=x / np.float32(32768), sr=16000, n_fft=1024, hop_length=512,
                                         n_mels=128, power=2.0, pad_mode="reflect")
    np.testing.assert_allclose(log_mel(x, 16000), 10 * np.log10(ref.T + np.finfo(float).eps),
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(mel_matrix(16000), librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128),
                               atol=1e-7)


def test_mel_bands_are_slaneys() -> None:
    """Unit area in Hz, centres linear (200/3 Hz a mel) below 1 kHz, and a tone peaks in the
    band whose centre is nearest it."""
    m = mel_matrix(16000)
    assert m.shape == (128, 513)
    # a band of many bins sums to its area; a narrow one (low bands) samples its triangle coarsely
    np.testing.assert_allclose(m.sum(axis=1)[60:] * (8000 / 512), 1.0, rtol=0.025)
    t = np.arange(32000) / 16000
    for hz in (500.0, 2000.0, 6000.0):
        frames = log_mel((8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16), 16000)
        centre_bin = np.argmax(m[frames[10].argmax()])
        assert abs(centre_bin * 16000 / 1024 - hz) < 0.06 * hz


def test_the_folder_and_the_archive_read_the_same(release: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(release / ARCHIVE) as z:
        z.extractall(tmp_path / "unpacked")
    for split in ("train", "test"):
        a, b = load_toycar(split, release), load_toycar(split, tmp_path / "unpacked")
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_the_evaluation_archive_adds_training_machines(release: Path) -> None:
    t = np.arange(9 * 16000) / 16000
    clip = _wav(2000 * np.sin(2 * np.pi * 150 * t))
    _zip(release, {"train/normal_id_05_00000000.wav": clip}, EXTRA_ARCHIVE)
    x, y = load_toycar("train", release)
    assert len(x) == 5 * 196 and sorted(set(y[:, 0])) == [1, 2, 5]
    assert len(load_toycar("test", release)[0]) == 8 * 196  # test clips come from the dev archive only


def test_auc_is_the_mann_whitney_statistic() -> None:
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75  # sklearn's example
    assert roc_auc(np.array([1.0, 1.0, 2.0]), np.array([0, 1, 1])) == 0.75  # a tie counts half
    assert roc_auc(np.array([3.0, 1.0]), np.array([0, 1])) == 0.0
    # per machine, then averaged: machine 1 perfect (1.0), machine 2 inverted (0.0)
    rows = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 1], [2, 2, 0], [2, 3, 1]])
    errors = np.array([0.1, 0.3, 0.9, 0.8, 0.1])  # clip 0's score is its vectors' mean, 0.2
    assert auc(errors, rows) == 0.5
    with pytest.raises(UsageError, match="no machine has both"):
        auc(errors[:2], rows[:2])


@pytest.mark.parametrize("name, data, match", [
    ("test/normal_id_01_00000000.wav", _wav(np.zeros((9 * 16000, 2)), channels=2), "2 channels"),
    ("test/normal_id_01_00000000.wav", b"RIFF....WAVEjunk", "not a WAV file"),
    ("test/broken_id_01.wav", _wav(np.zeros(9 * 16000)), "not a normal or anomaly_id_NN_NNNNNNNN"),
    ("test/normal_id_01_00000001.wav", _wav(np.zeros(9 * 16000), rate=22050), "22050 Hz"),
])
def test_a_bad_clip_is_named(release: Path, tmp_path: Path, name: str, data: bytes, match: str) -> None:
    with zipfile.ZipFile(release / ARCHIVE) as z:
        z.extractall(tmp_path / "unpacked")
    (tmp_path / "unpacked" / "ToyCar" / name).write_bytes(data)
    with pytest.raises(ToyCarError, match=match):
        load_toycar("test", tmp_path / "unpacked")


def test_bad_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(ToyCarError, match=r"zenodo\.org/record/3678171"):
        load_toycar("train", tmp_path)  # nothing there: where to fetch it
    (tmp_path / ARCHIVE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ToyCarError, match="not a complete zip"):
        load_toycar("train", tmp_path)
    _zip(tmp_path / "short", {"train/normal_id_01_00000000.wav": _wav(np.zeros(16000))})
    with pytest.raises(ToyCarError, match="long enough"):
        load_toycar("train", tmp_path / "short")
    _zip(tmp_path / "mixed", {"train/anomaly_id_01_00000000.wav": _wav(np.zeros(9 * 16000))})
    with pytest.raises(ToyCarError, match="train/anomaly_id_01"):
        load_toycar("train", tmp_path / "mixed")
    with pytest.raises(UsageError, match="split 'validation'"):
        load_toycar("validation", tmp_path)
    (tmp_path / "layout" / "ToyCar").mkdir(parents=True)
    with pytest.raises(ToyCarError, match="no train/ folder"):
        load_toycar("train", tmp_path / "layout")


def test_the_ad_recipe_detects_the_fixtures_anomalies(release: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """ad01's autoencoder trained on the normal clips reconstructs an unseen tone worse: the
    test AUC is far above chance, in PyTorch and from the compiled INT8 file."""
    from tbn.cli.main import main as cli
    from tbn.train import TrainConfig, train

    metrics = train(TrainConfig.for_recipe("ad", epochs=30, batch_size=64, data_dir=str(release)),
                    tmp_path / "run", progress=False)
    assert metrics["metric"] == "auc" and metrics["test_auc"] >= 0.9
    assert "train_mse" in metrics["history"][-1]
    model = tmp_path / "ad.tbn"
    assert cli(["compile", str(tmp_path / "run" / "model.pt"), "-o", str(model), "--activations", "int8",
                "--data-dir", str(release)]) == 0
    assert cli(["run", str(model), "--data", "toycar", "--data-dir", str(release)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert " auc " in line and float(line.split(" auc ")[1].split()[0]) >= 0.9, line


def test_the_ad_recipe_distils_the_published_ad01(release: Path, tmp_path: Path) -> None:
    """--teacher takes MLPerf Tiny's trained ad01.h5 (the pinned copy): its input is the
    recipe's 640 values, and the student's loss mixes in the distance to its reconstructions."""
    pytest.importorskip("keras", reason="the tf extra is not installed (pip install 'tbn[tf]')")
    from tbn.mlperf import reference_file
    from tbn.third_party import SourceNotFoundError
    from tbn.train import TrainConfig, train

    try:
        teacher = reference_file("ad01")
    except SourceNotFoundError as e:
        pytest.skip(str(e))
    metrics = train(TrainConfig.for_recipe("ad", epochs=2, batch_size=64, data_dir=str(release),
                                           teacher=str(teacher)), tmp_path / "run", progress=False)
    assert metrics["config"]["teacher"] == str(teacher) and np.isfinite(metrics["history"][-1]["loss"])


def test_a_device_run_too_short_for_an_auc_still_reports(capsys: pytest.CaptureFixture[str]) -> None:
    """tbn infer --n of one clip: the outputs were compared, so the run stands, with no score
    and the reason, where tbn run (a whole split) refuses."""
    from types import SimpleNamespace

    from tbn.cli.infer import _Run, _scores

    x = np.zeros((3, 640), np.float32)
    rows = np.array([[1, 0, 0]] * 3)
    got = _Run(3, inputs=x, results=[SimpleNamespace(scores=x[0], reference_scores=x[0])] * 3)
    assert _scores(got, rows) is None
    assert "no score: an AUC needs normal and anomalous clips" in capsys.readouterr().out
    rows[2] = [1, 1, 1]
    assert _scores(got, rows) == ("auc", 0.5, 0.5)
