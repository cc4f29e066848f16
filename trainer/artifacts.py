"""What a training job leaves under JOB: history.json, metrics.json, loss.png,
and the best epoch's weights.

history.json is written epoch by epoch, merged with what an earlier,
interrupted process of the same job wrote, so a resumed run still has every
epoch once.
"""
import contextlib
import io
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from trainer import TrainerError
from reviews.storage import checked_space, write_whole


def read_json(path: str, default=None):
    if not tf.io.gfile.exists(path):
        return default
    with tf.io.gfile.GFile(path) as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TrainerError(f"{path} is damaged (not JSON: {error.msg} at line {error.lineno}); "
                           "rerun the command that wrote it") from None


def write_json(path: str, value) -> None:
    """Whole or not at all: metrics.json's presence marks a run finished."""
    write_whole(path, json.dumps(value, indent=2))


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


def loss_plot_png(history: list[dict], title: str, best_epoch: int = 0, best_by: str = "lowest validation loss") -> bytes:
    """Train vs validation loss per epoch, as the notebook plotted it, with the
    best epoch (the one evaluated and exported by default) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [e["epoch"] for e in history]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(epochs, [e["loss"] for e in history], "o-", label="train loss")
    axes.plot(epochs, [e.get("val_loss") for e in history], "o-", label="validation loss")
    if best_epoch:
        axes.axvline(best_epoch, color="grey", linestyle=":", label=f"{best_by} (epoch {best_epoch})")
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


def write_loss_plot(path: str, history: list[dict], title: str, best_epoch: int = 0,
                    best_by: str = "lowest validation loss") -> None:
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(loss_plot_png(history, title, best_epoch, best_by))


class BestEpochCheckpoint(keras.callbacks.Callback):
    """Saves the weights of the epoch with the best `monitor` value (lowest for
    a loss, highest for AUC or accuracy), and stops after `patience` epochs
    without a new best (None: never).

    Unlike Keras' ModelCheckpoint and EarlyStopping, the best value seen so far
    is kept on disk beside the weights (`state_path`), so a run resumed after a
    kill (BackupAndRestore) neither overwrites a better epoch with a worse one
    nor restarts its patience. Under multi-worker training every worker sees the
    same all-reduced validation metrics and so takes the same decisions.
    """

    def __init__(self, weights_path: str, state_path: str, patience: int | None = None, resumed: bool = False,
                 monitor: str = "val_loss"):
        super().__init__()
        self.weights_path = weights_path
        self.state_path = state_path
        self.patience = patience
        self.monitor = monitor
        self.lower_is_better = monitor.endswith("loss")
        # A fresh run ignores what an earlier run left (checkpoint folders can outlive a job dir on Vertex).
        fresh = {"epoch": 0, monitor: math.inf if self.lower_is_better else -math.inf}
        state = read_json(state_path, fresh) if resumed else fresh
        self.best = state if monitor in state else fresh

    @property
    def best_epoch(self) -> int:
        """1-based, as in history.json; 0 before the first validation."""
        return int(self.best["epoch"])

    def is_better(self, value: float) -> bool:
        best = self.best[self.monitor]
        return value < best if self.lower_is_better else value > best  # NaN is never better

    def on_epoch_end(self, epoch, logs=None):
        value = float((logs or {}).get(self.monitor, math.nan))
        if self.is_better(value):
            tf.io.gfile.makedirs(os.path.dirname(self.weights_path))
            self.model.save_weights(self.weights_path)
            self.best = {"epoch": epoch + 1, self.monitor: value}
            write_json(self.state_path, self.best)  # after the weights: it never names weights not yet written
        elif self.patience is not None and epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True


def variables_bytes(variables) -> int:
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


class FreeSpaceGuard(keras.callbacks.Callback):
    """Stops training with a one-line StorageError when an epoch's checkpoints
    would not fit in the free space left. Goes first among the callbacks: HDF5
    fails a weights save on a full disk with a crash of the whole process (a
    segfault), not an exception anything could catch."""

    HEADROOM = 2**20  # HDF5's own structure, history.json, TensorBoard's events

    def __init__(self, checkpoints_dir: str):
        super().__init__()
        self.checkpoints_dir = checkpoints_dir

    def bytes_needed(self) -> int:
        """The best epoch's weights, and the backup's weights and optimizer state
        (written beside the previous backup before it is removed)."""
        weights = variables_bytes(self.model.weights)
        optimizer = variables_bytes(getattr(self.model.optimizer, "variables", []))
        return weights + 2 * (weights + optimizer) + self.HEADROOM

    def on_epoch_end(self, epoch, logs=None):
        checked_space(self.checkpoints_dir, self.bytes_needed(), "the checkpoints in")


def readable_h5(path: str) -> bool:
    """Whether every dataset of a .weights.h5 file reads back: a save cut short by a
    kill or a full disk leaves a file that h5py opens, or not, but cannot load."""
    import h5py

    def read(_, item):
        if isinstance(item, h5py.Dataset):
            item[()]

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(read)
    except Exception:  # noqa: BLE001 (HDF5 says "truncated", "addr overflow", ...: all mean unusable)
        return False
    return True


def readable_json(path: str) -> bool:
    try:
        read_json(path)
    except TrainerError:
        return False
    return True


def repaired_checkpoints(checkpoints_dir: str, backup_dir: str) -> list[str]:
    """What a kill or a full disk during a save left unusable, set right before a
    run resumes, so that the same command (or --overwrite) works again: a cut
    backup falls back to Keras' previous copy (double_checkpoint) or, without one,
    is dropped (training starts over); a cut best-epoch file is dropped with its
    state. Returns what was done, for the log. Local paths only."""
    if "://" in backup_dir:
        return []
    done = []
    latest = os.path.join(backup_dir, "latest.weights.h5")
    metadata = os.path.join(backup_dir, "training_metadata.json")
    if os.path.exists(latest) and not (readable_h5(latest) and readable_json(metadata)):
        previous, previous_metadata = f"{latest}.bkp", f"{metadata}.bkp"
        if os.path.exists(previous) and readable_h5(previous) and readable_json(previous_metadata):
            shutil.copyfile(previous, latest)
            shutil.copyfile(previous_metadata, metadata)
            done.append(f"the backup {latest} was cut short: resuming from the one before it")
        else:
            shutil.rmtree(backup_dir)
            done.append(f"the backup {latest} was cut short and has no usable copy: training starts over")
    best = os.path.join(checkpoints_dir, "best.weights.h5")
    if os.path.exists(best) and not readable_h5(best):
        os.remove(best)
        with contextlib.suppress(OSError):
            os.remove(os.path.join(checkpoints_dir, "best.json"))
        done.append(f"the best epoch's weights {best} were cut short: the best epoch is chosen anew")
    return done
