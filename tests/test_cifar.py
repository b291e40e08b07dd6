"""CIFAR-10: the python-archive loader (on a fixture in the release's format that these tests
write) and the authors' recipes, resnet18 and vgg-small, trained, resumed and compiled by the
same `tbn train` and `tbn compile` as the MNIST recipes."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import kill_after_checkpoint
from tbn.data import Cifar10Error, load_cifar10
from tbn.data.cifar10 import write_synthetic
from tbn.format import load
from tbn.runtime import Interpreter
from tbn.train import TrainConfig, load_model
from tbn.train.model_file import build_model

TBN = [sys.executable, "-m", "tbn.cli.main"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TBN_OFFLINE": "1"}


# ---- the loader -------------------------------------------------------------------------------


def test_archive_and_folder_read_alike(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a", n_train=20, n_test=10, archive=True, seed=1)
    write_synthetic(tmp_path / "f", n_train=20, n_test=10, archive=False, seed=1)
    for split, n in (("train", 20), ("test", 10)):
        a = load_cifar10(split, tmp_path / "a", verify=False)
        f = load_cifar10(split, tmp_path / "f", verify=False)
        assert a.images.shape == (n, 3, 32, 32) and a.images.dtype == np.uint8
        assert np.array_equal(a.images, f.images) and np.array_equal(a.labels, f.labels)
    x = a.normalized()
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.float32


def test_the_release_checksums_are_checked(cifar10_fixture: Path) -> None:
    with pytest.raises(Cifar10Error, match=r"MD5 is [0-9a-f]{32}, expected c58f30108f718f92721af3b95e74349a.*"
                                           r"--no-verify"):
        load_cifar10("test", cifar10_fixture)


def test_missing_data_says_what_to_put_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBN_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    write_synthetic(tmp_path / "elsewhere", n_train=5, n_test=5)
    monkeypatch.setenv("TBN_DATA", str(tmp_path / "elsewhere"))  # an explicit folder is the only place
    with pytest.raises(Cifar10Error, match=r"CIFAR-10 not found; looked in: .*empty.*TBN_OFFLINE.*"
                                           r"cifar-10-python.tar.gz .*cifar-10-batches-py/ folder"):
        load_cifar10("test", tmp_path / "empty")
    with pytest.raises(Cifar10Error, match=r"--data-dir .*nowhere does not exist"):
        load_cifar10("test", tmp_path / "nowhere")
    assert load_cifar10("test", verify=False).images.shape == (5, 3, 32, 32)  # found through TBN_DATA


def test_a_truncated_archive_is_named(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path, n_train=20, n_test=10)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(Cifar10Error, match=r"not a complete \.tar\.gz .*truncated or corrupt"):
        load_cifar10("train", tmp_path, verify=False)


def test_a_batch_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # unpickling would call os.system
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    folder = write_synthetic(tmp_path, n_train=5, n_test=5, archive=False)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(Cifar10Error, match="refused to load"):
        load_cifar10("test", tmp_path, verify=False)
    assert not (tmp_path / "ran").exists()


def test_a_batch_of_the_wrong_shape_is_named(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path, n_train=5, n_test=5, archive=False)
    raw = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
    (folder / "test_batch").write_bytes(raw)
    with pytest.raises(Cifar10Error, match=r"expected uint8 \(n, 3072\)"):
        load_cifar10("test", tmp_path, verify=False)


# ---- the recipes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "pattern"), [
    ("resnet18", [1, 1, 1, 1] + [0] * 16 + [1]),
    ("vgg-small", [1, 1, 0, 0, 0, 0, 1]),
])
@pytest.mark.parametrize("p", [4, 8, 16])
def test_the_authors_per_layer_p(recipe: str, pattern: list[int], p: int) -> None:
    config = TrainConfig.for_recipe(recipe, p=p)
    assert (config.optimizer, config.lr, config.momentum, config.nesterov, config.weight_decay,
            config.batch_size, config.augment) == ("sgd", 0.1, 0.9, False, 1e-4, 128, 4.0)
    _, report = build_model(config)
    assert [layer.p for layer in report.layers] == [1 if keep else p for keep in pattern]
    if recipe == "resnet18":  # tbn-method.md: 0.258, 0.134, 0.072 bits per weight
        assert report.to_dict()["bits_per_weight"] == pytest.approx({4: 0.258, 8: 0.134, 16: 0.072}[p],
                                                                    abs=1e-3)


def _train_args(recipe: str, data: Path, out: Path) -> list[str]:
    return [*TBN, "train", "--recipe", recipe, "--data-dir", str(data), "--no-verify", "--epochs", "3",
            "--batch-size", "16", "--subset", "48", "--quiet", "--out", str(out)]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["resnet18", "vgg-small"])
def test_recipe_trains_resumes_and_compiles(recipe: str, cifar10_fixture: Path, tmp_path: Path) -> None:
    """Three short epochs on the fixture: the loss falls; a run killed after a checkpoint
    resumes to the same weights; the model compiles (f32 and int8) and runs like PyTorch."""
    whole = tmp_path / "whole"
    subprocess.run(_train_args(recipe, cifar10_fixture, whole), check=True, env=_env(), capture_output=True)
    history = json.loads((whole / "metrics.json").read_text())["history"]
    assert history[-1]["loss"] < history[0]["loss"], history

    killed = tmp_path / "killed"
    assert kill_after_checkpoint(_train_args(recipe, cifar10_fixture, killed), killed, _env()) < 3
    subprocess.run([*TBN, "train", "--out", str(killed), "--resume", "--quiet"], check=True, env=_env(),
                   capture_output=True)
    a = torch.load(whole / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    model, config = load_model(whole / "model.pt")
    x = torch.from_numpy(load_cifar10("test", cifar10_fixture, verify=False).normalized(2))
    for activations in ("f32", "int8"):
        out = tmp_path / f"{activations}.tbn"
        subprocess.run([*TBN, "compile", str(whole / "model.pt"), "-o", str(out), "--activations",
                        activations, "--calibration", "32", "--check", "2", "--data-dir",
                        str(cifar10_fixture)],
                       check=True, env=_env(), capture_output=True)
        got = Interpreter(load(out)).run_float(x.numpy())
        want = model(x).detach().numpy()
        # f32: float16 scales and biases (tbn.format.narrow) round each of ~20 layers by up to
        # 2^-11 of its largest value, which compounds to a few 1e-3 of the output's range
        tol = (5e-3 if activations == "f32" else 0.25) * float(np.abs(want).max())
        assert np.abs(got - want).max() <= tol, (activations, np.abs(got - want).max())
    assert config.recipe == recipe and config.p == 8


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path, n_train=5, n_test=5, archive=False)
    (folder / "test_batch").unlink()
    os.mkfifo(folder / "test_batch")  # reading it would block forever
    with pytest.raises(Cifar10Error, match="not a regular file"):
        load_cifar10("test", tmp_path, verify=False)
