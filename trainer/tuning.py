"""Reports the tuning metric the way Vertex AI's hyperparameter tuning reads it.

A trial's container writes JSON lines to CLOUD_ML_HP_METRIC_FILE (default
/tmp/hypertune/output.metrics), the protocol of Google's `cloudml-hypertune`
package; it is a dozen lines, so it is written here rather than depending on
that 2019 pre-release. Active only inside a tuning trial (CLOUD_ML_TRIAL_ID).
"""
import collections
import json
import os
import time

import keras

METRIC_FILE_ENV, TRIAL_ENV = "CLOUD_ML_HP_METRIC_FILE", "CLOUD_ML_TRIAL_ID"
DEFAULT_METRIC_FILE = "/tmp/hypertune/output.metrics"
KEPT_ENTRIES = 100


def in_tuning_trial() -> bool:
    return TRIAL_ENV in os.environ


def trial_job_dir(job_dir: str) -> str:
    """JOB/trials/<trial id>/ inside a tuning trial, else JOB: every trial of a
    tuning job is given the same --job-dir, and one trial's finished run must
    neither block nor overwrite another's."""
    return os.path.join(job_dir, "trials", os.environ[TRIAL_ENV]) if in_tuning_trial() else job_dir


class TuningMetricReporter(keras.callbacks.Callback):
    def __init__(self, metric: str):
        super().__init__()
        self.metric = metric
        self.path = os.environ.get(METRIC_FILE_ENV, DEFAULT_METRIC_FILE)
        self.entries = collections.deque(maxlen=KEPT_ENTRIES)

    def on_epoch_end(self, epoch, logs=None):
        if self.metric not in (logs or {}):
            return
        self.entries.append({
            "timestamp": time.time(),
            "trial": str(os.environ.get(TRIAL_ENV, 0)),
            self.metric: str(float(logs[self.metric])),
            "global_step": str(epoch + 1),
            "checkpoint_path": "",
        })
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "w") as handle:
            handle.writelines(json.dumps(entry, sort_keys=True) + "\n" for entry in self.entries)
