"""Quiet, readable command lines: our CLIs print their own results and progress,
not the start-up notices of the libraries under them. `--verbose` brings the
full logs back.

Three kinds of noise, three remedies:
- TensorFlow's C++ start-up lines (oneDNN, CUDA probing on a CPU machine) are
  written to file descriptor 2 before absl logging is initialised, so no log
  level stops them: stderr is passed through a filter that drops exactly those
  known lines and forwards everything else, our errors included.
- Python loggers of Beam, TensorFlow and absl log at INFO: the root logger is
  set to WARNING, our own packages' loggers to INFO.
- Known-harmless WARNING lines are filtered by pattern.
Warnings that reveal a bug (retracing, "input ran out of data") are fixed
where they arise, not listed here.
"""
import argparse
import atexit
import difflib
import logging
import os
import re
import sys
import threading

from reviews.storage import storage_cause

OURS = ("reviews", "pipelines", "trainer", "deploy", "__main__")  # our modules log to logging.getLogger(__name__)
# C++ lines a CPU run prints at every start; nothing a user can act on.
HARMLESS_NATIVE = re.compile(
    rb"All log messages before absl::InitializeLog|oneDNN custom operations are on|Could not find cuda drivers"
    rb"|failed call to cuInit|oneDNN supports DT_\w+ only on platforms with AVX-512|cpu_feature_guard"
    rb"|This TensorFlow binary is optimized to use|To enable the following instructions: AVX"
    rb"|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered"
    rb"|No semi_persistent_directory found"  # Beam's worker processes, run locally
)
# Python-side WARNING lines of the same kind: Beam on a machine without the resource module,
# and what tf.Transform's TF1 graph mode (chosen by pipelines.preprocess) says while it saves
# the transform graph: that mode itself, a deprecated TF1 call inside TensorFlow, and
# collections and assets that a graph's MetaGraphDef cannot hold (tf.Transform keeps them apart).
HARMLESS_LOGS = re.compile(
    r"Resource module is not available"
    r"|Tensorflow Transform is running in tf.compat.v1 mode"
    r"|build_tensor_info \(from tensorflow.python.saved_model.utils_impl\) is deprecated"
    r"|Issue encountered when serializing tft_"
    r"|Expected binary or unicode string, got type_url: \\?\"type.googleapis.com/tensorflow.AssetFileDef"  # \" from a worker
)

_pump: threading.Thread | None = None
_saved_stderr: int | None = None


def _forward_known_lines(read_fd: int, write_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as source:
        pending = b""
        while chunk := source.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not HARMLESS_NATIVE.search(line))
            if kept:
                os.write(write_fd, kept)
        if pending and not HARMLESS_NATIVE.search(pending):
            os.write(write_fd, pending)


def filter_native_stderr() -> None:
    """Routes file descriptor 2 through a thread that drops HARMLESS_NATIVE lines.
    Call before TensorFlow is imported; `restore_stderr` (also run at exit)
    puts it back and waits for the last lines."""
    global _pump, _saved_stderr
    if _pump is not None:
        return
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    _saved_stderr = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _pump = threading.Thread(target=_forward_known_lines, args=(read_fd, _saved_stderr), daemon=True)
    _pump.start()
    atexit.register(restore_stderr)


def restore_stderr() -> None:
    """Stops filtering; call before os._exit, which skips atexit."""
    global _pump
    if _pump is None:
        return
    sys.stderr.flush()
    os.dup2(_saved_stderr, 2)  # the pipe's last writer in this process closes: the thread reads to its end
    _pump.join(timeout=2)
    _pump = None


def is_reported_storage_fault(record: logging.LogRecord) -> bool:
    """Beam logs a failed DoFn's traceback before it re-raises; a full disk or
    read-only output is then said by our CLI in one line (reviews.storage)."""
    if not record.name.startswith("apache_beam") or record.levelno < logging.ERROR:
        return False
    error = record.exc_info[1] if record.exc_info else Exception(record.getMessage())
    return storage_cause(error) is not None


class _HarmlessFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (HARMLESS_LOGS.search(record.getMessage()) or is_reported_storage_fault(record))


_HARMLESS = _HarmlessFilter()


def configure(verbose: bool = False) -> None:
    """Logging for a CLI: ours at INFO, libraries at WARNING (all at INFO with --verbose)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")  # no-op where handlers exist (pytest)
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    for name in OURS:
        logging.getLogger(name).setLevel(logging.INFO)
    # TensorFlow gives its logger a handler of its own when it loads before logging is set up:
    # every TensorFlow warning would be printed twice, once in each format.
    tf_logger = logging.getLogger("tensorflow")
    for handler in list(tf_logger.handlers):
        if logging.getLogger().handlers and type(handler) is logging.StreamHandler:
            tf_logger.removeHandler(handler)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_HARMLESS)  # one instance: adding it again is a no-op
        for name in ("tensorflow", "absl", "apache_beam", "tfx_bsl", "tensorflow_transform"):
            logging.getLogger(name).setLevel(logging.WARNING)


def quiet_start(argv: list[str] | None = None) -> bool:
    """What a CLI's first lines call, before TensorFlow loads: True if --verbose."""
    verbose = "--verbose" in (sys.argv[1:] if argv is None else argv)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        filter_native_stderr()
    return verbose


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), with the
    closest known flag for a misspelt one; `--help` still shows the usage."""

    def __init__(self, *args, name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = name  # what our one-line errors start with: "preprocess: error: ..."

    def error(self, message: str):
        unknown = message.split("unrecognized arguments: ", 1)[-1].split()[0] if "unrecognized arguments" in message else None
        if unknown and unknown.startswith("-"):
            known = [flag for action in self._actions for flag in action.option_strings]
            close = difflib.get_close_matches(unknown.split("=", 1)[0], known, n=1)
            message = f"unknown option {unknown.split('=', 1)[0]}" + (f" (did you mean {close[0]}?)" if close else "")
        self.exit(2, f"{self.name}: error: {message}\n")
