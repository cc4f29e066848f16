"""Imported first by every command-line module, before TensorFlow loads: when
that module is the program being run (`python -m trainer.task`), TensorFlow's
start-up notices are filtered (reviews.logs.quiet_start); imported by tests,
a notebook or another command, it does nothing."""
import sys

from reviews.logs import quiet_start

_main = sys.modules.get("__main__")
if getattr(getattr(_main, "__spec__", None), "name", "").split(".")[0] in ("pipelines", "trainer", "deploy"):
    quiet_start()
