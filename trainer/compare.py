"""The notebook's conclusion table, from finished jobs of any model, with
each job's evaluation report (threshold chosen on validation, calibration, a
link to report.html).

    python -m trainer.compare JOB1 JOB2 ...   → Markdown on stdout
"""
import os
import sys

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

import tensorflow as tf

from reviews import logs
from reviews.errors import one_line_errors
from trainer import TrainerError
from trainer.artifacts import read_json
from trainer.evaluate import metrics_of

COLUMNS = (
    ("model", "model", "{}"),
    ("layers", "architecture", "{}"),
    ("train loss", "train_loss", "{:.4f}"),
    ("val loss", "val_loss", "{:.4f}"),
    ("test loss", "test_loss", "{:.4f}"),
    ("test accuracy", "test_accuracy", "{:.2%}"),
    ("test AUC", "test_auc", "{:.4f}"),
    # Accuracy mostly reflects the class balance; the minority class's F1 does not.
    ("F1 negative", "test_f1_negative", "{:.4f}"),
    ("macro-F1", "test_macro_f1", "{:.4f}"),
    # From the evaluation report: the threshold that maximises macro-F1 on validation, measured on test.
    ("threshold", "chosen_threshold", "{:.3f}"),
    ("macro-F1 at it", "test_macro_f1_at_chosen_threshold", "{:.4f}"),
    ("calibration error", "expected_calibration_error", "{:.4f}"),
    ("params", "params", "{:,}"),
    ("s / epoch", "seconds_per_epoch", "{:.1f}"),
)
TITLES = [title for title, _, _ in COLUMNS] + ["report"]


def report_link(job_dir: str) -> str:
    path = os.path.join(job_dir, "evaluation", "report.html")
    return f"[report.html]({path})" if tf.io.gfile.exists(path) else "–"


def job_metrics(job_dir: str) -> dict:
    """metrics.json, with the figures of an evaluation report run later (trainer.evaluate) on
    top when that report is of the same data (a report of other data is only linked)."""
    metrics = read_json(os.path.join(job_dir, "metrics.json"))
    if metrics is None:
        raise TrainerError(f"{job_dir} has no metrics.json (not a finished trainer.task run)")
    evaluated = read_json(os.path.join(job_dir, "evaluation", "evaluation.json"))
    return {**metrics, **metrics_of(evaluated)} if evaluated and evaluated.get("data") == metrics.get("data") else metrics


def table_row(metrics: dict, job_dir: str) -> str:
    cells = [fmt.format(metrics[key]) if metrics.get(key) is not None else "–" for _, key, fmt in COLUMNS]
    return "| " + " | ".join(cells + [report_link(job_dir)]) + " |"


def comparison_table(job_dirs: list[str]) -> str:
    lines = ["| " + " | ".join(TITLES) + " |", "|" + "---|" * len(TITLES)]
    for job_dir in job_dirs:
        lines.append(table_row(job_metrics(job_dir), job_dir))
    return "\n".join(lines)


@one_line_errors("compare")
def main(argv=None) -> int:
    parser = logs.OneLineParser(name="compare", prog="python -m trainer.compare", description=__doc__.split("\n")[0])
    parser.add_argument("jobs", nargs="+", help="trainer.task --job-dir folders")
    args = parser.parse_args(argv)
    print(comparison_table(args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
