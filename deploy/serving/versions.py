"""Which export the server serves: one folder, or the newest version under a
base path, reloaded while serving.

TF Serving's model base path is a folder of numeric versions; its default
policy serves the newest, and it polls the folder (every second by default,
--file_system_poll_wait_seconds) to load a new version beside the old one
and switch without downtime. `deploy.workflow push` writes exactly that
layout and makes a version appear by renaming it into place, so a version
folder is complete when it is first seen. Here:

- a new version is loaded on the poller's thread while the old one serves;
  the switch is one assignment under a lock, so a request runs wholly on the
  old version or wholly on the new one;
- the old version is released (UNLOADING, then END) once the requests that
  took it have finished;
- a version that fails to load is END with its error in the status and is
  never served; the version served before it stays (a failed version is not
  tried again: push a new one);
- at start, when the newest version fails, the next older one is tried.

The status follows TF Serving's GetModelStatus: states START, LOADING,
AVAILABLE, UNLOADING, END, and an error code and message per version.
"""
import contextlib
import functools
import gc
import logging
import os
import threading
import time

import tensorflow as tf
from tensorflow.core.framework import types_pb2

from reviews.exports import ExportError, error_summary, loaded_export, numeric_versions

log = logging.getLogger(__name__)

# The signatures a predict request may name, and the input each takes.
PREDICT_SIGNATURES = {"serving_default": "text", "serve_tf_example": "examples"}


class Servable:
    """One loaded version of the export."""

    def __init__(self, version: str, path: str):
        self.version, self.path = version, path
        self.loaded = loaded_export(path)  # an ExportError unless it is a trainer.task export
        self.signatures = dict(self.loaded.signatures)
        self.in_flight = 0

    def run(self, signature: str, inputs: list) -> dict:
        """One call of a predict signature (PREDICT_SIGNATURES names its input)."""
        function = self.signatures[signature]
        return {name: value.numpy()
                for name, value in function(**{PREDICT_SIGNATURES[signature]: tf.constant(inputs, tf.string)}).items()}

    @functools.cached_property
    def signature_defs(self) -> dict:
        """The signatures as TF Serving's metadata route writes them."""
        def tensor(spec, name: str) -> dict:
            dims = [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape.as_list()]
            return {"dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum), "name": name,
                    "tensor_shape": {"dim": dims, "unknown_rank": False}}

        return {name: {"inputs": {arg: tensor(spec, f"{name}_{arg}:0")
                                  for arg, spec in function.structured_input_signature[1].items()},
                       "outputs": {out: tensor(spec, f"StatefulPartitionedCall:{i}")
                                   for i, (out, spec) in enumerate(sorted(function.structured_outputs.items()))},
                       "method_name": "tensorflow/serving/predict"}
                for name, function in sorted(self.signatures.items())}

    def release(self) -> None:
        self.signatures, self.loaded = {}, None
        gc.collect()


def status_entry(version: str, state: str, error: str = "", code: str = "OK") -> dict:
    return {"version": version, "state": state, "status": {"error_code": code, "error_message": error}}


class Versions:
    """The served version and the status of every version seen.

    `model_dir`: one export, loaded once (the Vertex AI contract: AIP_STORAGE_URI),
    reported as its folder's number or as version 1. `base_path`: the newest
    numeric version under it, polled every `poll_s` seconds (0: once, at start).
    """

    def __init__(self, model_dir: str | None = None, base_path: str | None = None, poll_s: float = 1.0,
                 loader=Servable):
        if (model_dir is None) == (base_path is None):
            raise ValueError("give one of model_dir and base_path")
        self.base_path, self.poll_s, self.loader = base_path, poll_s, loader
        self._lock = threading.Lock()
        self._served: Servable | None = None
        self._status: dict[int, dict] = {}
        self._failed: set[int] = set()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        if model_dir is not None:
            name = os.path.basename(model_dir.rstrip("/"))
            version = name if name.isascii() and name.isdigit() else "1"
            self._served = loader(version, model_dir)  # an ExportError ends the server's start
            self._status[int(version)] = status_entry(version, "AVAILABLE")
        else:
            self.poll()
            if poll_s > 0:
                self._poller = threading.Thread(target=self._poll_forever, name="version-poller", daemon=True)
                self._poller.start()

    # ------------------------------------------------------------ for requests

    @contextlib.contextmanager
    def serving(self, version: str | None = None):
        """The served version for one request (None when nothing is served, or
        when `version` is asked for and is not the one served); it is not
        released before the block ends."""
        with self._lock:
            servable = self._served
            if servable is not None and version is not None and servable.version != version:
                servable = None
            if servable is not None:
                servable.in_flight += 1
        try:
            yield servable
        finally:
            if servable is not None:
                with self._lock:
                    servable.in_flight -= 1

    def status(self, version: str | None = None) -> list[dict]:
        with self._lock:
            entries = [dict(self._status[v]) for v in sorted(self._status, reverse=True)]
        return [e for e in entries if version is None or e["version"] == version]

    @property
    def served_version(self) -> str | None:
        with self._lock:
            return None if self._served is None else self._served.version

    # ------------------------------------------------------------- the poller

    def poll(self) -> None:
        """Serves the newest loadable version under the base path, if it is not served yet."""
        present = [v for v in numeric_versions(self.base_path) if v not in self._failed]
        served = self.served_version
        for number in reversed(present):
            if served is not None and int(served) == number:
                return
            if self._switched_to(number):
                return
            if served is not None:
                return  # while serving, only the newest is tried; older ones only at start

    def _set(self, number: int, state: str, error: str = "", code: str = "OK") -> None:
        with self._lock:
            self._status[number] = status_entry(str(number), state, error, code)

    def _switched_to(self, number: int) -> bool:
        version, path = str(number), os.path.join(self.base_path, str(number))
        self._set(number, "LOADING")
        started = time.monotonic()
        try:
            servable = self.loader(version, path)
        except Exception as error:  # noqa: BLE001  whatever it is, this version is not served and not tried again
            self._failed.add(number)
            reason = error_summary(error)
            self._set(number, "END", reason, "INVALID_ARGUMENT" if isinstance(error, ExportError) else "UNKNOWN")
            log.warning("version %s of %s not served: %s", version, self.base_path, reason)
            return False
        with self._lock:
            old, self._served = self._served, servable
            self._status[number] = status_entry(version, "AVAILABLE")
            if old is not None:
                self._status[int(old.version)] = status_entry(old.version, "UNLOADING")
        log.info("serving version %s of %s (loaded in %.1f s)", version, self.base_path, time.monotonic() - started)
        if old is not None:
            self._release(old)
        return True

    def _release(self, old: Servable) -> None:
        """Once the requests that took the old version have finished."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with self._lock:
                if old.in_flight == 0:
                    break
            time.sleep(0.01)
        old.release()
        self._set(int(old.version), "END")

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as error:  # noqa: BLE001  a poll that failed must not end polling
                log.warning("polling %s failed: %s", self.base_path, error_summary(error))

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
