"""tbn on MicroPython, for real: ``pytest tests/hil --board mpy_an385|mpy_an500|mpy_unix``.

Each target runs twice: firmware with the tbn module built in (a user C module), and stock
firmware importing the native tbn.mpy for its architecture. Every golden vector (INT8 bit-exact,
F32 within tbn.parity's tolerance), 100 MNIST images of a trained model, and the paper's other
models as their recipes build them (MLP-Mixer, ViT, ConvMixer, PointNet, the time-series
forecaster) run there beside the reference interpreter; models are read in place from /rom
(ROMFS) on the emulated boards."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tbn.compiler import compile_model
from tbn.format import read
from tbn.micropython import Session, Target, open_target
from tbn.micropython.runner import run_model, stage
from tbn.micropython.session import MicroPythonError
from tbn.runtime import Interpreter

pytestmark = [pytest.mark.hil, pytest.mark.micropython]
VECTORS = sorted((Path(__file__).parents[1] / "vectors").glob("*.tbn"))


def _vector(path: Path) -> tuple[bytes, np.ndarray]:
    data = path.read_bytes()
    ref = Interpreter(read(data))
    x = np.fromfile(path.with_suffix(".input.bin"), dtype=np.int8 if ref.program.int8 else np.float32)
    return data, x.reshape(-1, *ref.input.shape)


@pytest.fixture(scope="module")
def mnist(shared_mnist: Path,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, np.ndarray]]:
    """The MNIST MLP at p=4 (one short epoch), compiled both ways, and 100 test images."""
    from tbn.data import load_mnist
    from tbn.train import TrainConfig, load_model, mnist_tensors, train

    out = tmp_path_factory.mktemp("mnist")
    train(TrainConfig(p=4, epochs=1, train_subset=8192), out, progress=False)
    model, _ = load_model(out / "model.pt")
    x = load_mnist("test").normalized(100)
    calibration = mnist_tensors("train")[0][:256]
    return {f"mnist_{acts}.tbn": (compile_model(model, torch.zeros(1, 1, 28, 28), activations=acts,
                                                calibration=calibration), x) for acts in ("f32", "int8")}


# Largest F32 arena first (PointNet's 99 KB, in a 140 KB heap on the MPS2 ports), and these tests
# before the others: a MicroPython heap fragments as a session runs (each command's qstrs stay).
RECIPES = ("pointnet", "convmixer", "vit", "forecast", "mixer")


@pytest.fixture(scope="module")
def recipes() -> dict[str, tuple[bytes, np.ndarray]]:
    """Each recipe's model, untrained with BatchNorm statistics from random inputs (the arithmetic
    does not depend on training), compiled both ways, and two random inputs."""
    from tbn.train import TrainConfig
    from tbn.train.model_file import build_model
    from tbn.train.recipes import input_shape

    files = {}
    for recipe in RECIPES:
        torch.manual_seed(0)
        model, _ = build_model(TrainConfig.for_recipe(recipe))
        shape = input_shape(recipe)
        with torch.no_grad():
            model.train()(torch.randn(64, *shape))
        x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(1))
        for acts in ("f32", "int8"):
            files[f"recipe_{recipe}_{acts}.tbn"] = (compile_model(model.eval(), x[:1], activations=acts,
                                                           calibration=x), x[:2].numpy())
    return files


@pytest.fixture(scope="module", params=["module", "mpy"], ids=["built-in module", "native .mpy"])
def session(request: pytest.FixtureRequest, mpy_target: Target, mnist: dict[str, tuple[bytes, np.ndarray]],
            recipes: dict[str, tuple[bytes, np.ndarray]]) -> Iterator[Session]:
    files: dict[str, Path | bytes] = {}
    for name, (data, x) in recipes.items():
        files.update(stage(name, data, x, floats=True))
    for path in VECTORS:
        files.update(stage(path.name, *_vector(path)))
    for name, (data, x) in mnist.items():
        files.update(stage(name, data, x, floats=True))  # float images: the device quantises them
    data, x = mnist["mnist_int8.tbn"]  # what examples/micropython/mnist.py reads
    files["mnist.tbn"], files["images.bin"] = data, x[:8].tobytes()
    with open_target(mpy_target, files, with_module=request.param == "module") as s:
        yield s


@pytest.mark.parametrize("acts", ["f32", "int8"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_the_papers_other_models(session: Session, recipes: dict[str, tuple[bytes, np.ndarray]], recipe: str,
                                 acts: str) -> None:
    data, x = recipes[f"recipe_{recipe}_{acts}.tbn"]
    run = run_model(session, f"recipe_{recipe}_{acts}.tbn", data, x, floats=True)
    assert run.equal == len(x), f"worst error {run.worst}"


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_golden_vector(session: Session, path: Path) -> None:
    data, x = _vector(path)
    run = run_model(session, path.name, data, x)
    assert run.equal == len(x), f"worst error {run.worst}"
    assert run.heap_bytes <= read(data).arena_size + 256  # the object and the arena, nothing else


@pytest.mark.parametrize("acts", ["f32", "int8"])
def test_mnist_images(session: Session, mnist: dict[str, tuple[bytes, np.ndarray]], acts: str) -> None:
    """100 images as float32: the device quantises them itself for the int8 model (tbn_quantize),
    bit-exact with the host's quantisation and the reference."""
    data, x = mnist[f"mnist_{acts}.tbn"]
    run = run_model(session, f"mnist_{acts}.tbn", data, x, floats=True)
    assert run.equal == len(x), f"worst error {run.worst}"
    if session.root == "/rom":  # read in place: far less heap than the model's own bytes
        assert run.heap_bytes <= read(data).arena_size + 256 < len(data)


def test_info_describes_the_model(session: Session) -> None:
    path = next(p for p in VECTORS if p.stem == "mlp_int8")
    prog = read(path.read_bytes())
    out = session.exec(f"import tbn\nm = tbn.Model(open({session.root + '/' + path.name!r}, 'rb').read())\n"
                       "i = m.info()\nprint(sorted(i.items()))")
    info = dict(ast.literal_eval(out))
    t_in, t_out = prog.tensors[0], prog.tensors[prog.output]
    assert info["input_shape"] == t_in.shape and info["output_shape"] == t_out.shape
    assert (info["input_dtype"], info["output_dtype"]) == ("int8", "int8")
    assert info["arena_bytes"] == prog.arena_size and info["model_bytes"] == len(path.read_bytes())
    assert info["version"] == (2, prog.minor) and info["ops"] == len(prog.ops)
    assert np.float32(info["input_quant"][0]) == np.float32(t_in.scale)
    assert info["input_quant"][1] == t_in.zero_point


BAD = [
    ("tbn.Model(b'abcd' * 20)", "ValueError: bad model: bad magic: not a .tbn file"),
    ("tbn.Model(bytearray(M)[:-4])", "ValueError: bad model: file truncated or of the wrong length"),
    ("tbn.Model(M, bytearray(8))", "ValueError: arena too small or misaligned: the model needs"),
    ("tbn.Model(M).predict(array.array('f', [0.0] * 3))",
     "the input has 3 values, the model's has 64 values"),
    ("tbn.Model(M).predict(array.array('f', [float('nan')] + [0.0] * 63))",
     "the input holds NaN or infinity at index 0"),
    ("tbn.Model(M).predict(array.array('h', [0] * 64))", "the input must be array('f'), array('b')"),
    ("tbn.Model(M).predict(array.array('b', [0] * 64), array.array('f', [0.0]))",
     "out= must be array('b') of 10 values"),
]


@pytest.mark.parametrize(("call", "message"), BAD, ids=[m.split(":")[0] + ": " + c[:40] for c, m in BAD])
def test_bad_input_is_a_value_error(session: Session, call: str, message: str) -> None:
    path = next(p for p in VECTORS if p.stem == "mlp_int8")
    with pytest.raises(MicroPythonError, match="ValueError") as e:
        session.exec(f"import tbn, array\nM = open({session.root + '/' + path.name!r}, 'rb').read()\n{call}")
    assert message in str(e.value)


def test_a_native_module_for_another_architecture_refuses_to_load(mpy_target: Target) -> None:
    """Another architecture is refused by MicroPython; another float ABI (a soft-float .mpy on
    hard-float firmware), which MicroPython would load, by tbn.mpy itself."""
    if not mpy_target.emulated:
        pytest.skip("the unix port is the only x64 target here")
    foreign = {"x64": "incompatible .mpy arch"}
    foreign.update({"armv7emdp": "incompatible .mpy arch"} if mpy_target.arch == "armv7m"
                   else {"armv6m": "built for another float ABI"})
    for arch, message in foreign.items():
        with open_target(mpy_target, {}, with_module=False, mpy_arch=arch) as s:
            with pytest.raises(MicroPythonError, match=message):
                s.exec("import tbn")


def test_the_example_prints_the_classes(session: Session, mnist: dict[str, tuple[bytes, np.ndarray]]) -> None:
    """examples/micropython/mnist.py, as a user runs it: the classes the reference gives."""
    data, x = mnist["mnist_int8.tbn"]
    script = (Path(__file__).parents[2] / "examples" / "micropython" / "mnist.py").read_text()
    out = session.exec(script)
    got = [int(line.split()[-1]) for line in out.splitlines() if line.startswith("image ")]
    want = [int(np.argmax(y)) for y in Interpreter(read(data)).run(x[:8])]
    assert got == want, out
