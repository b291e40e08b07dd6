"""Speech Commands v0.02 (tbn.data.speech_commands) on a fixture in the release's format, and
the numpy MFCC (tbn.data.mfcc) against the reference pipeline's own tf.signal calls."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tbn.data import load_arrays
from tbn.data.mfcc import mfcc, normalise_clip
from tbn.data.speech_commands import (
    CLASSES,
    SILENCE,
    UNKNOWN,
    SpeechCommandsError,
    load_speech_commands,
    write_synthetic,
)
from tbn.data.wav import pcm16


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TBN_OFFLINE", "1")


@pytest.fixture
def release(tmp_path: Path) -> Path:
    write_synthetic(tmp_path / "sc", clips_per_word=2)
    return tmp_path / "sc"


def test_the_splits_are_tfds(release: Path) -> None:
    """Train: the clips in neither list, the unknown words as _unknown_, the noise recordings
    (but running_tap) cut into 1 s clips every 0.5 s; validation: its list and running_tap;
    test: the test archive's 12 folders."""
    sizes = {}
    for split in ("train", "validation", "test"):
        x, y = load_speech_commands(split, release, verify=False)
        assert x.shape == (len(y), 1, 49, 10) and x.dtype == np.float32 and y.dtype == np.int64
        sizes[split] = np.bincount(y, minlength=12)
    # 2 clips a word in train (bed and cat: _unknown_), 1 in validation; noise: 3 s -> 4 clips, 2 s -> 2
    assert sizes["train"].tolist() == [2] * 10 + [4, 4]
    assert sizes["validation"].tolist() == [1] * 10 + [2, 2]
    assert sizes["test"].tolist() == [2] * 12
    assert CLASSES[10:] == (SILENCE, UNKNOWN)


def test_features_are_cached_and_the_cache_is_the_same(release: Path, tmp_path: Path) -> None:
    a = load_speech_commands("test", release, verify=False)
    assert len(list((tmp_path / "cache" / "tbn" / "speech_commands").glob("test-*.npz"))) == 1
    b = load_speech_commands("test", release, verify=False)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_an_unpacked_folder_reads_the_same(release: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    for archive, folder in (("speech_commands_v0.02.tar.gz", "speech_commands_v0.02"),
                            ("speech_commands_test_set_v0.02.tar.gz", "speech_commands_test_set_v0.02")):
        with tarfile.open(release / archive) as tar:
            tar.extractall(unpacked / folder, filter="data")
    for split in ("train", "test"):
        a, b = load_speech_commands(split, release, verify=False), load_speech_commands(split, unpacked)
        np.testing.assert_array_equal(np.sort(a[1]), np.sort(b[1]))
        assert a[0].shape == b[0].shape


def test_the_registry_gives_the_kws_inputs(release: Path) -> None:
    x, y = load_arrays("speech_commands", "test", release, verify=False)
    assert x.shape[1:] == (1, 49, 10) and y.max() == 11


def test_bad_sources_are_named(release: Path, tmp_path: Path) -> None:
    with pytest.raises(SpeechCommandsError, match=r"not the release's 2428923189 with SHA-256"):
        load_speech_commands("train", release)  # the fixture is not the release
    (tmp_path / "cut").mkdir()
    data = (release / "speech_commands_test_set_v0.02.tar.gz").read_bytes()
    (tmp_path / "cut" / "speech_commands_test_set_v0.02.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SpeechCommandsError, match=r"not a complete \.tar\.gz"):
        load_speech_commands("test", tmp_path / "cut", verify=False, cache=False)
    (tmp_path / "none").mkdir()
    archive = r"speech_commands_test_set_v0\.02\.tar\.gz"
    message = rf"Speech Commands \({archive}\) not found; .* downloads are off"
    with pytest.raises(SpeechCommandsError, match=message):
        load_speech_commands("test", tmp_path / "none")
    (tmp_path / "layout" / "speech_commands_v0.02" / "yes").mkdir(parents=True)
    with pytest.raises(SpeechCommandsError, match=r"no validation_list\.txt or testing_list\.txt"):
        load_speech_commands("train", tmp_path / "layout")


def test_a_file_past_any_clips_size_is_refused_unread(tmp_path: Path) -> None:
    folder = tmp_path / "speech_commands_test_set_v0.02" / "yes"
    folder.mkdir(parents=True)
    with open(folder / "huge.wav", "wb") as f:
        f.truncate(65 << 20)  # sparse: no 65 MB written
    with pytest.raises(SpeechCommandsError, match=r"huge\.wav: 68157440 bytes, more than any"):
        load_speech_commands("test", tmp_path, cache=False)


@pytest.mark.parametrize("channels, rate, message", [
    (2, 8000, "2 channels of 16 bits at 8000 Hz; Speech Commands clips are mono 16-bit"),
    (1, 8000, "1 channel of 16 bits at 8000 Hz; Speech Commands clips are mono 16-bit 16 kHz"),
])
def test_a_clip_of_another_format_is_named(tmp_path: Path, channels: int, rate: int, message: str) -> None:
    folder = tmp_path / "speech_commands_test_set_v0.02" / "yes"
    folder.mkdir(parents=True)
    (folder / "a.wav").write_bytes(pcm16(np.zeros((100, channels)), rate, channels))
    with pytest.raises(SpeechCommandsError, match=message):
        load_speech_commands("test", tmp_path, cache=False)


def _tf_mfcc(samples: np.ndarray) -> np.ndarray:
    """The reference pipeline's feature extraction (mlcommons/tiny keyword_spotting/
    get_dataset.py, feature_type mfcc, no augmentation), written with the same tf.signal calls."""
    tf = pytest.importorskip("tensorflow")
    w = tf.cast(samples, tf.float32)
    w = tf.pad(w / tf.reduce_max(w), [[0, 16000 - tf.shape(w)[-1]]])
    stft = tf.signal.stft(w, frame_length=480, frame_step=320, fft_length=None,
                          window_fn=tf.signal.hann_window)
    bands = tf.signal.linear_to_mel_weight_matrix(40, stft.shape[-1], 16000, 20.0, 4000.0)
    mel = tf.tensordot(tf.abs(stft), bands, 1)
    return tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))[..., :10].numpy()


def test_mfcc_equals_the_reference_pipeline() -> None:
    """Within 1e-4 of each clip's largest coefficient (float32 arithmetic in a different order;
    near-silent bins, where the log amplifies rounding, give the largest differences)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    clips = [(8000 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 800, t.size)).astype(np.int16),
             rng.integers(-3000, 3000, 12000).astype(np.int16),  # short: padded
             (20000 * np.sin(2 * np.pi * (200 + 1500 * t) * t) * np.exp(-3 * t)).astype(np.int16)]
    for c in clips:
        want = _tf_mfcc(c)
        got = mfcc(normalise_clip(c)[None])[0]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_the_kws_recipe_trains_and_compiles(release: Path, tmp_path: Path) -> None:
    """MLPerf Tiny's DS-CNN on the fixture: one epoch, tiled by tbn's policy (every layer under
    64K weights: binary, p=1), then INT8 calibrated on the same data."""
    import torch

    from tbn import compile_model
    from tbn.format import read
    from tbn.train import TrainConfig, train
    from tbn.train.model_file import load_model

    config = TrainConfig.for_recipe("kws", epochs=1, batch_size=8, data_dir=str(release), verify_data=False)
    metrics = train(config, tmp_path / "run", progress=False)
    assert [layer["p"] for layer in metrics["layers"]] == [1] * 10
    model, _ = load_model(tmp_path / "run" / "model.pt")
    x, _ = load_speech_commands("train", release, verify=False)
    data = compile_model(model, torch.from_numpy(x[:1]), activations="int8", calibration=x[:16])
    assert read(data).tensors[0].shape == (1, 49, 10)
