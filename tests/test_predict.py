import numpy as np

from tests.conftest import run_module
from trainer import predict


def test_predict_cli_prints_probability_and_label_per_review(trained_job, tmp_path):
    export = sorted((trained_job / "export").iterdir())[-1]
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("Stale and awful, never again.\n\nDelicious, will buy again!\n")
    result = run_module("trainer.predict", "--model", str(export), "--input", str(reviews), "Great value")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "probability\tlabel\treview" and len(lines) == 4  # blank line skipped
    expected = predict.scored(predict.loaded_signature(str(export)), ["Great value", "Stale and awful, never again.", "Delicious, will buy again!"])
    for line, (probability, label) in zip(lines[1:], expected):
        got_probability, got_label, _ = line.split("\t")
        assert abs(float(got_probability) - probability) < 1e-4
        assert got_label == ("positive" if label == 1 else "negative")


def test_predict_without_export_is_a_one_line_error(tmp_path):
    result = run_module("trainer.predict", "--model", str(tmp_path), "text")
    assert result.returncode == 2 and "holds no saved_model.pb" in result.stderr and "Traceback" not in result.stderr


def test_scored_labels_follow_the_threshold(trained_job):
    export = sorted((trained_job / "export").iterdir())[-1]
    scores = predict.scored(predict.loaded_signature(str(export)), ["a", "b c d"])
    assert all((p >= 0.5) == (label == 1) and 0 <= p <= 1 for p, label in scores)
    assert np.isfinite([p for p, _ in scores]).all()
