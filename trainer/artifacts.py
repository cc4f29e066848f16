"""What a training job leaves under JOB: history.json, metrics.json, loss.png.

history.json is written epoch by epoch, merged with what an earlier,
interrupted process of the same job wrote, so a resumed run still has every
epoch once.
"""
import io
import json
import os
import time

import keras
import tensorflow as tf


def read_json(path: str, default=None):
    if not tf.io.gfile.exists(path):
        return default
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def write_json(path: str, value) -> None:
    with tf.io.gfile.GFile(path, "w") as handle:
        json.dump(value, handle, indent=2)


class EpochRecorder(keras.callbacks.Callback):
    """Appends each finished epoch (metrics, seconds, examples/s) to history.json."""

    def __init__(self, history_path: str, examples_per_epoch: int):
        super().__init__()
        self.history_path = history_path
        self.examples_per_epoch = examples_per_epoch
        self.started = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.time() - self.started
        history = [e for e in read_json(self.history_path, []) if e["epoch"] != epoch + 1]
        history.append(
            {
                "epoch": epoch + 1,
                **{key: float(value) for key, value in (logs or {}).items()},
                "seconds": seconds,
                "examples_per_second": self.examples_per_epoch / seconds,
                "pid": os.getpid(),
            }
        )
        write_json(self.history_path, sorted(history, key=lambda e: e["epoch"]))


def loss_plot_png(history: list[dict], title: str) -> bytes:
    """Train vs validation loss per epoch, as the notebook plotted it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [e["epoch"] for e in history]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(epochs, [e["loss"] for e in history], "o-", label="train loss")
    axes.plot(epochs, [e.get("val_loss") for e in history], "o-", label="validation loss")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("binary cross-entropy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def write_loss_plot(path: str, history: list[dict], title: str) -> None:
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(loss_plot_png(history, title))
