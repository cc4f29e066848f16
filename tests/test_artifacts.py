"""The best-epoch checkpoint: which weights it keeps, when it stops, and that
both survive a process that is killed and resumed."""
import json

import keras
import numpy as np
import pytest

from trainer import artifacts


class FakeFit:
    """Drives a callback the way `fit` does, epoch by epoch, on a tiny real model."""

    def __init__(self, callback):
        self.model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        self.model.stop_training = False  # as fit sets it
        self.callback = callback
        callback.set_model(self.model)

    def epochs(self, first: int, val_losses: list[float], monitor: str = "val_loss") -> int:
        """Runs epochs first, first+1, ... (1-based) until the callback stops them; returns the last run."""
        for epoch, val_loss in enumerate(val_losses, start=first):
            self.model.layers[0].kernel.assign(np.full((2, 1), epoch, np.float32))  # weights that name their epoch
            self.callback.on_epoch_end(epoch - 1, {monitor: val_loss})
            if self.model.stop_training:
                return epoch
        return first + len(val_losses) - 1


def saved_epoch(path) -> int:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.load_weights(str(path))
    return int(model.layers[0].kernel.numpy()[0, 0])


def test_keeps_the_lowest_validation_loss_epoch(tmp_path):
    best = artifacts.BestEpochCheckpoint(str(tmp_path / "best.weights.h5"), str(tmp_path / "best.json"))
    assert FakeFit(best).epochs(1, [0.6, 0.4, 0.5, 0.45, 0.41]) == 5  # no patience: every epoch runs
    assert best.best_epoch == 2 and saved_epoch(tmp_path / "best.weights.h5") == 2
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 2, "val_loss": 0.4}


def test_keeps_the_highest_validation_auc_epoch_and_stops_on_it(tmp_path):
    best = artifacts.BestEpochCheckpoint(str(tmp_path / "best.weights.h5"), str(tmp_path / "best.json"), patience=2,
                                         monitor="val_auc")
    assert FakeFit(best).epochs(1, [0.80, 0.86, 0.85, 0.90, 0.89, 0.88, 0.95], monitor="val_auc") == 6
    assert best.best_epoch == 4 and saved_epoch(tmp_path / "best.weights.h5") == 4
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 4, "val_auc": 0.90}


def test_best_value_and_patience_survive_a_kill_and_resume(tmp_path):
    paths = (str(tmp_path / "best.weights.h5"), str(tmp_path / "best.json"))
    first = artifacts.BestEpochCheckpoint(*paths, patience=3)
    assert FakeFit(first).epochs(1, [0.5, 0.3, 0.35]) == 3  # killed after epoch 3
    # A new process resumes at epoch 4: a worse epoch must not replace epoch 2,
    # and the patience counts from epoch 2, not from the restart.
    resumed = artifacts.BestEpochCheckpoint(*paths, patience=3, resumed=True)
    assert FakeFit(resumed).epochs(4, [0.34, 0.33, 0.2]) == 5
    assert resumed.best_epoch == 2 and saved_epoch(paths[0]) == 2


def test_a_fresh_run_ignores_a_best_left_by_an_earlier_run(tmp_path):
    paths = (str(tmp_path / "best.weights.h5"), str(tmp_path / "best.json"))
    FakeFit(artifacts.BestEpochCheckpoint(*paths)).epochs(1, [0.1])
    fresh = artifacts.BestEpochCheckpoint(*paths)
    FakeFit(fresh).epochs(1, [0.9, 0.8])
    assert fresh.best_epoch == 2 and saved_epoch(paths[0]) == 2


@pytest.mark.parametrize("val_losses, patience, stops_at", [
    ([0.5, 0.4, 0.41, 0.42], 2, 4),
    ([0.5, 0.4, 0.41, 0.39, 0.45], 2, 5),
    ([0.5, 0.6], 1, 2),
    ([0.5, 0.4, 0.3], 1, 3),  # never stalls: runs to the end
])
def test_early_stopping_after_patience_epochs_without_a_new_best(tmp_path, val_losses, patience, stops_at):
    best = artifacts.BestEpochCheckpoint(str(tmp_path / "w.weights.h5"), str(tmp_path / "b.json"), patience=patience)
    assert FakeFit(best).epochs(1, val_losses) == stops_at
