"""MLPerf Tiny's streaming wake word data (tbn.data.wakeword) on a fixture in the Speech
Commands release's format, the numpy log filterbank energies (tbn.data.lfbe) against the
reference pipeline's own tf.signal calls, and the ``sww`` recipe end to end."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tbn.data.lfbe import lfbe
from tbn.data.speech_commands import SpeechCommandsError, write_synthetic
from tbn.data.wakeword import CLASSES, augment, load_wakeword
from tbn.data.wav import pcm16


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TBN_OFFLINE", "1")


def _release(folder: Path, noise_seconds: float = 16.0, seed: int = 0) -> Path:
    """The fixture: ten words and bed, cat, marvin, two clips each in train and one in each
    list; a 16-second noise recording (a background piece is 15 s) beside a 2-second one."""
    write_synthetic(folder, clips_per_word=2, seed=seed, unknown_words=("bed", "cat", "marvin"),
                    noise_seconds=(noise_seconds, 2.0))
    return folder


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return _release(tmp_path / "sc")


def test_each_split_is_20_percent_marvin_and_10_percent_silence(release: Path) -> None:
    """Train: 24 unknown clips (12 words x 2), so 34 in all: 6 targets (marvin's 2 repeated) and 3
    silent; validation and test: 12 unknown, 17 in all, 3 targets and 1 silent."""
    counts = {}
    for split in ("train", "validation", "test"):
        x, y = load_wakeword(split, release, verify=False)
        assert x.shape == (len(y), 40, 30, 1) and x.dtype == np.float32 and y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0
        counts[split] = np.bincount(y, minlength=3).tolist()
    assert CLASSES == ("marvin", "_silence", "_unknown")
    assert counts == {"train": [6, 3, 24], "validation": [3, 1, 12], "test": [3, 1, 12]}


def test_noise_reaches_train_only_and_the_cache_is_the_same(release: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Without background noise (frequency 0) the train split changes and the test split (no
    noise, as the reference's) does not; a second load reads the same features from the cache."""
    from tbn.data import wakeword

    train, test = (load_wakeword(s, release, verify=False)[0] for s in ("train", "test"))
    assert len(list((tmp_path / "cache" / "tbn" / "wakeword").glob("*.npz"))) == 3
    np.testing.assert_array_equal(load_wakeword("train", release, verify=False)[0], train)
    monkeypatch.setattr(wakeword, "BACKGROUND_FREQUENCY", 0.0)
    assert not np.array_equal(load_wakeword("train", release, verify=False, cache=False)[0], train)
    np.testing.assert_array_equal(load_wakeword("test", release, verify=False, cache=False)[0], test)


def test_a_clip_is_augmented_as_the_reference() -> None:
    """Mean removed, largest magnitude 1, times a volume in [0.25, 1.5], shifted by at most
    1,600 samples; with noise, clipped to [-1, 1]."""
    rng = np.random.default_rng(0)
    clip = (3000 * np.sin(np.arange(8000) / 20) + 500).astype(np.int16)
    w = augment(clip, "test", [], np.random.default_rng(1))
    r = np.random.default_rng(1)
    volume, shift = r.uniform(0.25, 1.5), r.integers(0, 3199)
    base = np.pad((clip - clip.mean()) / np.abs(clip - clip.mean()).max(), (0, 8000)) * volume
    np.testing.assert_allclose(w, np.pad(base, 1600)[shift:shift + 16000], atol=1e-6)
    loud = augment(clip, "train", [np.ones(16000 * 15, np.float32)], rng)
    assert loud.max() <= 1.0 and loud.min() >= -1.0 and loud.shape == (16000,)


def _tf_lfbe(wave: np.ndarray) -> np.ndarray:
    """The reference's ``get_lfbe_func`` (mlcommons/tiny streaming_wakeword/get_dataset.py),
    written with the same tf.signal calls."""
    tf = pytest.importorskip("tensorflow")
    w = tf.pad(tf.constant(wave[None], tf.float32), [[0, 0], [1, 0]])
    w = tf.squeeze(w[:, 1:] - (1 - 2 ** -5) * w[:, :-1])
    stft = tf.signal.stft(w, frame_length=1024, frame_step=512, fft_length=None, pad_end=False,
                          window_fn=functools.partial(tf.signal.hamming_window, periodic=False))
    power = (1 / 1024) * tf.square(tf.abs(stft))
    power = tf.clip_by_value(power, 1e-30, tf.reduce_max(power))
    bands = tf.signal.linear_to_mel_weight_matrix(40, stft.shape[-1], 16000, 0.0, 8000.0)
    mel = tf.tensordot(power, bands, 1)
    db = 10 * tf.math.log(mel) / tf.math.log(tf.constant(10, dtype=mel.dtype))
    return tf.clip_by_value((db + 52 - 32 + 32.0) / 64.0, 0, 1).numpy()


def test_lfbe_equals_the_reference_pipeline() -> None:
    """Within 1e-5 (features in [0, 1], a step of 1/64 dB: 6.4e-4 dB; float32 arithmetic in a
    different order, largest in bands far below the clip's loudest), a quiet clip
    whose bands all fall below the floor (0) and a silent one included."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    waves = [np.clip(rng.normal(0, 0.2, t.size) * np.sin(2 * np.pi * 3 * t), -1, 1),
             0.8 * np.sin(2 * np.pi * (200 + 3000 * t) * t),
             1e-5 * rng.normal(0, 1, t.size), np.zeros(t.size)]
    got = lfbe(np.stack(waves))
    assert got.shape == (4, 30, 40)
    for g, w in zip(got, waves, strict=True):
        np.testing.assert_allclose(g, _tf_lfbe(w.astype(np.float32)), rtol=0, atol=1e-5)
    assert not got[2].any() and not got[3].any()


def test_musan_and_the_reference_lists_are_read(release: Path, tmp_path: Path) -> None:
    """MUSAN beside the release gives validation its noise, but not the files the exclusion list
    beside it names; the bad-marvin list drops those clips (here every train marvin: a named
    error); a MUSAN folder without its layout is named."""
    plain = load_wakeword("validation", release, verify=False, cache=False)[0]
    for sub in ("noise/free-sound", "speech/us-gov", "noise/sound-bible", "speech/librivox"):
        (release / "musan" / sub).mkdir(parents=True)
        (release / "musan" / sub / "a.wav").write_bytes(pcm16(np.full(16000 * 16, 9000.0), 16000))
    noisy = load_wakeword("validation", release, verify=False, cache=False)[0]
    assert not np.array_equal(plain, noisy)
    (release / "exclude_background_files.txt").write_text("# noise the reference leaves out\na.wav\n")
    np.testing.assert_array_equal(load_wakeword("validation", release, verify=False, cache=False)[0], plain)
    (release / "exclude_background_files.txt").unlink()
    with pytest.raises(SpeechCommandsError, match="not a folder"):
        load_wakeword("train", release, musan_dir=tmp_path / "none", verify=False, cache=False)
    (release / "musan" / "speech" / "librivox" / "a.wav").unlink()
    with pytest.raises(SpeechCommandsError, match=r"librivox: no \.wav files"):
        load_wakeword("train", release, verify=False, cache=False)
    shutil.rmtree(release / "musan")
    bad = "marvin/00000000_nohash_0.wav\nmarvin/00000001_nohash_0.wav\n"
    (release / "bad_marvin_files.txt").write_text(bad)
    with pytest.raises(SpeechCommandsError, match="no 'marvin' clips"):
        load_wakeword("train", release, verify=False, cache=False)


def test_the_sww_recipe_trains_and_compiles(release: Path, tmp_path: Path) -> None:
    """sww01's net on the fixture: one epoch, tiled by tbn's policy (every layer under 64K
    weights: binary), then an F32 file (``params="wide"``) whose reference equals PyTorch on the
    fixture's test split, and an INT8 one calibrated on it."""
    import torch

    from tbn import compile_model
    from tbn.format import read
    from tbn.runtime import Interpreter
    from tbn.train import TrainConfig, train
    from tbn.train.model_file import load_model

    config = TrainConfig.for_recipe("sww", epochs=1, batch_size=8, data_dir=str(release), verify_data=False)
    metrics = train(config, tmp_path / "run", progress=False)
    assert [layer["p"] for layer in metrics["layers"]] == [1] * 9
    model, _ = load_model(tmp_path / "run" / "model.pt")
    x, _ = load_wakeword("test", release, verify=False)
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    f32 = compile_model(model, torch.from_numpy(x[:1]), params="wide")
    assert read(f32).tensors[0].shape == (40, 30, 1)
    np.testing.assert_allclose(Interpreter(f32).run(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    int8 = compile_model(model, torch.from_numpy(x[:1]), activations="int8", calibration=x)
    assert read(int8).int8 and Interpreter(int8).run_float(x).shape == (len(x), 3)


def test_the_sww_recipe_distils_from_the_published_model(release: Path, tmp_path: Path) -> None:
    """``--teacher str_ww_ref_model.h5``: the published Keras model (its softmax left out) reads
    the recipe's channels-first features and teaches the tiled student on the fixture."""
    from tbn.mlperf import reference_file
    from tbn.third_party import SourceNotFoundError
    from tbn.train import TrainConfig, train

    try:
        teacher = reference_file("sww01")
    except SourceNotFoundError as e:
        pytest.skip(str(e))
    config = TrainConfig.for_recipe("sww", epochs=1, batch_size=8, data_dir=str(release), verify_data=False,
                                    teacher=str(teacher))
    metrics = train(config, tmp_path / "run", progress=False)
    assert metrics["config"]["teacher"] == str(teacher) and np.isfinite(metrics["history"][0]["loss"])
