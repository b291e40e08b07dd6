"""MLPerf Tiny's reference models (mlcommons/tiny v1.4; the pinned copy is
:data:`tbn.third_party.MLPERF_TINY`): which file holds each task's model, and its size as
the benchmark states it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tbn.errors import UsageError
from tbn.third_party import MLPERF_TINY, locate


@dataclass(frozen=True)
class Task:
    """One benchmark task's reference model files (relative to its ``trained_models/``)."""

    name: str
    folder: str  # the task's folder in mlcommons/tiny (under benchmark/training/ upstream)
    keras: str | None  # the float Keras model, where one is published
    int8: str  # the published int8 .tflite
    float_tflite: str | None = None

    def files(self) -> dict[str, str]:
        kinds = {"keras": self.keras, "int8": self.int8, "float_tflite": self.float_tflite}
        return {k: v for k, v in kinds.items() if v is not None}


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("kws01", "keyword_spotting", None, "kws_ref_model.tflite", "kws_ref_model_float32.tflite"),
    Task("vww01", "visual_wake_words", "vww_96.h5", "vww_96_int8.tflite"),
    Task("ic01", "image_classification", "pretrainedResnet.h5", "pretrainedResnet_quant.tflite"),
    Task("ic02", "image_classification", None, "pretrainedResnet_large_int8.tflite"),
    Task("ad01", "anomaly_detection", "ad01.h5", "ad01_int8.tflite"),
    Task("sww01", "streaming_wakeword", "str_ww_ref_model.h5", "str_ww_ref_model.tflite"),
)}


def reference_file(task: str, kind: str = "keras") -> Path:
    """The path of ``task``'s reference model of ``kind`` (``keras``, ``int8`` or
    ``float_tflite``), in the pinned copy (or ``$TBN_MLPERF_TINY``)."""
    if task not in TASKS:
        raise UsageError(f"unknown MLPerf Tiny task {task!r}; the tasks are {', '.join(TASKS)}")
    files = TASKS[task].files()
    if kind not in files:
        raise UsageError(f"MLPerf Tiny publishes no {kind} model for {task}; it has: {', '.join(files)}")
    root = locate(MLPERF_TINY)
    folder = root / TASKS[task].folder
    if not folder.is_dir():  # an upstream checkout
        folder = root / "benchmark" / "training" / TASKS[task].folder
    path = folder / "trained_models" / files[kind]
    if not path.is_file():
        raise UsageError(f"{path}: missing from the MLPerf Tiny copy at {root}")
    return path
