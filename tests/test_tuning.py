import json

from trainer import tuning


def test_reporter_writes_the_hypertune_metric_file(tmp_path, monkeypatch):
    path = tmp_path / "hypertune" / "output.metrics"
    monkeypatch.setenv(tuning.METRIC_FILE_ENV, str(path))
    monkeypatch.setenv(tuning.TRIAL_ENV, "7")
    assert tuning.in_tuning_trial()
    reporter = tuning.TuningMetricReporter("val_accuracy")
    reporter.on_epoch_end(0, {"val_accuracy": 0.81, "loss": 0.5})
    reporter.on_epoch_end(1, {"val_accuracy": 0.84})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["trial"], e["val_accuracy"], e["global_step"]) for e in lines] == [("7", "0.81", "1"), ("7", "0.84", "2")]
