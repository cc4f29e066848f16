import json

from tests.conftest import run_main, run_module
from trainer.compare import comparison_table


def test_table_has_one_row_per_job_with_the_notebook_columns(trained_job, tmp_path):
    other = tmp_path / "lstm2"
    other.mkdir()
    metrics = json.loads((trained_job / "metrics.json").read_text())
    (other / "metrics.json").write_text(json.dumps({**metrics, "model": "lstm2", "test_accuracy": 0.92}))
    lines = comparison_table([str(trained_job), str(other)]).splitlines()
    assert lines[0] == ("| model | layers | train loss | val loss | test loss | test accuracy | test AUC | F1 negative | "
                        "macro-F1 | threshold | macro-F1 at it | calibration error | params | s / epoch | report |")
    assert lines[2].startswith("| lstm1 | Embedding(") and "LSTM(100)" in lines[2]
    assert f"| {metrics['test_f1_negative']:.4f} | {metrics['test_macro_f1']:.4f} | {metrics['chosen_threshold']:.3f} | " \
           f"{metrics['test_macro_f1_at_chosen_threshold']:.4f} |" in lines[2]
    assert lines[2].endswith(f"| [report.html]({trained_job}/evaluation/report.html) |")
    assert lines[3].startswith("| lstm2 |") and "| 92.00% |" in lines[3] and lines[3].endswith("| – |")  # no report there


def test_a_report_made_later_by_trainer_evaluate_is_summarised_too(trained_job, tmp_path):
    """An older job, without the report's figures in metrics.json, evaluated afterwards."""
    old = tmp_path / "old"
    (old / "evaluation").mkdir(parents=True)
    metrics = json.loads((trained_job / "metrics.json").read_text())
    for key in ("chosen_threshold", "test_macro_f1_at_chosen_threshold", "expected_calibration_error", "evaluation"):
        metrics.pop(key)
    (old / "metrics.json").write_text(json.dumps(metrics))
    evaluation = json.loads((trained_job / "evaluation" / "evaluation.json").read_text())
    (old / "evaluation" / "evaluation.json").write_text(json.dumps(evaluation))
    row = comparison_table([str(old)]).splitlines()[2]
    assert f"| {evaluation['chosen_threshold']['threshold']:.3f} | {evaluation['at_chosen']['macro_f1']:.4f} |" in row


def test_unfinished_job_is_a_one_line_error(tmp_path):
    result = run_main("trainer.compare", str(tmp_path))
    assert result.returncode == 2 and "has no metrics.json" in result.stderr
