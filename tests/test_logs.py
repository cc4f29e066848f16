"""Quiet command lines: the libraries' start-up noise is gone, our output and
real errors stay, and --verbose brings everything back."""
import logging
import os
import subprocess
import sys

from reviews import logs
from tests.conftest import REPO

NOISE = ("oneDNN custom operations", "cuInit", "absl::InitializeLog", "cudart_stub")


def stderr_of(*args: str) -> str:
    env_without_level = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=env_without_level).stderr


def test_a_cli_prints_no_tensorflow_start_up_noise_but_keeps_its_errors(tmp_path):
    err = stderr_of("-m", "trainer.predict", "--model", str(tmp_path), "a review")
    assert not any(noise in err for noise in NOISE), err
    assert err.strip().splitlines() == [f"predict: error: {tmp_path} holds no saved_model.pb"]


def test_verbose_brings_the_full_logs_back(tmp_path):
    err = stderr_of("-m", "trainer.predict", "--model", str(tmp_path), "--verbose", "a review")
    assert any(noise in err for noise in NOISE) and err.strip().splitlines()[-1].startswith("predict: error:")


def test_only_known_harmless_native_lines_are_filtered():
    assert logs.HARMLESS_NATIVE.search(b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on. You may see")
    for real in (b"E0000 cuda_dnn.cc] Could not create cudnn handle", b"Traceback (most recent call last):",
                 b"W tensorflow/core/kernels/data/generator_dataset_op.cc: Error occurred when finalizing GeneratorDataset"):
        assert not logs.HARMLESS_NATIVE.search(real)


def test_tf1_graph_mode_notices_are_filtered_and_real_warnings_kept():
    def shown(message: str) -> bool:
        return logs._HARMLESS.filter(logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None))

    for notice in ("Tensorflow Transform is running in tf.compat.v1 mode. This could be either because TF2 was disabled",
                   "From /x/signature_def_utils_impl.py:225: build_tensor_info (from tensorflow.python.saved_model.utils_impl)"
                   " is deprecated and will be removed in a future version.",
                   "Issue encountered when serializing tft_analyzer_use.\nType is unsupported",
                   'Expected binary or unicode string, got type_url: "type.googleapis.com/tensorflow.AssetFileDef"\nvalue: "x"',
                   # the same, as a worker process's log reaches the runner (multi_processing)
                   'Worker: severity: WARN message: "Expected binary or unicode string, got type_url: '
                   '\\"type.googleapis.com/tensorflow.AssetFileDef\\"\\nvalue: x" transform_id: "Transform/Transform"'):
        assert not shown(notice)
    for real in ("Issue encountered when serializing variables.", "5 out of the last 5 calls triggered tf.function retracing",
                 "Your input ran out of data; interrupting training."):
        assert shown(real)
