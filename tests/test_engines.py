"""tbn.engines: one interface over every engine, and every kernel family in every runtime."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest

from tbn.engines import ENGINES, Engine, engine, names, open_engine
from tbn.errors import UsageError
from tbn.format.spec import KERNELS
from tbn.paths import root

VECTORS = root() / "tests" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
# the classes whose module needs an extra that this machine may not have installed
EXTRA = {"cuda": "torch", "tflm": "tflite_micro"}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_engine_implements_the_interface_under_its_name(name: str) -> None:
    if name in EXTRA and importlib.util.find_spec(EXTRA[name]) is None:
        pytest.skip(f"the {name} engine's module needs {EXTRA[name]}, not installed here")
    cls = ENGINES[name].load()
    assert cls.name == name
    for method in ("open", "run", "run_float", "close"):
        assert callable(getattr(cls, method, None)), f"{cls.__name__} has no {method}"


def test_an_unknown_engine_is_refused_with_the_list() -> None:
    with pytest.raises(UsageError, match=r"unknown engine 'cpu'.*reference .*tflm"):
        engine("cpu")
    assert names() == ("reference", "c", "cuda", "device") and names("tflite") == ("tflm",)


@pytest.mark.parametrize("name", ["mlp_int8", "convnet_f32", "misc_int8"])
def test_the_reference_and_c_engines_run_the_golden_vectors_through_the_registry(name: str) -> None:
    from tbn.capi import LIB_PATH

    if not LIB_PATH.is_file():
        pytest.skip("the C runtime library is not built (make lib)")
    spec = MANIFEST[name]
    x = np.fromfile(VECTORS / f"{name}.input.bin", dtype=spec["input"]["dtype"])
    x = x.reshape(spec["input"]["shape"])
    want = np.fromfile(VECTORS / f"{name}.output.bin", dtype=spec["output"]["dtype"])
    data = (VECTORS / f"{name}.tbn").read_bytes()
    for engine_name, model in (("reference", data), ("c", VECTORS / f"{name}.tbn")):
        e = open_engine(engine_name, model)
        assert isinstance(e, Engine)
        try:
            got = e.run(x)
            np.testing.assert_allclose(got.reshape(-1), want, rtol=1e-5, atol=1e-6)
            assert e.run_float(x).dtype == np.float32
        finally:
            e.close()


def _c_families() -> set[str]:
    """Families whose prepare and eval functions the C runtime defines."""
    text = "".join(p.read_text() for p in (root() / "firmware/lib/tbn/src/kernels").glob("*.c"))
    evals = set(re.findall(r"tbn_status tbn_eval_(\w+)\(", text))
    return evals & set(re.findall(r"tbn_status tbn_prepare_(\w+)\(", text))


def test_every_kernel_family_has_an_entry_in_every_runtime() -> None:
    from tbn.format.validate import _CHECKS
    from tbn.runtime.kernels import _FAMILY

    want = set(KERNELS)
    assert set(_FAMILY) == want, "the reference interpreter (tbn.runtime.kernels._FAMILY)"
    assert set(_CHECKS) == want, "the validator (tbn.format.validate._CHECKS)"
    assert want <= _c_families(), f"the C runtime lacks {sorted(want - _c_families())}"
    if importlib.util.find_spec("torch") is not None:
        from tbn.gpu.engine import FAMILIES, REFUSED

        assert set(FAMILIES) | set(REFUSED) == want, "the CUDA engine (tbn.gpu.engine.FAMILIES)"


def test_a_large_batch_runs_in_chunks_with_the_same_outputs() -> None:
    """The reference runs a batch CHUNK inputs at a time (a 10,000-image batch of a ConvMixer
    held every input's unfolded windows at once and was killed for memory): the outputs are
    those of each input alone, across the chunks' edges."""
    from tbn.runtime import Interpreter
    from tbn.runtime.interpreter import CHUNK

    interp = Interpreter(root() / "tests" / "vectors" / "mlp_int8.tbn")
    x = np.random.default_rng(0).normal(size=(2 * CHUNK + 3, *interp.input.shape)).astype(np.float32)
    got = interp.run(x)
    assert len(got) == len(x)
    for i in (0, CHUNK - 1, CHUNK, 2 * CHUNK + 2):
        np.testing.assert_array_equal(got[i], interp.run(x[i]))
